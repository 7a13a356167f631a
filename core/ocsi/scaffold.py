"""``ocsi new-extension NAME``: a ready extension distribution, laid out as the built-ins are.

What it writes passes its own test straight away (``pip install -e DIR`` then ``pytest DIR``):
a ``pyproject.toml`` with the entry point, the package with one element and its step, a test
that runs in memory and over real sockets with the test kit, and a README with the element
reference to fill in. Everything it imports is the public API (``ocsi``, ``ocsi.testing``;
what only some extensions need is in ``ocsi.httputil``, ``ocsi.client`` and ``ocsi.apps``).

Private: not part of the extension API.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["NAME", "new_extension"]

#: What an extension name may be: it becomes ``ocsi-ext-NAME``, ``ocsi_ext_NAME`` and ``<NAME>``.
NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")

_PYPROJECT = '''\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "ocsi extension: <{tag}>"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["ocsi"]

[project.entry-points."ocsi.extensions"]
{short} = "{module}"

[tool.setuptools]
packages = ["{module}"]

[tool.setuptools.package-data]
{module} = ["py.typed"]

[tool.pytest.ini_options]
testpaths = ["tests"]
'''

_INIT = '''\
"""{dist}: the ``<{tag}>`` element.

Enable it with ``<extension findlib-package="{dist}"/>``, then write ``<{tag} text="…"/>``
in a ``<host>`` or ``<site>``.
"""

from __future__ import annotations

import logging

import ocsi

from .step import Greeting, parse_{func}

__all__ = ["Greeting", "parse_{func}"]

ocsi_logger = logging.getLogger("ocsi.ext.{short}")


@ocsi.hookimpl
def ocsi_elements() -> dict[str, ocsi.ElementParser]:
    return {{"{tag}": parse_{func}}}


@ocsi.hookimpl
def ocsi_server_started(server: ocsi.ServerView) -> None:
    """The first configuration is live. ``server`` is all of the running server an extension
    may use: its settings, ``datadir``, ``worker`` index, ``state("{dist}")`` (what the
    parsers put in ``ctx.state("{dist}")`` for this configuration) and its event loop
    (``create_task``, ``call_later``). Here, the number of ``<{tag}>`` elements."""
    count = server.state("{dist}").get("elements", 0)
    ocsi_logger.info("{dist}: %d <{tag}> element(s) live", count)
'''

_STEP = '''\
"""The step ``<{tag}>`` becomes, and its parser."""

from __future__ import annotations

import ocsi
from ocsi import DO_NOTHING, Found, Response, Serve


class Greeting(ocsi.Step):
    """Answers every request that reaches it with a text, unless a page was already found."""

    def __init__(self, text: str) -> None:
        self.body = text.encode()

    async def handle(self, request: ocsi.Request, state: ocsi.State) -> ocsi.Answer:
        if isinstance(state, Found):
            return DO_NOTHING  # content generators leave found pages alone
        return Serve(Response(200, [("content-type", "text/plain; charset=utf-8")], self.body))


@ocsi.documents(ocsi.ElementDoc(
    "{tag}", "answers every request with a text",
    attributes=[ocsi.AttributeDoc("text", "the text", required=True)]))
def parse_{func}(el: ocsi.Element, ctx: ocsi.ParseContext) -> ocsi.Step:
    """``<{tag} text="…"/>``: unknown attributes and children are located errors."""
    el.check(attributes=["text"])
    state = ctx.state("{dist}")  # this configuration's, kept across its parsers and hooks
    state["elements"] = state.get("elements", 0) + 1
    return Greeting(el.require("text"))
'''

_CONFTEST = '''\
"""``serve(xml)`` runs a test in memory and over real sockets, ``memory(xml)`` in memory only;
both start servers whose configuration loads {dist} first."""

from ocsi.testing import preamble_fixtures

serve, memory = preamble_fixtures('<extension findlib-package="{dist}"/>')
'''

_TEST = '''\
"""<{tag}> in a running server (``serve`` and ``memory`` come from conftest.py)."""

from ocsi.testing import CONTENT, assert_config_error


def test_answers_with_its_text(serve):
    srv = serve('<host><{tag} text="Hello!"/></host>')
    r = srv.get("/anything")
    assert (r.status, r.body) == (200, b"Hello!")
    assert r.headers["content-type"] == "text/plain; charset=utf-8"


def test_only_inside_its_site(serve):
    srv = serve('<host><site path="hi"><{tag} text="Hi"/></site></host>')
    assert srv.get("/hi/there").body == b"Hi"
    assert srv.get("/elsewhere").status == 404


def test_a_page_found_earlier_is_left_alone(serve):
    # CONTENT: pages for tests (<page>, <echo/>, <fail>, <mark>) from ocsi.testing
    srv = serve(CONTENT + '<host><page path="first" body="earlier"/><{tag} text="Hi"/></host>')
    assert srv.get("/first").body == b"earlier"
    assert srv.get("/other").body == b"Hi"


def test_a_mistake_is_located(memory):
    # the line is counted in the XML written here: line 2
    assert_config_error(memory, '<host>\\n<{tag} txt="Hi"/></host>', "unknown attribute 'txt'",
                        line=2)
'''

_README = '''\
# {dist}

An ocsi extension: the `<{tag}>` element.

    pip install {dist}

then, in the configuration:

```xml
<extension findlib-package="{dist}"/>
<host>
  <{tag} text="Hello!"/>
</host>
```

## `<{tag}>`

Answers every request that reaches it with `text`, as `text/plain`, unless an earlier step
already found a page.

| attribute | required | meaning |
|---|---|---|
| `text` | yes | the body of the answer |

## Development

    pip install -e .
    pytest
'''


def new_extension(name: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """Write the distribution ``ocsi-ext-NAME`` into ``directory`` (default ``./ocsi-ext-NAME``).

    Raises ``ValueError`` for a name that is not ``NAME``-shaped and ``FileExistsError`` when
    the directory exists and is not empty.
    """
    if name.startswith("ocsi-ext-"):
        name = name[len("ocsi-ext-"):]
    if not NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not an extension name: lower-case letters and digits, "
                         "words joined by - or _ (it becomes ocsi-ext-NAME and <NAME>)")
    short = name.replace("_", "-")
    dist = f"ocsi-ext-{short}"
    module = "ocsi_ext_" + short.replace("-", "_")
    fields = {"dist": dist, "short": short, "module": module, "tag": short,
              "func": short.replace("-", "_")}
    root = Path(directory) if directory is not None else Path(dist)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} exists and is not empty")
    files = {
        "pyproject.toml": _PYPROJECT,
        "README.md": _README,
        f"{module}/__init__.py": _INIT,
        f"{module}/step.py": _STEP,
        f"{module}/py.typed": "",
        "tests/conftest.py": _CONFTEST,
        f"tests/test_{fields['func']}.py": _TEST,
    }
    for rel, template in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**fields))
    return root
