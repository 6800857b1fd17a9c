"""A State-of-the-World ADS server (grpcio + xds-protos) with ACK/NACK tracking.

The control plane publishes whole snapshots (clusters, listeners, route configurations as plain
dicts in Envoy's JSON form). Every open stream gets, per resource type, the current version in
the order CDS → LDS → RDS. Envoy answers each response with an ACK (same version, same nonce) or
a NACK (``error_detail``); a NACKed version leaves Envoy on its last good config and is reported
through ``on_nack`` and :meth:`AdsServer.wait_applied`. A restarted Envoy opens a new stream and
receives the current snapshot at once, so no config is lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import orjson
from google.protobuf import any_pb2, json_format

from atoll.gateway import protos

log = logging.getLogger(__name__)
JSON = dict[str, Any]

CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
ORDER = (CLUSTER, LISTENER, ROUTE)


class ConfigRejected(Exception):
    """Envoy NACKed a version; it keeps serving its last good config."""

    def __init__(self, type_url: str, version: str, message: str) -> None:
        super().__init__(f"envoy rejected {type_url.rsplit('.', 1)[-1]} version {version}: {message}")
        self.type_url, self.version, self.message = type_url, version, message


@dataclass
class _Typed:
    version: str = "0"
    resources: dict[str, any_pb2.Any] = field(default_factory=dict)
    digest: str = ""


@dataclass
class _Stream:
    names: dict[str, set[str]] = field(default_factory=dict)  # type -> subscribed names (empty: all)
    sent: dict[str, tuple[str, str]] = field(default_factory=dict)  # type -> (version, nonce)
    acked: dict[str, str] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    wake: asyncio.Event = field(default_factory=asyncio.Event)


def pack(type_url: str, resource: JSON) -> any_pb2.Any:
    """A resource dict (Envoy JSON) as a protobuf Any; raises ValueError naming the problem."""
    message = protos.message_class(type_url)()
    try:
        json_format.ParseDict(resource, message)
    except json_format.ParseError as exc:
        raise ValueError(f"{type_url.rsplit('.', 1)[-1]} {resource.get('name')!r}: {exc}") from None
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


class AdsServer:
    """Serves one snapshot to every connected Envoy (one Envoy per gateway in Atoll)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self._types: dict[str, _Typed] = {t: _Typed() for t in ORDER}
        self._streams: list[_Stream] = []
        self._counter = 0
        self._changed = asyncio.Condition()
        self.rejected: ConfigRejected | None = None
        self.on_nack: Callable[[ConfigRejected], None] | None = None
        self._server: grpc.aio.Server | None = None

    # -- server lifecycle -----------------------------------------------------------------

    async def start(self) -> int:
        server = grpc.aio.server()
        protos.add_ads_servicer(self, server)
        self.port = server.add_insecure_port(f"{self.host}:{self.port}")
        await server.start()
        self._server = server
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(grace=0.5)
            self._server = None

    # -- publishing -----------------------------------------------------------------------

    def publish(self, snapshot: dict[str, list[JSON]]) -> bool:
        """Make ``snapshot`` current (types whose content did not change keep their version).
        Returns whether anything changed. Raises ValueError for a resource that does not parse."""
        packed = {t: {r["name"]: pack(t, r) for r in snapshot.get(t, [])} for t in ORDER}
        changed = False
        for type_url in ORDER:
            digest = hashlib.sha256(
                orjson.dumps(sorted(snapshot.get(type_url, []), key=lambda r: r["name"]), option=orjson.OPT_SORT_KEYS)
            ).hexdigest()
            typed = self._types[type_url]
            if digest == typed.digest:
                continue
            self._counter += 1
            typed.version, typed.resources, typed.digest = str(self._counter), packed[type_url], digest
            changed = True
            for stream in self._streams:
                if type_url in stream.names:
                    stream.dirty.add(type_url)
                    stream.wake.set()
        return changed

    def retry_rejected(self) -> bool:
        """Re-send the current version of a type Envoy rejected, under a new version number (a
        listener whose port was taken binds once the port is free). Returns whether it did."""
        rejected = self.rejected
        if rejected is None or self._types[rejected.type_url].version != rejected.version:
            return False
        self._counter += 1
        self._types[rejected.type_url].version = str(self._counter)
        for stream in self._streams:
            if rejected.type_url in stream.names:
                stream.dirty.add(rejected.type_url)
                stream.wake.set()
        return True

    def applied(self, types: tuple[str, ...] = ORDER) -> bool:
        """Whether the newest stream has ACKed the current version of each of ``types``
        (raises :class:`ConfigRejected` when it NACKed one)."""
        if not self._streams:
            return False
        stream = self._streams[-1]
        for type_url in types:
            typed = self._types[type_url]
            if not typed.resources:
                continue
            if type_url not in stream.names:
                return False
            if stream.acked.get(type_url) == typed.version:
                continue
            rejected = self.rejected
            if rejected is not None and rejected.type_url == type_url and rejected.version == typed.version:
                raise rejected
            return False
        return True

    def current_rejection(self) -> ConfigRejected | None:
        """Envoy's NACK of a version that is still current (a restarted Envoy that could not bind a
        listener NACKs the snapshot it is re-sent, with no reconcile round to see it)."""
        try:
            self.applied()
        except ConfigRejected as exc:
            return exc
        return None

    async def wait_applied(self, types: tuple[str, ...] = ORDER) -> None:
        """Until Envoy has loaded the current version of ``types`` (ConfigRejected if it refused
        one); callers bound it with ``asyncio.timeout``."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.applied(types))

    # -- the ADS stream -------------------------------------------------------------------

    async def StreamAggregatedResources(self, request_iterator: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
        stream = _Stream()
        self._streams.append(stream)
        reader = asyncio.create_task(self._read(stream, request_iterator))
        try:
            while not reader.done():
                waiting = asyncio.ensure_future(stream.wake.wait())
                await asyncio.wait({waiting, reader}, return_when=asyncio.FIRST_COMPLETED)
                waiting.cancel()
                stream.wake.clear()
                for type_url in ORDER:
                    if type_url in stream.dirty:
                        stream.dirty.discard(type_url)
                        yield self._response(stream, type_url)
        finally:
            reader.cancel()
            self._streams.remove(stream)

    async def DeltaAggregatedResources(self, request_iterator: AsyncIterator[Any], context: Any) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "only State-of-the-World ADS is served")

    def _response(self, stream: _Stream, type_url: str) -> Any:
        typed = self._types[type_url]
        names = stream.names.get(type_url) or set()
        resources = [r for n, r in typed.resources.items() if not names or n in names]
        self._counter += 1
        nonce = str(self._counter)
        stream.sent[type_url] = (typed.version, nonce)
        return protos.discovery_response(typed.version, resources, type_url, nonce)

    async def _read(self, stream: _Stream, requests: AsyncIterator[Any]) -> None:
        async for request in requests:
            type_url = request.type_url
            if type_url not in self._types:
                continue
            names = set(request.resource_names)
            sent = stream.sent.get(type_url)
            if request.response_nonce and sent is not None and request.response_nonce != sent[1]:
                continue  # stale: an answer to a response we have replaced
            if request.response_nonce and request.HasField("error_detail"):
                self._nack(type_url, sent[0] if sent else "?", request.error_detail.message)
            elif request.response_nonce:
                stream.acked[type_url] = request.version_info
            if type_url not in stream.names or stream.names[type_url] != names or not request.response_nonce:
                stream.names[type_url] = names
                stream.dirty.add(type_url)
                stream.wake.set()
            async with self._changed:
                self._changed.notify_all()

    def _nack(self, type_url: str, version: str, message: str) -> None:
        rejected = ConfigRejected(type_url, version, message)
        self.rejected = rejected
        log.error("%s", rejected)
        if self.on_nack is not None:
            self.on_nack(rejected)
