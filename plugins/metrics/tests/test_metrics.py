"""<metrics/> in real servers: counts after real requests (HTTP/1.1 and HTTP/2), scrapes
parsed with prometheus_client's parsers, OpenMetrics by Accept, guarded by accesscontrol,
located configuration errors, reloads, and the sum over real workers across a restart.

Servers run as processes (``ocsi_process``): the counters are the process's, so a server of
its own keeps each test's counts exact.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_families
from prometheus_client.parser import text_string_to_metric_families

from ocsi.testing import H2Client, assert_config_error

HERE = Path(__file__).resolve().parent
EXTS = ('<findlib path="' + str(HERE) + '"/>'
        '<extension findlib-package="ocsi-ext-metrics"/>'
        '<extension findlib-package="ocsi-ext-staticmod"/>'
        '<extension findlib-package="ocsi-ext-accesscontrol"/>'
        '<extension module="metrics_content"/>')


def site(tmp: Path, extra: str = "", port: str = "") -> str:
    (tmp / "www").mkdir(exist_ok=True)
    (tmp / "www" / "a.txt").write_bytes(b"x" * 100)
    return (port + EXTS + '<host hostfilter="*">'
            '<site path="_metrics"><metrics/></site>'
            f'<site path="files"><static dir="{tmp}/www"/></site>'
            f'<pid/>{extra}</host>')


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(srv: Any, accept: str | None = None) -> tuple[Samples, str]:
    result = srv.get("/_metrics/", {"Accept": accept} if accept else None)
    assert result.status == 200, result.body
    text = result.body.decode()
    parse = om_families if "openmetrics" in result.headers["content-type"] else \
        text_string_to_metric_families
    samples: Samples = {}
    for fam in parse(text):
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, result.headers["content-type"]


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def requests(samples: Samples, site: str, method: str, code: str) -> float:
    return value(samples, "ocsi_requests_total", host="*", site=site, method=method, code=code)


def until(fn: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_counts_after_http11_requests(ocsi_process: Callable[..., Any], tmp_path: Path) -> None:
    srv = ocsi_process(site(tmp_path))
    for _ in range(3):
        assert srv.get("/files/a.txt").status == 200
    assert srv.get("/files/missing").status == 404
    assert srv.head("/files/a.txt").status == 200
    assert srv.request("POST", "/files/a.txt", body=b"0123456789").status in (405, 501)
    assert srv.request("BREW", "/files/a.txt").status in (405, 501)
    samples, content_type = scrape(srv)
    assert content_type.startswith("text/plain; version=0.0.4")
    assert requests(samples, "files", "GET", "2xx") == 3
    assert requests(samples, "files", "GET", "4xx") == 1
    assert requests(samples, "files", "HEAD", "2xx") == 1
    assert requests(samples, "files", "POST", "4xx") + requests(samples, "files", "POST", "5xx") == 1
    assert requests(samples, "files", "OTHER", "4xx") + requests(samples, "files", "OTHER", "5xx") == 1
    assert not any(dict(k[1]).get("method") == "BREW" for k in samples)  # folded, never raw
    count = value(samples, "ocsi_request_duration_seconds_count", host="*", site="files")
    assert count == 7
    inf = value(samples, "ocsi_request_duration_seconds_bucket", host="*", site="files", le="+Inf")
    assert inf == 7
    assert value(samples, "ocsi_response_body_bytes_total") >= 300
    assert value(samples, "ocsi_request_body_bytes_total") >= 10
    assert value(samples, "ocsi_connections_open") >= 1  # the scrape's own
    # the scrape is counted once it has been answered: the next one shows it
    again, _ = scrape(srv)
    assert requests(again, "_metrics", "GET", "2xx") == 1
    assert requests(again, "files", "GET", "2xx") == 3


def test_counts_http2_requests_through_the_same_exchange(ocsi_process: Callable[..., Any],
                                                           tmp_path: Path) -> None:
    port = '<port h2c="true">127.0.0.1:{port}</port>'
    doc = (f'<ocsigen><server>{port}<logdir>{{tmp}}/log</logdir>'
           f'<commandpipe>{{tmp}}/ocsi.cmd</commandpipe>{site(tmp_path)}</server></ocsigen>')
    srv = ocsi_process(doc, full=True)
    client = H2Client(srv.port, tls=False)
    try:
        sids = [client.request("/files/a.txt") for _ in range(4)] + [client.request("/nope")]
        got = client.responses(len(sids))
        assert sorted(head[b":status"] for head, _ in got.values()) == [b"200"] * 4 + [b"404"]
        samples, _ = scrape(srv)  # over HTTP/1.1 while the HTTP/2 connection stays open
    finally:
        client.sock.close()
    assert requests(samples, "files", "GET", "2xx") == 4
    assert requests(samples, "", "GET", "4xx") == 1
    assert value(samples, "ocsi_connections_http2") == 1
    assert value(samples, "ocsi_connections_open") == 2
    assert value(samples, "ocsi_connections_idle") == 1  # the HTTP/2 one


def test_openmetrics_when_accept_asks(ocsi_process: Callable[..., Any], tmp_path: Path) -> None:
    srv = ocsi_process(site(tmp_path))
    assert srv.get("/files/a.txt").status == 200
    samples, content_type = scrape(srv, "application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert requests(samples, "files", "GET", "2xx") == 1
    raw = srv.get("/_metrics/", {"Accept": "application/openmetrics-text"})
    assert raw.body.endswith(b"# EOF\n")
    plain = srv.get("/_metrics/", {"Accept": "text/html"})
    assert plain.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert b"# EOF" not in plain.body


def test_methods_paths_and_head(ocsi_process: Callable[..., Any], tmp_path: Path) -> None:
    srv = ocsi_process(site(tmp_path))
    refused = srv.request("POST", "/_metrics/", body=b"x")
    assert refused.status == 405 and refused.headers["allow"] == "GET, HEAD"
    assert srv.get("/_metrics/deeper").status == 404
    assert srv.get("/_metrics").status == 301  # the site's own redirect to its root
    head = srv.head("/_metrics/")
    assert head.status == 200 and head.body == b""


def test_guarded_by_accesscontrol(ocsi_process: Callable[..., Any], tmp_path: Path) -> None:
    (tmp_path / "www").mkdir()
    srv = ocsi_process(EXTS + '<host hostfilter="*"><site path="_metrics">'
                       '<if><header name="x-scraper" regexp="yes"/><then><metrics/></then>'
                       '<else><forbidden/></else></if></site></host>')
    assert srv.get("/_metrics/").status == 403
    ok = srv.get("/_metrics/", {"X-Scraper": "yes"})
    assert ok.status == 200 and b"ocsi_requests_total" in ok.body


def test_reloads_and_failed_reloads(ocsi_process: Callable[..., Any], tmp_path: Path) -> None:
    srv = ocsi_process(site(tmp_path))
    srv.command("reload")
    assert until(lambda: value(scrape(srv)[0], "ocsi_reloads_total") == 1)
    good = Path(srv.config_path).read_text()
    Path(srv.config_path).write_text(good.replace("<metrics/>", "<metrics/><nonsense/>"))
    srv.command("reload")
    assert until(lambda: value(scrape(srv)[0], "ocsi_reload_failures_total") == 1)
    Path(srv.config_path).write_text(good)
    assert srv.get("/files/a.txt").status == 200
    srv.command("reload")
    assert until(lambda: value(scrape(srv)[0], "ocsi_reloads_total") == 2)
    # counts are kept across reloads
    assert requests(scrape(srv)[0], "files", "GET", "2xx") == 1


def test_configuration_errors_are_located(ocsi_memory: Callable[..., Any]) -> None:
    assert_config_error(ocsi_memory, EXTS + '<host>\n<metrics path="x"/></host>',
                        "unknown attribute 'path' in <metrics>", line=2)
    assert_config_error(ocsi_memory, EXTS + '<host>\n<metrics>text</metrics></host>',
                        "<metrics> takes no text content", line=2)
    assert_config_error(ocsi_memory, EXTS + '<host>\n<metrics><x/></metrics></host>',
                        "<x>", line=3 - 1)


def test_workers_add_up_and_a_restart_never_lowers_a_sum(ocsi_process: Callable[..., Any],
                                                         tmp_path: Path) -> None:
    """Two real workers: the scrape adds them up; one is killed, the master restarts it, and
    no counter of the sum goes down (the dead worker's last counts are folded by the master)."""
    srv = ocsi_process(site(tmp_path), args=["--workers", "2"])
    pids: set[str] = set()

    def both_seen() -> bool:
        pids.add(srv.get("/pid").body.decode())
        return len(pids) == 2

    assert until(both_seen, 30)
    for _ in range(40):
        assert srv.get("/files/a.txt").status == 200
    # each worker writes its counters once a second: wait until the sum has them all
    assert until(lambda: requests(scrape(srv)[0], "files", "GET", "2xx") == 40)
    before, _ = scrape(srv)
    victim = int(sorted(pids)[0])
    os.kill(victim, signal.SIGKILL)
    history = [before]

    def restarted() -> bool:
        history.append(scrape(srv)[0])
        return value(history[-1], "ocsi_worker_restarts_total") == 1

    assert until(restarted, 30)
    for _ in range(10):
        assert srv.get("/files/a.txt").status == 200
    assert until(lambda: requests(scrape(srv)[0], "files", "GET", "2xx") == 50)
    history.append(scrape(srv)[0])
    names = [k for k in before if k[0].endswith("_total") or k[0].endswith("_count")
             or k[0].endswith("_bucket") or k[0].endswith("_sum")]
    for earlier, later in zip(history, history[1:]):
        for key in names:
            assert later.get(key, 0.0) >= earlier[key], key


@pytest.mark.parametrize("element", ["<metrics/>"])
def test_python_constructor(element: str) -> None:
    from ocsi_ext_metrics import Metrics, metrics

    assert isinstance(metrics(), Metrics)


def test_extensions_counters(ocsi_process: Callable[..., Any], tmp_path: Path) -> None:
    """staticmod's cache, deflatemod's compressed cache and revproxy's per-destination
    counters, from real requests: a real ocsi backend behind the proxy and a destination where
    nothing listens."""
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "a.txt").write_bytes(b"hello " * 200)
    old = time.time() - 3600  # settled: deflatemod keeps only files unmodified for 2 s
    os.utime(tmp_path / "www" / "a.txt", (old, old))
    backend = ocsi_process(EXTS + f'<host><static dir="{tmp_path}/www"/></host>')
    down = socket_nobody_listens()
    srv = ocsi_process(
        EXTS.replace('<extension findlib-package="ocsi-ext-staticmod"/>',
                     '<extension findlib-package="ocsi-ext-staticmod">'
                     '<filecache ttl="1h"/></extension>')
        + '<extension findlib-package="ocsi-ext-revproxy"/>'
          '<extension findlib-package="ocsi-ext-deflatemod"/>'
          '<host hostfilter="*"><site path="_metrics"><metrics/></site>'
          f'<site path="files"><static dir="{tmp_path}/www"/><deflate compress="only">'
          '<type>text/plain</type></deflate></site>'
          f'<site path="up"><revproxy suburl="(.*)" dest="http://127.0.0.1:{backend.port}/\\1"/></site>'
          f'<site path="down"><revproxy suburl="(.*)" dest="http://127.0.0.1:{down}/\\1"/></site>'
          '</host>')
    for _ in range(3):
        assert srv.get("/files/a.txt", {"Accept-Encoding": "gzip"}).status == 200
    for _ in range(2):
        assert srv.get("/up/a.txt").status == 200
    assert srv.get("/up/missing").status == 404
    assert srv.get("/down/a.txt").status == 502
    samples, _ = scrape(srv)
    assert value(samples, "ocsi_static_cache_total", result="miss") >= 1
    assert value(samples, "ocsi_static_cache_total", result="hit") >= 2
    assert value(samples, "ocsi_deflate_cache_total", result="miss") >= 1
    assert value(samples, "ocsi_deflate_cache_total", result="hit") >= 1
    up = f"http://127.0.0.1:{backend.port}/\\1"
    assert value(samples, "ocsi_proxy_responses_total", destination=up, code="2xx") == 2
    assert value(samples, "ocsi_proxy_responses_total", destination=up, code="4xx") == 1
    assert value(samples, "ocsi_proxy_response_seconds_count", destination=up) == 3
    assert value(samples, "ocsi_proxy_destination_up", destination=up) == 1
    dead = f"http://127.0.0.1:{down}/\\1"
    assert value(samples, "ocsi_proxy_errors_total", destination=dead) == 1
    assert value(samples, "ocsi_proxy_destination_up", destination=dead) == 0
    assert not any("missing" in v or "a.txt" in v for k in samples for _, v in k[1])


def socket_nobody_listens() -> int:
    """A port on 127.0.0.1 that refuses connections (bound, never listening)."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _HELD.append(s)
    return int(s.getsockname()[1])


_HELD: list[Any] = []


def test_certificate_expiry_and_tls_handshakes(ocsi_process: Callable[..., Any],
                                               tmp_path: Path) -> None:
    import socket
    import ssl

    from ocsi.testing import self_signed

    cert_pem, key_pem = self_signed()
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    doc = (f'<ocsigen><server><port protocol="HTTPS">127.0.0.1:{{port}}</port>'
           f'<ssl><certificate>{cert}</certificate><privatekey>{key}</privatekey></ssl>'
           f'<logdir>{{tmp}}/log</logdir>{EXTS}'
           '<host hostfilter="*"><site path="_metrics"><metrics/></site></host>'
           '</server></ocsigen>')
    srv = ocsi_process(doc, full=True)
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    for _ in range(2):
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"GET /_metrics/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                while tls.recv(65536):
                    pass
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # plain HTTP: OpenSSL refuses it
        try:
            while raw.recv(65536):
                pass
        except ConnectionResetError:
            pass
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"GET /_metrics/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
    text = data.split(b"\r\n\r\n", 1)[1].decode()
    samples: Samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    assert value(samples, "ocsi_tls_handshakes_total") == 3
    assert value(samples, "ocsi_tls_handshake_failures_total") == 1
    from cryptography import x509

    expected = x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc
    assert value(samples, "ocsi_certificate_expiry_timestamp_seconds", source="file",
                 certificate=str(cert)) == expected.timestamp()
