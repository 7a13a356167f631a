"""ocsi: a web server modelled on Ocsigen Server.

This module is the API every extension uses: its steps and their answers, the HTTP objects a
step reads and answers with, the configuration elements and values it parses, the hook marker
and the server view its lifecycle hooks receive. What only some extensions need lives in
public sub-modules: :mod:`ocsi.httputil` (dates, content codings, authorities, redirects),
:mod:`ocsi.client` (the client side of HTTP/1.1, for a proxy), :mod:`ocsi.apps` (serving
applications, one-line commands). With :mod:`ocsi.hookspecs` (the hooks), :mod:`ocsi.testing`
(the test kit) and :mod:`ocsi.embed` (serving from Python without XML), that is the whole
public API, each name documented in docs/extension-api.md (a test checks both). Every other
module (``ocsi.http``, ``ocsi.config``, ``ocsi.pipeline``…) is the server's own and may
change without notice: its docstring says "Private: not part of the extension API", and
plugins never import it (a test checks both).

- Steps and what they answer: :class:`Step`, :class:`FunctionStep`, the states
  :class:`NotFound`/:class:`Found`, the answers :data:`DO_NOTHING`, :class:`Serve`,
  :class:`Next`, :class:`ContinueWith`, :class:`StopSite`…
- HTTP objects: :class:`Request`, :class:`Response`, :class:`Headers`, the bodies
  (:class:`BytesBody`, :class:`FileBody`, :class:`StreamBody`), :func:`error_response`,
  :class:`HTTPError`, :class:`BodyAborted` (a body that cannot go on), :class:`TunnelBody` /
  :class:`Tunnel` (a 101 answer taking the connection over).
- Configuration: :class:`Element` (``check``, ``require``, ``get``, ``attr_value``,
  ``error``), :func:`documents` with :class:`ElementDoc`/:class:`AttributeDoc` (what an
  element means, for ``ocsi extensions`` and the docs), :class:`ParseContext`,
  :class:`LoadContext`, :class:`ConfigError`, and the value parsers :func:`parse_int`, :func:`parse_size`, :func:`parse_duration`, :func:`parse_seconds`, :func:`parse_bool`,
  :func:`parse_regex` (raising :class:`ValueFormatError`) giving a :class:`Regex` (RE2: linear-time
  matching, ``.`` matches a newline) whose matches are :class:`RegexMatch`, and :class:`Wildcard`
  (``*`` patterns matched in linear time, without a regular expression); :func:`url_subject`
  and :class:`GroupTemplate` (Ocsigen's ``suburl``/``fullurl`` matching and ``\\N`` templates).
- Counters: :data:`STATS`, the process's :class:`Stats` (the core counts requests, connections,
  bytes, TLS handshakes and reloads there; an extension adds a :class:`Family` with
  ``STATS.counter``/``gauge``/``histogram`` and a metrics exporter reads ``STATS.gather()``,
  a :data:`Snapshot` that covers every worker).
- Lifecycle: :class:`ServerView`, what ``ocsi_server_started``, ``ocsi_reloaded`` and
  ``ocsi_server_stopping`` receive (settings, data directory, worker index, the live
  configuration's per-extension state, the event loop); ``ctx.state(extension)`` on a
  :class:`LoadContext` or :class:`ParseContext` is the same dictionary while it is built.
"""

from __future__ import annotations

import pluggy

from ._config.context import LoadContext, ParseContext
from ._config.elementdocs import AttributeDoc, ElementDoc, documents
from ._config.errors import ConfigError
from ._config.settings import ClusterDatabase
from ._config.values import (ValueFormatError, check_bounded_regex, parse_bool, parse_duration, parse_int,
                            parse_regex, parse_seconds, parse_size)
from ._config.regex import Regex, RegexMatch
from ._config.templates import GroupTemplate
from ._config.wildcard import Wildcard
from ._config.xml import Element
from ._config.xml import parse_bytes as parse_xml
from .hookspecs import ElementParser
from ._http import (Body, BodyAborted, BytesBody, FileBody, Headers, HTTPError, Request, Response, StreamBody,
                   Tunnel, TunnelBody, error_response)
from ._pipeline.answers import (
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
from ._pipeline.scope import NameRule, SiteConfig
from ._pipeline.step import FunctionStep, Step
from ._pipeline.urls import url_subject
from .serverview import ServerView
from .stats import STATS, Family, Snapshot, Stats

__version__ = "0.1.0"

#: Marks an extension's hook implementations: ``@ocsi.hookimpl def ocsi_elements(): …``
hookimpl = pluggy.HookimplMarker("ocsi")

__all__ = [
    # steps, states, answers
    "Step", "FunctionStep", "State", "NotFound", "Found", "Answer", "DO_NOTHING", "Serve",
    "ServeNow", "Next", "ContinueWith", "StopSite", "StopHost", "StopAll", "RetryWith", "SubChain",
    "Around", "Rest",
    # HTTP objects
    "Request", "Response", "Headers", "Body", "BytesBody", "FileBody", "StreamBody",
    "error_response", "HTTPError", "BodyAborted", "Tunnel", "TunnelBody",
    # configuration
    "Element", "ElementParser", "ElementDoc", "AttributeDoc", "documents", "ParseContext",
    "parse_xml", "LoadContext", "ClusterDatabase", "ConfigError", "SiteConfig", "NameRule",
    "ValueFormatError", "parse_int", "parse_size", "parse_duration", "parse_seconds", "parse_bool",
    "parse_regex", "Regex", "RegexMatch", "Wildcard", "check_bounded_regex", "url_subject", "GroupTemplate",
    # extension machinery
    "hookimpl", "ServerView", "STATS", "Stats", "Family", "Snapshot", "__version__",
]
