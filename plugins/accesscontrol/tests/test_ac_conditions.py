"""Conditions: parsing (with located errors) and evaluation, without a pipeline."""

from __future__ import annotations

from typing import Any

import pytest
from ocsi import ConfigError
from ocsi.testing import make_request, parse_element
from ocsi_ext_accesscontrol import (
    and_,
    header,
    ip,
    method,
    not_,
    or_,
    parse_condition,
    path,
    port,
    protocol,
    ssl,
)
from ocsi_ext_accesscontrol.addresses import canonical_address, parse_address, parse_network


def cond(xml: str) -> Any:
    return parse_condition(parse_element(xml, "t.conf"))


def req(**kw: Any) -> Any:
    return make_request(kw.pop("method", "GET"), kw.pop("target", "/"), **kw)


@pytest.mark.parametrize("value, client, expected", [
    ("127.0.0.1", "127.0.0.1", True),
    ("127.0.0.1", "127.0.0.2", False),
    ("10.0.0.0/8", "10.200.3.4", True),
    ("10.0.0.0/8", "11.0.0.1", False),
    ("10.1.2.3/8", "10.9.9.9", True),            # host bits ignored, as Ocsigen
    ("192.168.1.0/24", "192.168.1.255", True),
    ("192.168.1.0/24", "192.168.2.1", False),
    ("0.0.0.0/0", "8.8.8.8", True),
    ("0.0.0.0/0", "::1", False),                 # families never mix
    ("::1", "::1", True),
    ("::1", "127.0.0.1", False),
    ("2001:db8::/32", "2001:db8:1::5", True),
    ("2001:db8::/32", "2001:db9::5", False),
    ("::/0", "fe80::1", True),
    ("10.0.0.0/8", "::ffff:10.1.2.3", True),     # IPv4-mapped client (dual-stack socket)
    ("::ffff:10.0.0.0/104", "10.1.2.3", True),   # IPv4-mapped network
    ("127.0.0.1", "unix", False),                # not an IP: never matches
    ("127.0.0.1", "", False),
])
def test_ip(value: str, client: str, expected: bool) -> None:
    assert cond(f'<ip value="{value}"/>')(req(client=client)) is expected
    assert ip(value)(req(client=client)) is expected


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "300.1.1.1", "abc", "", "::1/129", "10.0.0.0/x"])
def test_ip_bad_value_is_located(bad: str) -> None:
    with pytest.raises(ConfigError) as e:
        cond(f'<ip value="{bad}"/>')
    assert f"Bad ip/netmask [{bad}] in <ip> condition" in str(e.value)
    assert str(e.value).startswith("t.conf:1")


def test_address_helpers() -> None:
    assert parse_address("[::1]:8080") == parse_address("::1")
    assert parse_address("1.2.3.4:80") == parse_address("1.2.3.4")
    assert parse_address("nonsense") is None
    assert canonical_address(" [2001:DB8::1]:443 ") == "2001:db8::1"
    assert canonical_address("::ffff:1.2.3.4") == "1.2.3.4"
    assert parse_network("10.0.0.1").mask == 0xFFFFFFFF


def test_port_ssl_method_protocol() -> None:
    assert cond('<port value="8080"/>')(req(port=8080))
    assert not cond('<port value="8080"/>')(req(port=80))
    assert port(443)(req(port=443))
    assert cond("<ssl/>")(req(secure=True))
    assert not cond("<ssl/>")(req(secure=False))
    assert ssl()(req(secure=True))
    assert cond('<method value="POST"/>')(req(method="POST"))
    assert not cond('<method value="POST"/>')(req(method="GET"))
    assert not cond('<method value="post"/>')(req(method="POST"))  # case-sensitive
    assert method("DELETE")(req(method="DELETE"))
    assert cond('<protocol value="HTTP/1.0"/>')(req(version="1.0"))
    assert cond('<protocol value="HTTP/1.0"/>')(req(version="HTTP/1.0"))
    assert not cond('<protocol value="HTTP/1.0"/>')(req(version="1.1"))
    assert protocol("HTTP/1.1")(req(version="1.1"))


def test_header_full_match_any_line_name_case_insensitive() -> None:
    c = cond('<header name="User-Agent" regexp=".*curl.*"/>')
    assert c(req(headers={"user-agent": "curl/8.0"}))
    assert not c(req(headers={"user-agent": "Mozilla"}))
    assert not c(req())
    exact = cond('<header name="x-a" regexp="b"/>')
    assert not exact(req(headers={"X-A": "abc"}))                    # anchored: whole value
    assert exact(req(headers=[("X-A", "zzz"), ("x-a", "b")]))        # some line matches
    assert not cond('<header name="x-a" regexp="B"/>')(req(headers={"x-a": "b"}))  # case-sensitive
    assert header("Accept", "text/.*")(req(headers={"accept": "text/html"}))


def test_path_on_decoded_sub_path() -> None:
    c = cond('<path regexp="c.*"/>')
    assert c(req(target="/cat"))
    assert not c(req(target="/dog/cat"))                # anchored at the start
    assert cond('<path regexp="a b/.*"/>')(req(target="/a%20b/x"))  # decoded
    assert cond('<path regexp=""/>')(req(target="/"))
    assert cond('<path regexp="x"/>')(req(target="/x?x=1"))  # query excluded
    r = req(target="/s/cat")
    r.depth = 1                                        # as inside <site path="s">
    assert c(r)
    assert path("s/.*")(req(target="/s/cat"))


def test_and_or_not() -> None:
    r = req(client="10.0.0.1", secure=True)
    assert cond("<and/>")(r) is True
    assert cond("<or/>")(r) is False
    assert cond('<and><ip value="10.0.0.0/8"/><ssl/></and>')(r)
    assert not cond('<and><ip value="10.0.0.0/8"/><not><ssl/></not></and>')(r)
    assert cond('<or><ip value="192.168.0.0/16"/><ssl/></or>')(r)
    assert cond("<not><or/></not>")(r)
    assert and_(ip("10.0.0.0/8"), ssl())(r)
    assert or_(not_(ssl()), ip("10.0.0.0/8"))(r)
    assert (ip("10.0.0.0/8") & ~ssl())(r) is False
    assert (ip("1.0.0.0/8") | ssl())(r) is True


@pytest.mark.parametrize("xml, message", [
    ("<ip/>", "missing attribute 'value'"),
    ('<ip value="1.2.3.4" mask="8"/>', "unknown attribute 'mask'"),
    ('<ssl value="1"/>', "unknown attribute 'value'"),
    ('<ssl><ip value="1.2.3.4"/></ssl>', "unknown element <ip>"),
    ('<port value="http"/>', "Bad port [http]"),
    ('<port value="70000"/>', "Bad port [70000]"),
    ('<header name="x"/>', "missing attribute 'regexp'"),
    ('<header name="x" regexp="("/>', "in <header> condition: bad regular expression '('"),
    ('<path regexp="[a"/>', "in <path> condition: bad regular expression '[a'"),
    ('<protocol value="HTTP/2"/>', "Bad protocol [HTTP/2]"),
    ("<not/>", "exactly one condition"),
    ("<not><ssl/><ssl/></not>", "exactly one condition"),
    ("<and><bogus/></and>", "<bogus> is not a condition"),
    ("<method/>", "missing attribute 'value'"),
])
def test_condition_errors(xml: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        cond(xml)
    assert message in str(e.value)
    assert str(e.value).startswith("t.conf:1")


def test_python_constructor_errors() -> None:
    with pytest.raises(ValueError):
        ip("nope")
    with pytest.raises(ValueError):
        path("(")
    with pytest.raises(ValueError):
        protocol("HTTP/x")
    with pytest.raises(ValueError):
        port(-1)
