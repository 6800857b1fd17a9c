"""The scheduler cache's NodeInfos, updated by difference, equal NodeInfos built from scratch."""

from __future__ import annotations

import random
from typing import Any

from atoll.runtime import Cache, ObjectKey
from atoll.runtime.keys import key_of
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


def test_reported_pod_changes_update_the_node_info_without_a_scan() -> None:
    """Random adds, binds, finishes, deletes, assumptions and forgets: every NodeInfo equals a
    fresh build; when the handlers reported every change, the node's pods are not scanned again,
    and a change they did not see (a write without a handler call) makes a full count."""
    rng = random.Random(7)
    nodes, pods = Cache(), Cache()
    for name in ("n1", "n2"):
        nodes.upsert(node(name))
    cache = SchedulerCache(nodes=nodes, pods=pods)
    scans: list[str] = []
    by_node = pods.by_node

    def counting_by_node(name: str) -> Any:
        scans.append(name)
        return by_node(name)

    pods.by_node = counting_by_node  # type: ignore[method-assign]
    rv = 1

    def store(obj: JSON, *, report: bool = True) -> None:
        old = pods.upsert(obj)
        if report:
            cache.pod_changed(old, obj)
            cache.confirm(obj)

    cache.node_infos()
    for step in range(400):
        rv += 1
        name = f"p{rng.randrange(30)}"
        current = pods.get(name, "ns")
        action = rng.random()
        if current is None:
            store(pod(name, str(rv), cpu=rng.choice(["100m", "250m", "1"])))
        elif action < 0.3 and not current["spec"].get("nodeName"):
            cache.assume(current, rng.choice(["n1", "n2"]))
        elif action < 0.5 and not current["spec"].get("nodeName"):
            target = cache.assumed_node(key_of(current)) or rng.choice(["n1", "n2"])
            store(pod(name, str(rv), cpu="250m", node_name=target))
        elif action < 0.6:
            cache.forget(key_of(current))
        elif action < 0.75 and current["spec"].get("nodeName"):
            phase = rng.choice(["Running", "Succeeded"])
            store(pod(name, str(rv), cpu="250m", node_name=current["spec"]["nodeName"], phase=phase),
                  report=step % 50 != 0)
        elif action < 0.9:
            removed = pods.remove(key_of(current))
            cache.pod_changed(removed, None)
            cache.remove_pod(current)
        scans.clear()
        infos = cache.node_infos()
        if step % 50 != 0:
            assert scans == [], step
        for info in infos:
            assert same(info, fresh(cache, info.name)), (step, info.name)


def test_requests_are_parsed_again_only_when_the_spec_changes() -> None:
    cache = SchedulerCache(nodes=Cache(), pods=Cache())
    first = cache.requests_of(pod("a", "1", cpu="500m"))
    assert cache.requests_of(pod("a", "2", cpu="500m", phase="Running")) is first  # new version, same spec
    resized = cache.requests_of(pod("a", "3", cpu="1"))
    assert resized["cpu"] == 1 and first["cpu"] * 1000 == 500
