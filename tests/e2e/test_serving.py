"""The whole server over real sockets: configuration in, HTTP out."""

import re
import socket
import time

import pytest


from .conftest import BASE


def test_basic_response_headers(serve):
    srv = serve('<host><say text="hello"/></host>')
    r = srv.get("/")
    assert r.status == 200 and r.body == b"hello"
    assert r.headers["Server"] == "Ocsigen"
    assert re.match(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", r.headers["Date"])
    assert r.headers["Content-Length"] == "5"


def test_404_body_and_headers(serve):
    srv = serve("<host/>")
    r = srv.get("/nope")
    assert r.status == 404 and r.body == b"Error: Not Found"
    assert r.headers["Server"] == "Ocsigen" and "Date" in r.headers


def test_keepalive_two_requests(serve):
    srv = serve('<host><say text="x"/></host>')
    out = srv.raw(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert out.count(b"HTTP/1.1 200") == 2


def test_head_has_no_body(serve):
    srv = serve('<host><say text="hello"/></host>')
    out = srv.raw(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    first, second = out.split(b"HTTP/1.1 200", 2)[1:]
    assert b"content-length: 5" in first.lower() and not first.endswith(b"hello")
    assert second.endswith(b"hello")


def test_crashing_step_isolated_and_logged(serve):
    srv = serve("<host><site path='b'><boom/></site><say text='fine'/></host>")
    r = srv.get("/b/x")
    assert r.status == 500 and b"secret" not in r.body
    assert srv.get("/ok").body == b"fine"
    errors = srv.log("errors")
    assert "Error while handling request" in errors and "secret internal detail" in errors
    assert "ocsi.conf:" in errors  # the element's location


def test_debugmode(serve):
    srv = serve("<debugmode/><host><boom/></host>")
    assert b"secret internal detail" in srv.get("/").body


def test_body_limit_413(serve):
    srv = serve("<maxrequestbodysize>10</maxrequestbodysize><host><echo/></host>")
    assert srv.request("POST", "/", body=b"0123456789").status == 200
    assert srv.request("POST", "/", body=b"0123456789A").status == 413


def test_request_body_reaches_step(serve):
    srv = serve("<host><echo/></host>")
    r = srv.request("POST", "/a/b?q=1", body=b"payload" * 1000)
    assert r.status == 200 and r.body.endswith(b"payload" * 1000)
    assert b"len=7000" in r.body and b"sub=a/b" in r.body


def test_access_log_every_response(serve):
    srv = serve('<host><say text="x" path="ok"/></host>')
    srv.get("/ok", headers={"User-Agent": "tester/1"})
    srv.get("/missing")
    srv.raw(b"GARBAGE\r\n\r\n")
    lines = srv.wait_log("access", lines=3).splitlines()
    assert re.match(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d: ocsigen:access: connection for 127\.0\.0\.1 "
                    r"from 127\.0\.0\.1 \(tester/1\): /ok 200 1$", lines[0]), lines[0]
    assert " /missing 404 " in lines[1]
    assert " 400 " in lines[2]


def test_combined_log_format(serve):
    srv = serve('<accesslogformat>combined</accesslogformat><host><say text="x"/></host>')
    srv.get("/p?q=1", headers={"Referer": "http://r/"})
    line = srv.wait_log("access").splitlines()[0]
    assert re.match(r'^127\.0\.0\.1:\d+ 127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] '
                    r'"GET /p\?q=1 HTTP/1\.1" 200 1 "http://r/" "[^"]*"$', line), line


def test_idle_keepalive_closed(serve):
    srv = serve('<keepalivetimeout>0.3</keepalivetimeout><host><say text="x"/></host>')
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        time.sleep(0.05)
        assert b"200" in s.recv(4096)
        start = time.monotonic()
        assert s.recv(4096) == b""  # closed by the server
        # a configured timeout: not before it (give or take the sweep's granularity), and
        # well before the 5 s socket timeout that would otherwise end recv()
        assert 0.2 <= time.monotonic() - start < 5


def test_max_connections(serve):
    srv = serve('<maxconnected>2</maxconnected><host><say text="x"/></host>')
    held = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(2)]
    try:
        time.sleep(0.1)
        out = srv.raw(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 503")
    finally:
        for s in held:
            s.close()
    time.sleep(0.1)
    assert srv.get("/").status == 200


def test_ipv6_listener(ocsi_server, exts_path):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    srv = ocsi_server(f"""<ocsigen><server><port>[::1]:{{port}}</port>
      {BASE.format(exts=exts_path)}<host><say text="v6"/></host></server></ocsigen>""", full=True)
    with socket.create_connection(("::1", srv.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert data.endswith(b"v6")


def test_https(ocsi_server, exts_path, tmp_path):
    import ssl
    import http.client
    from ocsi.tls import self_signed
    cert, key = self_signed()
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)
    srv = ocsi_server(f"""<ocsigen><server><port protocol="HTTPS">127.0.0.1:{{port}}</port>
      <ssl><certificate>{tmp_path}/c.pem</certificate><privatekey>{tmp_path}/k.pem</privatekey></ssl>
      {BASE.format(exts=exts_path)}<host><echo/></host></server></ocsigen>""", full=True)
    ctx = ssl.create_default_context(cadata=cert.decode())
    conn = http.client.HTTPSConnection("localhost", srv.port, context=ctx, timeout=10)
    conn.request("GET", "/x")
    r = conn.getresponse()
    assert r.status == 200 and b"GET /x" in r.read()
    conn.close()


@pytest.mark.parametrize("parser", ["h11", "httptools"])
def test_mutated_requests_through_the_whole_server(ocsi_server, tmp_path, caplog, monkeypatch,
                                                   parser):
    """Mutated requests reach host selection, staticmod and deflatemod: never an internal error.
    Once with each request-head parser (``<httpparser>``, by its environment default)."""
    from ocsi._http import fasthead
    if parser == "httptools" and not fasthead.AVAILABLE:
        pytest.skip("httptools is not installed")
    monkeypatch.setenv("OCSI_HTTP_PARSER", parser)
    import importlib.util
    import logging
    import random
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "http_fuzz", Path(__file__).parents[1] / "http" / "test_http_fuzz.py")
    fuzz = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fuzz)
    www = tmp_path / "www"
    (www / "d").mkdir(parents=True)
    (www / "index.html").write_text("<p>" + "hello " * 100 + "</p>")
    (www / "a b.txt").write_text("spaced")
    srv = ocsi_server(f"""<extension findlib-package="ocsigenserver.ext.staticmod"/>
        <extension findlib-package="ocsigenserver.ext.deflatemod"/>
        <host hostfilter="a b"><site path="x"><static dir="{www}"/></site><static dir="{www}"/>
        <deflate compress="allbut"><type>image/*</type></deflate></host>""")
    caplog.set_level(logging.ERROR)
    rng = random.Random(7)
    valid = fuzz.VALID + [b"GET /a%20b.txt HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n",
                          b"GET /x/d/ HTTP/1.1\r\nHost: a\r\nRange: bytes=0-3\r\n\r\n"]
    counts: dict[str, int] = {}
    for _ in range(150):
        data = fuzz.mutate(rng, rng.choice(valid))
        out, ending = fuzz.exchange_ending(srv.port, data)
        kind = fuzz.outcome(data, out, ending)
        if kind == "5xx":  # an unknown transfer coding, an HTTP version ocsi does not speak
            assert out.startswith((b"HTTP/1.1 501 ", b"HTTP/1.1 505 ")), (data, out[:200])
        counts[kind] = counts.get(kind, 0) + 1
    fuzz.check_outcomes(counts, 150)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert srv.get("/", headers={"Host": "a"}).status == 200


def test_info_trace_with_vv(serve):
    srv = serve('<host hostfilter="*"><site path="s"><say text="x"/></site></host>', verbosity=2)
    import logging
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("ocsi.pipeline").addHandler(handler)
    try:
        assert srv.get("/s/f").body == b"x"
    finally:
        logging.getLogger("ocsi.pipeline").removeHandler(handler)
    text = "\n".join(r.getMessage() for r in records)
    assert "host found! 127.0.0.1:" in text and "site found: url /s/f matches s" in text
