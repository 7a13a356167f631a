"""ocsi: a web server modelled on Ocsigen Server.

The names an extension author needs are re-exported here: the hook marker, the step protocol,
states and answers, the request and response types.
"""

from __future__ import annotations

import pluggy

from .config.context import LoadContext, ParseContext
from .config.errors import ConfigError
from .config.xml import Element
from .http import Body, BytesBody, FileBody, Headers, HTTPError, Request, Response, StreamBody, error_response
from .pipeline.answers import (
    DO_NOTHING,
    Answer,
    ContinueWith,
    Found,
    Next,
    NotFound,
    RetryWith,
    Serve,
    ServeNow,
    State,
    StopAll,
    StopHost,
    StopSite,
    SubChain,
)
from .pipeline.scope import SiteConfig
from .pipeline.step import FunctionStep, Step

__version__ = "0.1.0"

#: Marks an extension's hook implementations: ``@ocsi.hookimpl def ocsi_elements(): …``
hookimpl = pluggy.HookimplMarker("ocsi")

__all__ = [
    "DO_NOTHING", "Answer", "Body", "BytesBody", "ConfigError", "ContinueWith", "Element", "FileBody",
    "Found", "FunctionStep", "HTTPError", "Headers", "LoadContext", "Next", "NotFound",
    "ParseContext", "Request", "Response", "RetryWith", "Serve", "ServeNow", "SiteConfig", "State",
    "Step", "StopAll", "StopHost", "StopSite", "StreamBody", "SubChain", "error_response",
    "hookimpl", "__version__",
]
