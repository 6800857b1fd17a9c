"""The scheduler cache's NodeInfos, updated by difference, equal NodeInfos built from scratch."""

from __future__ import annotations

from typing import Any

from atoll.runtime import Cache, ObjectKey
from atoll.scheduler.cache import SchedulerCache
from atoll.scheduler.nodeinfo import NodeInfo, pod_requests

JSON = dict[str, Any]


def node(name: str) -> JSON:
    return {"metadata": {"name": name, "resourceVersion": "1"},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}


def pod(name: str, rv: str, *, cpu: str, node_name: str = "", phase: str = "Pending") -> JSON:
    spec: JSON = {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]}
    if node_name:
        spec["nodeName"] = node_name
    return {"metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "resourceVersion": rv},
            "spec": spec, "status": {"phase": phase}}


def fresh(cache: SchedulerCache, name: str) -> NodeInfo:
    node_obj = cache.nodes.get(name) or {}
    counted = [p for p in cache.pods.by_node(name) if p["status"]["phase"] not in ("Succeeded", "Failed")]
    counted += [p for k, p in cache._assumed_on.get(name, {}).items()
                if not (cache.pods.get_key(k) or {}).get("spec", {}).get("nodeName")]
    return NodeInfo.build(node_obj, ((p, pod_requests(p)) for p in counted))


def same(a: NodeInfo, b: NodeInfo) -> bool:
    names = sorted(p["metadata"]["name"] for p in a.pods) == sorted(p["metadata"]["name"] for p in b.pods)
    return names and a.requested == b.requested and a.non_zero_requested == b.non_zero_requested


def test_incremental_node_info_matches_a_fresh_build() -> None:
    nodes, pods = Cache(), Cache()
    nodes.upsert(node("n"))
    pods.upsert(pod("bound", "2", cpu="500m", node_name="n"))
    cache = SchedulerCache(nodes=nodes, pods=pods)
    first = cache.node_infos(["n"])[0]
    assert same(first, fresh(cache, "n")) and first.requested["cpu"] * 1000 == 500
    assert cache.node_infos(["n"])[0] is first  # nothing changed: reused

    waiting = pod("a", "3", cpu="250m")
    pods.upsert(waiting)
    cache.assume(waiting, "n")  # counts at once
    assumed = cache.node_infos(["n"])[0]
    assert same(assumed, fresh(cache, "n")) and assumed.requested["cpu"] * 1000 == 750

    pods.upsert(pod("a", "4", cpu="250m", node_name="n"))  # bound: a new version, counted once
    cache.confirm(pods.get("a", "ns") or {})
    bound = cache.node_infos(["n"])[0]
    assert same(bound, fresh(cache, "n")) and bound.requested["cpu"] * 1000 == 750 and len(bound.pods) == 2

    pods.upsert(pod("bound", "5", cpu="500m", node_name="n", phase="Succeeded"))  # finished: frees its share
    done = cache.node_infos(["n"])[0]
    assert same(done, fresh(cache, "n")) and done.requested["cpu"] * 1000 == 250 and len(done.pods) == 1

    pods.remove(ObjectKey("ns", "a"))  # deleted
    empty = cache.node_infos(["n"])[0]
    assert same(empty, fresh(cache, "n")) and not empty.pods and not empty.requested


def test_cache_generation_moves_with_every_change_under_an_index_value() -> None:
    pods = Cache()
    pods.track_changes("node")
    pods.upsert(pod("a", "1", cpu="1", node_name="n1"))
    before = (pods.generation("node", "n1"), pods.generation("node", "n2"))
    pods.upsert(pod("a", "2", cpu="1", node_name="n1", phase="Succeeded"))  # same node, new content
    assert pods.generation("node", "n1") > before[0]
    pods.upsert(pod("a", "3", cpu="1", node_name="n2"))  # moved: both nodes changed
    assert pods.generation("node", "n2") > before[1]
    moved = pods.generation("node", "n2")
    pods.remove(ObjectKey("ns", "a"))
    assert pods.generation("node", "n2") > moved
