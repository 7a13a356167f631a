"""The reference of the installed extensions' elements, for ``ocsi extensions`` and the docs.

Both read the same declarations: the tags an extension registers (``ocsi_elements``) and the
:class:`~ocsi._config.elementdocs.ElementDoc` attached to each parser and to its
``ocsi_extension_options`` hook. :func:`lines` is the terminal form, :func:`markdown` the
section of docs/configuration.md, written between :data:`BEGIN` and :data:`END` by
:func:`splice` (``python -m ocsi.docs``).

Private: not part of the extension API.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._config.elementdocs import AttributeDoc, ElementDoc, documented
from .loader import Catalog, ExtensionInfo

BEGIN = "<!-- BEGIN extensions reference: written by `python -m ocsi.docs`; edit the declarations in the plugins -->"
END = "<!-- END extensions reference -->"


@dataclass(slots=True)
class ExtensionReference:
    """One installed extension as the reference shows it."""

    info: ExtensionInfo
    #: Each registered tag with its description (``None``: the parser declares none).
    elements: list[tuple[str, ElementDoc | None]] = field(default_factory=list)
    #: The children its ``<extension>`` element takes.
    options: tuple[ElementDoc, ...] = ()
    #: The directory of the extension's package (its README.md is beside it).
    package_dir: Path | None = None
    #: Why the extension could not be read (it is listed anyway).
    error: str | None = None

    @property
    def short_name(self) -> str:
        return self.info.name.removeprefix("ocsi-ext-")

    @property
    def readme(self) -> Path | None:
        if self.package_dir is None:
            return None
        path = self.package_dir.parent / "README.md"
        return path if path.is_file() else None

    @property
    def undocumented(self) -> list[str]:
        return [tag for tag, doc in self.elements if doc is None]


def _doc_for(tag: str, parser: Any) -> ElementDoc | None:
    return next((d for d in documented(parser) if d.tag == tag), None)


def read(info: ExtensionInfo) -> ExtensionReference:
    """Load the extension's module (not registering it) and read its declarations."""
    ref = ExtensionReference(info)
    try:
        plugin = info.entry_point.load()
        fn = getattr(plugin, "ocsi_elements", None)
        parsers = dict(fn() or {}) if fn is not None else {}
        ref.elements = [(tag, _doc_for(tag, parsers[tag])) for tag in sorted(parsers)]
        ref.options = documented(getattr(plugin, "ocsi_extension_options", None))
        where = getattr(plugin, "__file__", None)
        if where:
            ref.package_dir = Path(where).resolve().parent
    except Exception as exc:  # noqa: BLE001 - a broken extension is listed, not fatal
        ref.error = f"cannot load: {type(exc).__name__}: {exc}"
    return ref


def collect(catalog: Catalog | None = None) -> list[ExtensionReference]:
    """Every installed extension, by name."""
    return [read(info) for info in (catalog or Catalog()).extensions()]


# -- terminal --------------------------------------------------------------------------------------
def _signature(doc: ElementDoc) -> str:
    names = "".join(f" {a.name}" for a in doc.attributes)
    return f"<{doc.tag}{names}>"


def lines(ref: ExtensionReference) -> list[str]:
    """What ``ocsi extensions`` prints for one extension."""
    info = ref.info
    out = [f"{info.name} {info.version}"]
    if info.summary:
        out.append(f"    {info.summary}")
    if ref.error is not None:
        out.append(f"    elements: ({ref.error})")
    else:
        out.append("    elements: " + (", ".join(f"<{t}>" for t, _ in ref.elements) or "-"))
    out.append(f"    depends on: {', '.join(info.dependencies) or '-'}")
    for tag, doc in ref.elements:
        if doc is None:
            out.append(f"    <{tag}>  (undocumented)")
            continue
        for parents, d in doc.walk():
            indent = "    " + "  " * len(parents)
            out.append(f"{indent}{_signature(d)}  {d.summary}")
    for doc in ref.options:
        for parents, d in doc.walk(("extension",)):
            indent = "    " + "  " * (len(parents) - 1)
            out.append(f"{indent}{_signature(d)}  (in <extension>) {d.summary}")
    return out


# -- markdown --------------------------------------------------------------------------------------
#: ``<tag …>`` written in a description: shown as code, or a Markdown renderer would drop it.
_MARKUP = re.compile(r"</?[a-zA-Z][^<>`]*>")


def _cell(text: str) -> str:
    """A table cell: markup-like parts as code, ``*`` (emphasis) and ``|`` escaped, on one line."""
    parts = text.split("`")
    parts[::2] = [_MARKUP.sub(lambda m: f"`{m.group(0)}`", p.replace("*", "\\*")) for p in parts[::2]]
    return "`".join(parts).replace("|", "\\|").replace("\n", " ")


def _default(a: AttributeDoc) -> str:
    if a.required:
        return "required"
    return _cell(a.default) if a.default is not None else "—"


def _rows(doc: ElementDoc, parents: tuple[str, ...], where: str | None = None) -> list[str]:
    rows = []
    for above, d in doc.walk(parents):
        inside = where if not above else " in " + " › ".join(f"`<{t}>`" for t in above)
        head = f"`<{d.tag}>`" + (inside or "")
        rows.append(f"| {head} | | | {_cell(d.summary)} |")
        rows += [f"| | `{a.name}` | {_default(a)} | {_cell(a.meaning)} |" for a in d.attributes]
        if d.text is not None:
            rows.append(f"| | *text* | | {_cell(d.text)} |")
    return rows


def markdown(refs: list[ExtensionReference], link: Callable[[Path], str]) -> str:
    """The reference section: one table per extension; ``link(readme)`` is the URL of a README."""
    out: list[str] = []
    for ref in refs:
        out += [f"### {ref.short_name}", ""]
        intro = f"`{ref.info.name}`"
        summary = ref.info.summary.removeprefix("ocsi extension: ").rstrip(".")
        if summary:
            intro += f": {_cell(summary)}."
        readme = ref.readme
        if readme is not None:
            intro += f" Details in [its README]({link(readme)})."
        out += [intro, ""]
        rows: list[str] = []
        for tag, doc in ref.elements:
            if doc is None:
                rows.append(f"| `<{tag}>` | | | (undocumented) |")
            else:
                rows += _rows(doc, ())
        for doc in ref.options:
            rows += _rows(doc, (), " in `<extension>`")
        if rows:
            out += ["| element | attribute | default | meaning |", "|---|---|---|---|", *rows, ""]
        else:
            out += ["No configuration element.", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def splice(document: str, section: str) -> str:
    """``document`` with the text between :data:`BEGIN` and :data:`END` replaced by ``section``."""
    start = document.find(BEGIN)
    end = document.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the markers are missing: add the lines {BEGIN!r} and {END!r}")
    return document[:start + len(BEGIN)] + "\n" + section + document[end:]
