"""Minimal SPDY/3.1 framing: the server half of what kubectl's port-forward tunnel speaks.

kubectl ≥ 1.31 runs port-forward as SPDY *inside* a WebSocket (subprotocol
``SPDY/3.1+portforward.k8s.io``, KEP-4006): each binary message carries the next bytes of the
SPDY connection, message boundaries mean nothing. No maintained Python SPDY library exists
(SPDY was superseded by HTTP/2), and port-forward needs little of it, so this module implements
the frames client-go's ``spdystream`` sends or expects (draft 3 framing):

- control frames ``SYN_STREAM`` (parsed: stream id and its header block), ``SYN_REPLY``,
  ``RST_STREAM``, ``PING`` (echoed), ``GOAWAY``; ``SETTINGS``, ``HEADERS`` and ``WINDOW_UPDATE``
  are read and ignored (spdystream does no flow control);
- data frames with the ``FIN`` flag (half-close).

Header blocks are zlib streams with SPDY/3's preset dictionary, one compression context per
direction for the whole connection (each block ends with a sync flush).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
RST_PROTOCOL_ERROR, RST_REFUSED_STREAM, RST_CANCEL = 1, 3, 5
MAX_FRAME = 1 << 24
MAX_HEADER_BLOCK = 256 * 1024
"""Largest decompressed SYN_STREAM header block accepted (kubectl's are ~100 bytes): a deflate bomb
in a 16 MiB frame would otherwise inflate to gigabytes in the agent."""

HEADER_DICTIONARY = (
    b'\x00\x00\x00\x07options\x00\x00\x00\x04head\x00\x00\x00\x04post\x00\x00\x00\x03put\x00\x00\x00\x06del'
    b'ete\x00\x00\x00\x05trace\x00\x00\x00\x06accept\x00\x00\x00\x0eaccept-charset\x00\x00\x00\x0faccept-en'
    b'coding\x00\x00\x00\x0faccept-language\x00\x00\x00\raccept-ranges\x00\x00\x00\x03age\x00\x00\x00\x05al'
    b'low\x00\x00\x00\rauthorization\x00\x00\x00\rcache-control\x00\x00\x00\nconnection\x00\x00\x00\x0ccont'
    b'ent-base\x00\x00\x00\x10content-encoding\x00\x00\x00\x10content-language\x00\x00\x00\x0econtent-lengt'
    b'h\x00\x00\x00\x10content-location\x00\x00\x00\x0bcontent-md5\x00\x00\x00\rcontent-range\x00\x00\x00'
    b'\x0ccontent-type\x00\x00\x00\x04date\x00\x00\x00\x04etag\x00\x00\x00\x06expect\x00\x00\x00\x07expires'
    b'\x00\x00\x00\x04from\x00\x00\x00\x04host\x00\x00\x00\x08if-match\x00\x00\x00\x11if-modified-since\x00'
    b'\x00\x00\rif-none-match\x00\x00\x00\x08if-range\x00\x00\x00\x13if-unmodified-since\x00\x00\x00\rlast-'
    b'modified\x00\x00\x00\x08location\x00\x00\x00\x0cmax-forwards\x00\x00\x00\x06pragma\x00\x00\x00\x12pro'
    b'xy-authenticate\x00\x00\x00\x13proxy-authorization\x00\x00\x00\x05range\x00\x00\x00\x07referer\x00'
    b'\x00\x00\x0bretry-after\x00\x00\x00\x06server\x00\x00\x00\x02te\x00\x00\x00\x07trailer\x00\x00\x00'
    b'\x11transfer-encoding\x00\x00\x00\x07upgrade\x00\x00\x00\nuser-agent\x00\x00\x00\x04vary\x00\x00\x00'
    b'\x03via\x00\x00\x00\x07warning\x00\x00\x00\x10www-authenticate\x00\x00\x00\x06method\x00\x00\x00\x03g'
    b'et\x00\x00\x00\x06status\x00\x00\x00\x06200 OK\x00\x00\x00\x07version\x00\x00\x00\x08HTTP/1.1\x00\x00'
    b'\x00\x03url\x00\x00\x00\x06public\x00\x00\x00\nset-cookie\x00\x00\x00\nkeep-alive\x00\x00\x00\x06orig'
    b'in100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505203 Non-A'
    b'uthoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized403 Forbidd'
    b'en404 Not Found500 Internal Server Error501 Not Implemented503 Service UnavailableJan Feb Mar Apr May'
    b' Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/'
    b'png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivat'
    b'emax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.'
)
"""SPDY/3's zlib dictionary for header blocks (draft 3, section 2.6.10.1)."""


class ProtocolError(Exception):
    """The peer sent something that is not SPDY/3."""


@dataclass(frozen=True, slots=True)
class Frame:
    control: bool
    type: int  # control frame type; 0 for data frames
    flags: int
    stream_id: int  # data frames and stream-scoped control frames; 0 otherwise
    payload: bytes

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


class FrameReader:
    """Splits the bytes of a connection into frames and decodes header blocks."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._inflate = zlib.decompressobj(zdict=HEADER_DICTIONARY)

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        while len(self._buf) >= 8:
            first, second = struct.unpack_from(">II", self._buf)
            length = second & 0xFFFFFF
            if len(self._buf) < 8 + length:
                break
            payload = bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            flags = second >> 24
            if first & 0x80000000:
                version, kind = (first >> 16) & 0x7FFF, first & 0xFFFF
                if version != VERSION:
                    raise ProtocolError(f"SPDY version {version} is not supported (3 is)")
                stream = struct.unpack_from(">I", payload)[0] & 0x7FFFFFFF if len(payload) >= 4 else 0
                frames.append(Frame(True, kind, flags, stream, payload))
            else:
                frames.append(Frame(False, 0, flags, first & 0x7FFFFFFF, payload))
        return frames

    def syn_stream_headers(self, frame: Frame) -> dict[str, str]:
        """The headers of a ``SYN_STREAM`` (names lower case, multiple values joined with ``,``)."""
        if len(frame.payload) < 10:
            raise ProtocolError("SYN_STREAM frame too short")
        try:
            block = self._inflate.decompress(frame.payload[10:], MAX_HEADER_BLOCK)
        except zlib.error as exc:
            raise ProtocolError(f"SYN_STREAM header block: {exc}") from None
        if self._inflate.unconsumed_tail:
            raise ProtocolError(f"SYN_STREAM header block larger than {MAX_HEADER_BLOCK} bytes")
        return parse_header_block(block)


def parse_header_block(block: bytes) -> dict[str, str]:
    try:
        (count,) = struct.unpack_from(">I", block)
        pos, headers = 4, {}
        for _ in range(count):
            (size,) = struct.unpack_from(">I", block, pos)
            name = block[pos + 4:pos + 4 + size].decode("latin-1").lower()
            pos += 4 + size
            (size,) = struct.unpack_from(">I", block, pos)
            headers[name] = block[pos + 4:pos + 4 + size].replace(b"\0", b",").decode("latin-1")
            pos += 4 + size
    except struct.error:
        raise ProtocolError("truncated SPDY header block") from None
    return headers


class FrameWriter:
    """Encodes the frames a server sends; header blocks share one compression context, so
    frames carrying them must be sent in the order they were made."""

    def __init__(self) -> None:
        self._deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY,
                                         zdict=HEADER_DICTIONARY)

    @staticmethod
    def _control(kind: int, flags: int, payload: bytes) -> bytes:
        return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload

    def syn_reply(self, stream_id: int, headers: dict[str, str] | None = None, *, fin: bool = False) -> bytes:
        items = sorted((headers or {}).items())
        block = struct.pack(">I", len(items)) + b"".join(
            struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode() for k, v in items)
        packed = self._deflate.compress(block) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        return self._control(SYN_REPLY, FLAG_FIN if fin else 0, struct.pack(">I", stream_id) + packed)

    @staticmethod
    def data(stream_id: int, data: bytes = b"", *, fin: bool = False) -> bytes:
        if len(data) >= MAX_FRAME:
            raise ValueError("a SPDY data frame carries less than 16 MiB")
        return struct.pack(">II", stream_id, ((FLAG_FIN if fin else 0) << 24) | len(data)) + data

    def rst_stream(self, stream_id: int, status: int) -> bytes:
        return self._control(RST_STREAM, 0, struct.pack(">II", stream_id, status))

    def ping(self, ping_id: int) -> bytes:
        return self._control(PING, 0, struct.pack(">I", ping_id))

    def goaway(self, last_stream: int, status: int = 0) -> bytes:
        return self._control(GOAWAY, 0, struct.pack(">II", last_stream, status))


def ping_id(frame: Frame) -> int:
    return int(struct.unpack_from(">I", frame.payload)[0]) if len(frame.payload) >= 4 else 0
