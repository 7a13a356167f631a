"""extendconfiguration: parsing, scoping, and the configuration the following steps see."""

from __future__ import annotations

import asyncio

import ocsi
import ocsi_ext_extendconfiguration as ext
import pytest
from ocsi import DO_NOTHING, ContinueWith, Found, NotFound, Response, Serve, SiteConfig
from ocsi import ConfigError
from ocsi.testing import make_request, parse_context, parse_element
from ocsi_ext_extendconfiguration.parse import PARSERS


def parse(xml: str, userconf: str | None = None) -> ext.Extend:
    el = parse_element(xml)
    return PARSERS[el.tag](el, parse_context(userconf=userconf))


def cfg(step: ext.Extend, base: SiteConfig | None = None) -> SiteConfig:
    return step.apply(base or SiteConfig())


# -- each element ----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["never", "ownermatch", "always"])
def test_followsymlinks(value):
    assert cfg(parse(f'<followsymlinks value="{value}"/>')).follow_symlinks == value


def test_followsymlinks_always_refused_in_userconf():
    with pytest.raises(ConfigError, match="not allowed in a user configuration"):
        parse('<followsymlinks value="always"/>', userconf="/home/u/public_html")
    assert cfg(parse('<followsymlinks value="never"/>', userconf="/h")).follow_symlinks == "never"


def test_listdirs():
    assert cfg(parse('<listdirs value="true"/>')).listdirs is True
    assert cfg(parse('<listdirs value="false"/>'), SiteConfig(listdirs=True)).listdirs is False


def test_defaultindex():
    c = cfg(parse("<defaultindex><index>main.html</index><index> index.html </index></defaultindex>"))
    assert c.index == ("main.html", "index.html")
    assert cfg(parse("<defaultindex/>")).index == ()


def test_hidefile_and_forbidfile_accumulate():
    h = parse('<hidefile><extension ext="php"/><file file=".htaccess"/><regexp regexp=".*/tmp/.*"/></hidefile>')
    c = cfg(h)
    assert c.is_hidden("/srv/www/x.php")
    assert not c.is_hidden("/srv/www/x.PHP")          # literal, case-sensitive
    assert not c.is_hidden("/srv/www/x.phps")
    assert c.is_hidden("/srv/www/.htaccess")
    assert not c.is_hidden("/srv/www/a.htaccess")
    assert c.is_hidden("/srv/tmp/a")
    assert not c.is_hidden("/srv/tmpx")
    c2 = cfg(parse('<hidefile><extension ext="bak"/></hidefile>'), c)
    assert c2.is_hidden("/a.bak") and c2.is_hidden("/a.php")
    f = cfg(parse('<forbidfile><file file="secret"/></forbidfile>'))
    assert f.is_forbidden("/x/secret") and not f.is_hidden("/x/secret")


def test_charset_rules():
    c = cfg(parse('<charset default="iso-8859-1"><extension ext="TXT" value="latin1"/>'
                  '<file file="README" value="ascii"/><regexp regexp="/srv/jp/" value="shift_jis"/>'
                  '</charset>'))
    assert c.content_type_header("/srv/a.txt") == "text/plain; charset=latin1"
    assert c.content_type_header("/srv/b.TxT") == "text/plain; charset=latin1"
    assert c.content_type_header("/srv/a.html") == "text/html; charset=iso-8859-1"
    assert c.charset_for("/x/README") == "ascii"
    assert c.charset_for("/srv/jp/a.html") == "shift_jis"  # prefix match on the full path
    assert c.content_type_header("/srv/a.png") == "image/png"


def test_rules_most_recent_first():
    c = cfg(parse('<contenttype><extension ext="txt" value="text/a"/>'
                  '<extension ext="txt" value="text/b"/></contenttype>'))
    assert c.content_type("/x.txt") == "text/b"
    c = cfg(parse('<contenttype><extension ext="txt" value="text/c"/></contenttype>'), c)
    assert c.content_type("/x.txt") == "text/c"


def test_contenttype():
    c = cfg(parse('<contenttype default="text/x-default"><extension ext="txt" value="text/x-t"/>'
                  '<file file="Makefile" value="text/x-make"/></contenttype>'))
    assert c.content_type("/a.txt") == "text/x-t"
    assert c.content_type("/src/Makefile") == "text/x-make"
    assert c.content_type("/a.unknown") == "text/x-default"
    assert c.content_type("/a.png") == "image/png"


def test_uploaddir_and_maxuploadfilesize():
    assert cfg(parse("<uploaddir>/tmp/up</uploaddir>")).uploaddir == "/tmp/up"
    assert cfg(parse("<uploaddir></uploaddir>"), SiteConfig(uploaddir="/x")).uploaddir is None
    assert cfg(parse("<uploaddir/>"), SiteConfig(uploaddir="/x")).uploaddir is None
    assert cfg(parse("<maxuploadfilesize>2MB</maxuploadfilesize>")).maxuploadfilesize == 2_000_000
    assert cfg(parse("<maxuploadfilesize>2M</maxuploadfilesize>")).maxuploadfilesize == 2 * 1024 * 1024
    assert cfg(parse("<maxuploadfilesize>infinity</maxuploadfilesize>")).maxuploadfilesize is None


@pytest.mark.parametrize("xml, message", [
    ('<followsymlinks value="sometimes"/>', "wrong value for attribute value of <followsymlinks>"),
    ("<followsymlinks/>", "missing attribute 'value'"),
    ('<listdirs value="True"/>', "wrong value for attribute value of <listdirs>"),
    ('<listdirs value="yes"/>', "wrong value"),
    ('<listdirs value="true" x="1"/>', "unknown attribute 'x'"),
    ("<defaultindex><file>x</file></defaultindex>", "unknown element <file>"),
    ("<defaultindex><index></index></defaultindex>", "<index> needs a file name"),
    ('<hidefile><extension name="php"/></hidefile>', "unknown attribute 'name'"),
    ('<hidefile><regexp regexp="(a"/></hidefile>', "bad regular expression '(a'"),
    ("<hidefile><extension/></hidefile>", "missing attribute 'ext'"),
    ('<charset><extension ext="txt"/></charset>', "missing attribute 'value'"),
    ('<contenttype other="1"/>', "unknown attribute 'other'"),
    ("<maxuploadfilesize>2KB2</maxuploadfilesize>", "not a valid size"),
    ("<uploaddir><x/></uploaddir>", "unknown element <x>"),
])
def test_errors(xml, message):
    with pytest.raises(ConfigError) as info:
        parse(xml)
    assert message in str(info.value)


# -- the step --------------------------------------------------------------------------------------
def test_step_answers():
    step = ext.listdirs(True)
    req = make_request("GET", "/x")
    req.config = SiteConfig()
    ans = asyncio.run(step.handle(req, NotFound(403)))
    assert isinstance(ans, ContinueWith) and ans.status is None
    assert ans.request.config.listdirs is True and req.config.listdirs is False
    assert asyncio.run(step.handle(req, Found(Response(200)))) is DO_NOTHING


def test_step_memo_reuses_configs():
    step = ext.hidefile(extensions=["php"])
    base = SiteConfig()
    first = step.apply(base)
    assert step.apply(base) is first
    assert step.apply(SiteConfig()) is not first  # another object: computed again
    for _ in range(200):
        step.apply(SiteConfig())
    assert len(step._memo) <= 64


def test_python_constructors():
    c = SiteConfig()
    c = ext.followsymlinks("never").apply(c)
    c = ext.defaultindex(["a.html"]).apply(c)
    c = ext.forbidfile(files=[".env"]).apply(c)
    c = ext.charset(extensions={"txt": "latin1"}).apply(c)
    c = ext.contenttype(default="text/plain", extensions={"x": "text/x"}).apply(c)
    c = ext.uploaddir("/up").apply(c)
    c = ext.maxuploadfilesize(10).apply(c)
    c = ext.extend(listdirs=True).apply(c)
    assert (c.follow_symlinks, c.index, c.uploaddir, c.maxuploadfilesize, c.listdirs) == \
        ("never", ("a.html",), "/up", 10, True)
    assert c.is_forbidden("/a/.env") and c.content_type_header("/a.txt") == "text/plain; charset=latin1"
    assert c.content_type("/a.x") == "text/x" and c.content_type("/a.qq") == "text/plain"
    with pytest.raises(ValueError):
        ext.followsymlinks("sometimes")
    with pytest.raises(ValueError):
        ext.extend(nonsense=1)


# -- scoping through a runtime -----------------------------------------------------------------------
class Probe(ocsi.Step):
    """Serves the listdirs flag and index it sees (in the body)."""

    async def handle(self, request, state):
        if isinstance(state, Found):
            return DO_NOTHING
        c = request.config
        return Serve(Response(200, [("x-state", str(state.status))],
                              f"{c.listdirs} {','.join(c.index)} {c.follow_symlinks}".encode()))


@ocsi.hookimpl
def ocsi_elements():
    def probe(el, ctx):
        return Probe()

    def notfound(el, ctx):
        async def fn(request, state):
            return DO_NOTHING if isinstance(state, Found) else ocsi.Next(int(el.require("code")))
        return ocsi.FunctionStep(fn)

    return {"probe": probe, "status": notfound}


@pytest.fixture
def runtime(ocsi_memory):
    def start(inner: str):
        return ocsi_memory('<extension findlib-package="ocsi-ext-extendconfiguration"/>'
                           f'<library module="{__name__}"/>{inner}')
    return start


def get(srv, target: str) -> tuple[int, bytes, str | None]:
    r = srv.get(target)
    return r.status, r.body, r.headers.get("x-state")


def test_scoping(runtime):
    rt = runtime('<host><site path="a"><listdirs value="true"/><site path="b"><probe/></site>'
                 '<status code="404"/></site><site path="c"><probe/></site>'
                 '<defaultindex><index>x.html</index></defaultindex><probe/></host>')
    assert get(rt, "/a/b/")[1] == b"True index.html ownermatch"
    assert get(rt, "/c/")[1] == b"False index.html ownermatch"
    assert get(rt, "/a/")[1] == b"False x.html ownermatch"  # the site's change ended with it


def test_status_is_kept(runtime):
    rt = runtime('<host><status code="403"/><followsymlinks value="never"/><probe/></host>')
    assert get(rt, "/")[2] == "403"
    assert get(rt, "/")[1] == b"False index.html never"
