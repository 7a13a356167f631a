"""The extensions' reference in docs/configuration.md cannot drift from the code.

It is generated from the declarations beside the parsers (``ocsi.documents``); these tests
fail when the generated section is stale, when a built-in extension registers an element
without a declaration, or when a parser accepts an attribute (or a child element) the
declaration leaves out. The accepted attributes are read from the parsers themselves: each
element is given an unknown attribute in a real configuration, and the located error lists
the attributes its ``el.check(attributes=…)`` knows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from ocsi import ConfigError
from ocsi._config.elementdocs import ElementDoc
from ocsi.docs import builtin, generate, main
from ocsi._extensions.reference import ExtensionReference, collect, lines, markdown, splice
from ocsi.testing import build_pipeline

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "configuration.md"
PLUGINS = ROOT / "plugins"
REFS = builtin(collect(), PLUGINS)
PROBE = "ocsi-probe"

#: Values given to a parent's required attributes so that its parser reaches its children.
SAMPLES = {"compress": "only", "realm": "r"}
#: Children that only parse in a given place: ``{probe}`` is the child.
PLACES = {("if", "then"): "<ssl/>{probe}", ("if", "else"): "<ssl/><then/>{probe}"}


def test_configuration_md_is_up_to_date() -> None:
    assert generate(DOCS) == DOCS.read_text(encoding="utf-8"), (
        "docs/configuration.md's extensions reference is stale: run python -m ocsi.docs")


def test_the_command_rewrites_a_stale_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "plugins").symlink_to(PLUGINS)  # the same source tree, another docs file
    (tmp_path / "docs").mkdir()
    copy = tmp_path / "docs" / "configuration.md"
    copy.write_text(DOCS.read_text(encoding="utf-8").replace("| `<static>` |", "| `<statik>` |"))
    assert main(["--check", str(copy)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert main([str(copy)]) == 0
    assert copy.read_text(encoding="utf-8") == DOCS.read_text(encoding="utf-8")
    assert main(["--check", str(copy)]) == 0


def test_every_builtin_plugin_is_in_the_reference() -> None:
    plugins = {p.name for p in PLUGINS.iterdir() if (p / "pyproject.toml").exists()}
    listed = {r.package_dir.parent.name for r in REFS if r.package_dir is not None}
    assert listed == plugins
    for ref in REFS:
        assert ref.readme is not None and f"(../plugins/{ref.readme.parent.name}/README.md)" in \
            DOCS.read_text(encoding="utf-8")


@pytest.mark.parametrize("ref", REFS, ids=[r.short_name for r in REFS])
def test_every_registered_element_is_documented(ref: ExtensionReference) -> None:
    assert ref.error is None
    assert ref.undocumented == [], f"{ref.info.name}: add ocsi.documents(...) to these parsers"


@dataclass
class Case:
    extension: str
    chain: tuple[ElementDoc, ...]  # outermost first; the last one is probed
    option: bool  # the outermost is a child of <extension>

    @property
    def id(self) -> str:
        where = "extension>" if self.option else ""
        return self.extension.removeprefix("ocsi-ext-") + ":" + where + ">".join(d.tag for d in self.chain)

    def document(self, probe: str) -> str:
        """The configuration placing ``probe`` where the last element of the chain goes."""
        inner = probe
        for parent, child in zip(reversed(self.chain[:-1]), reversed(self.chain[1:])):
            required = "".join(f' {a.name}="{SAMPLES.get(a.name, "x")}"'
                               for a in parent.attributes if a.required)
            inner = PLACES.get((parent.tag, child.tag), "{probe}").format(probe=inner)
            inner = f"<{parent.tag}{required}>{inner}</{parent.tag}>"
        if self.option:
            return f'<extension findlib-package="{self.extension}">{inner}</extension>'
        return f'<extension findlib-package="{self.extension}"/><host>{inner}</host>'


def _chains(doc: ElementDoc) -> list[tuple[ElementDoc, ...]]:
    out = [(doc,)]
    for child in doc.children:
        out += [(doc, *rest) for rest in _chains(child)]
    return out


CASES = [Case(ref.info.name, chain, option)
         for ref in REFS
         for docs, option in (([d for _, d in ref.elements if d is not None], False), (ref.options, True))
         for top in docs for chain in _chains(top)]


def _rejection(xml: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        build_pipeline(xml)
    return info.value


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_documented_attributes_are_those_the_parser_accepts(case: Case) -> None:
    doc = case.chain[-1]
    error = _rejection(case.document(f'<{doc.tag} {PROBE}="1"/>'))
    assert error.message == f"unknown attribute '{PROBE}' in <{doc.tag}>", str(error)
    assert error.hint is not None and error.hint.startswith("known attributes here: ")
    known = error.hint.removeprefix("known attributes here: ")
    accepted = set() if known == "none" else set(known.split(", "))
    assert accepted == set(doc.attribute_names), (
        f"<{doc.tag}> of {case.extension}: the parser accepts {sorted(accepted)}, "
        f"the declaration documents {sorted(doc.attribute_names)}")


CONTAINERS = [c for c in CASES if c.chain[-1].children]


@pytest.mark.parametrize("case", CONTAINERS, ids=[c.id for c in CONTAINERS])
def test_documented_children_cover_those_the_parser_knows(case: Case) -> None:
    doc = case.chain[-1]
    required = "".join(f' {a.name}="{SAMPLES.get(a.name, "x")}"' for a in doc.attributes if a.required)
    error = _rejection(case.document(f"<{doc.tag}{required}><{PROBE}/></{doc.tag}>"))
    assert PROBE in error.message and error.hint, str(error)
    # "known here: a, b" or "known: <a>, <b>" (or "conditions: <ip>, …")
    known = set(re.findall(r"<([\w-]+)>", error.hint)) or set(
        error.hint.split(":", 1)[1].strip().split(", "))
    documented = {c.tag for c in doc.children}
    assert known <= documented, (
        f"<{doc.tag}> of {case.extension} knows {sorted(known - documented)} undocumented")


@pytest.mark.parametrize("ref", REFS, ids=[r.short_name for r in REFS])
def test_documented_options_cover_those_the_extension_knows(ref: ExtensionReference) -> None:
    error = _rejection(f'<extension findlib-package="{ref.info.name}"><{PROBE}/></extension>')
    assert PROBE in error.message or "does not accept options" in error.message, str(error)
    known = set(re.findall(r"<([\w-]+)[\s/>]", error.hint or "")) - {PROBE}
    documented = {d.tag for d in ref.options}
    assert known <= documented, f"{ref.info.name}'s options {sorted(known - documented)} are undocumented"
    if not documented:
        assert "does not accept options" in error.message


# -- the rendering itself --------------------------------------------------------------------------
def test_ocsi_extensions_lines_show_attributes_and_children() -> None:
    ref = next(r for r in REFS if r.short_name == "authbasic")
    text = "\n".join(lines(ref))
    assert "    elements: <authbasic>" in text
    assert "    <authbasic realm>  asks for a login" in text
    assert "      <plain login password>  one login" in text
    static = "\n".join(lines(next(r for r in REFS if r.short_name == "staticmod")))
    assert "<filecache ttl entries>  (in <extension>)" in static


def test_markdown_escapes_markup_and_pipes() -> None:
    ref = next(r for r in REFS if r.short_name == "cors")
    text = markdown([ref], lambda readme: readme.as_posix())
    assert "| `<cors>` | | |" in text
    assert "(`<cors>`)" in text  # the summary's element is code, not an HTML tag
    assert "| | `origins` | every origin |" in text
    assert "https://\\*.example.org" in text  # not emphasis


def test_splice_needs_both_markers() -> None:
    with pytest.raises(ValueError, match="markers"):
        splice("no markers here", "x")
