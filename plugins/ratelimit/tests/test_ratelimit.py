"""<ratelimit> and <connlimit> in real servers: counts, refusals, keys, delays, two workers.

Rates of ``1r/m`` keep the tests free of timing: over a test's few seconds the bucket leaks
a tiny fraction of a request, so the counts are exact.
"""

from __future__ import annotations

import http.client
import re
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from ocsi import ConfigError

HERE = Path(__file__).resolve().parent
EXTS = (f'<datadir>{{tmp}}/data</datadir><findlib path="{HERE}"/>'
        '<extension findlib-package="ocsi-ext-ratelimit"/><extension module="rl_content"/>')


def host(inner: str) -> str:
    return EXTS + f"<host>{inner}<page/></host>"


def statuses(srv: Any, n: int, path: str = "/", headers: dict[str, str] | None = None) -> list[int]:
    return [srv.get(path, headers).status for _ in range(n)]


def test_exactly_rate_plus_burst_then_429_with_retry_after(ocsi_client: Callable[..., Any]) -> None:
    srv = ocsi_client(host('<ratelimit rate="1r/m" burst="9" nodelay="true"/>'))
    got = statuses(srv, 30)
    assert got == [200] * 10 + [429] * 20
    refused = srv.get("/")
    assert refused.status == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60


def test_status_and_site_scope(ocsi_client: Callable[..., Any]) -> None:
    srv = ocsi_client(EXTS + '<host><site path="api"><ratelimit rate="1r/m" status="503"/>'
                      '</site><page/></host>')
    assert statuses(srv, 2, "/api/x") == [200, 503]
    assert statuses(srv, 3, "/other") == [200] * 3  # outside the site: no limit


def test_keyed_by_client_address(ocsi_memory: Callable[..., Any]) -> None:
    srv = ocsi_memory(host('<ratelimit rate="1r/m" burst="1" nodelay="true"/>'))
    a = [srv.get("/", client="10.0.0.1").status for _ in range(3)]
    b = [srv.get("/", client="10.0.0.2").status for _ in range(3)]
    assert a == b == [200, 200, 429]


def test_keyed_by_the_forwarded_client(ocsi_memory: Callable[..., Any]) -> None:
    """After accesscontrol's trusted forwarding, the client is the forwarded address."""
    srv = ocsi_memory('<extension findlib-package="ocsi-ext-accesscontrol"/>' + host(
        '<allow-forward-for proxies="10.0.0.0/8"/>'
        '<ratelimit rate="1r/m"/>'))
    one = {"X-Forwarded-For": "192.0.2.1"}
    two = {"X-Forwarded-For": "192.0.2.2"}
    assert [srv.get("/", one, client="10.0.0.9").status for _ in range(2)] == [200, 429]
    assert srv.get("/", two, client="10.0.0.9").status == 200


def test_keyed_by_a_header(ocsi_client: Callable[..., Any]) -> None:
    srv = ocsi_client(host('<ratelimit rate="1r/m" burst="1" nodelay="true" key="header:X-Api-Key"/>'))
    assert statuses(srv, 3, headers={"X-Api-Key": "alpha"}) == [200, 200, 429]
    assert statuses(srv, 2, headers={"X-Api-Key": "beta"}) == [200, 200]
    assert statuses(srv, 4) == [200] * 4  # without the header: not counted, as nginx does


def test_keyed_by_the_user(ocsi_client: Callable[..., Any]) -> None:
    srv = ocsi_client(host('<login/><ratelimit rate="1r/m" key="user"/>'))
    assert statuses(srv, 2, headers={"X-Login": "ann"}) == [200, 429]
    assert statuses(srv, 1, headers={"X-Login": "bob"}) == [200]
    assert statuses(srv, 2) == [200, 429]  # anonymous: by address


def test_keyed_by_the_authbasic_user(ocsi_client: Callable[..., Any], tmp_path: Path) -> None:
    import base64

    from passlib.hash import sha256_crypt
    digest = sha256_crypt.using(rounds=1000).hash("pw")
    (tmp_path / "users").write_text(f"ann:{digest}\nbob:{digest}\n")
    srv = ocsi_client('<extension findlib-package="ocsi-ext-authbasic"/>' + host(
        f'<authbasic realm="r"><htpasswd file="{tmp_path}/users"/></authbasic>'
        '<ratelimit rate="1r/m" key="user"/>'))

    def auth(user: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:pw".encode()).decode()}
    assert statuses(srv, 2, headers=auth("ann")) == [200, 429]
    assert statuses(srv, 1, headers=auth("bob")) == [200]


def test_a_page_found_before_the_limit_is_refused_too(ocsi_client: Callable[..., Any]) -> None:
    srv = ocsi_client(EXTS + '<host><page/><ratelimit rate="1r/m"/></host>')
    assert statuses(srv, 2) == [200, 429]


def test_nodelay_serves_the_burst_at_once_delay_makes_it_wait(ocsi_server: Callable[..., Any]) -> None:
    """At 1r/m the second request of a burst would wait a minute: with nodelay it is served
    at once; without, it is still waiting when a request of another key has been served, and a
    client that gives up ends the wait (its slot in the burst stays used, as in nginx)."""
    fast = ocsi_server(host('<ratelimit rate="1r/m" burst="2" nodelay="true" key="header:K"/>'))
    assert statuses(fast, 3, headers={"K": "a"}) == [200] * 3
    srv = ocsi_server(host('<ratelimit rate="1r/m" burst="2" key="header:K"/>'))
    assert srv.get("/", {"K": "a"}).status == 200
    waiting = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    waiting.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nK: a\r\n\r\n")
    delaying = srv.wait_log("warnings", "delaying a request of h a by ", lines=0, timeout=10)
    assert re.search(r"delaying a request of h a by (5\d\.\d{3}|60\.000) s \(excess (0\.9\d\d|1\.000)\)", delaying)
    assert srv.get("/", {"K": "b"}).status == 200
    waiting.setblocking(False)
    with pytest.raises(BlockingIOError):
        waiting.recv(100)  # not answered: it waits its turn
    waiting.close()
    gone = "the client of a delayed request (h a) has gone"
    assert gone in srv.wait_log("warnings", gone, lines=0, timeout=10)


def test_connlimit_with_slow_requests(ocsi_server: Callable[..., Any], tmp_path: Path) -> None:
    gate = tmp_path / "go"
    srv = ocsi_server(EXTS + f'<host><connlimit max="2"/><hold file="{gate}"/><page/></host>')

    def hold() -> int:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        try:
            conn.request("GET", "/hold")
            return conn.getresponse().status
        finally:
            conn.close()

    with ThreadPoolExecutor(2) as pool:
        held = [pool.submit(hold) for _ in range(2)]
        for _ in range(500):  # until both are in progress (bounded)
            refused = srv.get("/")
            if refused.status == 429:
                break
        assert refused.status == 429 and refused.headers["retry-after"] == "1"
        gate.touch()
        assert [f.result(30) for f in held] == [200, 200]
    assert statuses(srv, 3) == [200] * 3  # both counts given back once the answers were sent


def test_configuration_errors_are_located(ocsi_memory: Callable[..., Any]) -> None:
    for attrs, words in [('rate="10"', "not a rate"), ('', "rate"), ('rate="1r/s" key="cookie"', "key"),
                         ('rate="1r/s" burst="1" delay="2"', "delay"),
                         ('rate="1r/s" status="200"', "status"), ('rate="1r/s" size="0"', "size"),
                         ('rate="1r/s" zone="a/b"', "zone")]:
        with pytest.raises(ConfigError) as err:
            ocsi_memory(host(f"<ratelimit {attrs}/>"))
        assert words in str(err.value) and "ocsi.conf:" in str(err.value)
    with pytest.raises(ConfigError, match="max"):
        ocsi_memory(host('<connlimit max="0"/>'))


def _until(condition: Callable[[], Any], seconds: float = 30.0) -> Any:
    deadline = time.monotonic() + seconds
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def test_a_table_that_cannot_be_made_fails_the_load(ocsi_memory: Callable[..., Any],
                                                    tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    xml = host('<ratelimit rate="1r/s"/>').replace("{tmp}/data", str(tmp_path / "file"))
    with pytest.raises(ConfigError) as err:
        ocsi_memory(xml)
    assert "cannot open the table" in str(err.value) and "ocsi.conf:" in str(err.value)


def test_two_workers_share_the_limit(ocsi_process: Callable[..., Any]) -> None:
    """``--workers 2``: 40 admitted in all (1 + burst), not 40 per worker. Each round uses a
    new key and admits exactly 40; at least one round must have been admitted by both
    workers (which one accepts a connection is the kernel's choice)."""
    proc = ocsi_process(EXTS + '<host><site path="limited">'
                        '<ratelimit rate="1r/m" burst="39" nodelay="true" key="header:K"/>'
                        '</site><page/></host>', args=["--workers", "2"])
    with ThreadPoolExecutor(4) as pool:
        def both_answer() -> bool:
            return len({r.body.split()[0] for r in pool.map(lambda _: proc.get("/"), range(8))}) == 2
        _until(both_answer)  # both workers up first (the rounds below decide in any case)
        both = False
        for round_ in range(6):
            results = list(pool.map(lambda _: proc.get("/limited/", {"K": str(round_)}), range(100)))
            ok = [r for r in results if r.status == 200]
            assert len(ok) == 40 and {r.status for r in results} == {200, 429}
            both = both or len({r.body.split()[0] for r in ok}) == 2  # pid=… of both workers
    assert both


def test_two_workers_share_connlimit(ocsi_process: Callable[..., Any], tmp_path: Path) -> None:
    """Six requests held at once against a maximum of 3, over two workers: three refused,
    whichever workers took them; once let go, the three others are answered."""
    gate = tmp_path / "go"
    proc = ocsi_process(EXTS + f'<host><connlimit max="3"/><hold file="{gate}"/><page/></host>',
                        args=["--workers", "2"])
    with ThreadPoolExecutor(6) as pool:
        held = [pool.submit(proc.get, "/hold", None, timeout=60) for _ in range(6)]
        done = _until(lambda: [f for f in held if f.done()] if sum(f.done() for f in held) >= 3
                      else None, 60)
        assert done is not None and [f.result().status for f in done] == [429] * 3
        gate.touch()
        assert sorted(f.result(60).status for f in held) == [200] * 3 + [429] * 3
