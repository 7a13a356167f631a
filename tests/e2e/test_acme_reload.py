"""``<acme>`` and ``acme="true"`` changed by a reload through the command pipe, against real
CAs (two pebbles): no restart, the stored certificates served throughout, a bad ``<acme>``
refused with its location while the running configuration carries on; with two worker
processes; the cluster's database added by a reload."""

from __future__ import annotations

import socket
import ssl
import time

from cryptography import x509

from ocsi.certificates import issue, new_authority
from ocsi.testing import free_port

from .conftest import BASE
from .pebble import Pebble, needs_pebble, pebble  # noqa: F401 - the fixture
from .test_acme import WAIT, _host, _https_get, _serial, _wait_certificate
from .test_acme import postgresql  # noqa: F401 - the fixture (a throwaway PostgreSQL)

pytestmark = needs_pebble


def _document(exts: str, http: int, https: int, ssl_files: tuple[str, str], acme: str,
              hosts: str) -> str:
    return (f"<ocsigen><server>\n<port>127.0.0.1:{http}</port>\n"
            f'<port protocol="HTTPS">127.0.0.1:{https}</port>\n'
            "<logdir>{tmp}/log</logdir><datadir>{tmp}/data</datadir>"
            "<commandpipe>{tmp}/ocsi.cmd</commandpipe>\n"
            f"<ssl><certificate>{ssl_files[0]}</certificate><privatekey>{ssl_files[1]}</privatekey></ssl>\n"
            f"{acme}\n{BASE.format(exts=exts)}\n{hosts}\n"
            '<host hostfilter="*"><say text="default"/></host>\n</server></ocsigen>')


def _acme(ca: Pebble, challenges: str, email: str = "admin@example.org") -> str:
    return (f'<acme email="{email}" directory="{ca.directory}" ca="{ca.ca_file}" '
            f'challenges="{challenges}" retry="1"/>')


def _issuer(port: int, name: str) -> str:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=name) as s:
        der = s.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).issuer.rfc4514_string()


def test_acme_changes_take_effect_on_reload(ocsi_server, pebble, exts_path, tmp_path):  # noqa: F811
    http, https = free_port(), free_port()
    one = pebble(http, https)
    two = pebble(http, https)
    authority, key = new_authority("the default certificate's CA")
    cert, cert_key = issue(authority, key, ["localhost"])
    (tmp_path / "default.crt").write_bytes(cert)
    (tmp_path / "default.key").write_bytes(cert_key)
    files = (str(tmp_path / "default.crt"), str(tmp_path / "default.key"))
    xml = _document(exts_path, http, https, files, "", "")
    srv = ocsi_server(xml, full=True)
    assert _issuer(https, "a.example.com") == "CN=the default certificate's CA"

    # 1. <acme> and a host acme="true" added: its certificate is ordered (tls-alpn-01, so the
    #    listeners' context reads ClientHellos from now on)
    xml = _document(exts_path, http, https, files, _acme(one, "tls-alpn-01"),
                    _host("a.example.com", "a"))
    srv.reload(xml)  # the file rewritten, "reload" written to the command pipe and processed
    assert "Config file reloaded" in srv.wait_log("warnings", "Config file reloaded")
    _wait_certificate(https, "a.example.com", one)
    assert _https_get(https, "a.example.com", one.root()) == b"a"
    first = _serial(https, "a.example.com")
    assert one.orders() == 1

    # 2. a bad <acme>: refused where it is written, the running configuration carries on
    bad = _document(exts_path, http, https, files, _acme(one, "tls-alpn-01", email="nobody"),
                    _host("a.example.com", "a"))
    srv.reload(bad)
    errors = srv.wait_log("errors", "Reload failed")
    assert "Reload failed, configuration unchanged" in errors
    line = next(i for i, text in enumerate(bad.splitlines(), 1) if text.startswith("<acme"))
    assert f"{srv.config_path}:{line}:" in errors
    assert 'email="nobody" is not an email address' in errors
    assert _https_get(https, "a.example.com", one.root()) == b"a"

    # 3. another CA, http-01 only, one more host: the new host's certificate comes from the
    #    new CA; a's stored certificate is kept (not ordered again)
    xml = _document(exts_path, http, https, files, _acme(two, "http-01"),
                    _host("a.example.com", "a") + _host("b.example.com", "b"))
    srv.reload(xml)
    _wait_certificate(https, "b.example.com", two)
    assert _https_get(https, "b.example.com", two.root()) == b"b"
    assert "/.well-known/acme-challenge/" in srv.wait_log("access", "acme-challenge")
    assert _serial(https, "a.example.com") == first
    assert (one.orders(), two.orders()) == (1, 1)

    # 4. acme="true" removed from a: its names get the <ssl> certificate again; b keeps its own
    xml = _document(exts_path, http, https, files, _acme(two, "http-01"),
                    _host("b.example.com", "b"))
    srv.reload(xml)
    assert _issuer(https, "a.example.com") == "CN=the default certificate's CA"
    assert _https_get(https, "b.example.com", two.root()) == b"b"

    # 5. <acme> removed: every name gets the <ssl> certificate
    srv.reload(_document(exts_path, http, https, files, "", ""))
    assert _issuer(https, "b.example.com") == "CN=the default certificate's CA"
    assert "Traceback" not in srv.log("errors")
    assert srv.server.acme is None


def test_unchanged_acme_keeps_its_manager_across_a_reload(ocsi_server, pebble, exts_path,  # noqa: F811
                                                         tmp_path):
    """A reload that changes other things (here a host's content and the lines above it)
    leaves ACME alone: same manager, no new order."""
    http, https = free_port(), free_port()
    ca = pebble(http, https)
    authority, key = new_authority("default CA")
    cert, cert_key = issue(authority, key, ["localhost"])
    (tmp_path / "d.crt").write_bytes(cert)
    (tmp_path / "d.key").write_bytes(cert_key)
    files = (str(tmp_path / "d.crt"), str(tmp_path / "d.key"))
    srv = ocsi_server(_document(exts_path, http, https, files, _acme(ca, "tls-alpn-01 http-01"),
                                _host("k.example.com", "before")), full=True)
    _wait_certificate(https, "k.example.com", ca)
    manager = srv.server.acme
    srv.reload(_document(exts_path, http, https, files, "\n\n" + _acme(ca, "tls-alpn-01 http-01"),
                         _host("k.example.com", "after")))
    deadline = time.monotonic() + WAIT
    while _https_get(https, "k.example.com", ca.root()) != b"after":  # bounded
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert srv.server.acme is manager
    assert ca.orders() == 1


def test_workers_take_a_new_acme_host_on_reload(ocsi_process, pebble, exts_path):  # noqa: F811
    """Two worker processes: the reload reaches both, worker 0 orders the new host's
    certificate (tls-alpn-01, answered by whichever worker the CA reaches), both serve it."""
    from pathlib import Path

    from .test_acme import _config

    https = free_port()
    ca = pebble(0, https)

    def host(name: str) -> str:
        return (f'<host hostfilter="{name}" acme="true"><site path="pid"><pid/></site>'
                f'<say text="{name}"/></host>')

    def document(hosts: str) -> str:
        return (_config(exts_path, ca, 0, https, hosts, "tls-alpn-01")
                .replace("127.0.0.1:0<", "127.0.0.1:{port}<"))

    srv = ocsi_process(document(host("w1.example.com")), full=True, args=["--workers", "2"])
    _wait_certificate(https, "w1.example.com", ca)
    Path(srv.config_path).write_text(document(host("w1.example.com") + host("w2.example.com"))
                                     .replace("{tmp}", str(srv.tmp)).replace("{port}", str(srv.port)))
    srv.command("reload")
    _wait_certificate(https, "w2.example.com", ca)
    root = ca.root()
    pids: set[bytes] = set()
    for _ in range(400):  # new connections until both workers have answered for w2 (bounded)
        try:
            pids.add(_https_get(https, "w2.example.com", root, "/pid/"))
        except ssl.SSLError:  # the other worker loads the stored certificate within 2 s
            pass
        if len(pids) == 2:
            break
        time.sleep(0.05)
    assert len(pids) == 2, pids
    assert _https_get(https, "w1.example.com", root) == b"w1.example.com"
    assert ca.orders() == 2  # one each: worker 0 ordered, worker 1 did not
    assert "Traceback" not in srv.log("errors")


def test_a_reload_that_adds_the_cluster_database_shares_through_it(ocsi_server, pebble,  # noqa: F811
                                                                    exts_path, postgresql, caplog):
    """A server alone, then ocsipersist-pgsql added by a reload: ACME starts sharing through
    the database the extension publishes (its account and the certificate it holds become the
    cluster's), the certificate is served throughout and not ordered again."""
    import logging
    import subprocess

    from .test_acme import _config

    caplog.set_level(logging.INFO, "ocsi.acme")
    cluster, postgres = postgresql
    database = (f'<extension findlib-package="ocsi-ext-ocsipersist-pgsql"><database host="127.0.0.1" '
                f'port="{cluster.port}" user="{postgres.USER}" password="{postgres.PASSWORD}" '
                f'database="ocsipersist"/></extension>')
    http, https = free_port(), free_port()
    ca = pebble(http, https)
    host = _host("joins.example.com", "joins")
    srv = ocsi_server(_config(exts_path, ca, http, https, host, "http-01"), full=True)
    _wait_certificate(https, "joins.example.com", ca)
    serial = _serial(https, "joins.example.com")
    srv.reload(_config(exts_path, ca, http, https, database + host, "http-01"))
    for _ in range(int(WAIT / 0.05)):  # bounded: until the new manager has opened the database
        if any("shared through PostgreSQL" in r.getMessage() for r in caplog.records):
            break
        time.sleep(0.05)
    else:
        raise AssertionError(srv.log("errors"))
    keys = subprocess.run(
        ["psql", "-h", cluster.socket_dir, "-p", str(cluster.port), "-U", postgres.USER,
         "-d", "ocsipersist", "-tA", "-c", "SELECT key FROM ocsi_acme ORDER BY key"],
        capture_output=True, text=True, timeout=30, check=True).stdout.split()
    assert "account.key" in keys
    # the certificate it held is the cluster's too: another server would serve it, not order
    assert "certs/joins.example.com/certificate.pem" in keys
    account = (srv.tmp / "data" / "acme" / "account.key").read_bytes()
    stored = subprocess.run(
        ["psql", "-h", cluster.socket_dir, "-p", str(cluster.port), "-U", postgres.USER,
         "-d", "ocsipersist", "-tA", "-c",
         "SELECT convert_from(value, 'UTF8') FROM ocsi_acme WHERE key = 'account.key'"],
        capture_output=True, text=True, timeout=30, check=True).stdout
    assert stored.strip() == account.decode().strip()  # this server's account is the cluster's
    assert _serial(https, "joins.example.com") == serial
    assert ca.orders() == 1
    assert "Traceback" not in srv.log("errors")
