"""``pods/attach`` and ``pods/portforward``: WebSockets relayed to the node agent's
``/attach/{namespace}/{pod}/{container}`` and ``/portForward/{namespace}/{pod}`` (the kubelet's
contract, over mutual TLS with the cluster CA: :mod:`atoll.agent.attachserver`,
:mod:`atoll.agent.portforward`), exactly as ``pods/exec`` (:mod:`.podexec`).

attach speaks remotecommand ``v5.channel.k8s.io``/``v4`` (kubectl ≥ 1.30 ``attach``, ``run -i``,
``debug -i``); port-forward speaks ``v4.channel.k8s.io`` with ``ports=`` (the Python client) or
SPDY tunnelled in a WebSocket, ``SPDY/3.1+portforward.k8s.io`` (kubectl ≥ 1.31). Plain SPDY
upgrades (older kubectl) get a 400 naming what this server speaks. RBAC: ``pods/attach`` and
``pods/portforward`` in the pod's namespace (checked by the HTTP layer before these run).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from atoll.api import errors
from atoll.apiserver.cache.watchcache import WatchCache
from atoll.apiserver.registry.strategies.podexec import (
    WEBSOCKET_ONLY,
    query_values,
    require_websocket,
    stream_target,
)
from atoll.apiserver.registry.subresources import Reply, SubresourceCall, UpgradeReply

if TYPE_CHECKING:
    from atoll.apiserver.registry.storage import ResourceStorage

ATTACH_PARAMS = ("stdin", "stdout", "stderr", "tty")
PORTFORWARD_SPDY_ONLY = (
    "this server speaks port-forward over WebSocket (v4.channel.k8s.io with ports=, or SPDY tunnelled in a "
    "WebSocket: SPDY/3.1+portforward.k8s.io), not a bare SPDY/3.1 upgrade: use kubectl 1.31 or newer"
)


def _ports(query: Any) -> list[str]:
    ports = [p.strip() for v in query_values(query, "ports") for p in v.split(",") if p.strip()]
    for port in ports:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise errors.BadRequest(f"invalid port {port!r} in ports: must be an integer in 1-65535",
                                    details={"causes": [{"field": "ports", "message": port}]})
    return ports


@dataclass(frozen=True, slots=True)
class AttachSubresource:
    cache: WatchCache
    verbs: tuple[str, ...] = ("create", "get")
    response_kind: tuple[str, str, str] | None = None
    generic_methods: frozenset[str] = frozenset()

    async def serve(self, storage: ResourceStorage, call: SubresourceCall) -> Reply:
        require_websocket(call, WEBSOCKET_ONLY, "remotecommand v5.channel.k8s.io")
        url, container = await stream_target(storage, call, self.cache, "attach to")
        params = tuple((k, str(call.query[k])) for k in ATTACH_PARAMS if k in call.query)
        return UpgradeReply(url, f"/attach/{call.namespace}/{call.name}/{container}", params)


@dataclass(frozen=True, slots=True)
class PortForwardSubresource:
    cache: WatchCache
    verbs: tuple[str, ...] = ("create", "get")
    response_kind: tuple[str, str, str] | None = None
    generic_methods: frozenset[str] = frozenset()

    async def serve(self, storage: ResourceStorage, call: SubresourceCall) -> Reply:
        require_websocket(call, PORTFORWARD_SPDY_ONLY, "v4.channel.k8s.io or SPDY/3.1+portforward.k8s.io")
        ports = _ports(call.query)
        url, _ = await stream_target(storage, call, self.cache, "port-forward to", container=False)
        return UpgradeReply(url, f"/portForward/{call.namespace}/{call.name}", tuple(("ports", p) for p in ports))
