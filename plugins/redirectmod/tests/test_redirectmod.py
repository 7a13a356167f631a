"""<redirect>: in memory and over sockets."""

from __future__ import annotations

import pytest
from ocsi.testing import assert_config_error

EXT = '<extension findlib-package="ocsigenserver.ext.redirectmod"/>'


def test_suburl_permanent_with_groups_and_the_query(ocsi_client):
    srv = ocsi_client(EXT + '<host><site path="s"><redirect suburl="old/(.*)" dest="/new/\\1"/></site></host>')
    r = srv.get("/s/old/a%20b?x=1")
    assert (r.status, r.headers["location"], r.body) == (301, "/new/a%20b?x=1", b"")
    assert r.headers["content-length"] == "0"
    assert srv.get("/s/other").status == 404


def test_temporary_and_method_keeping(ocsi_client):
    srv = ocsi_client(EXT + '<host><site path="t"><redirect suburl="(.*)" dest="http://e.example/\\1" temporary="temporary"/></site>'
                            '<site path="p"><redirect suburl="(.*)" dest="/x" keepmethod="keepmethod"/></site>'
                            '<site path="q"><redirect suburl="(.*)" dest="/x" temporary="temporary" keepmethod="true"/></site></host>')
    assert (srv.get("/t/a").status, srv.get("/t/a").headers["location"]) == (302, "http://e.example/a")
    assert srv.request("POST", "/p/a", body=b"x").status == 308
    assert srv.request("POST", "/q/a", body=b"x").status == 307


def test_fullurl_and_5_0_1_regexp(ocsi_client):
    srv = ocsi_client(EXT + '<host><redirect fullurl="http://old\\.example(:\\d+)?/(.*)" dest="https://new.example/\\2"/>'
                            '<redirect regexp="legacy/(.*)" dest="/l/\\1"/></host>')
    r = srv.get("/p?q", host="old.example")
    assert (r.status, r.headers["location"]) == (301, "https://new.example/p?q")
    assert srv.get("/p", host="other.example").status == 404
    assert srv.get("/legacy/z").headers["location"] == "/l/z"  # regexp=: as suburl first


def test_filters_after_it_still_run(ocsi_client):
    ext = EXT + '<extension findlib-package="ocsi-ext-outputfilter"/>'
    srv = ocsi_client(ext + '<host><redirect suburl="(.*)" dest="/x"/><outputfilter header="x-f" dest="1"/></host>')
    assert srv.get("/a").headers["x-f"] == "1"


@pytest.mark.parametrize("element, message", [
    ('<redirect dest="/x"/>', "Missing attribute regexp for <redirect>"),
    ('<redirect suburl="a"/>', "Missing attribute dest for <redirect>"),
    ('<redirect suburl="(" dest="/x"/>', "bad regular expression"),
    ('<redirect suburl="(a)" dest="/\\2"/>', "refers to group 2"),
    ('<redirect suburl="a" fullurl="b" dest="/x"/>', "exactly one of suburl, fullurl or regexp"),
    ('<redirect suburl="a" dest="/x" code="307"/>', "unknown attribute 'code'"),
])
def test_errors_are_located(ocsi_memory, element, message):
    assert_config_error(ocsi_memory, EXT + "<host>\n" + element + "</host>", message, line=2)


@pytest.mark.parametrize("target, location", [
    ("/r/\\evil.example/x", "/%5Cevil.example/x"),      # browsers read /\ as //
    ("/r/%5Cevil.example/x", "/%5Cevil.example/x"),
    ("/r//evil.example/x", "/evil.example/x"),          # the empty segment is dropped
    ("/r/a\\b", "/a%5Cb"),
    ("/r/ok/x?y=1", "/ok/x?y=1"),
])
def test_a_location_built_from_the_request_names_no_other_host(ocsi_server, target, location):
    srv = ocsi_server(EXT + '<host><redirect suburl="r/(.*)" dest="/\\1"/></host>')
    r = srv.raw(f"GET {target} HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n".encode())
    assert r.startswith(b"HTTP/1.1 301"), r
    assert f"\r\nLocation: {location}\r\n".encode() in r, r


@pytest.mark.parametrize("target, location", [
    ("/r/\\evil.example/x", "/%5Cevil.example/x"),
    ("/go?to=/evil.example/x", "/%2Fevil.example/x"),  # would be a network-path reference
    ("/go?to=%09/evil.example/x", "/%09/evil.example/x"),
    ("/go?to=ok", "/ok"),
])
def test_a_location_from_the_full_url_names_no_other_host(ocsi_server, target, location):
    srv = ocsi_server(EXT + '<host><redirect fullurl="http://[^/]*/r(.*)" dest="\\1"/>'
                            '<redirect suburl="go\\?to=(.*)" dest="/\\1"/></host>')
    r = srv.raw(f"GET {target} HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n".encode())
    assert f"\r\nLocation: {location}\r\n".encode() in r, r


def test_an_administrators_network_path_dest_is_kept(ocsi_server):
    srv = ocsi_server(EXT + '<host><redirect suburl="(.*)" dest="//cdn.example/\\1"/></host>')
    assert srv.get("/x").headers["location"] == "//cdn.example/x"
