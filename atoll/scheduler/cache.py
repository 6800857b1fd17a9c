"""The scheduler's view of the cluster: informer caches of nodes and pods plus *assumed* pods.

Binding takes a round trip to the API server and the pod informer sees the result later still.
If the scheduler only counted what the informer shows, two pods scheduled back to back would
both see the node's last free slot. So a pod is *assumed* on its node the moment the scheduling
cycle picks one, counts there at once, and stays assumed until the informer shows it bound
(``confirm``) or binding fails (``forget``) — kube-scheduler's assume/confirm/forget protocol.

A node's ``NodeInfo`` is kept between cycles and updated by difference: the scheduler's pod
handlers tell the cache which pods changed on which node (:meth:`SchedulerCache.pod_changed`), so a
cycle after one bind looks at that pod only, not at every pod on the node. When the pod cache's
change counter for a node moved by other than what the handlers told (a write they did not see),
the node's pods are counted again from the cache's node index.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from atoll.api.podusage import TERMINAL
from atoll.runtime import Cache, ObjectKey
from atoll.runtime.keys import key_of
from atoll.scheduler.nodeinfo import NodeInfo, Resources, pod_requests

JSON = dict[str, Any]


def counts_on_node(pod: JSON) -> bool:
    """Pods that hold node resources: every bound pod that has not finished (terminating ones too)."""
    return (pod.get("status") or {}).get("phase") not in TERMINAL


@dataclass(slots=True)
class _CachedInfo:
    """A node's last NodeInfo and what it was built from: the Node (object and version), the pods
    counted on it with their requests (``bound``: the informer shows them on the node; ``assumed``:
    not bound yet), the change counters of the pods indexed on the node and of the pods assumed
    there, and how many pod changes the handlers had reported on the node. A cycle reuses it when
    no counter moved and updates it by the difference when only pods changed."""

    node_rv: Any
    node: JSON
    bound: dict[ObjectKey, tuple[JSON, Resources]]
    assumed: dict[ObjectKey, tuple[JSON, Resources]]
    info: NodeInfo
    generations: tuple[int, int]
    reported: int


MAX_TOUCHED = 1024
"""Changed pods remembered per node between two builds of its NodeInfo; past it, a full count."""


class SchedulerCache:
    """Nodes and pods from informers; assumed pods on top. Owned by one event loop."""

    def __init__(self, *, nodes: Cache, pods: Cache) -> None:
        self.nodes = nodes
        self.pods = pods
        self._assumed: dict[ObjectKey, tuple[str, JSON]] = {}
        self._assumed_on: dict[str, dict[ObjectKey, JSON]] = {}  # node -> assumed pods there
        self._requests: dict[str, tuple[Any, Resources]] = {}  # uid -> (spec, requests)
        self._infos: dict[str, _CachedInfo] = {}
        self._assumed_generation: dict[str, int] = {}  # node -> moves when its assumed pods change
        self._reported: dict[str, int] = {}  # node -> pod changes the handlers reported there
        self._touched: dict[str, set[ObjectKey] | None] = {}  # node -> pods changed since its last build
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

    def pod_changed(self, old: JSON | None, new: JSON | None) -> None:
        """The pod informer stored ``new`` over ``old`` (added: ``old`` None; removed: ``new``
        None). Called from its handlers, right after the cache moved its node counters."""
        for pod in (old, new):
            node_name = (pod.get("spec") or {}).get("nodeName") if pod is not None else None
            if not node_name:
                continue
            self._reported[node_name] = self._reported.get(node_name, 0) + 1
            touched = self._touched.get(node_name, set())
            if touched is not None:
                touched.add(key_of(pod))  # type: ignore[arg-type]
                self._touched[node_name] = touched if len(touched) <= MAX_TOUCHED else None

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
        """``pod_requests`` memoised per uid while the pod's spec stays equal (quantities are slow to
        parse; what a pod requests is read from its spec only, so status updates keep the entry)."""
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        spec = pod.get("spec")
        cached = self._requests.get(uid) if uid else None
        if cached is not None and (cached[0] is spec or cached[0] == spec):
            return cached[1]
        requests = pod_requests(pod)
        if uid:
            self._requests[uid] = (spec, requests)
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

        A node's ``NodeInfo`` is reused while neither the Node nor a pod on it changed, and
        updated by the pods that changed (see the module docstring) when only pods did, so a
        cycle costs dictionary look-ups, not quantity arithmetic or a scan of the node's pods."""
        if names is None:
            nodes = self.nodes.list()
        else:
            nodes = [n for name in names if (n := self.nodes.get(name)) is not None]
        infos = []
        for node in nodes:
            name = str((node.get("metadata") or {}).get("name", ""))
            cached = self._infos.get(name)
            generations = (self.pods.generation("node", name), self._assumed_generation.get(name, 0))
            if cached is not None and cached.node is node and cached.generations == generations:
                infos.append(cached.info)  # neither the Node nor a pod on it changed
                continue
            cached = self._build(name, node, cached, generations)
            self._infos[name] = cached
            infos.append(cached.info)
        if len(self._infos) > 2 * len(self.nodes) + 16:
            self._infos = {k: v for k, v in self._infos.items() if self.nodes.get(k) is not None}
            self._touched = {k: v for k, v in self._touched.items() if self.nodes.get(k) is not None}
        return infos

    def _build(self, name: str, node: JSON, cached: _CachedInfo | None, generations: tuple[int, int]) -> _CachedInfo:
        node_rv = (node.get("metadata") or {}).get("resourceVersion")
        reported = self._reported.get(name, 0)
        touched = self._touched.pop(name, set())
        same_node = cached is not None and cached.node is node and cached.node_rv == node_rv
        removed: list[Resources] = []
        added: list[tuple[JSON, Resources]] = []
        if cached is not None and same_node and touched is not None and (
            generations[0] - cached.generations[0] == reported - cached.reported
        ):
            bound = cached.bound  # ours: updated in place by the pods the handlers reported
            for key in touched:
                previous = bound.pop(key, None)
                if previous is not None:
                    removed.append(previous[1])
                pod = self.pods.get_key(key)
                if pod is not None and (pod.get("spec") or {}).get("nodeName") == name and counts_on_node(pod):
                    bound[key] = entry = (pod, self.requests_of(pod))
                    added.append(entry)
        else:
            bound = {key_of(p): (p, self.requests_of(p)) for p in self.pods.by_node(name) if counts_on_node(p)}
        before = cached.assumed if cached is not None else {}
        assumed: dict[ObjectKey, tuple[JSON, Resources]] = {}
        for key, pod in (self._assumed_on.get(name) or {}).items():
            if key not in bound and not ((self.pods.get_key(key) or {}).get("spec") or {}).get("nodeName"):
                previous = before.get(key)
                assumed[key] = previous if previous is not None and previous[0] is pod else (pod, self.requests_of(pod))
        if cached is not None and same_node and bound is cached.bound:
            removed += [r for k, (p, r) in before.items() if (a := assumed.get(k)) is None or a[0] is not p]
            added += [(p, r) for k, (p, r) in assumed.items() if (b := before.get(k)) is None or b[0] is not p]
            if removed or added:
                pods = [p for p, _ in bound.values()] + [p for p, _ in assumed.values()]
                info = cached.info.updated(removed, added, pods)
            else:
                info = cached.info
        else:
            info = NodeInfo.build(node, (*bound.values(), *assumed.values()))
        return _CachedInfo(node_rv, node, bound, assumed, info, generations, reported)
