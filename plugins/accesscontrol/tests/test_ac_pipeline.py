"""Every condition and action in a running pipeline: in memory and over real sockets.

The ``serve`` fixture runs each test twice (``[memory]`` and ``[socket]``); the socket client
is 127.0.0.1 speaking HTTP/1.1 without TLS, so the tests are written from that point of view.
Interplay with ``<site>`` nesting and fall-through to the next host is covered here too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

H = '<host hostfilter="*">{}</host>'


def host(*bodies: str) -> str:
    return "".join(H.format(b) for b in bodies)


# -- conditions --------------------------------------------------------------------------------------
def test_ip_forbidden_for_local_client(serve: Callable[..., Any]) -> None:
    c = serve(host('<if><ip value="127.0.0.1"/><then><forbidden/></then></if><page/>'))
    assert c.get("/x").status == 403
    c = serve(host('<if><ip value="127.0.0.0/8"/><then><forbidden/></then></if><page/>'))
    assert c.get("/x").status == 403
    c = serve(host('<if><or><ip value="10.0.0.0/8"/><ip value="::1"/></or>'
                   '<then><forbidden/></then></if><page/>'))
    r = c.get("/x")
    assert (r.status, r.text) == (200, "page")


def test_ip_others_pass_in_memory(memory: Callable[..., Any]) -> None:
    c = memory(host('<if><ip value="127.0.0.1"/><then><forbidden/></then></if><page/>'))
    assert c.get("/x", client="10.1.1.1").status == 200
    c = memory(host('<if><ip value="2001:db8::/32"/><then><forbidden/></then></if><page/>'))
    assert c.get("/x", client="2001:db8::7").status == 403
    assert c.get("/x", client="2001:db9::7").status == 200


def test_port(serve: Callable[..., Any]) -> None:
    c = serve(host('<if><port value="{port}"/><then><page body="yes"/></then>'
                   '<else><page body="no"/></else></if>'))
    assert c.get("/").text == "yes"
    c = serve(host('<if><port value="1"/><then><page body="yes"/></then>'
                   '<else><page body="no"/></else></if>'))
    assert c.get("/").text == "no"


def test_ssl_and_forward_proto(serve: Callable[..., Any]) -> None:
    xml = host('<allow-forward-proto/><if><ssl/><then><page body="tls"/></then>'
               '<else><page body="plain"/></else></if>')
    c = serve(xml)
    assert c.get("/").text == "plain"
    assert c.get("/", {"X-Forwarded-Proto": "https"}).text == "tls"
    assert c.get("/", {"X-Forwarded-Proto": "HTTPS"}).text == "tls"
    assert c.get("/", {"X-Forwarded-Proto": "gopher"}).text == "plain"


def test_forward_proto_changes_redirect_scheme(serve: Callable[..., Any]) -> None:
    c = serve(host('<allow-forward-proto/><site path="s"><page/></site>'))
    r = c.get("/s", {"X-Forwarded-Proto": "https"})
    assert r.status == 301 and r.headers["location"].startswith("https://")
    assert c.get("/s").headers["location"].startswith("http://")


def test_header(serve: Callable[..., Any]) -> None:
    c = serve(host('<if><header name="User-Agent" regexp=".*curl.*"/><then><forbidden/></then>'
                   '</if><page/>'))
    assert c.get("/", {"User-Agent": "curl/8.5"}).status == 403
    assert c.get("/", {"User-Agent": "Mozilla/5.0"}).status == 200
    assert c.get("/", {"user-agent": "xcurlx"}).status == 403


def test_method(serve: Callable[..., Any]) -> None:
    c = serve(host('<if><method value="POST"/><then><page body="post"/></then>'
                   '<else><page body="other"/></else></if>'))
    assert c.request("POST", "/").text == "post"
    assert c.get("/").text == "other"
    assert c.request("PUT", "/").text == "other"


def test_protocol(serve: Callable[..., Any]) -> None:
    c = serve(host('<if><protocol value="HTTP/1.1"/><then><page body="11"/></then>'
                   '<else><page body="10"/></else></if>'))
    assert c.get("/").text == "11"


def test_protocol_10_in_memory(memory: Callable[..., Any]) -> None:
    c = memory(host('<if><protocol value="HTTP/1.0"/><then><page body="10"/></then></if>'))
    assert c.get("/", version="1.0").text == "10"
    assert c.get("/", version="1.1").status == 404


def test_path_inside_site_matches_sub_path(serve: Callable[..., Any]) -> None:
    c = serve(host('<site path="s"><if><path regexp="c.*"/><then><page body="c"/></then></if>'
                   '</site>'))
    assert c.get("/s/cat").text == "c"
    assert c.get("/s/dog").status == 404
    assert c.get("/cat").status == 404
    c = serve(host('<if><path regexp="s/c.*"/><then><page body="host-level"/></then></if>'))
    assert c.get("/s/cat").text == "host-level"


def test_and_or_not_else(serve: Callable[..., Any]) -> None:
    c = serve(host('<if><and/><then><page body="and"/></then></if>'))
    assert c.get("/").text == "and"
    c = serve(host('<if><or/><then><page body="or"/></then><else><page body="else"/></else></if>'))
    assert c.get("/").text == "else"
    c = serve(host('<if><not><ssl/></not><then><page body="not"/></then></if>'))
    assert c.get("/").text == "not"
    c = serve(host('<if><and><method value="GET"/><not><ssl/></not></and>'
                   '<then><page body="both"/></then></if>'))
    assert c.get("/").text == "both"
    assert c.request("POST", "/").status == 404


# -- actions -----------------------------------------------------------------------------------------
def test_forbidden_and_notfound_override_a_found_page(serve: Callable[..., Any]) -> None:
    assert serve(host("<page/><forbidden/>")).get("/x").status == 403
    assert serve(host("<page/><notfound/>")).get("/x").status == 404
    r = serve(host("<forbidden/><page/>")).get("/x")
    assert r.status == 403 and "page" not in r.text


def test_forbidden_is_final_no_next_host(serve: Callable[..., Any]) -> None:
    c = serve(host('<if><ip value="127.0.0.1"/><then><forbidden/></then></if>', "<page/>"))
    assert c.get("/").status == 403


def test_no_answer_falls_through_to_next_host(serve: Callable[..., Any]) -> None:
    c = serve(host('<if><ip value="10.0.0.0/8"/><then><page body="h1"/></then></if>',
                   '<page body="h2"/>'))
    assert c.get("/").text == "h2"


def test_nextsite_in_site_continues_after_it(serve: Callable[..., Any]) -> None:
    c = serve(host('<site path="s"><nextsite/><page body="in-site"/></site>'
                   '<page body="after-site"/>'))
    assert c.get("/s/x").text == "after-site"


def test_nextsite_at_host_level_goes_to_next_host(serve: Callable[..., Any]) -> None:
    c = serve(host('<nextsite/><page body="h1"/>', '<page body="h2"/>'))
    assert c.get("/").text == "h2"


def test_nexthost_from_nested_sites(serve: Callable[..., Any]) -> None:
    c = serve(host('<site path="a"><site path="b"><nexthost/></site><page body="a"/></site>'
                   '<page body="h1"/>', '<page body="h2"/>'))
    assert c.get("/a/b/x").text == "h2"
    assert c.get("/a/x").text == "a"
    assert c.get("/x").text == "h1"


def test_stop_on_not_found_is_final_404(serve: Callable[..., Any]) -> None:
    c = serve(host('<fail status="403"/><stop/><page/>', '<page body="h2"/>'))
    assert c.get("/").status == 404


def test_found_page_sent_now_skipping_filters(serve: Callable[..., Any]) -> None:
    assert serve(host('<page/><mark value="m"/>')).get("/").headers.get("x-mark") == "m"
    for action in ("stop", "nextsite", "nexthost"):
        r = serve(host(f'<page/><{action}/><mark value="m"/><forbidden/>')).get("/")
        assert (r.status, r.text, r.headers.get("x-mark")) == (200, "page", None), action


def test_found_in_site_then_nextsite_skips_host_filters(serve: Callable[..., Any]) -> None:
    c = serve(host('<site path="s"><page body="s"/><nextsite/></site><mark value="m"/>'))
    r = c.get("/s/x")
    assert (r.text, r.headers.get("x-mark")) == ("s", None)
    c = serve(host('<site path="s"><page body="s"/></site><mark value="m"/>'))
    assert c.get("/s/x").headers.get("x-mark") == "m"


def test_iffound(serve: Callable[..., Any]) -> None:
    c = serve(host('<page path="a"/><iffound><mark value="found"/></iffound>'
                   '<ifnotfound><page body="fallback"/></ifnotfound>'))
    r = c.get("/a")
    assert (r.text, r.headers.get("x-mark")) == ("page", "found")
    r = c.get("/b")
    assert (r.text, r.headers.get("x-mark")) == ("fallback", None)


def test_ifnotfound_code(serve: Callable[..., Any]) -> None:
    xml = '<fail status="{}"/><ifnotfound code="40."><page body="custom-4xx"/></ifnotfound>'
    c = serve(host(xml.format(403)))
    r = c.get("/")
    assert (r.status, r.text) == (200, "custom-4xx")
    c = serve(host(xml.format(500)))
    assert c.get("/").status == 500
    c = serve(host('<fail status="403"/><ifnotfound code="404"><page/></ifnotfound>'))
    assert c.get("/").status == 403
    c = serve(host('<page/><ifnotfound><forbidden/></ifnotfound>'))
    assert c.get("/").status == 200


def test_error_page_with_custom_status(serve: Callable[..., Any]) -> None:
    c = serve(host('<page path="a"/><ifnotfound code="404"><page status="404" body="nope"/>'
                   '</ifnotfound>'))
    r = c.get("/zz")
    assert (r.status, r.text) == (404, "nope")


def test_if_on_found_state_and_sites_in_branches(serve: Callable[..., Any]) -> None:
    c = serve(host('<page/><if><method value="POST"/><then><forbidden/></then></if>'))
    assert c.request("POST", "/").status == 403
    assert c.get("/").status == 200
    c = serve(host('<if><ssl/><then><page body="tls"/></then>'
                   '<else><site path="s"><page body="site-in-else"/></site></else></if>'
                   '<page body="host"/>'))
    assert c.get("/s/x").text == "site-in-else"
    assert c.get("/t").text == "host"


def test_stop_site_from_if_inside_site(serve: Callable[..., Any]) -> None:
    c = serve(host('<site path="priv"><if><not><header name="x-key" regexp="k"/></not>'
                   '<then><nextsite/></then></if><page body="secret"/></site>'
                   '<page body="public"/>'))
    assert c.get("/priv/x", {"x-key": "k"}).text == "secret"
    assert c.get("/priv/x").text == "public"


# -- X-Forwarded-For -----------------------------------------------------------------------------------
def test_allow_forward_for_single_address(serve: Callable[..., Any]) -> None:
    c = serve(host('<allow-forward-for/><if><ip value="1.2.3.4"/><then><page body="fwd"/></then>'
                   '</if><echo/>'))
    assert c.get("/", {"X-Forwarded-For": "1.2.3.4"}).text == "fwd"
    assert c.get("/").text.startswith("client=127.0.0.1 peer=127.0.0.1")
    r = c.get("/", {"X-Forwarded-For": "5.6.7.8"})
    assert r.text.startswith("client=5.6.7.8 peer=127.0.0.1")
    assert c.get("/", {"X-Forwarded-For": "garbage"}).text.startswith("client=127.0.0.1")


def test_allow_forward_for_one_hop_by_default(serve: Callable[..., Any]) -> None:
    c = serve(host("<allow-forward-for/><echo/>"))
    assert c.get("/", {"X-Forwarded-For": "6.6.6.6, 1.2.3.4"}).text.startswith("client=1.2.3.4 ")


def test_two_x_forwarded_for_lines_are_one_list(serve: Callable[..., Any]) -> None:
    """Two header lines, as sent on the wire, are read in order as one comma-separated list."""
    c = serve(host('<allow-forward-for proxies="127.0.0.1 10.0.0.0/8"/><echo/>'))
    out = c.raw(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 6.6.6.6, 1.2.3.4\r\n"
                b"X-Forwarded-For: 10.0.0.2\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 ")
    assert b"client=1.2.3.4 peer=127.0.0.1 secure=False fwd=10.0.0.2 " in out
    # the order of the lines matters: the last line is the nearest hop
    out = c.raw(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 10.0.0.2\r\n"
                b"X-Forwarded-For: 6.6.6.6, 1.2.3.4\r\nConnection: close\r\n\r\n")
    assert b"client=1.2.3.4 peer=127.0.0.1 secure=False fwd= " in out


def test_allow_forward_for_trusted_proxies_attribute(serve: Callable[..., Any]) -> None:
    c = serve(host('<allow-forward-for proxies="127.0.0.1 10.0.0.0/8"/><echo/>'))
    r = c.get("/", {"X-Forwarded-For": "6.6.6.6, 1.2.3.4, 10.0.0.2"})
    assert r.text.startswith("client=1.2.3.4 peer=127.0.0.1 secure=False fwd=10.0.0.2 ")
    c = serve(host('<allow-forward-for proxies="10.0.0.0/8"/><echo/>'))
    assert c.get("/", {"X-Forwarded-For": "1.2.3.4"}).text.startswith("client=127.0.0.1 ")


def test_trusted_proxy_extension_option(serve: Callable[..., Any]) -> None:
    pre = ('<extension findlib-package="ocsi-ext-accesscontrol">'
           '<trustedproxy value="10.0.0.0/8"/></extension><extension module="ocsi.testing.content"/>')
    c = serve(host('<allow-forward-for/><allow-forward-proto/><echo/>'), preamble=pre)
    r = c.get("/", {"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https"})
    assert r.text.startswith("client=127.0.0.1 peer=127.0.0.1 secure=False")  # peer not trusted
    pre = pre.replace("10.0.0.0/8", "127.0.0.0/8")
    c = serve(host('<allow-forward-for/><allow-forward-proto/><echo/>'), preamble=pre)
    r = c.get("/", {"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https"})
    assert r.text.startswith("client=1.2.3.4 peer=127.0.0.1 secure=True")


def test_allow_forward_for_check_equal_ip(serve: Callable[..., Any]) -> None:
    c = serve(host('<allow-forward-for check-equal-ip="true"/><echo/>'))
    assert c.get("/", {"X-Forwarded-For": "1.2.3.4, 127.0.0.1"}).text.startswith("client=1.2.3.4")
    assert c.get("/", {"X-Forwarded-For": "1.2.3.4"}).text.startswith("client=127.0.0.1")


def test_forwarded_client_is_scoped_to_its_site(serve: Callable[..., Any]) -> None:
    c = serve(host('<site path="s"><allow-forward-for/><if><ip value="1.2.3.4"/>'
                   '<then><page body="fwd-in-site"/></then></if></site><echo/>'))
    hdr = {"X-Forwarded-For": "1.2.3.4"}
    assert c.get("/s/x", hdr).text == "fwd-in-site"
    assert c.get("/t", hdr).text.startswith("client=127.0.0.1")


def test_forwarding_keeps_a_found_page(serve: Callable[..., Any]) -> None:
    c = serve(host('<page/><allow-forward-for/><allow-forward-proto/>'
                   '<if><and><ip value="1.2.3.4"/><ssl/></and><then><mark value="fwd"/></then></if>'))
    r = c.get("/", {"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https"})
    assert (r.status, r.text, r.headers.get("x-mark")) == (200, "page", "fwd")
