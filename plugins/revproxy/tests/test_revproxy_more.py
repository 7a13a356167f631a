"""Configuration errors, HTTPS backends, several destinations, and the proxy among other steps."""

from __future__ import annotations

import gzip
import json
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import EXT
from ocsi import ConfigError
from ocsi.testing import assert_config_error, free_port


def proxy(ocsi_server: Callable[..., Any], body: str, ext: str = EXT) -> Any:
    return ocsi_server(ext + f"<host>{body}</host>")


# -- configuration errors, located ---------------------------------------------------------------
@pytest.mark.parametrize("element, message", [
    ('<revproxy dest="http://h/"/>', "Missing attribute 'regexp' for <revproxy>"),
    ('<revproxy suburl="(.*)"/>', "Missing attribute 'dest' for <revproxy>"),
    ('<revproxy suburl="(" dest="http://h/"/>', "bad regular expression '('"),
    ('<revproxy suburl="(.*)" dest="ftp://h/\\1"/>', "is not an http:// or https:// URL"),
    ('<revproxy suburl="(.*)" dest="http://h"/>', "the / after the host is required"),
    ('<revproxy suburl="(.*)" dest="http://h:99999/\\1"/>', "'99999' is not a port"),
    ('<revproxy suburl="(.*)" dest="http://h/\\2"/>', "refers to group 2"),
    ('<revproxy suburl="a" fullurl="b" dest="http://h/"/>', "one of suburl, fullurl or regexp"),
    ('<revproxy suburl="a" dest="http://h/" colour="red"/>', "unknown attribute 'colour'"),
    ('<revproxy suburl="a" dest="http://h/" balance="random"/>', "balance='random'"),
    ('<revproxy suburl="a" dest="http://h/" responsetimeout="soon"/>', "responsetimeout"),
    ('<revproxy suburl="a" dest="http://h/" idletimeout="0"/>', "idletimeout must be more than 0"),
    ('<revproxy suburl="a" dest="https://h/" cafile="/no/such/ca.pem"/>', "cafile='/no/such/ca.pem' cannot be used"),
    ('<revproxy regexp="a" server="h" dest="http://h/"/>', "cannot have dest="),
    ('<revproxy suburl="a" uri="/x" dest="http://h/"/>', "uri= belongs to the pre-1.2 form"),
    ('<revproxy regexp="a" server="h" protocol="gopher"/>', "protocol='gopher'"),
])
def test_errors_are_located(ocsi_memory, element, message):
    assert_config_error(ocsi_memory, EXT + "<host>\n" + element + "</host>", message, line=2)


@pytest.mark.parametrize("options, message", [
    ('<bogus/>', "unknown option <bogus> for ocsi-ext-revproxy"),
    ('<pool size="-1"/>', "size= must be 0 or more"),
    ('<pool idle="never"/>', "attribute 'idle'"),
])
def test_option_errors(ocsi_memory, options, message):
    with pytest.raises(ConfigError, match=message):
        ocsi_memory(f'<extension findlib-package="ocsi-ext-revproxy">{options}</extension>')


def test_a_dest_whose_host_comes_from_the_match_is_checked_per_request(ocsi_memory):
    srv = ocsi_memory(EXT + '<host><revproxy suburl="([^/]*)/(.*)" dest="http://\\1/\\2"/></host>')
    assert srv.get("/bad:port:x/y").status == 500


# -- HTTPS backends ------------------------------------------------------------------------------
@pytest.fixture
def tls_backend(backend: Callable[..., Any], tmp_path: Path) -> Any:
    """An HTTPS backend whose certificate a test CA (in ``tmp_path/ca.pem``) signed."""
    from ocsi.testing import authority_and_certificate

    ca_pem, cert_pem, key_pem = authority_and_certificate(["localhost", "127.0.0.1"])
    (tmp_path / "ca.pem").write_bytes(ca_pem)
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return backend("tls", ctx), str(tmp_path / "ca.pem")


def test_https_backend_verified_with_a_ca_file(ocsi_server, tls_backend):
    b, ca = tls_backend
    srv = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="https://localhost:{b.port}/\\1" cafile="{ca}"/>')
    r = srv.get("/echo/s")
    assert r.status == 200 and json.loads(r.body)["target"] == "/echo/s"
    assert srv.get("/echo/t").status == 200 and b.connections == 1  # pooled over TLS too


def test_https_backend_refused_when_it_cannot_be_verified(ocsi_server, tls_backend):
    b, _ = tls_backend
    srv = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="https://localhost:{b.port}/\\1"/>')
    assert srv.get("/echo").status == 502
    assert "CERTIFICATE_VERIFY_FAILED" in srv.wait_log("errors", "cannot connect")


def test_https_backend_name_must_match(ocsi_server, tls_backend, tmp_path):
    b, ca = tls_backend
    srv = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="https://127.0.0.2:{b.port}/\\1" cafile="{ca}"/>')
    assert srv.get("/echo").status == 502  # the certificate does not name 127.0.0.2


def test_insecure_skips_verification(ocsi_server, tls_backend):
    b, _ = tls_backend
    srv = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="https://localhost:{b.port}/\\1" insecure="insecure"/>')
    assert srv.get("/echo").status == 200


# -- several destinations ------------------------------------------------------------------------
def test_round_robin_spreads_requests(ocsi_server, backend):
    b1, b2 = backend("b1"), backend("b2")
    srv = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="{b1.url}/\\1 {b2.url}/\\1"/>')
    names = [json.loads(srv.get("/echo").body)["backend"] for _ in range(10)]
    assert names.count("b1") == 5 and names.count("b2") == 5


def test_failover_hides_a_dead_destination(ocsi_server, backend):
    b = backend("alive")
    dead = f"http://127.0.0.1:{free_port()}"
    srv = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="{dead}/\\1 {b.url}/\\1" failtimeout="60"/>')
    for _ in range(6):
        r = srv.get("/echo")
        assert r.status == 200 and json.loads(r.body)["backend"] == "alive"
    # marked down after its first failure: tried once, then skipped
    assert srv.log("errors").count("cannot connect") == 1


def test_leastconn_prefers_the_idle_destination(ocsi_server, backend):
    import threading

    b1, b2 = backend("b1"), backend("b2")
    srv = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="{b1.url}/\\1 {b2.url}/\\1" balance="leastconn"/>')
    slow = threading.Thread(target=lambda: srv.get("/slowhead/1"))
    slow.start()  # b1 (first in the list) is busy with it
    import time
    deadline = time.monotonic() + 5
    while b1.requests == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    names = [json.loads(srv.get("/echo").body)["backend"] for _ in range(4)]
    slow.join(10)
    assert names == ["b2"] * 4


# -- among other steps ---------------------------------------------------------------------------
def test_outputfilter_rewrites_the_backends_location_as_the_revproxy_page_says(ocsi_server, backend):
    b = backend()
    ext = EXT + '<extension findlib-package="ocsi-ext-outputfilter"/>'
    srv = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="{b.url}/\\1"/>'
                             f'<outputfilter header="location" regexp="http://127.0.0.1:{b.port}/(.*)" '
                             'dest="http://my.publicaddress.org/\\1"/>', ext=ext)
    r = srv.get("/redirect")
    assert (r.status, r.headers["location"]) == (302, "http://my.publicaddress.org/moved")


def test_deflate_on_a_proxied_response_reframes_it(ocsi_server, backend):
    b = backend()
    ext = EXT + '<extension findlib-package="ocsi-ext-deflatemod"/>'
    srv = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="{b.url}/\\1"/><deflate compress="allbut"><type>image/*</type></deflate>',
                ext=ext)
    r = srv.get("/bytes/200000", {"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and r.chunked
    assert "content-length" not in r.headers
    assert gzip.decompress(r.body) == (bytes(range(256)) * 800)[:200000]


def test_accesscontrol_and_the_access_log_apply(ocsi_server, backend):
    b = backend()
    ext = '<extension findlib-package="ocsi-ext-accesscontrol"/>' + EXT
    srv = proxy(ocsi_server, '<if><header name="x-block" regexp="yes"/><then><forbidden/></then></if>'
                             f'<revproxy suburl="(.*)" dest="{b.url}/\\1"/>', ext=ext)
    assert srv.get("/echo", {"x-block": "yes"}).status == 403 and b.requests == 0
    assert srv.get("/status/418").status == 418
    assert "/status/418 418" in srv.wait_log("access", "/status/418")


# -- a client that leaves ------------------------------------------------------------------------
@pytest.mark.parametrize("body", [b"", b"x" * 10])
def test_a_client_that_leaves_abandons_the_request_behind_it(ocsi_server, backend, body):
    """nginx's default (proxy_ignore_client_abort off): nobody is left to answer, so the
    backend's connection is closed rather than kept busy until its answer."""
    import socket
    import time

    b = backend()
    srv = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="{b.url}/\\1"/>')
    with socket.create_connection(("127.0.0.1", srv.port)) as s:
        method = b"POST" if body else b"GET"
        s.sendall(method + b" /hold/30 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
                  + body)
        deadline = time.monotonic() + 10
        while not b.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        assert b.requests == 1
    deadline = time.monotonic() + 10  # the proxy looks at the client twice a second
    while not b.abandoned and time.monotonic() < deadline:
        time.sleep(0.02)
    assert b.abandoned == ["/hold/30"]
    srv.wait_log("access", " 499 ")
    assert srv.get("/echo").status == 200  # and the proxy goes on


def test_trailers_are_relayed_to_a_client_that_takes_them(ocsi_server, backend):
    import socket

    b = backend()
    srv = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="{b.url}/\\1"/>')

    def fetch(extra: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            s.sendall(b"GET /trailers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + extra + b"\r\n")
            return b"".join(iter(lambda: s.recv(65536), b""))

    taken = fetch(b"TE: trailers\r\n")
    head, _, body = taken.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    assert body.startswith(b"4\r\nbody\r\n0\r\n")
    trailer = body.split(b"0\r\n", 1)[1].lower()
    assert b"x-checksum: abc123" in trailer and b"content-type" not in trailer  # framing stays
    plain = fetch(b"")  # the backend is not asked for them, and none reach the client
    assert plain.lower().endswith(b"4\r\nbody\r\n0\r\n\r\n")
