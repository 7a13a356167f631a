"""Extension distributions written into a directory, for tests of loading and dependencies.

What ``pip install`` leaves in site-packages, reduced to what ocsi reads: a ``*.dist-info``
directory (``METADATA`` with ``Requires-Dist`` lines, ``entry_points.txt``) and the module.
Point a configuration at the directory with ``<findlib path="DIR"/>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["write_extension"]


def write_extension(directory: str | Path, name: str, source: str = "", *,
                    requires: Sequence[str] = (), version: str = "1.0",
                    entry_points: Mapping[str, str] | None = None) -> Path:
    """Write the distribution ``name`` (``ocsi-ext-foo``) with module ``source``.

    The module is ``ocsi_ext_foo.py``; ``requires`` are ``Requires-Dist`` lines (markers and
    extras allowed); ``entry_points`` replaces the one entry point ``foo = ocsi_ext_foo`` in
    the group ``ocsi.extensions``. Returns the module's path.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    module = name.replace("-", "_").replace(".", "_")
    short = name[len("ocsi-ext-"):] if name.startswith("ocsi-ext-") else name
    info = d / f"{module}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
            f"Summary: test extension {name}"] + [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(meta) + "\n")
    eps = entry_points if entry_points is not None else {short: module}
    (info / "entry_points.txt").write_text(
        "[ocsi.extensions]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()))
    path = d / f"{module}.py"
    path.write_text(source)
    return path
