"""Header fields across the proxy: hop-by-hop ones stop here, the forwarding ones are ocsi's.

To the backend: every field of the client's request but the hop-by-hop ones (RFC 9110 §7.6.1:
``Connection`` and the fields it names, ``Keep-Alive``, ``Proxy-Connection``, ``TE``,
``Trailer``, ``Transfer-Encoding``, ``Upgrade``), ``Expect`` (ocsi answers ``100-continue``
itself) and the framing (ocsi frames the body it sends); ``Host`` is the destination's unless
``keephost``. ``X-Forwarded-For`` is the chain accesscontrol trusted (``<allow-forward-for>``)
followed by the peer, never an unverified header from the client; ``X-Forwarded-Proto`` the
scheme the client used, ``X-Forwarded-Host`` the ``Host`` it sent. With ``forwarded``, RFC 7239
``Forwarded`` too.

Back to the client: the backend's fields but the hop-by-hop ones and the framing, which the
connection layer redoes for the client.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ocsi import Request
from ocsi.client import ResponseHead

HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-connection", "te", "trailer",
                        "transfer-encoding", "upgrade", "proxy-authenticate"))
#: Not forwarded to the backend besides the hop-by-hop ones.
REQUEST_DROPPED = HOP_BY_HOP | {"host", "content-length", "expect", "x-forwarded-for",
                                "x-forwarded-proto", "x-forwarded-host", "forwarded"}
#: Not relayed to the client besides the hop-by-hop ones.
RESPONSE_DROPPED = HOP_BY_HOP | {"content-length"}


def connection_tokens(values: Iterable[str]) -> set[str]:
    return {t.strip().lower() for v in values for t in v.split(",") if t.strip()}


def client_chain(request: Request) -> list[str]:
    """The addresses ``X-Forwarded-For`` carries on: trusted ones, then the peer."""
    if request.client != request.peer or request.forwarded_for:
        return [request.client, *request.forwarded_for, request.peer]
    return [request.peer]


def _forwarded_node(address: str) -> str:
    return f'"[{address}]"' if ":" in address else address


def wants_websocket(request: Request) -> bool:
    """A WebSocket handshake (RFC 6455 §4.1): the one upgrade passed through to backends."""
    upgrade = request.headers.get("upgrade")
    return (upgrade is not None and upgrade.strip().lower() == "websocket"
            and request.method == "GET" and request.version == "1.1"
            and "upgrade" in connection_tokens(request.headers.get_all("connection")))


def request_headers(request: Request, host: str, keephost: bool, forwarded: bool,
                    body_length: int | None, websocket: bool = False) -> list[tuple[str, str]]:
    """The header list sent to the backend, ``Host`` first. With ``websocket`` the handshake's
    ``Connection: upgrade`` and ``Upgrade: websocket`` go too (other upgrades never do)."""
    incoming = request.headers
    named = incoming.get_all("connection")
    dropped = REQUEST_DROPPED | connection_tokens(named) if named else REQUEST_DROPPED
    client_host = request.host_header
    out = [("host", client_host if keephost and client_host else host)]
    out += [(n, v) for n, v in incoming.items() if n not in dropped]
    peer = request.peer
    if request.client != peer or request.forwarded_for:  # client_chain(), without a call
        out.append(("x-forwarded-for", ", ".join(client_chain(request))))
    else:
        out.append(("x-forwarded-for", peer))
    out.append(("x-forwarded-proto", request.scheme))
    if client_host:
        out.append(("x-forwarded-host", client_host))
    if forwarded:
        parts = [f"for={_forwarded_node(request.client)}", f"proto={request.scheme}"]
        if client_host:
            parts.append(f'host="{client_host}"')
        out.append(("forwarded", ";".join(parts)))
    if websocket:
        out += [("connection", "upgrade"), ("upgrade", "websocket")]
    te = incoming.get_all("te")
    if te and "trailers" in connection_tokens(te):
        out.append(("te", "trailers"))  # the client takes trailers: the backend may send them
    if body_length is not None and (body_length > 0 or request.method in ("POST", "PUT", "PATCH")):
        out.append(("content-length", str(body_length)))
    elif body_length is None:
        out.append(("transfer-encoding", "chunked"))
    return out


def trailer_fields(fields: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The backend's trailer fields to relay (lower-case names): none that frames a message,
    routes it or says how to read it (RFC 9110 §6.5.1)."""
    return [(n, v) for n, v in fields if n not in TRAILERS_DROPPED]


#: Fields a trailer must not carry, or that only mean something in a head.
TRAILERS_DROPPED = RESPONSE_DROPPED | {"host", "content-encoding", "content-type", "content-range",
                                       "cache-control", "expires", "date", "location", "retry-after",
                                       "vary", "set-cookie", "www-authenticate", "authorization"}


def response_headers(fields: Sequence[tuple[str, str]], switching: bool = False
                     ) -> tuple[list[tuple[str, str]], int | None]:
    """The backend's fields to relay, and its ``Content-Length`` (``None`` if it gave none).
    ``fields`` have lower-case names (:func:`ocsi.client.header_fields`). ``switching``: a 101,
    whose ``Connection``/``Upgrade`` the client needs."""
    dropped = RESPONSE_DROPPED
    length = None
    for n, v in fields:
        if n == "connection":
            dropped = dropped | connection_tokens([v])
        elif n == "content-length":
            length = int(v)
    if switching:
        dropped = dropped - {"connection", "upgrade"}
    return [(n, v) for n, v in fields if n not in dropped], length


#: What a backend's usual ``Connection`` values drop besides RESPONSE_DROPPED.
_DROPPED_FOR = {"keep-alive": RESPONSE_DROPPED, "close": RESPONSE_DROPPED | {"close"}}


def relayed_headers(head: ResponseHead) -> tuple[list[tuple[str, str]], int | None]:
    """:func:`response_headers` for a head read by the fast path, whose framing fields are
    read already: one filtering pass over the fields."""
    if head.repeated:
        return response_headers(head.fields)
    connection = head.by_name.get("connection")
    if connection is None:
        dropped = RESPONSE_DROPPED
    else:
        dropped = _DROPPED_FOR.get(connection.lower()) or \
            RESPONSE_DROPPED | connection_tokens([connection])
    return [(n, v) for n, v in head.fields if n not in dropped], head.length
