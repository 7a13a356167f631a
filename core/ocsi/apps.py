"""For extensions that serve applications or add one-line commands (``ocsi app``, ``ocsi serve``).

- :class:`OneLiner`: the ``<ocsigen>`` document of a one-line command, its errors located at
  what the user typed; :func:`listen_arguments`: ``--host``/``--port`` (and ``-v``) alike in
  every one-liner.
- :func:`run_document`: serve any generated document until the server stops.
- :func:`import_fresh`: import a module anew (it and its submodules, bytecode cache dropped),
  as application code is on every reload.
"""

from __future__ import annotations

from ._extensions.loader import import_fresh
from .oneliner import OneLiner, listen_arguments

__all__ = ["OneLiner", "listen_arguments", "run_document", "import_fresh"]


def run_document(xml: str, *, watch: bool = False, verbosity: int = 0,
                 name: str = "<generated>") -> int:
    """Run a whole configuration document given as text until the server stops, logs on the
    terminal (what ``ocsi serve``, ``ocsi proxy`` and ``ocsi app`` do); the exit code.
    ``watch``: reload when a file the configuration watches changes (``-w``)."""
    import os
    import tempfile

    from .run import run_server  # here, not at import: it brings in the whole server

    pipe = os.path.join(tempfile.gettempdir(), f"ocsi-{os.getpid()}.cmd")
    return run_server(name, xml.encode(), silent=False, verbosity=verbosity, console=True,
                      pipe=pipe, watch=watch)
