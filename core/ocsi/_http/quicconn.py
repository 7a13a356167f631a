"""The QUIC connection under HTTP/3: aioquic's, with the certificate chosen by SNI and request
streams' windows that follow their body's reading.

aioquic offers no hook for either choice, so :class:`FlowControlled` overrides two of its
private methods; they are kept here, apart from the HTTP/3 streams (:mod:`.h3conn`), so that
what depends on aioquic's internals is in one place to check when aioquic changes.

Private: not part of the extension API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aioquic.quic.connection import QuicConnection
from aioquic.tls import pull_client_hello

if TYPE_CHECKING:
    from aioquic._buffer import Buffer
    from aioquic.quic.packet_builder import QuicPacketBuilder
    from aioquic.quic.recovery import QuicPacketSpace
    from aioquic.quic.stream import QuicStream

#: Concurrent request streams a client may open (QUIC's MAX_STREAMS).
MAX_STREAMS = 100
#: Bytes a client may send on a request stream beyond what has arrived, while its body has room
#: (the first window too: a stream's head and body start within it).
STREAM_WINDOW = 128 * 1024

#: ``(certificate, chain, private key)`` as aioquic's TLS wants them.
CertificateChain = tuple[Any, list[Any], Any]


class FlowControlled(QuicConnection):
    """aioquic's QUIC connection with two choices of ours, in the two places it offers none:

    - the certificate is chosen by the name the client sent (SNI), by ``choose`` (the
      endpoint's, over ``<host certificate>`` and ``<ssl>``);
    - a request stream's window grows only once its head is accepted and while its body has
      room (``paused`` holds the streams whose body is full): aioquic would double it whenever
      half of it is used, whatever the application has read.
    """

    def __init__(self, *, choose: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self.choose = choose
        self.paused: set[int] = set()
        #: Request streams whose head was accepted; the others keep the first window, so a
        #: head cannot grow past it (nor past ``<maxheadersize>``, checked once it is whole).
        self.started: set[int] = set()
        bidi = self._local_max_streams_bidi
        bidi.value = bidi.sent = MAX_STREAMS

    def _initialize(self, peer_cid: bytes) -> None:
        super()._initialize(peer_cid)
        tls = self.tls
        handle = tls._server_handle_hello

        def hello(input_buf: Buffer, initial_buf: Buffer, handshake_buf: Buffer) -> None:
            start = input_buf.tell()
            try:
                name = pull_client_hello(input_buf).server_name
            except Exception:  # noqa: BLE001 - aioquic's own parsing reports it below
                name = None
            input_buf.seek(start)
            tls.certificate, tls.certificate_chain, tls.certificate_private_key = \
                self.choose(name)
            handle(input_buf, initial_buf, handshake_buf)

        tls._server_handle_hello = hello  # type: ignore[method-assign]

    def _write_stream_limits(self, builder: QuicPacketBuilder, space: QuicPacketSpace,
                             stream: QuicStream) -> None:
        sid = stream.stream_id
        if sid is None or sid % 4 != 0:  # not a request stream: aioquic's way
            super()._write_stream_limits(builder, space, stream)
            return
        if sid in self.started and sid not in self.paused:
            target = stream.receiver.highest_offset + STREAM_WINDOW
            if target - stream.max_stream_data_local >= STREAM_WINDOW // 2:
                stream.max_stream_data_local = target
        if stream.max_stream_data_local_sent != stream.max_stream_data_local:
            # aioquic writes the frame; its doubling (on highest_offset) is kept out of it
            receiver = stream.receiver
            highest, receiver.highest_offset = receiver.highest_offset, 0
            try:
                super()._write_stream_limits(builder, space, stream)
            finally:
                receiver.highest_offset = highest

