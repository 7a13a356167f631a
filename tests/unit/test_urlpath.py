import pytest

from ocsi._http.urlpath import BadTarget, decode_path, split_target


@pytest.mark.parametrize("raw,decoded", [
    ("/", ("",)),
    ("/a", ("a",)),
    ("/a/", ("a", "")),
    ("/a%20b.txt", ("a b.txt",)),
    ("/s/a%28b%29.txt", ("s", "a(b).txt")),
    ("/a/./b", ("a", "b")),
    ("/a/../b", ("b",)),
    ("/a/%2e%2e/b", ("b",)),
    ("/a/%2E%2E/b", ("b",)),
    ("/a//b", ("a", "b")),
    ("/a/b/..", ("a", "")),
    ("/a/%2fetc", ("a", "/etc")),
    ("/%C3%A9t%C3%A9", ("été",)),
])
def test_decode(raw, decoded):
    assert decode_path(raw)[1] == decoded


@pytest.mark.parametrize("raw", ["/..", "/../etc/passwd", "/a/../../b", "/%2e%2e/x", "/a/%2e%2e/%2e%2e/x"])
def test_climbing_is_refused(raw):
    with pytest.raises(BadTarget):
        decode_path(raw)


def test_invalid_utf8_survives():
    _, segs = decode_path("/%ff")
    assert segs[0].encode("utf-8", "surrogateescape") == b"\xff"


def test_split_target():
    assert split_target("/a?b=1") == ("/a", "b=1", None, None)
    assert split_target("http://Example.org:8080/x?y") == ("/x", "y", "http", "Example.org:8080")
    assert split_target("http://h") == ("/", None, "http", "h")
    assert split_target("*") == ("*", None, None, None)
    with pytest.raises(BadTarget):
        split_target("a/b")


@pytest.mark.parametrize("raw", ["/admin/secret%0a", "/admin%0a/secret", "/a/%0d%0a", "/a%00.txt",
                                 "/a/%7f", "/a/%0B", "/a/%1f", "/a%09b"])
def test_control_characters_once_decoded_are_refused(raw):
    with pytest.raises(BadTarget, match="control character"):
        decode_path(raw)


def test_characters_past_the_controls_are_kept():
    assert decode_path("/%20%7e%c2%80%ff")[1] == ("\x20~\x80\udcff",)
