"""``python -m ocsi.docs [--check] [FILE]``: write the extensions' reference into the docs.

FILE (default ``docs/configuration.md``) holds the markers of
:mod:`ocsi._extensions.reference`; what lies between them is replaced by the tables of the
extensions of this source tree (those installed from ``plugins/`` beside FILE's directory),
read from the declarations beside their parsers. ``--check`` writes nothing and exits 1 when
the file is not up to date (the test suite runs it).

Private: not part of the extension API.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ._extensions.reference import ExtensionReference, collect, markdown, splice


def builtin(refs: list[ExtensionReference], plugins_dir: Path) -> list[ExtensionReference]:
    """The extensions whose package lives under ``plugins_dir`` (editable installs)."""
    root = plugins_dir.resolve()
    return [r for r in refs if r.package_dir is not None and r.package_dir.is_relative_to(root)]


def generate(path: Path) -> str:
    """The text ``path`` should have (README links relative to it, as GitHub shows them)."""
    plugins = path.absolute().parent.parent / "plugins"
    up = Path(os.path.relpath(plugins, path.absolute().parent))

    def link(readme: Path) -> str:
        return (up / readme.relative_to(plugins.resolve())).as_posix()

    refs = builtin(collect(), plugins)
    return splice(path.read_text(encoding="utf-8"), markdown(refs, link))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ocsi.docs",
                                description="Write the extensions' reference into the docs.")
    p.add_argument("file", nargs="?", default="docs/configuration.md", type=Path)
    p.add_argument("--check", action="store_true", help="exit 1 when FILE is out of date")
    ns = p.parse_args(argv)
    path: Path = ns.file
    try:
        text = generate(path)
    except (OSError, ValueError) as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 2
    if text == path.read_text(encoding="utf-8"):
        print(f"{path}: up to date")
        return 0
    if ns.check:
        print(f"{path}: the extensions reference is out of date: run python -m ocsi.docs",
              file=sys.stderr)
        return 1
    path.write_text(text, encoding="utf-8")
    print(f"{path}: written")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
