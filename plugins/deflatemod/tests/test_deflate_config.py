"""Parsing ``<deflate>`` and the extension options: values, defaults, located errors; the step
used directly (closing the producer's body)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from ocsi import BytesBody, ConfigError, Found, NotFound, Response, Serve, StopAll
from ocsi.testing import build_pipeline, make_request
from ocsi_ext_deflatemod import Deflate, DeflateOptions, deflate
from ocsi_ext_deflatemod.codecs import AVAILABLE

EXT = '<extension findlib-package="ocsi-ext-deflatemod">{}</extension>\n'


def build(body: str, options: str = "") -> Any:
    return build_pipeline(EXT.format(options) + f'<host hostfilter="*">\n{body}\n</host>')


def error_of(body: str, options: str = "") -> str:
    with pytest.raises(ConfigError) as e:
        build(body, options)
    return str(e.value)


def the_step(body: str, options: str = "") -> Deflate:
    step = build(body, options).hosts[0].steps[0]
    assert isinstance(step, Deflate)
    return step


@pytest.mark.parametrize("body, message", [
    ("<deflate><type>text/*</type></deflate>", "missing attribute 'compress' in <deflate>"),
    ('<deflate compress="some"><type>text/*</type></deflate>', 'must be "only" or "allbut"'),
    ('<deflate compress="only"/>', "needs at least one <type> or <extension> rule"),
    ('<deflate compress="only"><type>text</type></deflate>', "bad <type>"),
    ('<deflate compress="only"><type>a/b/c</type></deflate>', "bad <type>"),
    ('<deflate compress="only"><extension> </extension></deflate>', "empty <extension>"),
    ('<deflate compress="only"><mime>text/*</mime></deflate>', "unknown element <mime>"),
    ('<deflate compress="only" level="1"><type>text/*</type></deflate>', "unknown attribute 'level'"),
    ('<deflate compress="only"><type q="1">text/*</type></deflate>', "unknown attribute 'q'"),
])
def test_element_errors(body: str, message: str) -> None:
    text = error_of(body)
    assert message in text and text.startswith("<test>:3"), text


@pytest.mark.parametrize("options, message", [
    ('<compress level="high"/>', "Compress level should be an integer between 0 and 9"),
    ("<compress/>", "missing attribute 'level'"),
    ('<buffer size="lots"/>', "is not a valid size"),
    ('<minsize size="x"/>', "is not a valid size"),
    ('<encodings value="gzip lzma"/>', "unknown coding 'lzma'"),
    ('<encodings value=""/>', "no coding given"),
    ('<level value="1"/>', "Unexpected content inside deflatemod config"),
])
def test_option_errors(options: str, message: str) -> None:
    text = error_of('<deflate compress="only"><type>text/*</type></deflate>', options)
    assert message in text and text.startswith("<test>:1"), text


def test_options_values_and_defaults(caplog: pytest.LogCaptureFixture) -> None:
    rule = '<deflate compress="only"><type>text/*</type></deflate>'
    assert the_step(rule).options == DeflateOptions(6, 8192, 256, AVAILABLE)
    o = the_step(rule, '<compress level="1"/><buffer size="16KiB"/><minsize size="0"/>'
                       '<encodings value="DEFLATE, x-gzip"/>').options
    assert o == DeflateOptions(1, 16384, 0, ("deflate", "gzip"))
    with caplog.at_level(logging.WARNING):
        o = the_step(rule, '<compress level="12"/><buffer size="0"/>').options
    assert (o.level, o.buffer_size) == (6, 8192)
    assert "compress level 12" in caplog.text and "buffer size must be positive" in caplog.text


def test_python_constructor() -> None:
    d = deflate("allbut", types=["image/*"], level=1, encodings=["gzip"])
    assert d.options == DeflateOptions(1, 8192, 256, ("gzip",))
    for bad in (dict(compress="some"), dict(level=10), dict(buffer_size=0),
                dict(encodings=["lzma"]), dict(types=["text"])):
        with pytest.raises(ValueError):
            deflate(**bad)  # type: ignore[arg-type]  # wrong on purpose


class ClosingBody(BytesBody):
    closed = 0

    async def aclose(self) -> None:
        self.closed += 1


def handle(step: Any, method: str, body: BytesBody, accept: str = "gzip") -> Any:
    req = make_request(method, "/x", headers={"accept-encoding": accept})
    resp = Response(200, [("content-type", "text/plain")], body)
    return asyncio.run(step.handle(req, Found(resp)))


def test_producer_body_closed() -> None:
    step = deflate("only", ["text/*"])
    src = ClosingBody(b"x" * 5000)
    ans = handle(step, "GET", src)
    assert isinstance(ans, Serve) and src.closed == 0

    async def drain() -> bytes:
        data = b"".join([c async for c in ans.response.body.chunks()])
        await ans.response.body.aclose()
        return data
    asyncio.run(drain())
    assert src.closed >= 1
    src = ClosingBody(b"x" * 5000)
    asyncio.run(handle(step, "GET", src).response.body.aclose())   # dropped unread
    assert src.closed >= 1
    src = ClosingBody(b"x" * 5000)
    ans = handle(step, "HEAD", src)
    assert src.closed == 1 and ans.response.body.length is None


def test_answers_on_states() -> None:
    step = deflate("only", ["text/*"])
    req = make_request("GET", "/x", headers={"accept-encoding": "identity;q=0"})
    from ocsi import DO_NOTHING
    assert asyncio.run(step.handle(req, NotFound(404))) is DO_NOTHING
    assert asyncio.run(step.handle(req, NotFound(403))) is DO_NOTHING
    ans = handle(step, "GET", BytesBody(b"x" * 5000), accept="identity;q=0")
    assert ans == StopAll(406)
