"""Every hook is documented, prefixed and listed in the extension guide."""

import inspect
from pathlib import Path

import pytest

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


def _python_block(after_heading: str) -> str:
    section = DOC.split(after_heading, 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_documented_extension_works_as_written(tmp_path, ocsi_client):
    """The example of "Elements become steps", installed as a distribution and served."""
    from ocsi.testing import write_extension

    write_extension(tmp_path, "ocsi-ext-hello", _python_block("## Elements become steps"))
    ext = f'<findlib path="{tmp_path}"/><extension findlib-package="ocsi-ext-hello"/>'
    srv = ocsi_client(ext + '<host><hello text="hi" max="10kB"/></host>')
    r = srv.get("/hello")
    assert (r.status, r.body, r.headers["content-type"]) == (200, b"hi", "text/plain")
    assert srv.get("/other").status == 404


def test_the_documented_extension_reports_errors_where_they_are(tmp_path, ocsi_memory):
    from ocsi import ConfigError
    from ocsi.testing import write_extension

    write_extension(tmp_path, "ocsi-ext-hello", _python_block("## Elements become steps"))
    ext = f'<findlib path="{tmp_path}"/><extension findlib-package="ocsi-ext-hello"/>'
    with pytest.raises(ConfigError) as e:
        ocsi_memory(ext + '<host>\n<hello text="hi" max="lots"/></host>')
    assert "max" in str(e.value) and e.value.where.endswith("ocsi.conf:6:1")
