"""The scheduler's view of the cluster: informer caches of nodes and pods plus *assumed* pods.

Binding takes a round trip to the API server and the pod informer sees the result later still.
If the scheduler only counted what the informer shows, two pods scheduled back to back would
both see the node's last free slot. So a pod is *assumed* on its node the moment the scheduling
cycle picks one, counts there at once, and stays assumed until the informer shows it bound
(``confirm``) or binding fails (``forget``) — kube-scheduler's assume/confirm/forget protocol.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from atoll.api.podusage import TERMINAL
from atoll.runtime import Cache, ObjectKey
from atoll.runtime.keys import key_of
from atoll.scheduler.nodeinfo import NodeInfo, Resources, pod_requests

JSON = dict[str, Any]


def _version(pod: JSON) -> Hashable:
    """One version of one pod."""
    meta = pod.get("metadata") or {}
    return (meta.get("namespace"), meta.get("name"), meta.get("resourceVersion"))


def counts_on_node(pod: JSON) -> bool:
    """Pods that hold node resources: every bound pod that has not finished (terminating ones too)."""
    return (pod.get("status") or {}).get("phase") not in TERMINAL


@dataclass(slots=True)
class _CachedInfo:
    """A node's last NodeInfo and what it was built from: the Node (object and version), the
    pods counted on it (by pod version) and the change counters of the pods indexed on the node
    and of the pods assumed there. A cycle reuses it when no counter moved (no scan of the
    node's pods) and updates it by the difference when only pods changed."""

    node_rv: Any
    node: JSON
    requests: dict[Hashable, Resources]
    info: NodeInfo
    generations: tuple[int, int]


class SchedulerCache:
    """Nodes and pods from informers; assumed pods on top. Owned by one event loop."""

    def __init__(self, *, nodes: Cache, pods: Cache) -> None:
        self.nodes = nodes
        self.pods = pods
        self._assumed: dict[ObjectKey, tuple[str, JSON]] = {}
        self._assumed_on: dict[str, dict[ObjectKey, JSON]] = {}  # node -> assumed pods there
        self._requests: dict[str, tuple[str, Resources]] = {}  # uid -> (resourceVersion, requests)
        self._infos: dict[str, _CachedInfo] = {}
        self._assumed_generation: dict[str, int] = {}  # node -> moves when its assumed pods change
        pods.track_changes("node")

    # -- assume / confirm / forget ---------------------------------------------------------------

    def assume(self, pod: JSON, node_name: str) -> None:
        key = key_of(pod)
        self._drop(key)
        self._assumed[key] = (node_name, pod)
        self._assumed_on.setdefault(node_name, {})[key] = pod
        self._touch(node_name)

    def _touch(self, node_name: str) -> None:
        self._assumed_generation[node_name] = self._assumed_generation.get(node_name, 0) + 1

    def _drop(self, key: ObjectKey) -> None:
        entry = self._assumed.pop(key, None)
        if entry is not None:
            self._touch(entry[0])
            on_node = self._assumed_on.get(entry[0])
            if on_node is not None:
                on_node.pop(key, None)
                if not on_node:
                    del self._assumed_on[entry[0]]

    def is_assumed(self, key: ObjectKey) -> bool:
        return key in self._assumed

    def assumed_node(self, key: ObjectKey) -> str | None:
        entry = self._assumed.get(key)
        return entry[0] if entry else None

    def confirm(self, pod: JSON) -> None:
        """The informer shows ``pod`` bound: it now counts through the node index."""
        if (pod.get("spec") or {}).get("nodeName"):
            self._drop(key_of(pod))

    def forget(self, key: ObjectKey) -> None:
        self._drop(key)

    def remove_pod(self, pod: JSON) -> None:
        self._drop(key_of(pod))
        uid = (pod.get("metadata") or {}).get("uid")
        if uid:
            self._requests.pop(str(uid), None)

    def reset(self) -> None:
        """Drop every assumption (a new term as leader starts from what the API says)."""
        for node_name in self._assumed_on:
            self._touch(node_name)
        self._assumed.clear()
        self._assumed_on.clear()

    # -- snapshot ----------------------------------------------------------------------------------

    def requests_of(self, pod: JSON) -> Resources:
        """``pod_requests`` memoised per uid and resourceVersion (quantities are slow to parse)."""
        meta = pod.get("metadata") or {}
        uid, rv = str(meta.get("uid") or ""), str(meta.get("resourceVersion") or "")
        cached = self._requests.get(uid) if uid else None
        if cached is not None and cached[0] == rv:
            return cached[1]
        requests = pod_requests(pod)
        if uid:
            self._requests[uid] = (rv, requests)
        return requests

    def selector_candidates(self, pod: JSON) -> list[str] | None:
        """Names of the nodes carrying the first label of the pod's ``nodeSelector`` (from the
        node cache's label index), or ``None`` when the pod has no node selector. Other nodes
        cannot pass the NodeAffinity filter."""
        selector = (pod.get("spec") or {}).get("nodeSelector") or {}
        if not selector:
            return None
        key, value = next(iter(selector.items()))
        return [str(n["metadata"]["name"]) for n in self.nodes.by_label(str(key), str(value))]

    def node_infos(self, names: Iterable[str] | None = None) -> list[NodeInfo]:
        """Every node (or the named ones) with the pods that count on it (bound and assumed).

        A node's ``NodeInfo`` is rebuilt only when its fingerprint changes — the Node's
        resourceVersion and the resourceVersions of the pods counted on it — so a cycle costs
        dictionary look-ups, not quantity arithmetic, for the nodes nothing happened to."""
        if names is None:
            nodes = self.nodes.list()
        else:
            nodes = [n for name in names if (n := self.nodes.get(name)) is not None]
        infos = []
        for node in nodes:
            meta = node.get("metadata") or {}
            name = str(meta.get("name", ""))
            node_rv = meta.get("resourceVersion")
            cached = self._infos.get(name)
            generations = (self.pods.generation("node", name), self._assumed_generation.get(name, 0))
            if cached is not None and cached.node is node and cached.generations == generations:
                infos.append(cached.info)  # neither the Node nor a pod on it changed
                continue
            members = {_version(p): p for p in self.pods.by_node(name) if counts_on_node(p)}
            for key, pod in (self._assumed_on.get(name) or {}).items():
                if not ((self.pods.get_key(key) or {}).get("spec") or {}).get("nodeName"):  # else counted above
                    members[_version(pod)] = pod
            if cached is not None and cached.node_rv == node_rv and cached.node is node:
                if cached.requests.keys() == members.keys():
                    cached.generations = generations
                    infos.append(cached.info)
                    continue
                requests = {k: r for k, r in cached.requests.items() if k in members}
                removed = [r for k, r in cached.requests.items() if k not in members]
                added = [(p, self.requests_of(p)) for k, p in members.items() if k not in cached.requests]
                requests.update((_version(p), r) for p, r in added)
                info = cached.info.updated(removed, added, list(members.values()))
            else:
                requests = {k: self.requests_of(p) for k, p in members.items()}
                info = NodeInfo.build(node, ((members[k], r) for k, r in requests.items()))
            self._infos[name] = _CachedInfo(node_rv, node, requests, info, generations)
            infos.append(info)
        if len(self._infos) > 2 * len(self.nodes) + 16:
            self._infos = {k: v for k, v in self._infos.items() if self.nodes.get(k) is not None}
        return infos
