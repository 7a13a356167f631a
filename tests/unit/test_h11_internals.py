"""The h11 internals ocsi drives directly (``ocsi/_http/reader.py``, ``fasthead``): h11's
public ``Connection`` costs more than the parsing itself, so ocsi uses its readers and receive
buffer and pins h11 to the series they were checked against. If an h11 release changes them,
this test says what moved before the socket tests fail in less obvious ways."""

from __future__ import annotations

import h11
from h11._readers import READERS, maybe_read_from_IDLE_client
from h11._receivebuffer import ReceiveBuffer
from packaging.version import Version


def test_the_pinned_series() -> None:
    assert Version("0.16") <= Version(h11.__version__) < Version("0.17"), \
        "pyproject.toml pins h11 to 0.16.x: check reader.py against the new release first"


def test_the_readers_and_the_buffer_have_the_shapes_reader_py_uses() -> None:
    body = READERS[h11.SEND_BODY]
    assert {"chunked", "content-length", "http/1.0"} <= set(body)  # type: ignore[arg-type]
    assert callable(READERS[(h11.SERVER, h11.SEND_RESPONSE)])
    assert callable(READERS[(h11.SERVER, h11.DONE)])
    buf = ReceiveBuffer()
    buf += b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest"
    assert isinstance(buf._data, bytearray)  # noqa: SLF001 - fasthead looks for the head's end
    ev = maybe_read_from_IDLE_client(buf)
    assert isinstance(ev, h11.Request) and ev.target == b"/"
    assert list(ev.headers._full_items) == [(b"Host", b"host", b"a")]  # noqa: SLF001
    assert bytes(buf.maybe_extract_at_most(10) or b"") == b"rest"
