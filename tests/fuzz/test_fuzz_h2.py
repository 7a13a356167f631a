"""Random HTTP/2 frame sequences never kill the server or a worker.

ocsi runs as a process with two workers, on an h2c port (HTTP/2 with prior knowledge, so the
frames are the test's, not TLS's), serving a static file. Each example opens a connection and
sends a sequence, then half-closes and reads until the server closes:

- from h2's client: requests with and without bodies, data past the window, resets, settings
  changes, pings, window updates, priorities, closes, in any order (what h2 refuses to send is
  skipped);
- raw frames after the preface: every frame type and unknown ones, random flags, stream ids
  (0, even, the largest), lengths that lie, settings with out-of-range values, window updates
  of 0 and past 2^31, HPACK blocks of random bytes, CONTINUATION out of place, self-dependent
  priorities.

After each sequence a fresh HTTP/2 connection must get the file; at the end the two workers
must be the ones that started (none died and was replaced), and the error log holds no
traceback.
"""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path

import h2.config
import h2.connection
import h2.exceptions
import h2.settings
import pytest
from fuzz_settings import budget
from hypothesis import given
from hypothesis import strategies as st

from ocsi.testing import H2Client

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
CONTENT = b"h2 fuzz target\n"
STREAMS = [0, 1, 2, 3, 5, 7, 0x7FFFFFFF]


def workers(pid: int) -> set[int]:
    """The master's children, from /proc."""
    pids: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            pids |= {int(p) for p in (task / "children").read_text().split()}
        except OSError:
            pass
    return pids


def both_workers(pid: int) -> set[int]:
    """The two workers, once the master has forked them (it listens before it forks)."""
    deadline = time.monotonic() + 30
    while len(found := workers(pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(found) == 2, found
    return found


@pytest.fixture(scope="module")
def h2c(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from ocsi.testing import ServerProcess

    tmp = tmp_path_factory.mktemp("h2fuzz")
    (tmp / "www").mkdir()
    (tmp / "www" / "a.txt").write_bytes(CONTENT)
    srv = ServerProcess(
        '<ocsigen><server><port h2c="true">127.0.0.1:{port}</port><logdir>{tmp}/log</logdir>'
        '<extension findlib-package="ocsi-ext-staticmod"/>'
        f'<host><static dir="{tmp}/www"/></host></server></ocsigen>',
        tmp, full=True, args=["--workers", "2"])
    yield srv
    srv.finish()


def still_answered(port: int) -> None:
    client = H2Client(port, tls=False)
    sid = client.request("/a.txt")
    got = client.responses(1)
    client.sock.close()
    assert got[sid][1] == CONTENT, got


def send_and_drain(port: int, data: bytes) -> None:
    """Send ``data``, half-close, read until the server closes (or resets)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
        except (ConnectionResetError, BrokenPipeError):
            pass


ACTIONS = st.one_of(
    st.tuples(st.just("request"), st.sampled_from(["GET", "POST", "HEAD", "PUT", "CONNECT", "OPTIONS"]),
              st.sampled_from(["/a.txt", "/", "/nope", "*", "/a.txt?x", "//..", ""]), st.booleans()),
    st.tuples(st.just("data"), st.integers(0, 70000), st.booleans()),
    st.tuples(st.just("reset"), st.integers(0, 13)),
    st.tuples(st.just("settings"), st.sampled_from(list(h2.settings.SettingCodes)), st.integers(0, 2**31)),
    st.tuples(st.just("ping")),
    st.tuples(st.just("window"), st.integers(1, 2**31 - 1), st.booleans()),
    st.tuples(st.just("priority"), st.integers(1, 256), st.booleans()),
    st.tuples(st.just("close"), st.integers(0, 13)),
    st.tuples(st.just("trailers")),
)


def client_bytes(actions: list[tuple[object, ...]]) -> bytes:
    """What h2's client sends for ``actions`` (those it refuses are skipped)."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    streams: list[int] = []
    for action in actions:
        kind = action[0]
        try:
            if kind == "request":
                _, method, path, end = (str(a) for a in action)
                sid = conn.get_next_available_stream_id()
                headers = [(":method", method), (":path", path), (":scheme", "http"), (":authority", "localhost")]
                if method == "CONNECT":
                    headers = [(":method", "CONNECT"), (":authority", "localhost:80")]
                conn.send_headers(sid, headers, end_stream=end == "True")
                streams.append(sid)
            elif kind == "data" and streams:
                conn.send_data(streams[-1], b"x" * int(action[1]), end_stream=bool(action[2]))  # type: ignore[call-overload]
            elif kind == "reset" and streams:
                conn.reset_stream(streams[-1], error_code=int(action[1]))  # type: ignore[call-overload]
            elif kind == "settings":
                conn.update_settings({action[1]: int(action[2])})  # type: ignore[call-overload, dict-item]
            elif kind == "ping":
                conn.ping(b"12345678")
            elif kind == "window":
                conn.increment_flow_control_window(int(action[1]),  # type: ignore[call-overload]
                                                   stream_id=streams[-1] if action[2] and streams else None)
            elif kind == "priority" and streams:
                conn.prioritize(streams[-1], weight=int(action[1]),  # type: ignore[call-overload]
                                depends_on=streams[0] if action[2] else 0)
            elif kind == "close":
                conn.close_connection(error_code=int(action[1]))  # type: ignore[call-overload]
            elif kind == "trailers" and streams:
                conn.send_headers(streams[-1], [("x-trailer", "t")], end_stream=True)
        except (h2.exceptions.H2Error, ValueError, KeyError):
            # h2 refuses to send it (KeyError: a stream it has already forgotten): not a
            # sequence a client can produce through h2
            pass
    return conn.data_to_send()


def frame(kind: int, flags: int, sid: int, payload: bytes, length: int | None = None) -> bytes:
    n = len(payload) if length is None else length
    return n.to_bytes(3, "big") + bytes([kind, flags]) + (sid & 0xFFFFFFFF).to_bytes(4, "big") + payload


HPACK_GET = bytes([0x82, 0x86, 0x84, 0x41, 0x09]) + b"localhost"  # GET http / :authority localhost
PAYLOADS = st.one_of(
    st.binary(max_size=64),
    st.just(HPACK_GET),
    st.lists(st.tuples(st.integers(0, 10), st.sampled_from([0, 1, 2**14 - 1, 2**14, 2**24, 2**31, 2**32 - 1])),
             max_size=4).map(lambda items: b"".join(struct.pack(">HI", k, v) for k, v in items)),
    st.sampled_from([0, 1, 2**31 - 1, 2**31, 2**32 - 1]).map(lambda v: struct.pack(">I", v)),
    st.integers(0, 2**31 - 1).map(lambda dep: struct.pack(">IB", dep, 255)),
)
RAW = st.tuples(st.sampled_from(list(range(0, 11)) + [0x0B, 0x10, 0xFF]), st.integers(0, 255),
                st.sampled_from(STREAMS), PAYLOADS,
                st.sampled_from([None, None, None, 0, 1, 2**14 + 1, 2**24 - 1]))


def test_frames_from_h2s_client_never_kill_the_server(h2c) -> None:  # type: ignore[no-untyped-def]
    before = both_workers(h2c.proc.pid)

    @budget(100)
    @given(st.lists(ACTIONS, min_size=1, max_size=12))
    def sequence(actions: list[tuple[object, ...]]) -> None:
        send_and_drain(h2c.port, client_bytes(actions))
        still_answered(h2c.port)

    sequence()
    assert workers(h2c.proc.pid) == before
    assert "Traceback" not in h2c.log("errors")


def test_raw_frames_never_kill_the_server(h2c) -> None:  # type: ignore[no-untyped-def]
    before = both_workers(h2c.proc.pid)

    @budget(150)
    @given(st.lists(RAW, min_size=1, max_size=8), st.booleans())
    def sequence(frames: list[tuple[int, int, int, bytes, int | None]], settings_first: bool) -> None:
        data = PREFACE + (frame(4, 0, 0, b"") if settings_first else b"")
        data += b"".join(frame(*f) for f in frames)
        send_and_drain(h2c.port, data)
        still_answered(h2c.port)

    sequence()
    assert workers(h2c.proc.pid) == before
    assert "Traceback" not in h2c.log("errors")
