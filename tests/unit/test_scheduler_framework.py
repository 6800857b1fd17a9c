"""Scheduler plugins and framework without a server: filter rules, fit accounting with assumed
pods, the FailedScheduling wording, and extension through a custom profile (the seam the
co-scheduling plugin will use)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from atoll.runtime import Cache, ObjectKey
from atoll.scheduler import CycleState, Profile, Scheduler, Status, default_profile
from atoll.scheduler.algorithm import schedule
from atoll.scheduler.diagnosis import Diagnosis, fit_error_message
from atoll.scheduler.framework import Code
from atoll.scheduler.nodeinfo import NodeInfo, pod_requests
from atoll.scheduler.plugins.nodeaffinity import NodeAffinity
from atoll.scheduler.plugins.noderesources import NodeResourcesFit
from atoll.scheduler.plugins.tainttoleration import TaintToleration, tolerates

JSON = dict[str, Any]


def node(name: str, *, cpu: str = "4", pods: str = "110", labels: JSON | None = None, taints: Any = None) -> JSON:
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"taints": taints or []},
        "status": {
            "allocatable": {"cpu": cpu, "memory": "8Gi", "pods": pods},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def pod(name: str, *, cpu: str | None = None, scheduler: str = "default-scheduler", **spec: Any) -> JSON:
    resources = {"requests": {"cpu": cpu}} if cpu else {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "resourceVersion": "1"},
        "spec": {"schedulerName": scheduler, "containers": [{"name": "c", "resources": resources}], **spec},
        "status": {"phase": "Pending"},
    }


class FakeClient:
    """Records the scheduler's writes."""

    def __init__(self) -> None:
        self.bindings: list[tuple[str, str]] = []
        self.patches: list[tuple[str, JSON]] = []
        self.events: list[JSON] = []

    async def patch(self, rd: Any, name: str, patch: JSON, namespace: str | None = None, **_: Any) -> JSON:
        self.patches.append((name, patch))
        return {}

    async def create(self, rd: Any, body: JSON, namespace: str | None = None, *, subresource: str | None = None,
                     **_: Any) -> JSON:
        if subresource == "binding":
            self.bindings.append((body["metadata"]["name"], body["target"]["name"]))
            return {}
        self.events.append(body)
        return body


def caches(nodes: list[JSON], pods: list[JSON]) -> tuple[Cache, Cache]:
    node_cache, pod_cache = Cache(), Cache()
    for obj in nodes:
        node_cache.upsert(obj)
    for obj in pods:
        pod_cache.upsert(obj)
    return node_cache, pod_cache


def test_toleration_matching() -> None:
    taint = {"key": "kuscia.secretflow/agent", "value": "v1", "effect": "NoSchedule"}
    assert tolerates({"key": "kuscia.secretflow/agent", "operator": "Equal", "value": "v1"}, taint)
    assert tolerates({"key": "kuscia.secretflow/agent", "value": "v1", "effect": "NoSchedule"}, taint)
    assert tolerates({"operator": "Exists"}, taint)
    assert tolerates({"key": "kuscia.secretflow/agent", "operator": "Exists", "effect": "NoSchedule"}, taint)
    assert not tolerates({"key": "kuscia.secretflow/agent", "operator": "Exists", "effect": "NoExecute"}, taint)
    assert not tolerates({"key": "kuscia.secretflow/agent", "value": "v2"}, taint)
    assert not tolerates({"key": "other", "operator": "Exists"}, taint)


def test_prefer_no_schedule_taints_only_score() -> None:
    plugin, state = TaintToleration(), CycleState()
    soft = NodeInfo.build(node("soft", taints=[{"key": "k", "effect": "PreferNoSchedule"}]), [])
    assert plugin.filter(state, pod("p"), soft).ok
    scores = {"soft": plugin.score(state, pod("p"), soft), "clean": 0.0}
    plugin.normalize(scores)
    assert scores == {"soft": 0.0, "clean": 100.0}


def test_affinity_terms_or_and_invalid() -> None:
    plugin, state = NodeAffinity(), CycleState()
    terms = [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]},
        {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["not-a-number"]}]},
    ]
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}
    p = pod("p", affinity=affinity)
    fits = {
        name: plugin.filter(state, p, NodeInfo.build(node(name, labels=labels), [])).ok
        for name, labels in (("n1", {"zone": "a"}), ("n2", {}), ("n3", {"cores": "9"}))
    }
    assert fits == {"n1": True, "n2": True, "n3": False}
    empty = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{}]}}}
    assert not plugin.filter(CycleState(), pod("q", affinity=empty), NodeInfo.build(node("n1"), [])).ok


def test_fit_counts_requests_init_containers_and_pod_slots() -> None:
    p = pod("p", cpu="500m")
    p["spec"]["initContainers"] = [{"name": "init", "resources": {"requests": {"cpu": "2"}}}]
    assert pod_requests(p)["cpu"] == 2
    busy = pod("busy", cpu="2500m")
    info = NodeInfo.build(node("n", cpu="4", pods="2"), [(busy, pod_requests(busy))])
    status = NodeResourcesFit().filter(CycleState(), p, info)
    assert status.code is Code.UNSCHEDULABLE and status.reasons == ("Insufficient cpu",)
    info.add_pod(pod("x"), {})
    assert NodeResourcesFit().filter(CycleState(), pod("y"), info).reasons == ("Too many pods",)


def test_fit_error_message_is_sorted_histogram_with_preemption() -> None:
    diagnosis = Diagnosis(
        3,
        {
            "a": Status(Code.UNRESOLVABLE, ("node(s) had untolerated taint {kuscia.secretflow/agent: v1}",)),
            "b": Status(Code.UNSCHEDULABLE, ("Insufficient cpu", "Insufficient memory")),
            "c": Status(Code.UNSCHEDULABLE, ("Insufficient cpu",)),
        },
    )
    assert fit_error_message(pod("p"), diagnosis) == (
        "0/3 nodes are available: 1 Insufficient memory, 1 node(s) had untolerated taint "
        "{kuscia.secretflow/agent: v1}, 2 Insufficient cpu. preemption: 0/3 nodes are available: "
        "1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
    )
    never = pod("p", preemptionPolicy="Never")
    assert fit_error_message(never, diagnosis).endswith("preemption: not eligible due to preemptionPolicy=Never.")
    assert fit_error_message(pod("p"), Diagnosis(0)) == "no nodes available to schedule pods"


def test_least_allocated_spreads() -> None:
    nodes, pods = caches([node("idle"), node("busy")], [])
    heavy = pod("heavy", cpu="3", nodeName="busy")
    pods.upsert(heavy)
    scheduler = Scheduler(FakeClient(), nodes=nodes, pods=pods, profiles=[default_profile()])  # type: ignore[arg-type]
    outcome = schedule(
        default_profile(), CycleState(), pod("new", cpu="100m"), scheduler.cache.node_infos(), random.Random(0)
    )
    assert not isinstance(outcome, Diagnosis) and outcome.node_name == "idle"


async def test_assumed_pods_count_until_confirmed() -> None:
    nodes, pods = caches([node("n", cpu="1")], [pod("a", cpu="600m"), pod("b", cpu="600m")])
    client = FakeClient()
    scheduler = Scheduler(client, nodes=nodes, pods=pods, profiles=[default_profile()])  # type: ignore[arg-type]
    scheduler.cache.assume(pods.get("a", "ns") or {}, "n")  # bound as far as the scheduler knows
    await scheduler.reconcile(ObjectKey("ns", "b"))
    assert client.bindings == []
    assert "1 Insufficient cpu" in client.patches[-1][1]["status"]["conditions"][0]["message"]
    assert client.events[-1]["reason"] == "FailedScheduling"
    # binding failed for a: forgetting it frees the slot
    scheduler.cache.forget(ObjectKey("ns", "a"))
    await scheduler.reconcile(ObjectKey("ns", "b"))
    assert client.bindings == [("b", "n")]
    assert scheduler.cache.is_assumed(ObjectKey("ns", "b"))


class GangGate:
    """A stand-in for a co-scheduling plugin: PreFilter, Reserve and Permit extension points."""

    name = "GangGate"

    def __init__(self) -> None:
        self.reserved: list[str] = []
        self.unreserved: list[str] = []

    def pre_filter(self, state: CycleState, pod: JSON) -> Status:
        if "task-resource" not in pod["metadata"].get("annotations", {}):
            return Status.unschedulable("waiting for task resource", resolvable=False)
        return Status()

    def reserve(self, state: CycleState, pod: JSON, node_name: str) -> Status:
        self.reserved.append(pod["metadata"]["name"])
        return Status()

    def unreserve(self, state: CycleState, pod: JSON, node_name: str) -> None:
        self.unreserved.append(pod["metadata"]["name"])

    async def permit(self, state: CycleState, pod: JSON, node_name: str) -> Status:
        if pod["metadata"]["annotations"]["task-resource"] == "failed":
            return Status.unschedulable("domain [bob] can not reserve resources for pods")
        return Status()


async def test_custom_profile_extension_points() -> None:
    gate = GangGate()
    from atoll.scheduler.plugins import default_plugins

    profile = Profile.from_plugins("kuscia-scheduler", [gate, *default_plugins()])
    assert profile.pre_filter[0] is gate and profile.permit == [gate] and profile.reserve == [gate]
    waiting = pod("w", scheduler="kuscia-scheduler")
    ok = pod("ok", scheduler="kuscia-scheduler")
    ok["metadata"]["annotations"] = {"task-resource": "tr-1"}
    failed = pod("f", scheduler="kuscia-scheduler")
    failed["metadata"]["annotations"] = {"task-resource": "failed"}
    plain = pod("plain")  # default-scheduler: no profile here, left alone
    nodes, pods = caches([node("n")], [waiting, ok, failed, plain])
    client = FakeClient()
    scheduler = Scheduler(client, nodes=nodes, pods=pods, profiles=[profile])  # type: ignore[arg-type]
    requeued: list[tuple[ObjectKey, float]] = []
    scheduler.retry.requeue = lambda key, delay: requeued.append((key, delay))
    for name in ("w", "ok", "f", "plain"):
        await scheduler.reconcile(ObjectKey("ns", name))
    assert client.bindings == [("ok", "n")]
    messages = {name: patch["status"]["conditions"][0]["message"] for name, patch in client.patches}
    assert messages["w"] == "0/1 nodes are available: waiting for task resource."
    assert messages["f"] == "Binding rejected: GangGate: domain [bob] can not reserve resources for pods"
    assert gate.reserved == ["ok", "f"] and gate.unreserved == ["f"]
    assert not scheduler.cache.is_assumed(ObjectKey("ns", "f"))
    assert [key.name for key, _ in requeued] == ["f"]


def test_profile_rejects_objects_without_extension_points() -> None:
    class Named:
        name = "nothing"

    with pytest.raises(TypeError, match="implements no extension point"):
        Profile.from_plugins("x", [Named()])
