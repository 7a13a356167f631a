"""``host:port`` split and joined the same way everywhere."""

import pytest

from ocsi.httputil import join_host_port, split_host_port


@pytest.mark.parametrize("text, expected", [
    ("example.org", ("example.org", None)),
    ("example.org:8080", ("example.org", "8080")),
    ("1.2.3.4:80", ("1.2.3.4", "80")),
    ("[::1]", ("[::1]", None)),
    ("[::1]:443", ("[::1]", "443")),
    ("[::1]:*", ("[::1]", "*")),
    ("::1", ("::1", None)),                 # a bare IPv6 address is all host
    ("2001:db8::7", ("2001:db8::7", None)),
    ("[::1", ("[::1", None)),               # unterminated: left whole
    ("*.example.org:*", ("*.example.org", "*")),
    ("host:", ("host", "")),
])
def test_split(text, expected):
    assert split_host_port(text) == expected


@pytest.mark.parametrize("host, port, expected", [
    ("example.org", 80, "example.org:80"),
    ("::1", 8080, "[::1]:8080"),
    ("[::1]", 8080, "[::1]:8080"),
    ("*", 80, "*:80"),
    ("example.org", None, "example.org"),
    ("::1", None, "[::1]"),
])
def test_join(host, port, expected):
    assert join_host_port(host, port) == expected
