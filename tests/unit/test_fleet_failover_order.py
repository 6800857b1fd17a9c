"""Failover order: a member going down moves a binding's replicas only through the taint manager.

The flake this pins (``test_failover_evicts_and_reschedules_to_healthy_member``): a member stopping
answers ``/readyz``, then fails part of its discovery, so the cluster status controller wrote an
``apiEnablements`` list without the workload's kind; the scheduler's API filter then dropped the
cluster from the binding at once — before the ``NoExecute`` taint, so with no graceful eviction
task and no ``evicting`` log. Karmada keeps a cluster already scheduled while its list is not known
complete (``CompleteAPIEnablements``); only the taint manager moves the replicas. Here the order is
driven by hand: probe (partial), reconcile, taint ``NoExecute``, advance the clock, reconcile.
"""

from __future__ import annotations

from typing import Any

from atoll.api.clock import FakeClock
from atoll.api.registry import ResourceDef
from atoll.api.timestamps import format_time
from atoll.client import ClientError
from atoll.fleet import constants as c
from atoll.fleet.karmada.clusters import probe_member
from atoll.fleet.karmada.conditions import is_true, set_condition
from atoll.fleet.karmada.detector import TemplateKey, TemplateReconciler
from atoll.fleet.kinds import RESOURCE_BINDINGS
from atoll.runtime import Cache

JSON = dict[str, Any]
T0 = 1_800_000_000.0
CONFIGMAPS = ResourceDef("", "v1", "ConfigMap", "configmaps", "configmap", True)
DEPLOYMENTS = ResourceDef("apps", "v1", "Deployment", "deployments", "deployment", True)


class StoppingMember:
    """A member shutting down: ``/readyz`` answers, ``apps/v1`` discovery and the lists do not."""

    def __init__(self, *, partial: bool) -> None:
        self.partial = partial

    async def request(self, method: str, path: str) -> JSON:
        return {}

    async def get_path(self, path: str) -> JSON:
        return {"gitVersion": "v1.29.0"}

    async def preferred_resources(self) -> tuple[list[ResourceDef], dict[str, Exception]]:
        if self.partial:
            return [CONFIGMAPS], {"apps/v1": ClientError("connection refused")}
        return [CONFIGMAPS, DEPLOYMENTS], {}

    async def list(self, rd: ResourceDef) -> JSON:
        if self.partial:
            raise ClientError("connection refused")
        return {"items": []}


class Recorder:
    """The instance API as the detector uses it: binding patches land in the cache at once."""

    def __init__(self, bindings: Cache) -> None:
        self.bindings = bindings
        self.specs: list[JSON] = []

    async def patch(self, rd: ResourceDef, name: str, body: JSON, namespace: str | None, **kw: Any) -> JSON:
        current = self.bindings.get(name, namespace)
        assert current is not None
        if kw.get("subresource") == "status":
            return current
        self.specs.append(body["spec"])
        updated = {**current, "spec": {**current["spec"], **body["spec"]}}
        updated["metadata"] = {**current["metadata"], "generation": current["metadata"]["generation"] + 1}
        self.bindings.upsert(updated)
        return updated


def _cluster(name: str, status: JSON, taints: list[JSON] | None = None) -> JSON:
    return {"metadata": {"name": name}, "spec": {"taints": taints or []}, "status": status}


async def _healthy_status() -> JSON:
    status, taint = await probe_member(StoppingMember(partial=False), {})  # type: ignore[arg-type]
    assert taint == "" and is_true({"status": status}, c.COMPLETE_API_ENABLEMENTS)
    return status


async def test_partial_discovery_marks_api_enablements_incomplete_and_keeps_the_last_ones() -> None:
    healthy = await _healthy_status()
    status, taint = await probe_member(StoppingMember(partial=True), healthy)  # type: ignore[arg-type]
    assert taint == c.TAINT_NOT_READY
    assert not is_true({"status": status}, c.COMPLETE_API_ENABLEMENTS)
    assert not is_true({"status": status}, "Ready")
    assert [e["groupVersion"] for e in status["apiEnablements"]] == ["v1"]  # what answered
    assert [x["type"] for x in status["conditions"]] == ["Ready", c.COMPLETE_API_ENABLEMENTS]


def _template() -> JSON:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "uid": "u-web", "resourceVersion": "5"},
        "spec": {"replicas": 4, "template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}},
    }


def _policy() -> JSON:
    return {
        "metadata": {"name": "pp", "namespace": "default", "uid": "u-pp"},
        "spec": {
            "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}],
            "placement": {
                "clusterAffinity": {"clusterNames": ["m1", "m2"]},
                "clusterTolerations": [
                    {"key": c.TAINT_NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}
                ],
                "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted"},
            },
            "failover": {"cluster": {"purgeMode": "Gracefully", "gracePeriodSeconds": 6}},
        },
    }


async def test_member_going_down_moves_replicas_only_through_the_taint_manager() -> None:
    clock = FakeClock(T0)
    healthy = await _healthy_status()
    clusters, bindings, policies, templates = Cache(), Cache(), Cache(), Cache()
    clusters.upsert(_cluster("m1", healthy))
    clusters.upsert(_cluster("m2", healthy))
    policies.upsert(_policy())
    templates.upsert(_template())
    client = Recorder(bindings)
    detector = TemplateReconciler(
        client,  # type: ignore[arg-type]
        policies=policies,
        cluster_policies=Cache(),
        clusters=clusters,
        templates={("apps/v1", "Deployment"): (DEPLOYMENTS, templates)},
        bindings=bindings,
        cluster_bindings=Cache(),
        bindings_synced=lambda: True,
        clock=clock,
    )
    key = TemplateKey("apps/v1", "Deployment", "default", "web")
    placement = _policy()["spec"]["placement"]
    bindings.upsert(
        {
            "apiVersion": RESOURCE_BINDINGS.api_version,
            "kind": "ResourceBinding",
            "metadata": {"name": "web-deployment", "namespace": "default", "generation": 1, "resourceVersion": "9"},
            "spec": {"placement": placement, "clusters": [{"name": n, "replicas": 2} for n in ("m1", "m2")]},
        }
    )

    def placed() -> list[JSON]:
        binding = bindings.get("web-deployment", "default")
        assert binding is not None
        return list(binding["spec"]["clusters"])

    await detector.reconcile(key)
    assert placed() == [{"name": "m1", "replicas": 2}, {"name": "m2", "replicas": 2}]

    # m2 stops: a partial probe, then NotReady with the NoSchedule taint at once
    going, taint = await probe_member(StoppingMember(partial=True), healthy)  # type: ignore[arg-type]
    going["conditions"] = set_condition(going["conditions"], "Ready", False, "ClusterNotReady", "", now=T0)
    no_schedule = {"key": taint, "effect": "NoSchedule", "timeAdded": format_time(T0)}
    clusters.upsert(_cluster("m2", going, [no_schedule]))
    clock.advance(0.5)
    await detector.reconcile(key)
    assert placed() == [{"name": "m1", "replicas": 2}, {"name": "m2", "replicas": 2}], client.specs
    binding = bindings.get("web-deployment", "default")
    assert binding is not None and not binding["spec"].get("gracefulEvictionTasks")

    # the failure threshold passed: NoExecute; the 1 s toleration runs out → the taint manager evicts
    no_execute = {"key": taint, "effect": "NoExecute", "timeAdded": format_time(T0 + 2)}  # whole seconds
    clusters.upsert(_cluster("m2", going, [no_schedule, no_execute]))
    clock.advance(1.5)
    due = (await detector.reconcile(key)).requeue_after
    assert due is not None and 0 < due <= 1.0  # tolerated for now: nothing moves yet
    assert [t["name"] for t in placed()] == ["m1", "m2"]
    clock.advance(due)
    await detector.reconcile(key)
    assert placed() == [{"name": "m1", "replicas": 4}]
    binding = bindings.get("web-deployment", "default")
    assert binding is not None
    [task] = binding["spec"]["gracefulEvictionTasks"]
    assert task["fromCluster"] == "m2" and task["producer"] == "TaintManager" and task["replicas"] == 2
    assert task["clustersBeforeFailover"] == ["m1", "m2"]
