"""Running one Server until it stops: what ``ocsi -c FILE`` does, and each worker process.

The CLI and the worker master both call :func:`run_server`; it lives here so that neither
imports the other.

Private: not part of the extension API.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from ._config.errors import ConfigError
from .listeners import Listening, StartupError
from .server import Server

__all__ = ["run_loop", "run_server"]


def run_server(path: str, data: bytes | None, *, silent: bool, verbosity: int,
               console: bool = False, pipe: str | None = None, watch: bool = False,
               listening: Listening | None = None, worker: int | None = None,
               started: Callable[[Server], None] | None = None) -> int:
    """Run one Server until it stops (also what each worker process runs, with ``listening``).

    ``started`` is called once the server is live, its own signal handlers in place.
    """
    server = Server(path, config_data=data, silent=silent, verbosity=verbosity,
                    force_console_logs=console, pipe_path=pipe, watch=watch, listening=listening,
                    worker=worker)

    async def serve() -> None:
        await server.start()
        if started is not None:
            started(server)
        await server.wait_stopped()

    try:
        run_loop(serve())
    except ConfigError as exc:
        print(f"ocsi: Fatal - {exc}", file=sys.stderr)
        return exc.exit_code
    except StartupError as exc:
        print(f"ocsi: Fatal - {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 0
    finally:
        if pipe and server.pipe is not None and server.pipe.created:
            try:
                os.unlink(pipe)
            except OSError:
                pass
    return 0


def run_loop(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` on the event loop ocsi prefers (see :mod:`ocsi.eventloop`)."""
    from . import eventloop

    eventloop.run(coro)
