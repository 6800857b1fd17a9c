"""A streaming HTTP response that does not leak aiohttp: raw chunks or newline-delimited lines.

Watch streams and ``pods/log?follow=true`` are long-lived chunked responses. ``StreamReader.readline``
refuses lines above its 128 KiB high-water mark, and a watch event carrying a 1 MiB ConfigMap is
one line, so lines are split here from raw chunks with one growing buffer (no per-chunk copies of
the tail). Transport failures in the middle of a stream surface as :class:`ClientConnectionError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from types import TracebackType

import aiohttp

from atoll.client.errors import ClientConnectionError, ClientTimeoutError


class StreamResponse:
    """An open 2xx response; iterate :meth:`chunks` or :meth:`lines`, then :meth:`close`."""

    def __init__(self, response: aiohttp.ClientResponse, what: str) -> None:
        self._response = response
        self._what = what

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        """Raw body bytes as they arrive."""
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise ClientTimeoutError(f"{self._what}: no data within the read timeout") from exc
        except aiohttp.ClientError as exc:
            raise ClientConnectionError(f"{self._what}: stream broken: {exc}") from exc

    async def lines(self) -> AsyncIterator[bytes]:
        """Complete non-empty lines without the trailing newline; a final unterminated line too."""
        buffer = bytearray()
        async for chunk in self.chunks():
            start = len(buffer)
            buffer += chunk
            newline = buffer.find(b"\n", start)
            if newline < 0:
                continue
            begin = 0
            while newline >= 0:
                if newline > begin:
                    yield bytes(buffer[begin:newline])
                begin = newline + 1
                newline = buffer.find(b"\n", begin)
            del buffer[:begin]
        if buffer.strip():
            yield bytes(buffer)

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> StreamResponse:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> StreamResponse:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
