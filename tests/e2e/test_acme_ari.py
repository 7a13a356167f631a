"""ACME Renewal Information (RFC 9773) against a real CA.

Debian's pebble (2.4) has no ``renewalInfo`` in its directory: the first test checks what it
offers and that the renewal then falls back to a third of the lifetime. The others put a small
TLS proxy in front of pebble: it passes every request through (the ``Host`` it was sent, so
pebble's URLs and signed ``url`` headers name the proxy), adds ``renewalInfo`` to the directory
and answers the renewal-info requests itself with the window the test chooses. Certificates are
still issued and validated by pebble, and the proxy sees the orders, ``replaces`` included.
"""

from __future__ import annotations

import base64
import datetime
import http.client
import http.server
import json
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from ocsi.certificates import issue, new_authority
from ocsi.testing import free_port

from .pebble import Pebble, needs_pebble, pebble  # noqa: F401 - the fixture
from .test_acme import WAIT, _config, _host, _https_get, _serial, _wait_certificate

pytestmark = needs_pebble

UTC = datetime.timezone.utc
#: (body, Retry-After[, status]) of a renewal-info answer, given the certificate's identifier.
Window = Callable[[str], tuple[Any, ...]]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def expected_id(cert: x509.Certificate) -> str:
    """RFC 9773's certificate identifier, computed here independently of ocsi."""
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki is not None
    der = cert.serial_number.to_bytes((cert.serial_number.bit_length() + 8) // 8, "big", signed=True)
    return f"{_b64(aki)}.{_b64(der)}"


def _served(port: int, name: str) -> x509.Certificate:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=name) as s:
        der = s.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


class AriProxy:
    """pebble, with ``renewalInfo`` answered by ``window``."""

    def __init__(self, ca: Pebble, tmp: Path, window: Window) -> None:
        self.ca, self.window = ca, window
        self.renewal_asks: list[tuple[float, str]] = []  # (when, certificate id)
        #: (when it was sent, payload) of each order pebble created
        self.orders: list[tuple[float, dict[str, Any]]] = []
        authority, key = new_authority("ARI proxy CA")
        cert, cert_key = issue(authority, key, ["localhost"])
        self.ca_file = tmp / "ari-proxy-ca.pem"
        self.ca_file.write_bytes(authority)
        (tmp / "ari-proxy.pem").write_bytes(cert_key + cert)
        upstream = ssl.create_default_context(cafile=str(ca.ca_file))
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in ("content-length", "connection", "transfer-encoding",
                                            "date", "server"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                order = None  # a newOrder's payload (kept once pebble has created the order)
                if self.command == "POST":
                    payload = json.loads(body).get("payload") or ""
                    if payload:
                        decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
                        if isinstance(decoded, dict) and "identifiers" in decoded:
                            order = (time.time(), decoded)
                if self.path.startswith("/renewal-info/"):
                    cert_id = self.path.rpartition("/")[2]
                    proxy.renewal_asks.append((time.time(), cert_id))
                    document, retry_after, *status = proxy.window(cert_id)
                    status = status or [200]
                    headers = [("Content-Type", "application/json" if status[0] == 200
                                else "application/problem+json")]
                    if retry_after is not None:
                        headers.append(("Retry-After", retry_after))
                    self._send(status[0], headers, json.dumps(document).encode())
                    return
                conn = http.client.HTTPSConnection("localhost", proxy.ca.port, context=upstream,
                                                   timeout=30)
                try:
                    conn.request(self.command, self.path, body or None,
                                 {k: v for k, v in self.headers.items()})  # Host kept
                    answer = conn.getresponse()
                    data = answer.read()
                    headers = answer.getheaders()
                finally:
                    conn.close()
                if order is not None and answer.status == 201:  # not a badNonce rejection
                    proxy.orders.append(order)
                if self.path == "/dir" and answer.status == 200:
                    directory = json.loads(data)
                    directory["renewalInfo"] = f"https://{self.headers['Host']}/renewal-info"
                    data = json.dumps(directory).encode()
                self._send(answer.status, headers, data)

            do_GET = do_POST = do_HEAD = _relay  # noqa: N815

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tmp / "ari-proxy.pem")
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.directory = f"https://localhost:{self.port}/dir"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ari(pebble, tmp_path):  # type: ignore[no-untyped-def]  # noqa: F811
    """``ari(http_port, https_port, window)`` -> (pebble, proxy)."""
    made: list[AriProxy] = []

    def make(http_port: int, https_port: int, window: Window) -> tuple[Pebble, AriProxy]:
        ca = pebble(http_port, https_port)
        (tmp_path / f"proxy{len(made)}").mkdir()
        proxy = AriProxy(ca, tmp_path / f"proxy{len(made)}", window)
        made.append(proxy)
        return ca, proxy

    yield make
    for proxy in made:
        proxy.close()


def _through(xml: str, ca: Pebble, proxy: AriProxy) -> str:
    return xml.replace(ca.directory, proxy.directory).replace(str(ca.ca_file), str(proxy.ca_file))


def _window(start: datetime.datetime, end: datetime.datetime) -> dict[str, Any]:
    return {"suggestedWindow": {"start": start.isoformat().replace("+00:00", "Z"),
                                "end": end.isoformat().replace("+00:00", "Z")}}


def _state(srv: Any, name: str) -> dict[str, Any]:
    return dict(json.loads((srv.tmp / "data" / "acme" / "certs" / name / "state.json").read_text()))


def test_debian_pebble_offers_no_renewal_info_so_a_third_of_the_lifetime_is_used(
        ocsi_server, pebble, exts_path, capsys):  # noqa: F811
    http_port, https = free_port(), free_port()
    ca = pebble(http_port, https)
    ctx = ssl.create_default_context(cafile=str(ca.ca_file))
    with urllib.request.urlopen(ca.directory, context=ctx, timeout=10) as r:
        directory = json.loads(r.read())
    print(f"\npebble's directory: {sorted(directory)}")
    srv = ocsi_server(_config(exts_path, ca, http_port, https, _host("plain.example.com", "plain")),
                      full=True)
    _wait_certificate(https, "plain.example.com", ca)
    for _ in range(int(WAIT / 0.05)):  # bounded: until the CA has been asked (or not) about it
        if "renewal_info" in _state(srv, "plain.example.com").get("extra", {}):
            break
        time.sleep(0.05)
    state = _state(srv, "plain.example.com")["extra"]
    cert = _served(https, "plain.example.com")
    third = cert.not_valid_after_utc - (cert.not_valid_after_utc - cert.not_valid_before_utc) / 3
    if "renewalInfo" in directory:  # a later pebble: its window is used
        assert state["renewal_info"] == "offered"
        start, end = state["renewal_window"]
        assert start <= state["next_attempt"] <= end
    else:
        assert state["renewal_info"] == "not offered"
        assert "renewal_window" not in state
        lifetime = (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds()
        assert third.timestamp() - lifetime / 30 - 1 <= state["next_attempt"] <= third.timestamp() + 1
        from ocsi.cli import main

        main(["cert", "status", "-c", srv.config_path])
        assert "the CA offers no ARI" in capsys.readouterr().out


def test_renewal_inside_the_cas_window_names_the_replaced_certificate(ocsi_server, ari, exts_path):
    """pebble issues a five-year certificate; the CA's window says renew in 2 to 4 seconds:
    the renewal comes inside it, its order says ``replaces`` with the old certificate's
    identifier, and the new certificate is served."""
    http_port, https = free_port(), free_port()
    windows: dict[str, tuple[datetime.datetime, datetime.datetime]] = {}

    def window(cert_id: str) -> tuple[dict[str, Any], str | None]:
        if cert_id not in windows:  # fixed at the first question about this certificate
            now = datetime.datetime.now(UTC)
            soon = not windows  # the first certificate: renew in 2 to 4 s; its successor: later
            windows[cert_id] = ((now + datetime.timedelta(seconds=2), now + datetime.timedelta(seconds=4))
                                if soon else (now + datetime.timedelta(days=30),
                                              now + datetime.timedelta(days=31)))
        document = _window(*windows[cert_id])
        if windows[cert_id][0] - datetime.datetime.now(UTC) < datetime.timedelta(days=1):
            document["explanationURL"] = "https://ca.example/incident-42"
        return document, "3600"

    ca, proxy = ari(http_port, https, window)
    srv = ocsi_server(_through(_config(exts_path, ca, http_port, https,
                                       _host("ari.example.com", "ari")), ca, proxy), full=True)
    _wait_certificate(https, "ari.example.com", ca)
    first = _served(https, "ari.example.com")
    for _ in range(int(WAIT / 0.05)):  # bounded: until the renewed certificate is served
        if _serial(https, "ari.example.com") != first.serial_number:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"not renewed: {proxy.renewal_asks} {srv.log('errors')}")
    assert _https_get(https, "ari.example.com", ca.root()) == b"ari"
    assert "(https://ca.example/incident-42)" in srv.log("warnings")  # why the CA moved it
    assert len(proxy.orders) == 2, proxy.orders
    assert "replaces" not in proxy.orders[0][1]  # a first certificate replaces nothing
    ordered_at, renewal = proxy.orders[1]
    assert renewal["replaces"] == expected_id(first)
    assert [cert_id for _, cert_id in proxy.renewal_asks][0] == expected_id(first)
    start, end = windows[expected_id(first)]
    assert ordered_at >= start.timestamp()  # not before the window opened
    assert ca.orders() == 2


def test_the_cas_retry_after_sets_when_the_window_is_asked_again(ocsi_server, ari, exts_path,
                                                                  capsys):
    """A window a month away: the renewal is planned inside it and not before; the next
    question comes after the CA's Retry-After, held between a minute and a day."""
    http_port, https = free_port(), free_port()
    now = datetime.datetime.now(UTC)
    start, end = now + datetime.timedelta(days=30), now + datetime.timedelta(days=31)
    retry = {"soon.example.com": "1", "late.example.com": str(3 * 86400),
             "hour.example.com": "3600", "down.example.com": "120"}
    names: dict[str, str] = {}

    def window(cert_id: str) -> tuple[Any, ...]:
        for _ in range(600):  # bounded: the test learns which name has this certificate
            if cert_id in names:
                break
            time.sleep(0.05)
        if names[cert_id] == "down.example.com":  # the CA's ARI is out of order
            return ({"type": "urn:ietf:params:acme:error:serverInternal",
                     "detail": "renewal information is resting"}, "120", 503)
        return _window(start, end), retry[names[cert_id]]

    ca, proxy = ari(http_port, https, window)
    hosts = "".join(_host(n, n) for n in retry)
    srv = ocsi_server(_through(_config(exts_path, ca, http_port, https, hosts), ca, proxy), full=True)
    for name in retry:
        _wait_certificate(https, name, ca)
        names[expected_id(_served(https, name))] = name
    for _ in range(int(WAIT / 0.05)):  # bounded: until the CA has been asked about each
        if all("renewal_info_next_check" in _state(srv, n).get("extra", {}) for n in retry):
            break
        time.sleep(0.05)
    asked = {names[cert_id]: when for when, cert_id in proxy.renewal_asks}
    for name, expected in (("soon.example.com", 60), ("late.example.com", 86400),
                           ("hour.example.com", 3600)):
        extra = _state(srv, name)["extra"]
        assert extra["renewal_window"] == [start.timestamp(), end.timestamp()]
        assert start.timestamp() <= extra["next_attempt"] <= end.timestamp()
        delay = extra["renewal_info_next_check"] - asked[name]
        assert expected <= delay <= expected + 30, (name, delay)
    # the CA could not say: a third of the lifetime meanwhile, asked again after its Retry-After
    extra = _state(srv, "down.example.com")["extra"]
    assert "renewal_window" not in extra and "renewal information is resting" in extra["renewal_info"]
    assert 120 <= extra["renewal_info_next_check"] - asked["down.example.com"] <= 150
    cert = _served(https, "down.example.com")
    third = cert.not_valid_after_utc - (cert.not_valid_after_utc - cert.not_valid_before_utc) / 3
    lifetime = (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds()
    assert third.timestamp() - lifetime / 30 - 1 <= extra["next_attempt"] <= third.timestamp() + 1
    assert "renewal information is resting (asked again in 120 s)" in srv.log("warnings")
    assert len(proxy.renewal_asks) == 4  # one question each, none repeated
    assert len(proxy.orders) == 4  # no renewal yet
    from ocsi.cli import main

    main(["cert", "status", "-c", srv.config_path])
    out = capsys.readouterr().out
    assert "renewal window (ARI): " in out and "renewal window: unavailable: " in out
