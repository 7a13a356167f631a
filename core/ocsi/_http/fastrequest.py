"""A request head that arrived whole, read straight into a :class:`Request` (the fast path).

Most requests arrive as one read holding exactly one head, and most heads are canonical. For
those, :func:`read_request` does in one pass what the general path does in four (buffer the
bytes, find and cut the head, :func:`~.fasthead.parse_canonical_head`, then
:func:`~.incoming.parse_head`): llhttp (``httptools``) parses, the fields come out of its
callbacks already decoded, and the checks of both steps run once. It answers exactly where
the general path would answer the same thing:

* it *declines* (returns ``None``, the bytes then go the general way, where h11 decides)
  for every shape :mod:`.fasthead` leaves to h11: not canonical, refused by llhttp, a target
  or request line h11 reads differently, framing fields h11 would merge or refuse, a ``Host``
  missing or repeated;
* past that point the head is one h11 reads the same way, and ocsi's own rules of
  :mod:`.incoming` apply as they do there (414, 431, 400 with the same messages).

``tests/http`` runs every protocol test with both parsers, and ``tests/http/test_fast_head.py``
compares this path with h11 on mutated heads.

Private: not part of the extension API.
"""

from __future__ import annotations

from .fasthead import read_canonical
from .fieldcheck import target_ok_bytes
from .headers import Headers
from .incoming import EMPTY_BODY, HeadError, authority_ok, host_name, host_text
from .limits import Limits
from .request import Request
from .urlpath import BadTarget, decode_path, split_target

__all__ = ["read_request"]

_OWS = b" \t"
_HOST_K, _CL_K, _TE_K, _CONN_K, _EXPECT_K = range(1, 6)
_KINDS = {"host": _HOST_K, "content-length": _CL_K, "transfer-encoding": _TE_K,
          "connection": _CONN_K, "expect": _EXPECT_K}
_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")}


class _Head:
    """httptools' callbacks: the target and the fields of one head, decoded as they come
    (names lower-cased, values without surrounding whitespace, as h11 gives them)."""

    __slots__ = ("target", "fields", "complete")

    def __init__(self) -> None:
        self.target = b""
        self.fields: list[tuple[str, str]] = []
        self.complete = False

    def on_url(self, url: bytes) -> None:
        self.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields.append((name.decode("latin-1").lower(), value.strip(_OWS).decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.complete = True


def read_request(head: bytes, limits: Limits, port: int, secure: bool, client: str
                 ) -> tuple[Request, int | None, bool, bool] | None:
    """``head``: one complete head, its final CRLF CRLF included, nothing after it. As
    :func:`~.incoming.parse_head`: ``(request, body length or None for chunked,
    expect 100-continue, keep-alive)``, or :class:`HeadError`; ``None`` when the general
    path must read these bytes."""
    got = _Head()
    parser = read_canonical(head, got)
    if parser is None:
        return None
    target = got.target
    if not got.complete or not target_ok_bytes(target):
        return None
    version = parser.get_http_version()
    if version == "1.1":
        http10 = False
    elif version == "1.0":
        http10 = True
    else:
        return None
    method_b = parser.get_method()
    if not head.startswith(b"%s %s HTTP/%s\r\n" % (method_b, target, version.encode())):
        return None  # not exactly one space each side of the target (llhttp allows more)

    # the framing fields, checked as h11 reads them (anything else: h11's answer)
    fields = got.fields
    host_value = cl = conn = None
    hosts = 0
    te = expect = False
    kinds = _KINDS
    for name, value in fields:
        k = kinds.get(name)
        if k is None:
            continue
        if k == _HOST_K:
            hosts += 1
            host_value = value
        elif k == _CL_K:
            if cl is not None or not (value.isascii() and value.isdigit()):
                return None  # h11 merges equal values and refuses others
            cl = value
        elif k == _TE_K:
            if te or value.lower() != "chunked":
                return None
            te = True
        elif k == _CONN_K:
            conn = value if conn is None else conn + "," + value
        else:
            expect = value.lower() == "100-continue"
    if hosts > 1 or (hosts == 0 and not http10):
        return None
    if te:  # h11 lower-cases this value
        fields = [(n, v.lower() if n == "transfer-encoding" else v) for n, v in fields]

    # h11 would read the same: ocsi's rules (incoming.py's, in its order)
    method = _METHODS.get(method_b) or method_b.decode("ascii")
    target_s = target.decode("latin-1")
    version_s = "1.0" if http10 else "1.1"
    try:
        if len(method_b) + len(target) + 10 > limits.max_request_line:
            raise HeadError(414, "request line too long")
        if len(fields) > limits.max_headers:
            raise HeadError(431, "too many header fields")
        if te:
            if cl is not None:
                raise HeadError(400, "both Content-Length and Transfer-Encoding")
            if http10:
                raise HeadError(400, "Transfer-Encoding in an HTTP/1.0 request")
        if (target_s[0] == "/" and "%" not in target_s and "/." not in target_s
                and "//" not in target_s and "#" not in target_s):
            # the common target: a plain path, nothing to decode or resolve
            q = target_s.find("?")
            if q < 0:
                raw_path, query = target_s, None
            else:
                raw_path, query = target_s[:q], target_s[q + 1:]
            raw_segments = segments = tuple(raw_path[1:].split("/"))
            authority = None
        else:
            try:
                raw_path, query, _scheme, authority = split_target(target_s)
                if raw_path == "*" and method != "OPTIONS":
                    raise BadTarget("'*' is only for OPTIONS")
                raw_segments, segments = decode_path(raw_path)
            except BadTarget as exc:
                raise HeadError(400, str(exc)) from None
        host_header = host = None
        if host_value is not None:
            host_header, host = host_text(host_value)
        if authority is not None:
            authority = authority.rpartition("@")[2]
            if not authority or not authority_ok(authority):
                raise HeadError(400, "invalid authority in the request-target")
            host = host_name(authority)
    except HeadError as exc:
        exc.method, exc.target, exc.version = method, target_s, version_s
        raise
    if conn is None:
        keep = not http10
    else:
        tokens = {t.strip() for t in conn.lower().split(",")}
        keep = "close" not in tokens and (not http10 or "keep-alive" in tokens)
    length = int(cl) if cl is not None else (None if te else 0)
    request = Request(method, target_s, raw_path, query, version_s, Headers.from_lower(fields),
                      host, port, secure, client, EMPTY_BODY, raw_segments, segments,
                      host_header)
    return request, length, expect and not http10 and length != 0, keep
