"""The extension API is what ``ocsi`` exports: plugins (their code and their tests) import
nothing else from the core, and every name they import is in ``ocsi.__all__``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ocsi
import ocsi.testing

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = sorted(p for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists())
#: What an extension's own code may import from the core (embed: running a document).
PUBLIC = {"ocsi", "ocsi.embed"}
#: What its tests may import besides: the test kit.
PUBLIC_FOR_TESTS = PUBLIC | {"ocsi.testing"}


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """``(line, module, names)`` of every ``import ocsi…`` / ``from ocsi… import`` in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "ocsi" or alias.name.startswith("ocsi."):
                    found.append((node.lineno, alias.name, []))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and (
                node.module == "ocsi" or node.module.startswith("ocsi.")):
            found.append((node.lineno, node.module, [a.name for a in node.names]))
    return found


def _files(plugin: Path) -> list[tuple[Path, bool]]:
    out = []
    for path in sorted(plugin.rglob("*.py")):
        rel = path.relative_to(plugin)
        if any(part.endswith(".egg-info") or part == "build" for part in rel.parts):
            continue
        out.append((path, rel.parts[0] == "tests"))
    return out


@pytest.mark.parametrize("plugin", PLUGINS, ids=[p.name for p in PLUGINS])
def test_plugins_import_only_the_public_api(plugin: Path) -> None:
    bad = []
    for path, is_test in _files(plugin):
        allowed = PUBLIC_FOR_TESTS if is_test else PUBLIC
        for line, module, names in _imports(path):
            where = f"{path.relative_to(ROOT)}:{line}"
            if module not in allowed:
                bad.append(f"{where}: imports {module}")
            elif module == "ocsi":
                bad += [f"{where}: ocsi.{n} is not exported" for n in names if n not in ocsi.__all__]
            elif module == "ocsi.testing":
                bad += [f"{where}: ocsi.testing.{n} is not exported" for n in names
                        if n not in ocsi.testing.__all__]
    assert not bad, "private imports:\n" + "\n".join(bad)


def test_every_exported_name_exists() -> None:
    for module in (ocsi, ocsi.testing):
        missing = [n for n in module.__all__ if not hasattr(module, n)]
        assert not missing, f"{module.__name__}.__all__ names what it lacks: {missing}"


def test_the_checker_sees_a_private_import(tmp_path: Path) -> None:
    plugin = tmp_path / "demo"
    (plugin / "ocsi_ext_demo").mkdir(parents=True)
    (plugin / "ocsi_ext_demo" / "__init__.py").write_text(
        "from ocsi import Step\nfrom ocsi.http.body import FILE_CHUNK\nimport ocsi.runtime\n")
    found = [(m, n) for p, _ in _files(plugin) for _, m, n in _imports(p)]
    assert found == [("ocsi", ["Step"]), ("ocsi.http.body", ["FILE_CHUNK"]), ("ocsi.runtime", [])]
