"""``pods/exec`` (``kubectl exec``, ``kubectl cp``): a WebSocket relayed to the node agent's
``/exec/{namespace}/{pod}/{container}`` (the kubelet's contract, over mutual TLS with the cluster
CA — :mod:`atoll.agent.execserver`) speaking remotecommand ``v5.channel.k8s.io`` / ``v4``, what
kubectl ≥ 1.30 and the Python client's ``stream()`` use. A client that only offers SPDY
(kubectl ≤ 1.29) gets a 400 naming the protocols this server speaks. Authorisation is RBAC's
``pods/exec`` in the pod's namespace (checked by the HTTP layer before this handler runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from atoll.api import errors
from atoll.apiserver.cache.watchcache import WatchCache
from atoll.apiserver.registry.podlog import node_endpoint, pick_container
from atoll.apiserver.registry.subresources import Reply, SubresourceCall, UpgradeReply, method_not_allowed

if TYPE_CHECKING:
    from atoll.apiserver.registry.storage import ResourceStorage

JSON = dict[str, Any]
FORWARDED = ("stdin", "stdout", "stderr", "tty")
WEBSOCKET_ONLY = (
    "this server speaks the WebSocket remotecommand protocol (v5.channel.k8s.io, v4.channel.k8s.io) for "
    "pods/{sub}, not SPDY/3.1: use kubectl 1.30 or newer (or a client that execs over WebSocket)"
)


def query_values(query: Any, name: str) -> list[str]:
    """Every value of a repeated query parameter (``command=``, ``ports=``)."""
    getall = getattr(query, "getall", None)
    return [str(v) for v in getall(name, [])] if getall else ([str(query[name])] if name in query else [])


def require_websocket(call: SubresourceCall, spdy_refusal: str, protocol: str) -> None:
    """400 unless the request upgrades to a WebSocket (an SPDY-only client gets ``spdy_refusal``)."""
    if call.method not in ("GET", "POST"):
        raise method_not_allowed(call)
    upgrade = {h.strip().lower() for h in str(call.headers.get("Upgrade", "")).split(",")}
    if "websocket" not in upgrade:
        if any(u.startswith("spdy") for u in upgrade):
            raise errors.BadRequest(spdy_refusal.format(sub=call.subresource))
        raise errors.BadRequest(f"Upgrade request required: pods/{call.subresource} is a WebSocket endpoint "
                                f"({protocol})")


def node_of_running(cache: WatchCache, pod: JSON, verb: str) -> str:
    """The kubelet endpoint of the node running ``pod``; 400 when it finished or has no (known) node."""
    name = pod["metadata"]["name"]
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        raise errors.BadRequest(f"cannot {verb} a container in a completed pod; current phase is "
                                f"{pod['status']['phase']}")
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        raise errors.BadRequest(f"pod {name} does not have a host assigned")
    node = cache.get(f"/core/nodes/{node_name}")
    if node is None:
        raise errors.BadRequest(f'node "{node_name}" of pod {name} is not registered')
    return node_endpoint(node.obj)


async def stream_target(storage: ResourceStorage, call: SubresourceCall, cache: WatchCache, verb: str,
                        *, container: bool = True) -> tuple[str, str]:
    """The node endpoint and container (``""`` when not ``container``) a pod stream relays to:
    the pod read as GET reads it (a write acknowledged by another master is found), 404/400 naming
    the pod, container or node otherwise."""
    assert call.namespace is not None
    pod = (await storage.current(call.rd, call.namespace, call.name)).obj
    name = pick_container(pod, str(call.query.get("container", ""))) if container else ""
    return node_of_running(cache, pod, verb), name


@dataclass(frozen=True, slots=True)
class ExecSubresource:
    cache: WatchCache
    verbs: tuple[str, ...] = ("create", "get")
    response_kind: tuple[str, str, str] | None = None
    generic_methods: frozenset[str] = frozenset()

    async def serve(self, storage: ResourceStorage, call: SubresourceCall) -> Reply:
        require_websocket(call, WEBSOCKET_ONLY, "remotecommand v5.channel.k8s.io")
        url, container = await stream_target(storage, call, self.cache, "exec into")
        command = query_values(call.query, "command")
        if not command:
            raise errors.BadRequest("you must specify at least one command for the container")
        params = [("command", c) for c in command] + [(k, str(call.query[k])) for k in FORWARDED if k in call.query]
        return UpgradeReply(url, f"/exec/{call.namespace}/{call.name}/{container}", tuple(params))
