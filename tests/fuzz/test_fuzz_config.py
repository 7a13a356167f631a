"""Mutated configuration documents end in a located error or a configuration, nothing else.

Valid documents (core directives, hosts, nested sites, the extensions whose elements take
regular expressions, templates, sizes and durations) are mutated as trees: elements removed,
duplicated, moved, renamed, nested hundreds deep; attributes and text set to hostile values.
They are then written with a document type declaring entities (internal ones, an external
``SYSTEM`` entity and parameter entity pointing at a file holding a marker, an external DTD,
"billion laughs"), in one of several encodings (declared, undeclared, lying), and sometimes cut
short or with a byte changed. Whatever comes out, the loader must answer with a
:class:`ConfigError` located in the file (``file:line``) or with a configuration, within a
bound of time, and the marker must never show up: no external entity is ever read.

Elements that import or run code named in the document (``<asgi>``, ``<wsgi>``, ``<library>``,
``<findlib>``) are kept out of the mutations: what they do with a module name is their own
tests' business, and a fuzzer must not import arbitrary modules.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fuzz_settings import bounded, budget
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from ocsi._config.errors import ConfigError, XMLSyntaxError
from ocsi._extensions.loader import new_plugin_manager
from ocsi.runtime import build_configuration

MARKER = "XXE-MARKER-5f3a9c"
EXTENSIONS = ("staticmod", "rewritemod", "redirectmod", "revproxy", "cors", "accesscontrol",
              "authbasic", "deflatemod", "outputfilter", "extendconfiguration")
LOADS = "".join(f'<extension findlib-package="ocsi-ext-{e}"/>' for e in EXTENSIONS)

BASES = [
    f"""<ocsigen><server><port>8080</port><port>127.0.0.1:8081</port><charset>utf-8</charset>
<maxrequestbodysize>10KiB</maxrequestbodysize><timeout>7</timeout><maxretries>4</maxretries>
<logdir>{{tmp}}</logdir>{LOADS}
<host hostfilter="*.example.org" defaulthostname="example.org">
  <site path="a/b"><static dir="{{tmp}}/www" cache="60"/><listdirs value="true"/></site>
  <site path="r"><rewrite regexp="old/(.*)" url="new/\\1"/><redirect suburl="(.*)" dest="/x/\\1"/></site>
  <revproxy suburl="p/(.*)" dest="http://127.0.0.1:9/\\1"/>
  <cors max_age="600" methods="GET, POST"/>
  <deflate compress="only"><type>text/*</type></deflate>
</host></server></ocsigen>""",
    f"""<ocsigen><server><port>8080</port>{LOADS}
<host><site path="s">
  <if><ip value="10.0.0.0/8"/><then><forbidden/></then><else><authbasic realm="r"><plain login="u" password="p"/></authbasic></else></if>
  <outputfilter header="Location" regexp="http://a/(.*)" dest="https://a/\\1"/>
  <static regexp="(.*)\\.html" dest="{{tmp}}/www/\\1.htm"/>
  <redirect fullurl="http://([^/]*)/(.*)" dest="https://\\1/\\2" temporary="temporary"/>
  <hidefile><extension ext="php"/><regexp regexp="\\.(git|svn)"/></hidefile>
  <charset default="utf-8"><extension ext="txt" value="latin1"/></charset>
  <defaultindex><index>main.html</index></defaultindex><followsymlinks value="never"/>
</site><nexthost/></host></server></ocsigen>""",
    f"""<ocsigen><server><port>8080</port>{LOADS}
<host hostfilter="a.test:8080"><site path=""><revproxy regexp="(.*)" server="127.0.0.1" port="9" uri="/$1"/>
<rewrite regexp="(a+)+b" url="\\1" continue="continue"/><notfound/></site></host></server></ocsigen>""",
]

# Tag names a mutation may give an element: known ones (of the core and of the extensions
# above) and unknown ones.
TAGS = ["ocsigen", "server", "host", "site", "port", "static", "rewrite", "redirect", "revproxy", "cors",
        "if", "then", "else", "and", "or", "not", "ip", "forbidden", "notfound", "nextsite", "nexthost",
        "authbasic", "plain", "deflate", "type", "outputfilter", "extendconfiguration", "extension",
        "require", "charset", "hidefile", "forbidfile", "defaultindex", "index", "followsymlinks", "maxretries", "timeout", "maxrequestbodysize", "extconf", "listdirs",
        "sethttpcode", "stop", "header", "ssl", "logdir", "workers", "statc"]
ATTRIBUTES = ["path", "dir", "regexp", "suburl", "fullurl", "dest", "url", "hostfilter", "defaulthostname",
              "value", "max_age", "methods", "findlib-package", "module", "name", "continue", "cache",
              "compress", "realm", "login", "password", "header", "code", "uri", "server", "port",
              "temporary", "keephost", "readable", "charset", "x"]
VALUES = ["", " ", "0", "-1", "99999999999999999999", "1e400", "nan", "infinity", "10KiB", "1GB",
          "(", ")", "[", "*", "(.*)", "((a+)+)+b", "(?P<x>.)", "(?<=a)b", "\\1", "\\9", "$1", "\\g<0>",
          "http://", "http://[::1", "https://\\1/", "/..", "../../etc", "/tmp", "a b", "a\tb\nc",
          "é", "\u202e", "\U0001f600", "x" * 5000, "(.*)" * 50, "\\1" * 200, "&amp;", "&#0;",
          "ocsi-ext-nope", "ocsigenserver.ext.staticmod", "true", "false", "*", "*:*", "[::1]:80"]
SAFE_CHARS = st.characters(codec="utf-8", min_codepoint=0x20, exclude_characters="\ufffe\uffff")
VALUE = st.one_of(st.sampled_from(VALUES), st.text(SAFE_CHARS, max_size=40))


@dataclasses.dataclass
class Doctype:
    """A document type declaration, and the entity reference a document may then contain."""

    text: str
    reference: str | None


def doctypes(secret: Path, dtd: Path) -> list[Doctype]:
    laughs = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    return [
        Doctype("", None),
        Doctype('<!DOCTYPE ocsigen [<!ENTITY n "8080">]>', "&n;"),
        Doctype(f'<!DOCTYPE ocsigen [<!ENTITY xxe SYSTEM "file://{secret}">]>', "&xxe;"),
        Doctype(f'<!DOCTYPE ocsigen [<!ENTITY xxe SYSTEM "{secret}">]>', "&xxe;"),
        Doctype(f'<!DOCTYPE ocsigen [<!ENTITY % p SYSTEM "file://{dtd}"> %p;]>', "&fromdtd;"),
        Doctype(f'<!DOCTYPE ocsigen SYSTEM "file://{dtd}">', "&fromdtd;"),
        Doctype(f'<!DOCTYPE ocsigen [<!ENTITY l0 "lol">{laughs}]>', "&l9;"),
        Doctype(f'<!DOCTYPE ocsigen [<!ENTITY big "{"x" * 20000}">]>', "&big;" * 200),
        Doctype('<!DOCTYPE ocsigen [<!ENTITY a "&b;"><!ENTITY b "&a;">]>', "&a;"),
        Doctype("<!DOCTYPE ocsigen>", "&undefined;"),
    ]


ENCODINGS = ["utf-8", "utf-8 declared", "utf-8-sig", "utf-16 declared", "latin-1 declared",
             "utf-8 declared latin-1", "utf-8 declared utf-16", "utf-8 declared x-unknown"]


def encode(text: str, how: str) -> bytes:
    decl = '<?xml version="1.0" encoding="{}"?>\n'
    if how == "utf-8":
        return text.encode()
    if how == "utf-8-sig":
        return text.encode("utf-8-sig")
    if how == "utf-8 declared":
        return (decl.format("UTF-8") + text).encode()
    if how == "utf-16 declared":
        return (decl.format("UTF-16") + text).encode("utf-16")
    if how == "latin-1 declared":
        return (decl.format("ISO-8859-1") + text).encode("latin-1", errors="xmlcharrefreplace")
    declared = how.rsplit(" ", 1)[1]
    return (decl.format(declared) + text).encode()


@st.composite
def trees(draw: st.DrawFn, tmp: Path) -> str:
    """A base document mutated as a tree, serialised without declaration."""
    root = etree.fromstring(draw(st.sampled_from(BASES)).replace("{tmp}", str(tmp)))
    for _ in range(draw(st.integers(0, 6))):
        elements = list(root.iter())
        el = draw(st.sampled_from(elements))
        op = draw(st.sampled_from(["remove", "copy", "move", "rename", "set", "unset", "text", "deepen"]))
        parent = el.getparent()
        if op == "remove" and parent is not None:
            parent.remove(el)
        elif op == "copy" and parent is not None:
            parent.insert(parent.index(el), copy.deepcopy(el))
        elif op == "move" and parent is not None:
            target = draw(st.sampled_from(elements))
            if target is not el and el not in target.iterancestors():
                target.insert(draw(st.integers(0, len(target))), el)
        elif op == "rename":
            el.tag = draw(st.one_of(st.sampled_from(TAGS), st.from_regex(r"[a-z][a-z0-9_.-]{0,8}", fullmatch=True)))
        elif op == "set":
            el.set(draw(st.sampled_from(ATTRIBUTES)), draw(VALUE))
        elif op == "unset" and el.attrib:
            del el.attrib[draw(st.sampled_from(sorted(el.attrib)))]
        elif op == "text":
            el.text = draw(VALUE)
        elif op == "deepen" and parent is not None:
            wrapper = draw(st.sampled_from(["site", "if", "then", "host", "not"]))
            inner = el
            for _ in range(draw(st.sampled_from([2, 50, 250, 300]))):
                outer = etree.Element(wrapper, path="d") if wrapper == "site" else etree.Element(wrapper)
                outer.append(inner)
                inner = outer
            parent.append(inner)
    return etree.tostring(root, encoding="unicode")


@st.composite
def documents(draw: st.DrawFn, tmp: Path, choices: list[Doctype]) -> bytes:
    text = draw(trees(tmp))
    doctype = draw(st.sampled_from(choices)) if draw(st.booleans()) else choices[0]
    if doctype.reference:
        # in an element's text (where XML allows external entities), or in an attribute value
        in_text = [m.end() for m in re.finditer(r">(?=[^<])", text)] or [m.end() - 1 for m in re.finditer("><", text)]
        in_attr = [m.end() for m in re.finditer('="', text)]
        spots = in_text if draw(st.integers(0, 3)) or not in_attr else in_attr
        if spots:
            at = draw(st.sampled_from(spots))
            text = text[:at] + doctype.reference + text[at:]
    how = draw(st.sampled_from(ENCODINGS)) if draw(st.booleans()) else "utf-8"
    data = encode(doctype.text + text, how)
    cut = draw(st.sampled_from(["none"] * 6 + ["truncate", "byte"]))
    if cut == "truncate":
        data = data[:draw(st.integers(0, len(data)))]
    elif cut == "byte" and data:
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1:]
    return data


def strings_of(obj: object, seen: set[int] | None = None, depth: int = 0) -> Iterator[str]:
    """Every string reachable from ``obj`` through attributes and containers (bounded)."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth > 12:
        return
    seen.add(id(obj))
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, bytes):
        yield obj.decode("latin-1")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from strings_of(k, seen, depth + 1)
            yield from strings_of(v, seen, depth + 1)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for v in obj:
            yield from strings_of(v, seen, depth + 1)
    elif not isinstance(obj, type) and type(obj).__module__.startswith("ocsi"):
        names = set(getattr(obj, "__dict__", {}))
        for klass in type(obj).__mro__:
            slots = getattr(klass, "__slots__", ())
            names |= {slots} if isinstance(slots, str) else set(slots)
        for name in sorted(names):
            yield from strings_of(getattr(obj, name, None), seen, depth + 1)
    elif hasattr(obj, "pattern") and isinstance(getattr(obj, "pattern", None), str):
        yield obj.pattern


LOCATED = re.compile(r".+:\d+(:\d+)?$")


def test_mutated_documents_end_in_a_located_error_or_a_configuration(tmp_path: Path) -> None:
    (tmp_path / "www").mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text(MARKER)
    dtd = tmp_path / "secret.dtd"
    dtd.write_text(f'<!ENTITY fromdtd "{MARKER}">')
    conf = tmp_path / "ocsi.conf"
    outcomes: dict[str, int] = {}

    @budget(150)
    @given(documents(tmp_path, doctypes(secret, dtd)))
    def load(data: bytes) -> None:
        conf.write_bytes(data)
        try:
            with bounded(20):
                configuration = build_configuration(new_plugin_manager(), str(conf))
        except ConfigError as exc:
            assert exc.where and LOCATED.match(exc.where), (exc.where, str(exc))
            assert MARKER not in str(exc)
            outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
            return
        assert not any(MARKER in s for s in strings_of(configuration))
        outcomes["configuration"] = outcomes.get("configuration", 0) + 1

    load()
    # Both ends are reached: the mutations are not all refused, nor all harmless.
    assert outcomes.get("configuration", 0) >= 10 and outcomes.get("ConfigError", 0) >= 10, outcomes


def test_no_external_entity_is_read_where_it_would_show(tmp_path: Path) -> None:
    """The sharpest form of the XXE check: entity references where a value is kept as
    written (a log directory, the command pipe), loaded to the end. (XML allows no external
    entity in an attribute value: only text can carry one.)"""
    secret = tmp_path / "secret.txt"
    secret.write_text(MARKER)
    conf = tmp_path / "ocsi.conf"
    conf.write_text(f"""<!DOCTYPE ocsigen [<!ENTITY xxe SYSTEM "file://{secret}">]>
<ocsigen><server><port>8080</port><logdir>{tmp_path}/&xxe;</logdir>
<commandpipe>{tmp_path}/&xxe;.cmd</commandpipe><charset>&xxe;</charset><host/></server></ocsigen>""")
    try:
        configuration = build_configuration(new_plugin_manager(), str(conf))
    except ConfigError as exc:
        assert MARKER not in str(exc)
    else:
        assert not any(MARKER in s for s in strings_of(configuration))
        assert configuration.settings.logdir is not None


def test_a_document_cut_inside_an_entity_value_says_what_is_wrong(tmp_path: Path) -> None:
    """Found by the mutations: located, but the message says nothing."""
    conf = tmp_path / "ocsi.conf"
    conf.write_bytes(b'<?xml version="1.0"?>\n<!DOCTYPE ocsigen [<!ENTITY n "80')
    with pytest.raises(XMLSyntaxError) as exc:
        build_configuration(new_plugin_manager(), str(conf))
    assert exc.value.where and exc.value.where.endswith("ocsi.conf:2:33")
    assert "(null)" not in str(exc.value), str(exc.value)
