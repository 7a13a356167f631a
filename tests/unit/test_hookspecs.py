"""Every hook is documented, prefixed and listed in the extension guide."""

import inspect
from pathlib import Path

from ocsi import hookspecs

DOC = (Path(__file__).parents[2] / "docs" / "extension-api.md").read_text()


def hooks():
    return [(n, f) for n, f in inspect.getmembers(hookspecs, inspect.isfunction)
            if hasattr(f, "ocsi_spec")]


def test_there_are_hooks():
    assert len(hooks()) >= 8


def test_hooks_prefixed_documented_and_listed():
    for name, fn in hooks():
        assert name.startswith("ocsi_"), name
        assert fn.__doc__ and len(fn.__doc__.strip()) > 20, name
        assert f"`{name}(" in DOC, f"{name} missing from docs/extension-api.md"
