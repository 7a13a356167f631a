"""The process's counters (ocsi.stats) and the workers' sum (ocsi.statsfiles): snapshots,
merging, and a dead worker folded by the master counted exactly once whatever a reader was
doing at that moment."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ocsi._http.access import AccessRecord
from ocsi.stats import DURATION_BUCKETS, Stats, iter_series, merge
from ocsi.statsfiles import MasterStats, collect, worker_file
from ocsi.testing import make_request


def record(stats: Stats, method: str, status: int, duration: float = 0.003,
           sent: int = 10) -> None:
    req = make_request(method, "/x")
    stats.finished(AccessRecord.answered(req, 0.0, "127.0.0.1", status, sent, duration, 80,
                                         False))


def series(snap: dict, name: str) -> dict[tuple, object]:
    return {tuple(sorted(labels.items())): v for n, labels, v in iter_series(snap) if n == name}


def test_requests_by_method_folded_and_status_class() -> None:
    stats = Stats()
    for method, status in [("GET", 200), ("GET", 204), ("get", 404), ("BREW", 500),
                           ("POST", 302), ("GET", 101)]:
        record(stats, method, status)
    got = series(stats.snapshot(), "ocsi_requests_total")

    def n(method: str, code: str) -> object:
        return got.get((("code", code), ("host", ""), ("method", method), ("site", "")))

    assert n("GET", "2xx") == 2 and n("POST", "3xx") == 1 and n("GET", "1xx") == 1
    assert n("OTHER", "4xx") == 1 and n("OTHER", "5xx") == 1  # "get" and "BREW": not raw
    assert stats.response_body_bytes == 60


def test_duration_buckets_are_prometheus_le() -> None:
    stats = Stats()
    record(stats, "GET", 200, duration=DURATION_BUCKETS[2])  # exactly on a bound: in it
    record(stats, "GET", 200, duration=1e9)  # past the last bound: +Inf
    (hist,) = series(stats.snapshot(), "ocsi_request_duration_seconds").values()
    assert hist[2] == 1 and hist[len(DURATION_BUCKETS)] == 1  # type: ignore[index]
    assert hist[-1] == pytest.approx(DURATION_BUCKETS[2] + 1e9)  # type: ignore[index]


def test_families_are_the_same_on_every_definition() -> None:
    stats = Stats()
    fam = stats.counter("x_total", "x", ("a",))
    assert stats.counter("x_total", "x", ("a",)) is fam
    fam.labels("1").value += 2
    with pytest.raises(ValueError):
        stats.counter("x_total", "x", ("b",))
    with pytest.raises(ValueError):
        fam.labels("1", "2")
    assert series(stats.snapshot(), "x_total") == {(("a", "1"),): 2}


def test_merge_adds_counters_and_combines_gauges_as_declared() -> None:
    a, b = Stats(), Stats()
    for s, n in ((a, 1), (b, 2)):
        s.counter("c_total", "c").labels().value += n
        s.gauge("g_max", "g", merge="max").labels().set(n)
        s.gauge("g_sum", "g").labels().set(n)
        record(s, "GET", 200)
    total = merge(merge({}, a.snapshot()), b.snapshot())
    assert series(total, "c_total") == {(): 3}
    assert series(total, "g_max") == {(): 2} and series(total, "g_sum") == {(): 3}
    (hist,) = series(total, "ocsi_request_duration_seconds").values()
    assert sum(hist[:-1]) == 2  # type: ignore[index]


def _publish(directory: Path, index: int, pid: int, count: int) -> None:
    stats = Stats()
    stats.counter("c_total", "c").labels().value += count
    stats.gauge("g", "g").labels().set(1)
    (directory / worker_file(index, pid)).write_text(json.dumps(stats.snapshot()))


def _count(directory: Path) -> object:
    return series(collect(str(directory), {}), "c_total").get(())


def test_a_dead_worker_is_counted_once_before_during_and_after_folding(tmp_path: Path) -> None:
    _publish(tmp_path, 0, 101, 5)
    _publish(tmp_path, 1, 102, 7)
    assert _count(tmp_path) == 12
    master = MasterStats(str(tmp_path))
    # a reader that read worker 0's file, then retired.json written by the fold: once
    files_first = {n: json.loads((tmp_path / n).read_text()) for n in os.listdir(tmp_path)}
    master.fold(0, 101)
    assert not (tmp_path / worker_file(0, 101)).exists()
    for name, snap in files_first.items():  # put the file back as that reader saw it
        (tmp_path / name).write_text(json.dumps(snap))
    assert _count(tmp_path) == 12
    os.unlink(tmp_path / worker_file(0, 101))
    assert _count(tmp_path) == 12  # after: through retired.json only
    _publish(tmp_path, 0, 103, 1)  # its successor starts from zero
    assert _count(tmp_path) == 13
    total = collect(str(tmp_path), {})
    assert series(total, "g") == {(): 2}  # live workers' gauges; the dead one's are gone


def test_master_counts_replace_the_workers_reloads(tmp_path: Path) -> None:
    worker = Stats()
    worker.reloads = 3
    master = MasterStats(str(tmp_path))
    master.reloads, master.restarts = 1, 2
    master.save()
    total = collect(str(tmp_path), worker.snapshot())
    assert series(total, "ocsi_reloads_total") == {(): 1}
    assert series(total, "ocsi_worker_restarts_total") == {(): 2}


def _pipeline_counts(paths: list[str]) -> dict[tuple, object]:
    """Requests through a host with two sites and a host-level page, counted by scope."""
    import asyncio

    from ocsi import DO_NOTHING, BytesBody, Found, FunctionStep, Response, Serve
    from ocsi._pipeline.engine import Host, Pipeline, Site
    from ocsi._pipeline.scope import SiteConfig

    def page(text: str, when: str | None = None) -> FunctionStep:
        async def fn(request, state):  # type: ignore[no-untyped-def]
            if isinstance(state, Found) or (when and request.sub_path_str != when):
                return DO_NOTHING
            return Serve(Response(200, [("content-type", "text/plain")], BytesBody(text.encode())))
        return FunctionStep(fn)

    async def a_filter(request, state):  # type: ignore[no-untyped-def]
        return Serve(state.response) if isinstance(state, Found) else DO_NOTHING

    inner = Site(("b",), [page("inner", "here")])
    outer = Site(("a",), [inner, page("outer", "page")])
    host = Host([], [outer, page("host", "a/other"), FunctionStep(a_filter)], SiteConfig(),
                name="*")
    pipeline = Pipeline([host])
    stats = Stats()
    stats.bind(pipeline)

    async def run() -> None:
        for path in paths:
            req = make_request("GET", path)
            resp = await pipeline.respond(req)
            stats.finished(AccessRecord.answered(req, 0.0, "-", resp.status, 0, 0.0, 80, False))

    asyncio.run(run())
    return {k: v for k, v in series(stats.snapshot(), "ocsi_requests_total").items()}


def test_answers_are_counted_under_the_scope_that_gave_them() -> None:
    got = _pipeline_counts(["/a/b/here", "/a/page", "/a/other", "/a/b/nothing", "/elsewhere"])

    def n(site: str, code: str) -> object:
        return got.get((("code", code), ("host", "*"), ("method", "GET"), ("site", site)))

    assert n("a/b", "2xx") == 1  # the nested site, through the host's filter
    assert n("a", "2xx") == 1
    assert n("", "2xx") == 1  # the host's page, after the site /a/ found nothing
    assert n("a/b", "4xx") == 1  # found nowhere: the last site entered
    assert n("", "4xx") == 1
