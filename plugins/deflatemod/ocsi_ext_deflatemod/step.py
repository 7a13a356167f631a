"""``<deflate>``: the output filter that compresses a found response.

On ``Found(response)`` the filter leaves the response alone unless every one of these holds:
status 2xx other than 204 and 206; a ``Content-Type`` whose media type the rules select (or a
sub-path whose suffix they select); no ``Content-Encoding`` other than ``identity``; no
``Content-Range``; no ``Cache-Control: no-transform``. For such a response the answer depends on
``Accept-Encoding``, so ``Vary: Accept-Encoding`` is added (merged into an existing ``Vary``)
whatever is chosen, and then:

* a coding is chosen (see :mod:`.negotiation`) → the body is compressed as a stream (chunked
  framing: the body length becomes unknown), ``Content-Encoding`` set, ``Content-Length``,
  ``Accept-Ranges`` and ``Content-MD5`` removed, a strong ``ETag`` weakened (``W/"…"``). A
  whole static file compressed before is answered from the cache (:mod:`.cache`), sized;
* the body is known to be shorter than ``<minsize>`` and identity is acceptable → sent as is;
* nothing acceptable and identity refused (``identity;q=0`` / ``*;q=0``) → 406;
* otherwise sent as is.

HEAD gets exactly the headers GET would get, without running an encoder (the source body is
closed at once and an empty stream takes its place; the connection layer sends no body for
HEAD). On ``NotFound`` the filter does nothing; final error pages never reach it.
"""

from __future__ import annotations

from collections.abc import Iterable

import ocsi
from ocsi import (
    DO_NOTHING,
    Answer,
    Body,
    BytesBody,
    Element,
    FileBody,
    Found,
    Headers,
    ParseContext,
    Request,
    Response,
    Serve,
    State,
    Step,
    StopAll,
    StreamBody,
)
from ocsi.httputil import has_token

from .codecs import encoder
from .negotiation import negotiate
from .options import EXTENSION, DeflateOptions, check_encodings
from .rules import Mode, Selection, media_type
from .stream import compressed_chunks, empty_chunks

_NOT_ACCEPTABLE = StopAll(406)
_TYPE_CACHE_MAX = 256


def add_vary(headers: Headers, token: str = "Accept-Encoding") -> None:
    """Add ``token`` to ``Vary`` unless it (or ``*``) is already there; one header line."""
    values = headers.get_list("vary")
    if not values:
        headers.set("vary", token)
        return
    low = token.lower()
    if any(v == "*" or v.lower() == low for v in values):
        return
    headers.set("vary", ", ".join([*values, token]))


def weak_etag(value: str) -> str:
    v = value.strip()
    return v if v.startswith("W/") else "W/" + v


class Deflate(Step):
    """The compression filter; build it with :func:`deflate` or from ``<deflate>``."""

    def __init__(self, selection: Selection, options: DeflateOptions | None = None,
                 where: str = "?") -> None:
        self.selection = selection
        self.options = options or DeflateOptions()
        self.where = where
        self._types: dict[str, bool] = {}

    # -- decisions -----------------------------------------------------------------------------
    def selects(self, content_type: str, request: Request) -> bool:
        """Whether the rules pick a response of this type for this request's sub-path."""
        sel = self.selection
        mtype = media_type(content_type)
        hit = self._types.get(mtype)
        if hit is None:
            hit = sel.type_matches(mtype)
            if len(self._types) < _TYPE_CACHE_MAX:
                self._types[mtype] = hit
        if not hit and sel.extensions:
            hit = sel.path_matches(request.sub_path_str)
        return hit if sel.mode == "only" else not hit

    async def handle(self, request: Request, state: State) -> Answer:
        if type(state) is not Found:
            return DO_NOTHING
        resp = state.response
        status = resp.status
        if status < 200 or status >= 300 or status == 204 or status == 206:
            return DO_NOTHING
        h = resp.headers
        ctype = h.get("content-type")
        if not ctype:
            return DO_NOTHING
        ce = h.get("content-encoding")
        if ce is not None and ce.strip().lower() != "identity":
            return DO_NOTHING
        if "content-range" in h or not self.selects(ctype, request):
            return DO_NOTHING
        if "cache-control" in h and has_token(h, "cache-control", "no-transform"):
            return DO_NOTHING

        ae = request.headers.get_all("accept-encoding")
        opts = self.options
        coding, identity_ok = negotiate(", ".join(ae) if ae else None, opts.encodings)
        body = resp.body
        if coding is None or (identity_ok and body.length is not None
                              and body.length < opts.min_size):
            if not identity_ok:
                return _NOT_ACCEPTABLE
            headers = h.copy()
            add_vary(headers)
            return Serve(Response(status, headers, body, resp.reason))

        headers = h.copy()
        headers.remove("content-length")
        headers.remove("accept-ranges")
        headers.remove("content-md5")
        headers.set("content-encoding", coding)
        add_vary(headers)
        etag = headers.get("etag")
        if etag is not None:
            headers.set("etag", weak_etag(etag))
        cache = opts.cache
        key = (cache.key(body, coding, opts.level)
               if type(body) is FileBody or type(body) is BytesBody else None)
        kept = cache.get(key) if key is not None else None
        new_body: Body
        if kept is not None:  # compressed before: a sized answer, as a static file is
            await body.aclose()
            new_body = BytesBody(kept)  # (for HEAD, the connection layer sends no body)
        elif request.method == "HEAD":
            await body.aclose()
            new_body = StreamBody(empty_chunks(), None)
        else:
            chunks = compressed_chunks(body, encoder(coding, opts.level), opts.buffer_size)
            if key is not None:
                chunks = cache.keeping(key, chunks)
            new_body = StreamBody(chunks, None, close=body.aclose)
        return Serve(Response(status, headers, new_body, resp.reason))

    def __repr__(self) -> str:
        return f"<Deflate {self.selection.mode} {self.options}>"


# -- Python constructor ----------------------------------------------------------------------------
def deflate(compress: Mode = "only", types: Iterable[str] = (), extensions: Iterable[str] = (),
            *, level: int = 6, buffer_size: int = 8192, min_size: int = 256,
            encodings: Iterable[str] | None = None) -> Deflate:
    """``deflate("only", types=["text/*", "application/javascript"])``.

    Without rules, ``"only"`` compresses nothing and ``"allbut"`` everything (the XML form
    requires at least one rule, as Ocsigen does).
    """
    if not 0 <= level <= 9:
        raise ValueError(f"level must be between 0 and 9, not {level}")
    if buffer_size <= 0 or min_size < 0:
        raise ValueError("buffer_size must be positive and min_size not negative")
    opts = DeflateOptions(level, buffer_size, min_size,
                          check_encodings(list(encodings)) if encodings is not None
                          else DeflateOptions().encodings)
    return Deflate(Selection.build(compress, types, extensions), opts, "<python>")


# -- XML -------------------------------------------------------------------------------------------
_HINT = ('write <deflate compress="only"><type>text/*</type><extension>.js</extension></deflate> '
         '(compress="allbut" compresses everything except what the rules name)')


@ocsi.documents(ocsi.ElementDoc(
    "deflate", "compresses the page found (zstd, br, gzip, deflate, as the client accepts) "
    "when the rules inside select it",
    attributes=[ocsi.AttributeDoc("compress", "only: compress what a rule selects; allbut: everything "
                                  "except what a rule selects", required=True)],
    children=[
        ocsi.ElementDoc("type", "a rule on the Content-Type", text="MAJOR/MINOR, `*` for any run "
                        "of characters (text/*, application/*+json)"),
        ocsi.ElementDoc("extension", "a rule on the request", text="a suffix of the decoded sub-path (.css)"),
    ]))
def parse_deflate(el: Element, ctx: ParseContext) -> Step:
    el.check(attributes=["compress"], children=["type", "extension"])
    mode = el.get("compress")
    if mode is None:
        raise el.error("missing attribute 'compress' in <deflate>", hint=_HINT)
    if mode not in ("only", "allbut"):
        raise el.error(f"attribute compress of <deflate> must be \"only\" or \"allbut\", "
                       f"not \"{mode}\"", hint=_HINT)
    kids = el.children
    if not kids:
        raise el.error("<deflate> needs at least one <type> or <extension> rule", hint=_HINT)
    types: list[str] = []
    exts: list[str] = []
    for kid in kids:
        kid.check(text=True)
        text = kid.text.strip()
        if kid.tag == "type":
            try:
                Selection.build("only", [text])
            except ValueError as exc:
                raise kid.error(f"bad <type>: {exc}",
                                hint="<type>text/*</type>, <type>application/json</type>") from None
            types.append(text)
        else:
            if not text:
                raise kid.error("empty <extension>", hint="<extension>.css</extension>")
            exts.append(text)
    opts = ctx.options(EXTENSION)
    if not isinstance(opts, DeflateOptions):
        opts = DeflateOptions()
    return Deflate(Selection.build(mode, types, exts), opts)
