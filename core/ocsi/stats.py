"""The process's counters: what the server and its extensions count, for a metrics exporter.

Counting happens on the request path, so it is kept to a few integer additions on plain
Python objects: no lock (one event loop per process), no label lookup per request (host and
site counters are found at configuration time and reached through the request's stash), no
formatting. Turning the numbers into an exposition format is the exporter's job
(``ocsi-ext-metrics``), from a :meth:`Stats.snapshot`: a plain, JSON-able dictionary that
worker processes also publish to their master's directory (:mod:`ocsi.statsfiles`) so one
scrape can add every worker up.

Labels only ever come from the configuration (a host as written, a site's path, a method
folded to a fixed set), so the number of series is bounded by the configuration.

There is one :data:`STATS` per process, shared by every server the process runs (one, in
production); extensions register their own families into it with :meth:`Stats.counter`,
:meth:`Stats.gauge` and :meth:`Stats.histogram`, which return the same family when called
again with the same definition (a reload, a second element), so counts survive reloads.

Private: not part of the extension API. (``ocsi`` exports what extensions use.)
"""

from __future__ import annotations

import ssl
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ._http.access import AccessRecord
    from ._pipeline.engine import Pipeline

__all__ = ["STATS", "Stats", "Family", "Counter", "Gauge", "Histogram", "ScopeCounts",
           "CountedSSLObject", "METHODS", "STATUS_CLASSES", "DURATION_BUCKETS",
           "Snapshot"]

#: The methods counted by name; any other is counted as ``OTHER``.
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE")
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
#: Upper bounds (seconds) of the request-duration histogram's buckets (``+Inf`` follows).
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                    5.0, 10.0, 30.0)

#: Cells of a status class: one per duration bucket, ``+Inf`` included.
CELLS = len(DURATION_BUCKETS) + 1
#: Cells of a method: rows 0 (unused) to 5, one per status class.
ROWS = 6 * CELLS

#: A snapshot: ``{family name: {"kind", "help", "labels", "merge", "series"}}``, where
#: ``series`` is a list of ``[label values…, value]`` (a histogram's value is
#: ``[bucket counts…, +Inf count, sum]``, not cumulated).
Snapshot = dict[str, dict[str, Any]]
Kind = Literal["counter", "gauge", "histogram"]
#: How a gauge of several workers is combined: added up, or the largest/smallest value.
Merge = Literal["sum", "max", "min"]


class Counter:
    """One series of a counter family: ``inc()`` or ``value += n`` (never decrease it)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: float = 0

    def inc(self, amount: float = 1) -> None:
        self.value += amount


class Gauge(Counter):
    """One series of a gauge family: ``set``, ``inc``, ``dec``."""

    __slots__ = ()

    def set(self, value: float) -> None:
        self.value = value

    def dec(self, amount: float = 1) -> None:
        self.value -= amount


class Histogram:
    """One series of a histogram family: ``observe(seconds)``."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        #: Per bucket (not cumulated), the last one is ``+Inf``.
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


class Family:
    """A named metric and its series, one per tuple of label values (from the configuration:
    resolve ``labels(…)`` once, when the element is parsed, and keep the series)."""

    def __init__(self, name: str, help: str, kind: Kind, labelnames: Sequence[str],  # noqa: A002
                 merge: Merge = "sum", bounds: Sequence[float] = DURATION_BUCKETS) -> None:
        self.name = name
        self.help = help
        self.kind: Kind = kind
        self.labelnames = tuple(labelnames)
        self.merge: Merge = merge
        self.bounds = tuple(bounds)
        self.series: dict[tuple[str, ...], Any] = {}

    def labels(self, *values: str) -> Any:
        """The series for ``values`` (one per label name), created at its first use."""
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} has labels {self.labelnames}, not {values}")
        key = tuple(str(v) for v in values)
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = (Histogram(self.bounds) if self.kind == "histogram"
                                         else Gauge() if self.kind == "gauge" else Counter())
        return series

    def rows(self) -> list[list[Any]]:
        out: list[list[Any]] = []
        for key, s in self.series.items():
            value = [*s.counts, s.sum] if isinstance(s, Histogram) else s.value
            out.append([*key, value])
        return out


class ScopeCounts:
    """The requests of one ``(host, site)``: counts per method and status class, and the
    duration histogram. Reached from the request without a lookup (see :meth:`Stats.bind`)."""

    __slots__ = ("host", "site", "methods", "other", "seconds")

    def __init__(self, host: str, site: str) -> None:
        self.host = host
        self.site = site
        #: ``methods[method][status // 100 * CELLS + duration bucket]``: one increment counts
        #: an answer for both the request counter and the histogram (each costs about as much
        #: as the other); rows 1 to 5 are the status classes. ``other``: the methods not in
        #: :data:`METHODS`. Both are folded when read.
        self.methods: dict[str | None, list[int]] = {m: [0] * ROWS for m in METHODS}
        self.other = [0] * ROWS
        self.seconds = 0.0

    def classes(self) -> Iterator[tuple[str, str, int]]:
        """``(method, status class, count)`` of every count above 0."""
        for method, cells in (*self.methods.items(), ("OTHER", self.other)):
            for hundreds in range(1, 6):
                n = sum(cells[hundreds * CELLS:(hundreds + 1) * CELLS])
                if n:
                    yield method or "OTHER", STATUS_CLASSES[hundreds - 1], n

    def buckets(self) -> list[int]:
        """The duration histogram (per bucket, not cumulated), every method and status."""
        out = [0] * CELLS
        for cells in (*self.methods.values(), self.other):
            for i, n in enumerate(cells):
                out[i % CELLS] += n
        return out


#: The request stash key under which the pipeline leaves the host or site that answered
#: (:data:`ocsi._pipeline.engine.SCOPE_KEY`, the same string: the engine does not import this).
SCOPE_KEY = "ocsi.scope"


class Stats:
    """Every counter of this process. Read it with :meth:`snapshot`."""

    def __init__(self) -> None:
        self.scopes: dict[tuple[str, str], ScopeCounts] = {}
        #: Requests no host took (and those refused before a host could be chosen).
        self.unrouted = self.scope("", "")
        self.request_body_bytes = 0
        self.response_body_bytes = 0
        self.tls_handshakes = 0
        self.tls_failures = 0
        self.reloads = 0
        self.failed_reloads = 0
        #: Set by an exporter whose configuration is loaded: workers then publish their
        #: snapshots for one another (:mod:`ocsi.statsfiles`).
        self.exported = False
        self.families: dict[str, Family] = {}
        #: ``() -> {family name: {label values: value}}`` sampled at each snapshot (the open
        #: connections of a running server, certificate expiry dates…).
        self._samplers: list[Callable[[], dict[str, dict[tuple[str, ...], float]]]] = []

    # -- the request path ------------------------------------------------------------------------
    def finished(self, rec: AccessRecord) -> None:
        """Count one answer (called where the access record is written, for every protocol)."""
        # paid per answer: subscripts in a zero-cost try block rather than calls to get; the
        # rare cases (no request, no host, a method not in METHODS) are in _finished_rarely
        d = rec.duration
        try:
            req = rec.request
            scope = req.stash[SCOPE_KEY].counts  # type: ignore[union-attr]
            scope.methods[rec.method][rec.status // 100 * CELLS
                                      + bisect_left(DURATION_BUCKETS, d)] += 1
        except (AttributeError, KeyError, IndexError):
            self._finished_rarely(rec)
            return
        scope.seconds += d
        self.response_body_bytes += rec.bytes_sent
        received = req.body.received  # type: ignore[union-attr]
        if received:
            self.request_body_bytes += received

    def _finished_rarely(self, rec: AccessRecord) -> None:
        req = rec.request
        scope = None
        if req is not None:
            where = req.stash.get(SCOPE_KEY)
            scope = getattr(where, "counts", None)
            self.request_body_bytes += req.body.received
        if scope is None:
            scope = self.unrouted
        row = min(max(rec.status // 100, 1), 5)
        d = rec.duration
        cells = scope.methods.get(rec.method, scope.other)
        cells[row * CELLS + bisect_left(DURATION_BUCKETS, d)] += 1
        scope.seconds += d
        self.response_body_bytes += rec.bytes_sent

    # -- configuration time ----------------------------------------------------------------------
    def scope(self, host: str, site: str) -> ScopeCounts:
        """The counts of ``(host, site)``, kept across reloads."""
        counts = self.scopes.get((host, site))
        if counts is None:
            counts = self.scopes[(host, site)] = ScopeCounts(host, site)
        return counts

    def bind(self, pipeline: Pipeline) -> None:
        """Give each host and site of ``pipeline`` its counts (``counts`` attribute), labelled
        with the host as written and the site's whole path."""
        from ._pipeline.engine import Site

        def walk(steps: Sequence[Any], host: str, prefix: tuple[str, ...]) -> None:
            for step in steps:
                if type(step) is Site:
                    path = prefix + step.path
                    step.counts = self.scope(host, "/".join(path))
                    walk(step.steps, host, path)
                else:
                    walk(step.children(), host, prefix)

        for host in pipeline.hosts:
            host.counts = self.scope(host.name, "")
            walk(host.steps, host.name, ())

    def _family(self, name: str, help: str, kind: Kind, labels: Sequence[str],  # noqa: A002
                merge: Merge, bounds: Sequence[float]) -> Family:
        fam = self.families.get(name)
        if fam is None:
            fam = self.families[name] = Family(name, help, kind, labels, merge, bounds)
        elif (fam.kind, fam.labelnames, fam.merge, fam.bounds) != (kind, tuple(labels), merge,
                                                                  tuple(bounds)):
            raise ValueError(f"metric {name} is already defined differently")
        return fam

    def counter(self, name: str, help: str, labels: Sequence[str] = ()) -> Family:  # noqa: A002
        """A counter family (``name`` ends in ``_total``), the same one on every call."""
        return self._family(name, help, "counter", labels, "sum", ())

    def gauge(self, name: str, help: str, labels: Sequence[str] = (),  # noqa: A002
              merge: Merge = "sum") -> Family:
        """A gauge family; ``merge`` says how workers' values combine."""
        return self._family(name, help, "gauge", labels, merge, ())

    def histogram(self, name: str, help: str, labels: Sequence[str] = (),  # noqa: A002
                  bounds: Sequence[float] = DURATION_BUCKETS) -> Family:
        return self._family(name, help, "histogram", labels, "sum", bounds)

    def add_sampler(self, fn: Callable[[], dict[str, dict[tuple[str, ...], float]]]) -> None:
        """``fn()`` gives values of gauge families (defined with :meth:`gauge`) at each
        snapshot; for what is cheaper to look at than to count."""
        self._samplers.append(fn)

    def remove_sampler(self, fn: Callable[[], dict[str, dict[tuple[str, ...], float]]]) -> None:
        if fn in self._samplers:
            self._samplers.remove(fn)

    # -- reading ---------------------------------------------------------------------------------
    def gather(self) -> Snapshot:
        """What a scrape shows: this process's :meth:`snapshot`, and under ``--workers``
        every other worker's and the master's too (:mod:`ocsi.statsfiles`)."""
        import os

        from .statsfiles import ENV, collect, publish

        directory = os.environ.get(ENV)
        own = self.snapshot()
        if not directory:
            return own
        # what this scrape shows of this worker is written first: were the worker killed
        # next, the master folds at least these numbers, and no later sum is below them
        publish(directory, int(os.environ.get("OCSI_WORKER", "0")), own)
        return collect(directory, own)

    def snapshot(self) -> Snapshot:
        """Every family with its current series, as plain lists and numbers."""
        snap: Snapshot = {}

        def put(name: str, help: str, kind: Kind, labels: Sequence[str],  # noqa: A002
                rows: list[list[Any]], merge: Merge = "sum",
                bounds: Sequence[float] = ()) -> None:
            snap[name] = {"kind": kind, "help": help, "labels": list(labels), "merge": merge,
                          "bounds": list(bounds), "series": rows}

        requests: list[list[Any]] = []
        durations: list[list[Any]] = []
        for c in self.scopes.values():
            folded: dict[tuple[str, str], int] = {}
            for method, code, n in c.classes():
                folded[(method, code)] = folded.get((method, code), 0) + n
            requests += [[c.host, c.site, m, k, n] for (m, k), n in folded.items()]
            buckets = c.buckets()
            if any(buckets):
                durations.append([c.host, c.site, [*buckets, c.seconds]])
        put("ocsi_requests_total", "Requests answered, by configured host and site, method and "
            "status class", "counter", ("host", "site", "method", "code"), requests)
        put("ocsi_request_duration_seconds", "Time from a complete request head to the last "
            "byte of the answer", "histogram", ("host", "site"), durations,
            bounds=DURATION_BUCKETS)
        for name, help, value in (
                ("ocsi_request_body_bytes_total", "Request body bytes received",
                 self.request_body_bytes),
                ("ocsi_response_body_bytes_total", "Response body bytes sent",
                 self.response_body_bytes),
                ("ocsi_tls_handshakes_total", "TLS handshakes completed", self.tls_handshakes),
                ("ocsi_tls_handshake_failures_total", "TLS handshakes that failed",
                 self.tls_failures),
                ("ocsi_reloads_total", "Reloads that took effect", self.reloads),
                ("ocsi_reload_failures_total", "Reloads refused (the configuration stayed)",
                 self.failed_reloads),
                # the worker master's count replaces it (ocsi.statsfiles)
                ("ocsi_worker_restarts_total", "Worker processes restarted after they died", 0)):
            put(name, help, "counter", (), [[value]])
        sampled: dict[str, dict[tuple[str, ...], float]] = {}
        for fn in list(self._samplers):
            for name, values in fn().items():
                sampled.setdefault(name, {}).update(values)
        for fam in self.families.values():
            rows = fam.rows()
            if fam.name in sampled:
                rows += [[*k, v] for k, v in sampled[fam.name].items()]
            put(fam.name, fam.help, fam.kind, fam.labelnames, rows, fam.merge, fam.bounds)
        return snap


def merge(into: Snapshot, other: Snapshot) -> Snapshot:
    """Add ``other`` (another worker's snapshot) into ``into``: counters and histograms are
    added up, gauges combined as their family says. Families only one side has are kept."""
    for name, fam in other.items():
        mine = into.get(name)
        if mine is None:
            into[name] = {**fam, "series": [list(r) for r in fam["series"]]}
            continue
        n = len(mine["labels"])
        index = {tuple(r[:n]): r for r in mine["series"]}
        how = mine.get("merge", "sum") if mine["kind"] == "gauge" else "sum"
        for row in fam["series"]:
            key = tuple(row[:n])
            have = index.get(key)
            if have is None:
                have = index[key] = list(row)
                mine["series"].append(have)
            elif isinstance(row[n], list):
                have[n] = [a + b for a, b in zip(have[n], row[n])]
            elif how == "max":
                have[n] = max(have[n], row[n])
            elif how == "min":
                have[n] = min(have[n], row[n])
            else:
                have[n] = have[n] + row[n]
    return into


def counters_only(snap: Snapshot) -> Snapshot:
    """What of a dead worker's snapshot still counts: its counters and histograms (its gauges
    were about connections and work it no longer has)."""
    return {k: v for k, v in snap.items() if v["kind"] != "gauge"}


def iter_series(snap: Snapshot) -> Iterator[tuple[str, dict[str, str], Any]]:
    """``(family, labels, value)`` for every series (tests, debugging)."""
    for name, fam in snap.items():
        n = len(fam["labels"])
        for row in fam["series"]:
            yield name, dict(zip(fam["labels"], row[:n])), row[n]


class CountedSSLObject(ssl.SSLObject):
    """The TLS object of every HTTPS listener: counts completed and failed handshakes
    (``SSLContext.sslobject_class``; a subclass may refine the handshake)."""

    def do_handshake(self) -> None:
        try:
            super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError:
            STATS.tls_failures += 1
            raise
        STATS.tls_handshakes += 1


#: This process's counters.
STATS = Stats()
