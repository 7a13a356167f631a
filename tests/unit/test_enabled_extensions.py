"""EnabledExtensions: hooks reach exactly the extensions a configuration names; dependencies
are read with packaging (markers, extras); a distribution declares one entry point."""

from __future__ import annotations

import sys

import pytest

from ocsi._config.errors import ConfigError, ExtensionLoadError
from ocsi._extensions.enabled import EnabledExtensions, single
from ocsi._extensions.loader import Catalog, new_plugin_manager
from ocsi.runtime import build_configuration
from ocsi.testing import write_extension

RECORDER = '''
import ocsi
from ocsi import DO_NOTHING, Found, Response, Serve

CALLS = []


class Page(ocsi.Step):
    async def handle(self, request, state):
        if isinstance(state, Found):
            return DO_NOTHING
        return Serve(Response(200, [("content-type", "text/plain")], b"{name}"))


@ocsi.hookimpl
def ocsi_elements():
    CALLS.append("elements")
    return {{"{tag}": lambda el, ctx: Page()}}


@ocsi.hookimpl
def ocsi_scope_parsed(ctx):
    CALLS.append("scope_parsed")


@ocsi.hookimpl
def ocsi_server_started(server):
    CALLS.append("started")


@ocsi.hookimpl
def ocsi_reloaded(server, ok, error):
    CALLS.append(f"reloaded:{{ok}}")


@ocsi.hookimpl
def ocsi_server_stopping(server):
    CALLS.append("stopping")


@ocsi.hookimpl
def ocsi_clear_caches():
    CALLS.append("clear_caches")


@ocsi.hookimpl
def ocsi_commands():
    return {{"ping": lambda args: CALLS.append("ping")}}


@ocsi.hookimpl
def ocsi_request_finished(request, status, sent, duration):
    CALLS.append("finished")


@ocsi.hookimpl
def ocsi_exception_response(exc, request):
    CALLS.append("exception")
    return None
'''


def _recorders(tmp_path):
    d = tmp_path / "exts"
    write_extension(d, "ocsi-ext-recorda", RECORDER.format(name="a", tag="pagea"))
    write_extension(d, "ocsi-ext-recordb", RECORDER.format(name="b", tag="pageb"))
    return str(d)


def _calls(name):
    return sys.modules[f"ocsi_ext_{name}"].CALLS


def test_hooks_of_an_extension_a_reload_dropped_never_run_again(ocsi_server, tmp_path):
    exts = _recorders(tmp_path)
    both = (f'<findlib path="{exts}"/><extension findlib-package="ocsi-ext-recorda"/>'
            '<extension findlib-package="ocsi-ext-recordb"/>'
            '<host><site path="a"><pagea/></site><site path="b"><pageb/></site></host>')
    only_b = (f'<findlib path="{exts}"/><extension findlib-package="ocsi-ext-recordb"/>'
              '<host><site path="b"><pageb/></site></host>')
    srv = ocsi_server(both)
    assert srv.get("/a/").body == b"a" and srv.get("/b/").body == b"b"
    srv.command("recorda:ping")
    a, b = _calls("recorda"), _calls("recordb")
    assert {"elements", "scope_parsed", "started", "finished", "ping"} <= set(a)
    srv.reload(only_b)
    assert srv.server.reloads == 1
    a_before = list(a)
    b_before = len(b)
    # every kind of hook call, after the reload
    assert srv.get("/b/").body == b"b"
    assert srv.get("/a/").status == 404
    srv.command("clearcache")
    srv.command("recorda:ping")
    srv.command("recordb:ping")
    srv.reload(only_b + "<broken>")  # a failed reload: ocsi_reloaded(ok=False)
    srv.reload(only_b)
    srv.stop()
    assert a == a_before, f"hooks of a dropped extension ran: {a[len(a_before):]}"
    later = b[b_before:]
    assert {"finished", "clear_caches", "ping", "reloaded:False", "reloaded:True",
            "stopping"} <= set(later)


def test_a_failed_build_does_not_leak_its_extensions_into_the_running_one(tmp_path):
    exts = _recorders(tmp_path)
    pm = new_plugin_manager()
    doc_a = (f'<ocsigen><server><findlib path="{exts}"/>'
             '<extension findlib-package="ocsi-ext-recorda"/></server></ocsigen>')
    doc_b = (f'<ocsigen><server><findlib path="{exts}"/>'
             '<extension findlib-package="ocsi-ext-recordb"/><nosuch/></server></ocsigen>')
    running = build_configuration(pm, "a.conf", doc_a.encode())
    with pytest.raises(ConfigError):
        build_configuration(pm, "b.conf", doc_b.encode())  # registered recordb, then failed
    assert pm.get_plugin("ocsi-ext-recordb") is not None
    b_before = len(_calls("recordb"))
    running.extensions.hook.ocsi_clear_caches()
    assert len(_calls("recordb")) == b_before
    assert running.extensions.names == ["ocsi-ext-recorda"]
    assert "clear_caches" in _calls("recorda")


def test_functions_and_addressed_callers_follow_the_enabled_set(tmp_path):
    exts = _recorders(tmp_path)
    pm = new_plugin_manager()
    doc = (f'<ocsigen><server><findlib path="{exts}"/>'
           '<extension findlib-package="ocsi-ext-recorda"/>'
           '<extension findlib-package="ocsi-ext-recordb"/></server></ocsigen>')
    build_configuration(pm, "ab.conf", doc.encode())
    only_a = EnabledExtensions(pm, ["ocsi-ext-recorda"])
    fns = only_a.functions("ocsi_request_finished")
    assert [f.__module__ for f in fns] == ["ocsi_ext_recorda"]
    assert only_a.addressed("ocsi_commands", "ocsi-ext-recordb") is None
    to_a = only_a.addressed("ocsi_commands", "ocsi-ext-recorda")
    assert to_a is not None and [i.plugin_name for i in to_a.get_hookimpls()] == ["ocsi-ext-recorda"]
    assert single(to_a()) is not None  # pluggy's caller, reaching recorda alone
    assert set(only_a.element_parsers()) == {"pagea"}
    assert "ocsi-ext-recorda" in only_a and "ocsi-ext-recordb" not in only_a


# -- dependencies read with packaging ------------------------------------------------------------
def _dist(d, name, requires=(), **kw):
    write_extension(d, name, "", requires=requires, **kw)


def test_markers_and_extras_decide_which_requirements_are_dependencies(tmp_path):
    d = tmp_path / "deps"
    _dist(d, "ocsi-ext-top", requires=[
        "ocsi-ext-always>=1.0",
        'ocsi-ext-onlyextra; extra == "full"',
        'ocsi-ext-oldpython; python_version < "3"',
        "ocsi-ext-withextra[more] (>=1.0)",
        "ocsi",  # the core is not an extension
        "pluggy>=1",  # nor is an ordinary library
    ])
    _dist(d, "ocsi-ext-always")
    _dist(d, "ocsi-ext-withextra", requires=['ocsi-ext-viaextra; extra == "more"',
                                            'ocsi-ext-notasked; extra == "other"'])
    _dist(d, "ocsi-ext-viaextra")
    order = [i.name for i in Catalog([str(d)]).load_order("ocsi-ext-top")]
    assert order == ["ocsi-ext-always", "ocsi-ext-viaextra", "ocsi-ext-withextra", "ocsi-ext-top"]


def test_a_missing_dependency_is_named_even_behind_an_extra_asked_for(tmp_path):
    d = tmp_path / "deps"
    _dist(d, "ocsi-ext-top", requires=["ocsi-ext-mid[x]"])
    _dist(d, "ocsi-ext-mid", requires=['ocsi-ext-gone; extra == "x"'])
    with pytest.raises(ConfigError) as e:
        Catalog([str(d)]).load_order("ocsi-ext-top")
    assert "'ocsi-ext-gone' (required by ocsi-ext-mid) is not installed" in str(e.value)


def test_two_entry_points_in_the_group_are_an_error(tmp_path):
    d = tmp_path / "two"
    _dist(d, "ocsi-ext-twice", entry_points={"one": "ocsi_ext_twice", "two": "ocsi_ext_twice"})
    with pytest.raises(ExtensionLoadError) as e:
        Catalog([str(d)]).load_order("ocsi-ext-twice")
    assert "has 2 entry points in the group 'ocsi.extensions' (one, two)" in str(e.value)
    doc = (f'<ocsigen><server>\n<findlib path="{d}"/>\n'
           '<extension findlib-package="ocsi-ext-twice"/></server></ocsigen>')
    with pytest.raises(ConfigError) as e:
        build_configuration(new_plugin_manager(), "two.conf", doc.encode())
    assert e.value.where == "two.conf:3"


def test_a_misspelt_name_suggests_the_installed_extension_not_the_typo(tmp_path):
    d = tmp_path / "typo"
    _dist(d, "ocsi-ext-hello")
    with pytest.raises(ConfigError) as e:
        Catalog([str(d)]).load_order("ocsi-ext-helo")
    assert e.value.hint == "did you mean ocsi-ext-hello? (installed)"
    with pytest.raises(ConfigError) as e:
        Catalog([str(d)]).load_order("ocsi-ext-something-else")
    assert e.value.hint is not None and e.value.hint.startswith("pip install ocsi-ext-something-else")


STATEFUL = '''
import ocsi

SEEN = []


@ocsi.hookimpl
def ocsi_extension_options(options, ctx):
    colour = options[0].get("colour") if options else "none"
    ctx.state("ocsi-ext-stateful")["colour"] = colour


@ocsi.hookimpl
def ocsi_elements():
    def parse(el, ctx):
        # the same dictionary while the configuration is built
        colour = ctx.state("ocsi-ext-stateful")["colour"]
        async def step(request, state):
            return ocsi.Serve(ocsi.Response(200, [], colour.encode()))
        return ocsi.FunctionStep(step)
    return {"colour": parse}


@ocsi.hookimpl
def ocsi_server_started(server):
    assert isinstance(server, ocsi.ServerView)
    SEEN.append(("started", server.state("ocsi-ext-stateful")["colour"], server.worker,
                 server.datadir, bool(server.ports), server.reloads))


@ocsi.hookimpl
def ocsi_reloaded(server, ok, error):
    SEEN.append(("reloaded", ok, server.state("ocsi-ext-stateful")["colour"], server.reloads))
'''


def test_lifecycle_hooks_get_a_server_view_and_per_configuration_state(ocsi_server, tmp_path):
    d = tmp_path / "exts"
    write_extension(d, "ocsi-ext-stateful", STATEFUL)

    def doc(colour: str) -> str:
        return (f'<findlib path="{d}"/><datadir>{tmp_path}</datadir>'
                f'<extension findlib-package="ocsi-ext-stateful"><o colour="{colour}"/></extension>'
                '<host><colour/></host>')

    srv = ocsi_server(doc("red"))
    import sys
    seen = sys.modules["ocsi_ext_stateful"].SEEN
    assert seen == [("started", "red", None, str(tmp_path), True, 0)]
    assert srv.get("/").body == b"red"
    srv.reload(doc("blue"))
    assert srv.get("/").body == b"blue"
    assert seen[-1] == ("reloaded", True, "blue", 1)  # the new configuration's state
    srv.reload(doc("green").replace("<colour/>", "<nonsense/>"))  # refused: blue stays
    assert seen[-1] == ("reloaded", False, "blue", 1)
    assert srv.get("/").body == b"blue"
