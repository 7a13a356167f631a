"""ocsi: a web server modelled on Ocsigen Server.

This module is the API for extensions: every name an extension needs is importable from
``ocsi`` itself, and the built-in extensions import nothing else (a test checks it). The
other public modules are :mod:`ocsi.hookspecs` (the hooks, documented), :mod:`ocsi.testing`
(the test kit) and :mod:`ocsi.embed` (serving from Python without XML). Everything else is
the server's own and may change without notice.

- Steps and what they answer: :class:`Step`, :class:`FunctionStep`, the states
  :class:`NotFound`/:class:`Found`, the answers :data:`DO_NOTHING`, :class:`Serve`,
  :class:`Next`, :class:`ContinueWith`, :class:`StopSite`…
- HTTP objects: :class:`Request`, :class:`Response`, :class:`Headers`, the bodies
  (:class:`BytesBody`, :class:`FileBody`, :class:`StreamBody`), :func:`error_response`,
  :class:`HTTPError`, :class:`BodyAborted` (a body that cannot go on), :class:`TunnelBody` /
  :class:`Tunnel` (a 101 answer taking the connection over), :class:`AccessRecord`,
  :class:`ClientLink` (``Request.wait_client_gone``: the client has gone), and for the
  client side of a connection (a proxy) :class:`ResponseReader`, :func:`header_fields`, :func:`response_framing`,
  and :func:`request_head_problem` (the server's own rules for a request head, which a client
  must hold what it writes to: a proxy never sends what it would refuse).
- Configuration: :class:`Element` (``check``, ``require``, ``get``, ``attr_value``,
  ``error``), :func:`documents` with :class:`ElementDoc`/:class:`AttributeDoc` (what an
  element means, for ``ocsi extensions`` and the docs), :class:`ParseContext`,
  :class:`LoadContext`, :class:`ConfigError`, and the value parsers :func:`parse_int`, :func:`parse_size`, :func:`parse_duration`, :func:`parse_seconds`, :func:`parse_bool`,
  :func:`parse_regex` (raising :class:`ValueFormatError`) giving a :class:`Regex` (RE2: linear-time
  matching, ``.`` matches a newline) whose matches are :class:`RegexMatch`, and :class:`Wildcard`
  (``*`` patterns matched in linear time, without a regular expression).
- Helpers: :func:`slash_redirect` and :func:`absolute_url` (redirects), :func:`url_subject`
  and :class:`GroupTemplate` (Ocsigen's ``suburl``/``fullurl`` matching and ``\\N`` templates),
  :func:`negotiate` / :func:`parse_accept_encoding` (content codings), :func:`has_token`,
  :func:`format_http_date` / :func:`parse_http_date`, :func:`split_host_port` /
  :func:`join_host_port`, and for one-line commands such as ``ocsi app``: :class:`OneLiner`
  (the document they run, errors located at what the user typed) with
  :func:`listen_arguments` (``--host``/``--port`` alike everywhere), and :func:`run_document`
  (serving any generated document).
- Lifecycle: :class:`ServerView`, what ``ocsi_server_started``, ``ocsi_reloaded`` and
  ``ocsi_server_stopping`` receive (settings, data directory, worker index, the live
  configuration's per-extension state, the event loop); ``ctx.state(extension)`` on a
  :class:`LoadContext` or :class:`ParseContext` is the same dictionary while it is built.
"""

from __future__ import annotations

import pluggy

from .config.context import LoadContext, ParseContext
from .config.elementdocs import AttributeDoc, ElementDoc, documents
from .config.errors import ConfigError
from .config.values import (ValueFormatError, check_bounded_regex, parse_bool, parse_duration, parse_int,
                            parse_regex, parse_seconds, parse_size)
from .config.regex import Regex, RegexMatch
from .config.templates import GroupTemplate
from .config.wildcard import Wildcard
from .config.xml import Element
from .config.xml import parse_bytes as parse_xml
from .extensions.loader import import_fresh
from .hookspecs import ElementParser
from .http import (Body, BodyAborted, BytesBody, FileBody, Headers, HTTPError, Request, Response, StreamBody,
                   Tunnel, TunnelBody, error_response)
from .http.access import AccessRecord
from .http.dates import format_http_date, parse_http_date
from .http.fieldcheck import request_head_problem
from .http.headers import has_token
from .http.hostport import join_host_port, split_host_port
from .http.negotiation import negotiate, parse_accept_encoding
from .http.reader import ResponseReader, header_fields, response_framing
from .http.request import ClientLink
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
    Around,
    Rest,
)
from .pipeline.scope import NameRule, SiteConfig
from .pipeline.step import FunctionStep, Step
from .oneliner import OneLiner, listen_arguments
from .pipeline.urls import absolute_url, slash_redirect, url_subject
from .serverview import ServerView

__version__ = "0.1.0"

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


#: Marks an extension's hook implementations: ``@ocsi.hookimpl def ocsi_elements(): …``
hookimpl = pluggy.HookimplMarker("ocsi")

__all__ = [
    # steps, states, answers
    "Step", "FunctionStep", "State", "NotFound", "Found", "Answer", "DO_NOTHING", "Serve",
    "ServeNow", "Next", "ContinueWith", "StopSite", "StopHost", "StopAll", "RetryWith", "SubChain",
    "Around", "Rest",
    # HTTP objects
    "Request", "ClientLink", "Response", "Headers", "Body", "BytesBody", "FileBody", "StreamBody",
    "error_response", "HTTPError", "BodyAborted", "Tunnel", "TunnelBody", "AccessRecord",
    "ResponseReader", "header_fields", "response_framing", "request_head_problem",
    # configuration
    "Element", "ElementParser", "ElementDoc", "AttributeDoc", "documents", "ParseContext",
    "parse_xml", "LoadContext", "ConfigError", "SiteConfig", "NameRule",
    "ValueFormatError", "parse_int", "parse_size", "parse_duration", "parse_seconds", "parse_bool", "parse_regex", "Regex", "RegexMatch", "Wildcard", "check_bounded_regex",
    # helpers
    "slash_redirect", "absolute_url", "url_subject", "GroupTemplate", "negotiate", "parse_accept_encoding", "has_token",
    "format_http_date", "parse_http_date", "split_host_port", "join_host_port",
    # extension machinery
    "hookimpl", "ServerView", "import_fresh", "run_document", "OneLiner", "listen_arguments", "__version__",
]
