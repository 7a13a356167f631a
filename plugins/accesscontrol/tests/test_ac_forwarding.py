"""Trusted proxies and X-Forwarded-For / X-Forwarded-Proto, as pure functions and options."""

from __future__ import annotations

from typing import Any

import pytest
from ocsi import ConfigError
from ocsi.testing import parse_element
from ocsi_ext_accesscontrol.addresses import parse_networks
from ocsi_ext_accesscontrol.forwarding import AccessControlOptions, forwarded_client, parse_options

T = parse_networks("10.0.0.0/8 ::1")


@pytest.mark.parametrize("xff, peer, trusted, check, expected", [
    # nothing configured: the peer is believed, for one hop (the right-most entry)
    (["1.2.3.4"], "127.0.0.1", None, False, ("1.2.3.4", ())),          # Ocsigen: 500
    (["6.6.6.6, 1.2.3.4"], "127.0.0.1", None, False, ("1.2.3.4", ())), # spoofed left part ignored
    (["6.6.6.6", "1.2.3.4"], "127.0.0.1", None, False, ("1.2.3.4", ())),  # two entries
    (["unknown"], "127.0.0.1", None, False, None),                     # Ocsigen: 500
    ([" "], "127.0.0.1", None, False, None),
    (["[2001:db8::1]:5555"], "127.0.0.1", None, False, ("2001:db8::1", ())),
    (["1.2.3.4:5678"], "127.0.0.1", None, False, ("1.2.3.4", ())),
    # trusted proxies: the peer must be one; trusted hops are skipped from the right
    (["1.2.3.4"], "127.0.0.1", T, False, None),
    (["1.2.3.4"], "10.0.0.5", T, False, ("1.2.3.4", ())),
    (["1.2.3.4, 10.0.0.9"], "10.0.0.5", T, False, ("1.2.3.4", ("10.0.0.9",))),
    (["6.6.6.6, 1.2.3.4, 10.0.0.9, 10.1.1.1"], "::1", T, False,
     ("1.2.3.4", ("10.0.0.9", "10.1.1.1"))),
    (["10.0.0.7, 10.0.0.9"], "10.0.0.5", T, False, ("10.0.0.7", ("10.0.0.9",))),  # all trusted
    (["1.2.3.4"], "::ffff:10.0.0.5", T, False, ("1.2.3.4", ())),     # mapped peer
    # check-equal-ip: the right-most entry must be the peer itself
    (["1.2.3.4, 127.0.0.1"], "127.0.0.1", None, True, ("1.2.3.4", ())),
    (["1.2.3.4, 127.0.0.2"], "127.0.0.1", None, True, None),
    (["1.2.3.4"], "127.0.0.1", None, True, None),                       # Ocsigen: 500
    (["127.0.0.1"], "127.0.0.1", None, True, None),
])
def test_forwarded_client(xff: Any, peer: Any, trusted: Any, check: Any, expected: Any) -> None:
    # forwarded_client takes the entries as Headers.get_list gives them (two header lines on
    # the wire are tested end to end in test_ac_pipeline: test_two_x_forwarded_for_lines…)
    items = [p.strip() for line in xff for p in line.split(",")]
    assert forwarded_client(items, peer, trusted, check) == expected


def opts(xml: str) -> AccessControlOptions:
    root = parse_element(f"<extension>{xml}</extension>", "o.conf")
    return parse_options(root.children)


def test_options() -> None:
    assert opts("").trusted_proxies is None
    o = opts('<trustedproxy value="10.0.0.0/8"/><trustedproxy value="::1, 192.168.0.1"/>')
    assert [n.text for n in o.trusted_proxies or ()] == ["10.0.0.0/8", "::1", "192.168.0.1"]


@pytest.mark.parametrize("xml, message", [
    ('<trusted value="1.2.3.4"/>', "unknown option <trusted>"),
    ("<trustedproxy/>", "missing attribute 'value'"),
    ('<trustedproxy value="10.0.0.0/40"/>', "bad trusted proxy list"),
    ('<trustedproxy value=""/>', "no address given"),
    ('<trustedproxy value="1.2.3.4" x="1"/>', "unknown attribute 'x'"),
])
def test_option_errors(xml: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        opts(xml)
    assert message in str(e.value) and str(e.value).startswith("o.conf:1")


# -- believing any peer is said at load -----------------------------------------------------------
AC = '<extension findlib-package="ocsi-ext-accesscontrol"/>'


@pytest.mark.parametrize("element", ["<allow-forward-for/>", "<allow-forward-proto/>"])
def test_trusting_any_peer_is_a_located_warning(ocsi_server, element):
    srv = ocsi_server(AC + f'<host>\n{element}</host>')
    warnings = srv.wait_log("warnings", "believes any peer")
    assert f"ocsi.conf:6:1: {element} without proxies= or <trustedproxy> believes any peer" in warnings


@pytest.mark.parametrize("xml", [
    AC + '<host><allow-forward-for proxies="127.0.0.1"/></host>',
    '<extension findlib-package="ocsi-ext-accesscontrol"><trustedproxy value="127.0.0.1"/></extension>'
    '<host><allow-forward-for/><allow-forward-proto/></host>',
])
def test_no_warning_with_trusted_proxies(ocsi_server, xml):
    srv = ocsi_server(xml)
    assert srv.get("/", headers={"X-Forwarded-For": "1.2.3.4"}).status == 404
    assert "believes any peer" not in srv.log("warnings")


def test_check_says_it(tmp_path):
    import subprocess
    import sys

    conf = tmp_path / "ocsi.conf"
    conf.write_text(f"<ocsigen><server><port>0</port>\n{AC}\n<host>\n<allow-forward-for/>"
                    "</host></server></ocsigen>")
    r = subprocess.run([sys.executable, "-m", "ocsi", "--check", "-c", str(conf)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert f"ocsi: warning: {conf}:4:1: <allow-forward-for/> without proxies=" in r.stderr
    assert "configuration OK" in r.stdout and "1 warning(s) above" in r.stdout
