"""The request pipeline in memory: hosts, sites, answers, retries, errors (spec §3)."""

import asyncio

import pytest

from ocsi.testing import build_pipeline, make_request


@pytest.fixture
def respond(exts_path):
    def run(xml, target="/", **kw):
        pipeline = build_pipeline('<extension findlib-package="ocsi-ext-testbase"/>' + xml,
                                  findlib=[exts_path])
        return asyncio.run(pipeline.respond(make_request(target=target, **kw)))
    return run


def body(resp):
    async def read():
        return b"".join([c async for c in resp.body.chunks()])
    return asyncio.run(read())


def test_not_found_body(respond):
    r = respond("<host/>")
    assert r.status == 404 and body(r) == b"Error: Not Found"


def test_document_order_and_filters(respond):
    r = respond('<host><header name="x-before" value="1"/><say text="a"/><say text="b"/>'
                '<header name="x-after" value="1"/></host>')
    assert body(r) == b"a" and r.headers.get("x-after") == "1" and "x-before" not in r.headers


def test_host_selection_case_insensitive(respond):
    xml = '<host hostfilter="a.com"><say text="a"/></host><host hostfilter="*.org"><say text="org"/></host>'
    assert body(respond(xml, host="A.Com")) == b"a"
    assert body(respond(xml, host="www.x.org")) == b"org"
    assert respond(xml, host="b.com").status == 404


def test_no_host_header_uses_port_eligible_host(respond):
    xml = '<host hostfilter="a.com:81"><say text="81"/></host><host hostfilter="b.com"><say text="b"/></host>'
    assert body(respond(xml, host=None, version="1.0")) == b"b"
    assert body(respond(xml, host=None, version="1.0", port=81)) == b"81"


def test_fall_through_to_next_host(respond):
    xml = '<host><say text="no" path="x"/></host><host><say text="second"/></host>'
    assert body(respond(xml, target="/y")) == b"second"
    assert body(respond(xml, target="/x")) == b"no"


def test_site_prefix_and_subpath(respond, exts_path):
    xml = '<host><site path="a/b"><say text="in" path="x/y"/></site><say text="out"/></host>'
    assert body(respond(xml, target="/a/b/x/y")) == b"in"
    assert body(respond(xml, target="/a/b/z")) == b"out"  # continues after the site
    assert body(respond(xml, target="/a/bz")) == b"out"


def test_site_redirect_keeps_query(respond):
    r = respond('<host><site path="s"><say text="in"/></site></host>', target="/s?q=1",
                headers={"host": "h.test:8080"})
    assert r.status == 301 and r.headers.get("location") == "http://h.test:8080/s/?q=1"


def test_site_redirect_default_hostname(respond):
    r = respond('<usedefaulthostname/><host defaulthostname="main.test" defaulthttpport="8000">'
                '<site path="s"/></host>', target="/s", headers={"host": "other"})
    assert r.headers.get("location") == "http://main.test:8000/s/"


def test_nested_sites(respond):
    xml = ('<host><site path="a"><site path="b"><say text="inner" path="f"/></site>'
           '<say text="outer" path="b/g"/></site></host>')
    assert body(respond(xml, target="/a/b/f")) == b"inner"
    assert body(respond(xml, target="/a/b/g")) == b"outer"


def test_found_page_skips_later_sites(respond):
    xml = ('<host><say text="page"/><site path=""><header name="x-site" value="1"/></site>'
           '<header name="x-host" value="1"/></host>')
    r = respond(xml)
    assert "x-site" not in r.headers and r.headers.get("x-host") == "1"


def test_decoded_paths(respond):
    xml = '<host><site path="s"><say text="ok" path="a\\(b\\).txt"/></site></host>'
    assert body(respond(xml, target="/s/a%28b%29.txt")) == b"ok"


@pytest.mark.parametrize("kind,expected", [
    ("next", b"after"), ("stopsite", b"after-site"), ("stophost", b"next-host"),
    ("stopall", b"Error: Forbidden"), ("servenow", b"now"),
])
def test_answers(respond, kind, expected):
    xml = (f'<host><site path=""><answer kind="{kind}" status="403"/><say text="after"/></site>'
           '<say text="after-site"/></host><host><say text="next-host"/></host>')
    assert body(respond(xml)) == expected


def test_stopall_status(respond):
    assert respond('<host><answer kind="stopall" status="403"/></host>').status == 403


def test_next_status_kept(respond):
    r = respond('<host><answer kind="next" status="403"/></host>')
    assert r.status == 403 and body(r) == b"Error: Forbidden"


def test_retry_and_maxretries(respond):
    xml = '<host><answer kind="retry" url="/b" /></host>'
    r = respond("<maxretries>3</maxretries>" + xml)
    assert r.status == 500 and body(r) == b"Error: Internal Server Error"
    ok = respond('<host><say text="b" path="b"/><answer kind="retry" url="/b"/></host>', target="/a")
    assert body(ok) == b"b"


def test_continue_with_changes_request(respond):
    xml = '<host><answer kind="continue" url="/new"/><say text="new" path="new"/></host>'
    assert body(respond(xml, target="/old")) == b"new"


def test_exception_is_500_without_detail(respond):
    r = respond("<host><boom/></host>")
    assert r.status == 500 and b"secret" not in body(r)


def test_debugmode_shows_detail(respond):
    r = respond("<debugmode/><host><boom/></host>")
    assert r.status == 500 and b"secret internal detail" in body(r)
