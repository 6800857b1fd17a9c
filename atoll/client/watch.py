"""Watch streaming: one long-lived chunked GET decoded into ``(type, object)`` events.

A watch is ``GET …?watch=true`` answered with newline-delimited ``WatchEvent`` JSON
(:meth:`StreamResponse.lines` splits it). ``BOOKMARK`` events are asked for by default and passed
through; an ``ERROR`` event ends the stream with its ``APIError`` (``Gone`` for an expired
resourceVersion, so informers relist). Each event line is decoded once, straight from the stream.
A client with a ``local`` backend (:mod:`atoll.client.local`) watches in-process instead.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any

import orjson

from atoll.api.errors import InternalError, from_status
from atoll.api.registry import ResourceDef
from atoll.client.errors import ERROR_TEXT_LIMIT
from atoll.client.local import local_mode
from atoll.client.paths import resource_path
from atoll.client.stream import StreamResponse
from atoll.client.transport import JSON, Transport


class WatchVerbs(Transport):
    """The ``watch`` verb, on top of the transport (a base class of :class:`atoll.client.Client`)."""

    def watch(
        self,
        rd: ResourceDef,
        namespace: str | None = None,
        *,
        resource_version: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = True,
        send_initial_events: bool | None = None,
        inactivity_timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncGenerator[tuple[str, JSON], None]:
        """Yield ``(type, object)`` until the server ends the stream. An ``ERROR`` event raises its
        APIError (``Gone`` for 410); silence longer than ``inactivity_timeout`` raises
        :class:`ClientTimeoutError`. Use ``contextlib.aclosing`` to stop early. With a ``local``
        backend the objects are the server's cached dicts (read-only) and no connection can go
        silent (``inactivity_timeout`` is moot). ``send_initial_events`` True (client-go's watch-list):
        the current state as ADDED events first, not older than ``resource_version`` ("" or None:
        the newest), then (with bookmarks) a BOOKMARK annotated ``k8s.io/initial-events-end``."""
        params = {
            "watch": True,
            "resourceVersion": resource_version,
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "timeoutSeconds": timeout_seconds,
            "allowWatchBookmarks": True if allow_bookmarks else None,
            "sendInitialEvents": send_initial_events,
            "resourceVersionMatch": None if send_initial_events is None else "NotOlderThan",
        }
        local = self.local
        if local is not None and local.serves(rd):
            mode = local_mode(headers)
            if mode is not None:
                return local.watch(rd, namespace, params, metadata_only=mode)
        return self._watch_http(rd, namespace, params, inactivity_timeout, headers)

    async def _watch_http(
        self,
        rd: ResourceDef,
        namespace: str | None,
        params: Mapping[str, Any],
        inactivity_timeout: float | None,
        headers: Mapping[str, str] | None,
    ) -> AsyncGenerator[tuple[str, JSON], None]:
        path = resource_path(rd, namespace)
        stream: StreamResponse = await self.request(
            "GET", path, params=params, stream=True, read_timeout=inactivity_timeout, headers=headers
        )
        with stream:
            async for line in stream.lines():
                try:
                    event = orjson.loads(line)
                    kind, obj = str(event["type"]), event["object"]
                except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                    bad = line[:ERROR_TEXT_LIMIT]
                    raise InternalError(f"watch {path}: malformed event: {bad!r}") from exc
                if kind == "ERROR":
                    if isinstance(obj, dict) and obj.get("kind") == "Status":
                        raise from_status(obj)
                    raise InternalError(f"watch {path}: error event: {str(obj)[:ERROR_TEXT_LIMIT]}")
                yield kind, obj
