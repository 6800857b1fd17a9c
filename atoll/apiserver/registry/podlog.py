"""Where a pod's log is served: the container asked for (or the only one), a started container,
the node that runs the pod and the kubelet-style endpoint its Node publishes. The HTTP layer
relays the stream (``atoll.apiserver.http.podlogs``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from atoll.api import errors
from atoll.apiserver.cache.watchcache import WatchCache
from atoll.apiserver.registry.params import pod_log as pod_log_params

JSON = dict[str, Any]
FORWARDED = ("follow", "tailLines", "sinceSeconds", "sinceTime", "previous", "timestamps", "limitBytes")
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"


def pick_container(pod: JSON, wanted: str) -> str:
    name = pod["metadata"]["name"]
    containers = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
    inits = [c.get("name", "") for key in ("initContainers", "ephemeralContainers")
             for c in (pod.get("spec") or {}).get(key) or []]
    if not wanted:
        wanted = ((pod["metadata"].get("annotations") or {}).get(DEFAULT_CONTAINER) or "") or (
            containers[0] if len(containers) == 1 else ""
        )
        if not wanted:
            raise errors.BadRequest(f"a container name must be specified for pod {name}, choose one of: {containers}")
    if wanted not in containers and wanted not in inits:
        raise errors.BadRequest(f"container {wanted} is not valid for pod {name}")
    return wanted


def check_started(pod: JSON, container: str, previous: bool) -> None:
    name = pod["metadata"]["name"]
    if not (pod.get("spec") or {}).get("nodeName"):
        raise errors.BadRequest(f"pod {name} does not have a host assigned")
    status = pod.get("status") or {}
    statuses = [cs for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses")
                for cs in status.get(key) or []]
    for cs in statuses:
        if cs.get("name") != container:
            continue
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting and not previous and not cs.get("lastState", {}).get("terminated"):
            reason = waiting.get("reason") or "ContainerCreating"
            raise errors.BadRequest(f'container "{container}" in pod "{name}" is waiting to start: {reason}')
        return
    if not previous:
        raise errors.BadRequest(f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating')


def node_endpoint(node: JSON) -> str:
    status = node.get("status") or {}
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    address = next((a.get("address") for a in status.get("addresses") or [] if a.get("type") == "InternalIP"), None)
    if not port or not address:
        raise errors.BadRequest(f'node "{node["metadata"]["name"]}" does not publish a log endpoint')
    return f"https://{address}:{port}"


def log_location(
    cache: WatchCache, namespace: str, name: str, query: Mapping[str, str]
) -> tuple[str, str, dict[str, str]]:
    """(node endpoint, ``/containerLogs/...`` path, forwarded query) of a pod's container log."""
    cached = cache.get(f"/core/pods/{namespace}/{name}")
    if cached is None:
        raise errors.not_found("pods", "", name)
    pod = cached.obj
    pod_log_params(query)
    container = pick_container(pod, query.get("container", ""))
    check_started(pod, container, query.get("previous", "").lower() == "true")
    node = cache.get(f"/core/nodes/{pod['spec']['nodeName']}")
    if node is None:
        raise errors.BadRequest(f'node "{pod["spec"]["nodeName"]}" of pod {name} is not registered')
    params = {k: query[k] for k in FORWARDED if k in query}
    return node_endpoint(node.obj), f"/containerLogs/{namespace}/{name}/{container}", params
