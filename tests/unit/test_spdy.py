"""SPDY/3 framing of kubectl's port-forward tunnel (atoll/agent/spdy.py), against frames built the
way client-go's spdystream builds them: one zlib context with SPDY/3's dictionary per direction."""

from __future__ import annotations

import struct
import zlib

import pytest

from atoll.agent import spdy


def header_block(headers: dict[str, str]) -> bytes:
    return struct.pack(">I", len(headers)) + b"".join(
        struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode() for k, v in headers.items())


class Client:
    """The client half: SYN_STREAM with compressed headers, data frames, pings."""

    def __init__(self) -> None:
        self.deflate = zlib.compressobj(zdict=spdy.HEADER_DICTIONARY)
        self.inflate = zlib.decompressobj(zdict=spdy.HEADER_DICTIONARY)

    def syn_stream(self, stream: int, headers: dict[str, str]) -> bytes:
        block = self.deflate.compress(header_block(headers)) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        payload = struct.pack(">IIBB", stream, 0, 0, 0) + block
        return struct.pack(">HHI", 0x8003, spdy.SYN_STREAM, len(payload)) + payload


def test_frames_split_anywhere_and_headers_share_one_zlib_context() -> None:
    client, reader = Client(), spdy.FrameReader()
    wire = (client.syn_stream(1, {"streamType": "error", "port": "80", "requestID": "0"})
            + client.syn_stream(3, {"streamtype": "data", "port": "80", "requestid": "0"})
            + spdy.FrameWriter.data(3, b"hello", fin=True)
            + struct.pack(">HHII", 0x8003, spdy.PING, 4, 7))
    frames = []
    for i in range(len(wire)):  # one byte per WebSocket message: boundaries mean nothing
        frames += reader.feed(wire[i:i + 1])
    assert [(f.control, f.type, f.stream_id) for f in frames] == [
        (True, spdy.SYN_STREAM, 1), (True, spdy.SYN_STREAM, 3), (False, 0, 3), (True, spdy.PING, 7)]
    assert reader.syn_stream_headers(frames[0]) == {"streamtype": "error", "port": "80", "requestid": "0"}
    assert reader.syn_stream_headers(frames[1]) == {"streamtype": "data", "port": "80", "requestid": "0"}
    assert frames[2].payload == b"hello" and frames[2].fin
    assert spdy.ping_id(frames[3]) == 7


def test_replies_decode_on_the_clients_context() -> None:
    client, writer = Client(), spdy.FrameWriter()
    for stream in (1, 3, 5):  # successive header blocks continue one compression stream
        frame = writer.syn_reply(stream)
        kind, length = struct.unpack_from(">HI", frame, 2)
        assert kind == spdy.SYN_REPLY and length & 0xFFFFFF == len(frame) - 8
        assert struct.unpack_from(">I", frame, 8)[0] == stream
        assert client.inflate.decompress(frame[12:]) == struct.pack(">I", 0)
    assert writer.ping(9) == struct.pack(">HHII", 0x8003, spdy.PING, 4, 9)
    assert spdy.FrameWriter.data(5, fin=True) == struct.pack(">II", 5, 0x01000000)


def test_other_versions_are_refused() -> None:
    with pytest.raises(spdy.ProtocolError, match="SPDY version 2"):
        spdy.FrameReader().feed(struct.pack(">HHI", 0x8002, spdy.PING, 4) + b"\0\0\0\1")


def test_a_header_block_that_inflates_without_bound_is_refused() -> None:
    """Regression (review): a small SYN_STREAM whose header block inflates to gigabytes (a deflate
    bomb) must end the session, not be decompressed whole in the agent."""
    client, reader = Client(), spdy.FrameReader()
    bomb = client.deflate.compress(header_block({"x": "0" * (64 << 20)})) + client.deflate.flush(zlib.Z_SYNC_FLUSH)
    assert len(bomb) < 128 * 1024  # 64 MiB of headers in a small frame
    payload = struct.pack(">IIBB", 1, 0, 0, 0) + bomb
    [frame] = reader.feed(struct.pack(">HHI", 0x8003, spdy.SYN_STREAM, len(payload)) + payload)
    with pytest.raises(spdy.ProtocolError, match="larger than"):
        reader.syn_stream_headers(frame)
