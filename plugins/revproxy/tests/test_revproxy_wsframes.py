"""The frame-head scanner that bounds relayed WebSocket messages, on frames wsproto makes,
fed whole and cut at every size."""

from __future__ import annotations

from ocsi_ext_revproxy.wsframes import FrameScanner
from wsproto.frame_protocol import FrameProtocol


def _frames() -> tuple[bytes, list[int]]:
    fp = FrameProtocol(client=True, extensions=[])
    parts = [fp.send_data(b"a" * 100, fin=False), fp.send_data(b"b" * 50, fin=True),
             fp.ping(b"x"), fp.send_data("x" * 70000, fin=True), fp.send_data(b"c" * 10)]
    return b"".join(parts), [len(p) for p in parts]


FRAMES = _frames()  # once: the masking keys are random


def _run(limit: int, step: int) -> tuple[bytes, FrameScanner]:
    data, _ = FRAMES
    s = FrameScanner(limit)
    return b"".join(s.feed(data[i:i + step]) for i in range(0, len(data), step)), s


def test_everything_under_the_bound_passes_unchanged() -> None:
    data, _ = FRAMES
    for step in (1, 2, 3, 7, 13, 4096, len(data)):
        out, s = _run(70000, step)
        assert out == data and s.at_boundary and not s.too_big


def test_relaying_stops_before_the_frame_that_passes_the_bound() -> None:
    _, sizes = FRAMES
    for step in (1, 5, 4096):
        out, s = _run(149, step)  # the fragmented message is 150 bytes
        assert s.too_big and len(out) == sizes[0] and s.at_boundary
        out, s = _run(69999, step)  # the 70000-byte message (a 64-bit length head)
        assert s.too_big and len(out) == sum(sizes[:3])
