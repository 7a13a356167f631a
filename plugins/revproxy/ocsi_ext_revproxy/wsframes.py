"""Bounding the WebSocket messages relayed through the proxy (``websocket-max-message``).

The relay passes the bytes on unchanged, so what the client and the backend agreed on
(subprotocols, ``permessage-deflate``) keeps working; only the frame *heads* (RFC 6455 §5.2,
2 to 14 bytes) are read, to add up each message's payload. A frame whose announced length would
take its message past the bound is not relayed at all: the relay stops just before it and closes
the WebSocket with ``1009`` (message too big), as the ASGI extension does for an application.
A decoding library (wsproto) would unmask and re-frame every byte, and could not relay
extensions it does not implement; reading heads needs no more than this.
"""

from __future__ import annotations

import struct

CLOSE_TOO_BIG = 1009
_OP_CONTINUATION = 0x0
_OP_CLOSE = 0x8


class FrameScanner:
    """Follows the frames of one direction. :meth:`feed` returns the bytes that may be relayed
    and whether a message went past ``max_message``; a frame head cut between two reads is
    held back until it is whole (at most 14 bytes)."""

    __slots__ = ("max_message", "_head", "_remaining", "_message", "too_big")

    def __init__(self, max_message: int) -> None:
        self.max_message = max_message
        self._head = b""        # the start of a frame head not yet whole
        self._remaining = 0     # payload bytes of the current frame still to come
        self._message = 0       # payload bytes of the current data message so far
        self.too_big = False

    @property
    def at_boundary(self) -> bool:
        """Between two frames, with nothing held: a frame of the relay's own may go now."""
        return self._remaining == 0 and not self._head

    def feed(self, data: bytes) -> bytes:
        """The part of ``data`` to relay; after a message too big, ``too_big`` is set and
        nothing more is relayed."""
        if self.too_big:
            return b""
        out = bytearray()
        view = memoryview(data)
        while view:
            if self._remaining:
                n = min(self._remaining, len(view))
                out += view[:n]
                view = view[n:]
                self._remaining -= n
                continue
            head = self._head + bytes(view[:14 - len(self._head)])
            size = _head_size(head)
            if size is None or len(head) < size:
                self._head = head  # what was left of ``data`` is all in it
                break
            taken = size - len(self._head)
            opcode, payload = _parse_head(head[:size])
            if opcode < _OP_CLOSE:  # a data frame (control frames are at most 125 bytes)
                total = (0 if opcode != _OP_CONTINUATION else self._message) + payload
                if total > self.max_message:
                    self.too_big = True
                    self._head = b""
                    return bytes(out)
                self._message = total if not head[0] & 0x80 else 0
            out += head[:size]
            self._head = b""
            view = view[taken:]
            self._remaining = payload
        return bytes(out)


def _head_size(head: bytes) -> int | None:
    """The length of a frame head from its first two bytes; ``None`` with fewer."""
    if len(head) < 2:
        return None
    length = head[1] & 0x7F
    size = 2 + (2 if length == 126 else 8 if length == 127 else 0)
    return size + (4 if head[1] & 0x80 else 0)


def _parse_head(head: bytes) -> tuple[int, int]:
    """``(opcode, payload length)`` of a whole frame head."""
    length = head[1] & 0x7F
    if length == 126:
        length = struct.unpack_from(">H", head, 2)[0]
    elif length == 127:
        length = struct.unpack_from(">Q", head, 2)[0]
    return head[0] & 0x0F, length


def close_frame(code: int, masked: bool) -> bytes:
    """A Close frame with ``code`` and no reason; ``masked`` toward a server (the backend: the
    proxy is its client), with a fresh key (RFC 6455 §5.3)."""
    import os

    payload = struct.pack(">H", code)
    if not masked:
        return bytes([0x88, len(payload)]) + payload
    key = os.urandom(4)
    return bytes([0x88, 0x80 | len(payload)]) + key + bytes(
        b ^ key[i % 4] for i, b in enumerate(payload))
