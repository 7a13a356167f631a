"""Finding an application: ``package.module:attribute`` (or a factory), imported anew on every
build so that a reload serves edited code, as ``<library>`` modules are."""

from __future__ import annotations

import inspect
from typing import Any

from ocsi.apps import import_fresh

__all__ = ["AppError", "load_app"]


class AppError(ValueError):
    """``app=`` does not name an application that can be loaded; the message says why.
    ``missing``: its module was not found (then where modules are looked for is worth saying;
    for a module that was found but failed, a SyntaxError say, it is not)."""

    def __init__(self, message: str, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def load_app(spec: str, factory: bool = False, fresh: bool = True) -> Any:
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise AppError(f"app={spec!r}: write package.module:attribute")
    try:
        if fresh:
            module = import_fresh(module_name)
        else:
            import importlib

            module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is reported with its cause
        missing = isinstance(exc, ModuleNotFoundError) and exc.name is not None and (
            module_name == exc.name or module_name.startswith(exc.name + "."))
        raise AppError(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}",
                       missing) from exc
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise AppError(f"{module_name!r} has no attribute {attribute!r}") from None
    if factory:
        try:
            target = target()
        except Exception as exc:  # noqa: BLE001
            raise AppError(f"the factory {spec!r} failed: {type(exc).__name__}: {exc}") from exc
    if not callable(target):
        raise AppError(f"{spec!r} is not callable")
    return target


def is_asgi3(app: Any) -> bool:
    """An ASGI 3 application: ``async def app(scope, receive, send)``."""
    call = app if inspect.isroutine(app) else getattr(app, "__call__", app)
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(app)
