"""The extension API is what ``ocsi`` and its public sub-modules export: plugins (their code and
their tests) import nothing else from the core, every name they import is exported, they read no
private attribute of a core object, and every public name is documented in
docs/extension-api.md."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from types import ModuleType

import pytest

import ocsi
import ocsi.apps
import ocsi.client
import ocsi.embed
import ocsi.hookspecs
import ocsi.httputil
import ocsi.testing

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = sorted(p for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists())
DOCS = ROOT / "docs" / "extension-api.md"


def _public_names(module: ModuleType) -> list[str]:
    """``__all__``, or for a module without one the names it defines itself."""
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return [n for n, v in vars(module).items()
            if not n.startswith("_") and getattr(v, "__module__", None) == module.__name__]


#: The public modules, each with the names an extension may take from it.
MODULES = {m.__name__: m for m in (ocsi, ocsi.client, ocsi.httputil, ocsi.apps, ocsi.embed,
                                     ocsi.hookspecs, ocsi.testing)}
#: What an extension's own code may import from the core.
PUBLIC = set(MODULES) - {"ocsi.testing"}
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
            else:
                exported = _public_names(MODULES[module])
                bad += [f"{where}: {module}.{n} is not exported" for n in names if n not in exported]
    assert not bad, "private imports:\n" + "\n".join(bad)


def test_every_exported_name_exists() -> None:
    for module in MODULES.values():
        missing = [n for n in getattr(module, "__all__", ()) if not hasattr(module, n)]
        assert not missing, f"{module.__name__}.__all__ names what it lacks: {missing}"


def test_the_checker_sees_a_private_import(tmp_path: Path) -> None:
    plugin = tmp_path / "demo"
    (plugin / "ocsi_ext_demo").mkdir(parents=True)
    (plugin / "ocsi_ext_demo" / "__init__.py").write_text(
        "from ocsi import Step\nfrom ocsi._http.body import FILE_CHUNK\nimport ocsi.runtime\n")
    found = [(m, n) for p, _ in _files(plugin) for _, m, n in _imports(p)]
    assert found == [("ocsi", ["Step"]), ("ocsi._http.body", ["FILE_CHUNK"]), ("ocsi.runtime", [])]


# -- documented ----------------------------------------------------------------------------------
def _documented(name: str, text: str) -> bool:
    """``name`` in code quotes: `name`, `name(…)`, `module.name`…"""
    return re.search(r"`(?:[\w.]*\.)?" + re.escape(name) + r"(?:[`(\[ ]|\.\w)", text) is not None


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_public_name_is_documented(module: str) -> None:
    text = DOCS.read_text(encoding="utf-8")
    names = _public_names(MODULES[module])
    if module == "ocsi.hookspecs":
        names = [n for n in names if n.startswith("ocsi_")]
    missing = [n for n in names if n != "__version__" and not _documented(n, text)]
    assert not missing, f"{module}: not in {DOCS.relative_to(ROOT)}: {missing}"


def test_the_documentation_check_sees_a_missing_name() -> None:
    assert _documented("OneLiner", "`OneLiner(command)` and `ocsi.apps.run_document`")
    assert _documented("run_document", "`ocsi.apps.run_document`")
    assert not _documented("OneLiner", "a OneLiner, `OneLinerX`")


# -- private attributes --------------------------------------------------------------------------
def _private(attr: str) -> bool:
    return attr.startswith("_") and not (attr.startswith("__") and attr.endswith("__"))


def _own_names(trees: list[ast.AST]) -> set[str]:
    """Every name a plugin defines itself: functions, classes, assigned attributes and
    variables, parameters, ``__slots__`` entries. A private attribute read that is none of
    these belongs to someone else's object (the core's, or the standard library's)."""
    names: set[str] = set()
    for tree in trees:
        for n in ast.walk(tree):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(n.name)
            elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store):
                names.add(n.attr)
            elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                names.add(n.id)
            elif isinstance(n, ast.arg):
                names.add(n.arg)
            elif isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__slots__"
                                                   for t in n.targets):
                names.update(c.value for c in ast.walk(n.value)
                             if isinstance(c, ast.Constant) and isinstance(c.value, str))
    return names


def _foreign_private_reads(paths: list[Path]) -> list[str]:
    trees = {p: ast.parse(p.read_text(), str(p)) for p in paths}
    own = _own_names(list(trees.values()))
    found = []
    for path, tree in trees.items():
        for n in ast.walk(tree):
            attr = None
            if isinstance(n, ast.Attribute) and _private(n.attr):
                attr = n.attr
            elif (isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                  and n.func.id in ("getattr", "setattr", "hasattr", "delattr") and len(n.args) > 1
                  and isinstance(n.args[1], ast.Constant) and isinstance(n.args[1].value, str)
                  and _private(n.args[1].value)):
                attr = n.args[1].value
            if attr is not None and attr not in own:
                found.append(f"{path}:{getattr(n, 'lineno', 0)}: .{attr}")
    return found


@pytest.mark.parametrize("plugin", PLUGINS, ids=[p.name for p in PLUGINS])
def test_plugins_read_no_private_attribute_of_another_object(plugin: Path) -> None:
    bad = _foreign_private_reads([path for path, _ in _files(plugin)])
    assert not bad, "private attributes of objects the plugin does not own:\n" + "\n".join(bad)


def test_the_checker_sees_a_private_attribute(tmp_path: Path) -> None:
    mod = tmp_path / "m.py"
    mod.write_text("class A:\n    def __init__(self):\n        self._mine = 1\n\n"
                   "def f(server, a):\n    a._mine\n    server._runtime\n"
                   "    getattr(server, '_loop')\n    server.__class__\n")
    assert _foreign_private_reads([mod]) == [f"{mod}:7: ._runtime", f"{mod}:8: ._loop"]


# -- private modules -----------------------------------------------------------------------------
PRIVATE_MARK = "Private: not part of the extension API."
CORE = ROOT / "core" / "ocsi"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(CORE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _core_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(CORE.rglob("*.py"))}


def test_every_implementation_module_says_it_is_private() -> None:
    """The test kit and the public modules are the API; every other module of the core says
    in its docstring that it is not, so a reader knows before importing it."""
    unmarked, marked_public = [], []
    for name, path in _core_modules().items():
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        public = name in MODULES or name.startswith("ocsi.testing")
        if public and PRIVATE_MARK in doc:
            marked_public.append(name)
        elif not public and PRIVATE_MARK not in doc:
            unmarked.append(name)
    assert not unmarked, f"implementation modules without {PRIVATE_MARK!r}: {unmarked}"
    assert not marked_public, f"public modules marked private: {marked_public}"


def test_plugins_import_no_module_marked_private() -> None:
    private = {name for name, path in _core_modules().items()
               if PRIVATE_MARK in (ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or "")}
    assert private and not private & PUBLIC_FOR_TESTS
    bad = [f"{path.relative_to(ROOT)}:{line}: {module}"
           for plugin in PLUGINS for path, _ in _files(plugin)
           for line, module, _ in _imports(path)
           if module in private or any(module.startswith(p + ".") for p in private)]
    assert not bad, "imports of private modules:\n" + "\n".join(bad)
