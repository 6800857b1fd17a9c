"""Karmada-style propagation inside fleet instances: one management master, two instances, three
member clusters (Atoll control planes); members 1+2 join instance A, member 3 joins B."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from atoll.agent.node import AGENT_TAINT
from atoll.api import errors, kinds
from atoll.api.constants import LABEL_NODE_NAMESPACE
from atoll.api.quantity import parse_quantity
from atoll.api.registry import ResourceDef
from atoll.client import Client
from atoll.fleet.join import JoinError, join_cluster, unjoin_cluster
from atoll.fleet.karmada.members import flatten_kubeconfig
from atoll.fleet.kinds import CLUSTERS, INSTANCES, OVERRIDE_POLICIES, PROPAGATION_POLICIES, RESOURCE_BINDINGS
from atoll.node.config import NodeConfig
from atoll.node.master import MasterNode
from tests.conftest import RunningServer, _write_kubeconfig, eventually, start_until_ready
from tests.fleet.conftest import create_instance, proxy_url, widget_crd
from tests.integration.agents import (
    RunningAgent,
    agent_config,
    kill_leftovers,
    load_image,
    stable_processes,
    start_agent,
)

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]
WITHIN = 30.0
SEARCH = "/apis/search.kairship.io/v1alpha1/resources"
DEPLOYMENTS = kinds.DEPLOYMENTS
# Members 1 and 2 each run a RunP agent of domain WORKER (its node carries the agent taint and the
# domain's node label); the template's pods select and tolerate it, in ``default`` (which every
# agent runs besides its own domain's namespace).
WORKER = "worker"
IMAGE = "docker.io/library/nginx:1.25"
MIRRORED = "mirror.local/library/nginx:1.25"
CRDS = kinds.kind("apiextensions.k8s.io", "customresourcedefinitions")
MEMBER_CONTROLLERS = ("namespace", "garbagecollector", "replicaset", "deployment", "scheduler")


async def until(check: Callable[[], Awaitable[Any]], within: float = WITHIN) -> Any:
    """``eventually`` for async checks (typed loosely: the tests use what it returns as JSON)."""
    result: Any = await eventually(check, within)
    return result


@dataclass
class Fleet:
    management: RunningServer
    members: dict[str, RunningServer]
    a: Client
    b: Client
    member_clients: dict[str, Client]
    member_tasks: dict[str, asyncio.Task[None]]


async def start_member(name: str, base: Path) -> tuple[RunningServer, asyncio.Task[None]]:
    """A member cluster: an Atoll master with the workload controllers and the scheduler."""
    data = base / "master"
    config = NodeConfig(
        mode="master", domain_id="kuscia-system", data_dir=data, api_port=0, controllers=MEMBER_CONTROLLERS
    )
    node = MasterNode(config)
    task = await start_until_ready(node.run(), node.ready, 30, f"{name} not ready")
    kubeconfig, token, ca = _write_kubeconfig(data, node.url)
    return RunningServer(node.url, data, kubeconfig, token, ca, node), task


async def start_worker(member: RunningServer, base: Path, image: str) -> RunningAgent:
    """The member's RunP agent, with only ``image`` loaded (the other member's image is absent)."""
    data = base / "agent"
    config = agent_config(member, data, WORKER)
    load_image(data, image)
    return await start_agent(member, config)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fleet(management: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fleet]:
    members: dict[str, RunningServer] = {}
    tasks: dict[str, asyncio.Task[None]] = {}
    workers: list[RunningAgent] = []
    for name in ("member1", "member2", "member3"):
        base = tmp_path_factory.mktemp(name)
        members[name], tasks[name] = await start_member(name, base)
        if name != "member3":  # member3 only holds ConfigMaps and goes down in the last test
            workers.append(await start_worker(members[name], base, IMAGE if name == "member1" else MIRRORED))
    async with management.client() as client:
        await create_instance(client, "fleet-a")
        await create_instance(client, "fleet-b")
    ctx = management.ssl_context()
    a = Client(proxy_url(management, "fleet-a"), ssl_context=ctx, token=management.token)
    b = Client(proxy_url(management, "fleet-b"), ssl_context=ctx, token=management.token)
    member_clients = {n: m.client() for n, m in members.items()}
    for instance, name in ((a, "member1"), (a, "member2"), (b, "member3")):
        await join_cluster(instance, name, flatten_kubeconfig(members[name].kubeconfig), labels={"member": name})
    for instance, names in ((a, ("member1", "member2")), (b, ("member3",))):
        for name in names:
            await until(partial(cluster_ready, instance, name))
    yield Fleet(management, members, a, b, member_clients, tasks)
    for worker in workers:
        await worker.stop()
        kill_leftovers(worker.config.data_dir)
    for c in (a, b, *member_clients.values()):
        await c.close()
    for task in tasks.values():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def cluster_ready(instance: Client, name: str) -> bool:
    cluster = await instance.get(CLUSTERS, name)
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in (cluster.get("status") or {}).get("conditions") or ()
    )


def serve(name: str) -> str:
    """A long-running pod command whose command line names the Deployment (to count processes)."""
    return f"while :; do sleep 0.2; done # fleet-pod-{name}"


def deployment(name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 2,
                    "nodeSelector": {LABEL_NODE_NAMESPACE: WORKER},
                    "tolerations": [{"key": AGENT_TAINT["key"], "operator": "Exists", "effect": "NoSchedule"}],
                    "containers": [{"name": "main", "image": IMAGE, "command": ["sh", "-c", serve(name)]}],
                },
            },
        },
    }


def policy(name: str, selectors: list[dict[str, Any]], placement: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "policy.karmada.io/v1alpha1",
        "kind": "PropagationPolicy",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"resourceSelectors": selectors, "placement": placement},
    }


async def test_divided_static_weights_overrides_and_status(fleet: Fleet) -> None:
    a = fleet.a
    await a.create(
        OVERRIDE_POLICIES,
        {
            "apiVersion": "policy.karmada.io/v1alpha1",
            "kind": "OverridePolicy",
            "metadata": {"name": "web-in-member2", "namespace": "default"},
            "spec": {
                "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}],
                "overrideRules": [
                    {
                        "targetCluster": {"clusterNames": ["member2"]},
                        "overriders": {
                            "labelsOverrider": [{"operator": "add", "value": {"tier": "second"}}],
                            "imageOverrider": [
                                {"component": "Registry", "operator": "replace", "value": "mirror.local"}
                            ],
                        },
                    }
                ],
            },
        },
    )
    await a.create(
        PROPAGATION_POLICIES,
        policy(
            "web",
            [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}],
            {
                "clusterAffinity": {"clusterNames": ["member1", "member2"]},
                "replicaScheduling": {
                    "replicaSchedulingType": "Divided",
                    "replicaDivisionPreference": "Weighted",
                    "weightPreference": {
                        "staticWeightList": [
                            {"targetCluster": {"clusterNames": ["member1"]}, "weight": 1},
                            {"targetCluster": {"clusterNames": ["member2"]}, "weight": 2},
                        ]
                    },
                },
            },
        ),
    )
    await a.create(DEPLOYMENTS, deployment("web", 6), "default")
    m1, m2 = fleet.member_clients["member1"], fleet.member_clients["member2"]
    got1 = await until(partial(m1.get, DEPLOYMENTS, "web", "default"))
    got2 = await until(partial(m2.get, DEPLOYMENTS, "web", "default"))
    assert (got1["spec"]["replicas"], got2["spec"]["replicas"]) == (2, 4)
    assert "tier" not in got1["metadata"]["labels"] and got2["metadata"]["labels"]["tier"] == "second"
    assert got1["spec"]["template"]["spec"]["containers"][0]["image"] == "docker.io/library/nginx:1.25"
    assert got2["spec"]["template"]["spec"]["containers"][0]["image"] == "mirror.local/library/nginx:1.25"
    with pytest.raises(errors.NotFound):
        await fleet.member_clients["member3"].get(DEPLOYMENTS, "web", "default")
    # the members' own Deployment/ReplicaSet controllers, scheduler and RunP agents run the pods
    for member, count, image in ((m1, 2, IMAGE), (m2, 4, MIRRORED)):
        running = await until(partial(running_pods, member, "web", count), 60)
        assert {c["image"] for p in running for c in p["status"]["containerStatuses"]} == {image}

    async def six_process_groups() -> set[int]:
        groups = process_groups(await stable_processes(serve("web")))
        assert len(groups) == 6, groups  # one process group per pod container
        return groups

    await until(six_process_groups)

    async def template_ready() -> dict[str, Any]:
        status = (await a.get(DEPLOYMENTS, "web", "default")).get("status") or {}
        assert status.get("readyReplicas") == 6 and status.get("replicas") == 6, status
        return status

    await until(template_ready, WITHIN)
    binding = await a.get(RESOURCE_BINDINGS, "web-deployment", "default")
    assert sorted((c["name"], c["replicas"]) for c in binding["spec"]["clusters"]) == [("member1", 2), ("member2", 4)]
    conditions = {c["type"]: c["status"] for c in binding["status"]["conditions"]}
    assert conditions == {"Scheduled": "True", "FullyApplied": "True"}


async def running_pods(member: Client, app: str, count: int) -> list[dict[str, Any]]:
    """The member's Running, Ready pods of ``app`` once there are exactly ``count``."""
    pods = (await member.list(kinds.PODS, "default", label_selector=f"app={app}"))["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    ready = [p for p in live if p.get("status", {}).get("phase") == "Running" and _ready(p)]
    assert len(live) == len(ready) == count, [(p["metadata"]["name"], p.get("status", {}).get("phase")) for p in live]
    return ready


def process_groups(pids: list[int]) -> set[int]:
    groups = set()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            groups.add(os.getpgid(pid))
    return groups


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or ())


async def test_duplicated_configmaps_and_deletion(fleet: Fleet) -> None:
    a = fleet.a
    await a.create(
        PROPAGATION_POLICIES,
        policy(
            "settings",
            [{"apiVersion": "v1", "kind": "ConfigMap", "labelSelector": {"matchLabels": {"share": "yes"}}}],
            {
                "clusterAffinity": {
                    "labelSelector": {
                        "matchExpressions": [{"key": "member", "operator": "In", "values": ["member1", "member2"]}]
                    }
                },
                "replicaScheduling": {"replicaSchedulingType": "Duplicated"},
            },
        ),
    )
    await a.create(
        kinds.CONFIGMAPS,
        {"metadata": {"name": "settings", "labels": {"share": "yes"}}, "data": {"level": "debug"}},
        "default",
    )
    for name in ("member1", "member2"):
        member = fleet.member_clients[name]
        got = await until(partial(member.get, kinds.CONFIGMAPS, "settings", "default"))
        assert got["data"] == {"level": "debug"}
    await a.patch(kinds.CONFIGMAPS, "settings", {"data": {"level": "info"}}, "default")
    for name in ("member1", "member2"):
        member = fleet.member_clients[name]

        async def updated(m: Client = member) -> bool:
            return bool((await m.get(kinds.CONFIGMAPS, "settings", "default"))["data"] == {"level": "info"})

        await until(updated, WITHIN)
    await a.delete(kinds.CONFIGMAPS, "settings", "default")
    for name in ("member1", "member2"):
        member = fleet.member_clients[name]
        await until(partial(gone, member, kinds.CONFIGMAPS, "settings"))


async def gone(client: Client, rd: Any, name: str) -> bool:
    try:
        await client.get(rd, name, "default")
    except errors.NotFound:
        return True
    return False


async def test_conflict_resolution_and_preserve_on_deletion(fleet: Fleet) -> None:
    a, m2 = fleet.a, fleet.member_clients["member2"]
    await m2.create(kinds.CONFIGMAPS, {"metadata": {"name": "owned-by-m2"}, "data": {"who": "member"}}, "default")
    selector = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owned-by-m2"}]
    pp = policy("conflicts", selector, {"clusterAffinity": {"clusterNames": ["member2"]}})
    await a.create(PROPAGATION_POLICIES, pp)
    await a.create(kinds.CONFIGMAPS, {"metadata": {"name": "owned-by-m2"}, "data": {"who": "fleet"}}, "default")

    async def refused() -> dict[str, Any]:
        binding = await a.get(RESOURCE_BINDINGS, "owned-by-m2-configmap", "default")
        entry = ((binding.get("status") or {}).get("aggregatedStatus") or [{}])[0]
        assert entry.get("applied") is False and "conflictResolution: Abort" in entry.get("appliedMessage", ""), entry
        return dict(binding)

    binding = await until(refused)
    assert {c["type"]: c["status"] for c in binding["status"]["conditions"]}["FullyApplied"] == "False"
    assert (await m2.get(kinds.CONFIGMAPS, "owned-by-m2", "default"))["data"] == {"who": "member"}
    await a.patch(
        PROPAGATION_POLICIES,
        "conflicts",
        {"spec": {"conflictResolution": "Overwrite", "preserveResourcesOnDeletion": True}},
        "default",
    )

    async def overwritten() -> bool:
        return bool((await m2.get(kinds.CONFIGMAPS, "owned-by-m2", "default"))["data"] == {"who": "fleet"})

    await until(overwritten)
    await a.delete(kinds.CONFIGMAPS, "owned-by-m2", "default")
    await until(partial(gone, a, RESOURCE_BINDINGS, "owned-by-m2-configmap"))
    kept = await m2.get(kinds.CONFIGMAPS, "owned-by-m2", "default")  # preserveResourcesOnDeletion
    assert kept["data"] == {"who": "fleet"}


async def test_propagate_deps(fleet: Fleet) -> None:
    a, m1 = fleet.a, fleet.member_clients["member1"]
    await a.create(kinds.CONFIGMAPS, {"metadata": {"name": "app-config"}, "data": {"mode": "fast"}}, "default")
    await a.create(kinds.SECRETS, {"metadata": {"name": "app-secret"}, "stringData": {"token": "s3cr3t"}}, "default")
    pp = policy(
        "with-deps",
        [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"}],
        {"clusterAffinity": {"clusterNames": ["member1"]}},
    )
    pp["spec"]["propagateDeps"] = True
    await a.create(PROPAGATION_POLICIES, pp)
    app = deployment("app", 1)
    pod = app["spec"]["template"]["spec"]
    pod["volumes"] = [{"name": "config", "configMap": {"name": "app-config"}}]
    pod["containers"][0]["env"] = [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "app-secret", "key": "token"}}}
    ]
    await a.create(DEPLOYMENTS, app, "default")
    await until(partial(m1.get, DEPLOYMENTS, "app", "default"))
    config = await until(partial(m1.get, kinds.CONFIGMAPS, "app-config", "default"))
    secret = await until(partial(m1.get, kinds.SECRETS, "app-secret", "default"))
    assert config["data"] == {"mode": "fast"} and secret["data"]["token"]
    attached = await a.get(RESOURCE_BINDINGS, "app-config-configmap", "default")
    assert [r["name"] for r in attached["spec"]["requiredBy"]] == ["app-deployment"]
    with pytest.raises(errors.NotFound):
        await fleet.member_clients["member2"].get(kinds.CONFIGMAPS, "app-config", "default")
    await a.delete(DEPLOYMENTS, "app", "default")
    await until(partial(gone, m1, kinds.CONFIGMAPS, "app-config"))
    await until(partial(gone, m1, kinds.SECRETS, "app-secret"))


async def test_instance_b_never_sees_a(fleet: Fleet) -> None:
    clusters_b = {c["metadata"]["name"] for c in (await fleet.b.list(CLUSTERS))["items"]}
    assert clusters_b == {"member3"}
    with pytest.raises(errors.NotFound):
        await fleet.b.get(DEPLOYMENTS, "web", "default")
    assert (await fleet.b.list(PROPAGATION_POLICIES, "default"))["items"] == []


async def test_bad_input_names_the_field(fleet: Fleet, tmp_path: Path) -> None:
    with pytest.raises(errors.Invalid) as unknown:
        await fleet.a.create(
            PROPAGATION_POLICIES,
            policy("bad", [{"apiVersion": "v1", "kind": "Secret"}], {"clusterAffinity": {"clusterNames": ["member9"]}}),
        )
    assert "spec.placement.clusterAffinity.clusterNames[0]" in str(unknown.value) and "member9" in str(unknown.value)
    with pytest.raises(errors.Invalid) as weights:
        await fleet.a.create(
            PROPAGATION_POLICIES,
            policy(
                "bad",
                [{"apiVersion": "v1", "kind": "Secret"}],
                {
                    "replicaScheduling": {
                        "replicaSchedulingType": "Divided",
                        "weightPreference": {
                            "staticWeightList": [{"targetCluster": {"clusterNames": ["member1"]}, "weight": 0}]
                        },
                    }
                },
            ),
        )
    assert "spec.placement.replicaScheduling.weightPreference.staticWeightList[0].weight" in str(weights.value)
    doc = flatten_kubeconfig(fleet.members["member3"].kubeconfig)
    doc["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    with pytest.raises(JoinError) as refused:
        await join_cluster(fleet.b, "unreachable", doc, connect_timeout=3)
    assert "--member-kubeconfig" in str(refused.value)
    # a cluster still targeted by bindings cannot be removed
    with pytest.raises(errors.Forbidden) as targeted:
        await unjoin_cluster(fleet.a, "member2")
    assert "web-deployment" in str(targeted.value) and "spec.clusters" in str(targeted.value)


async def add_node(member: Client, name: str, cpu: str, memory: str) -> None:
    await member.create(kinds.NODES, {"metadata": {"name": name}})
    await member.patch(
        kinds.NODES,
        name,
        {
            "status": {
                "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
                "capacity": {"cpu": cpu, "memory": memory},
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            }
        },
        subresource="status",
    )


async def test_instance_summary_equals_member_totals(fleet: Fleet) -> None:
    m1, m2 = fleet.member_clients["member1"], fleet.member_clients["member2"]
    await add_node(m1, "n1", "4", "8Gi")
    await add_node(m2, "n2", "8", "16Gi")
    await add_node(m2, "n3", "2", "4Gi")
    await m1.create(
        kinds.PODS,
        {
            "metadata": {"name": "busy"},
            "spec": {
                "nodeName": "n1",
                "containers": [
                    {"name": "c", "image": "x", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}
                ],
            },
        },
        "default",
    )
    async with fleet.management.client() as client:

        async def summarised() -> dict[str, Any]:
            summary = ((await client.get(INSTANCES, "fleet-a")).get("status") or {}).get("summary") or {}
            # the three nodes added here plus each member's RunP agent node
            assert summary.get("nodeSummary") == {"totalNum": 5, "readyNum": 5}, summary
            assert summary["resourceSummary"]["allocated"].get("cpu") == "500m", summary
            direct = len((await fleet.a.list(PROPAGATION_POLICIES))["items"])
            assert summary["policyTotalNum"]["propagationPolicy"] == direct, summary
            return dict(summary)

        summary = await until(summarised)
    nodes = [n for m in (m1, m2) for n in (await m.list(kinds.NODES))["items"]]
    assert sorted(n["metadata"]["name"] for n in nodes) == ["n1", "n2", "n3", f"{WORKER}-node", f"{WORKER}-node"]
    for resource in ("cpu", "memory"):
        total = sum(parse_quantity(n["status"]["allocatable"][resource]) for n in nodes)
        assert parse_quantity(summary["resourceSummary"]["allocatable"][resource]) == total, resource
    agents = [n for n in nodes if n["metadata"]["name"] == f"{WORKER}-node"]
    assert parse_quantity(summary["resourceSummary"]["allocatable"]["memory"]) == parse_quantity("28Gi") + sum(
        parse_quantity(n["status"]["allocatable"]["memory"]) for n in agents
    )
    assert summary["resourceSummary"]["allocated"]["memory"] == "1Gi"
    assert summary["clusterSummary"] == {"totalNum": 2, "readyNum": 2}
    assert summary["workLoadSummary"]["deployment"] == {"totalNum": 1, "readyNum": 1}
    policies = len((await fleet.a.list(PROPAGATION_POLICIES))["items"])
    assert policies >= 2 and summary["policyTotalNum"]["overridePolicy"] == 1


async def test_policy_for_a_kind_installed_later(fleet: Fleet) -> None:
    group = "late.fleet.test"
    widgets = ResourceDef(group, "v1", "Widget", "widgets", "widget", True)
    await fleet.a.create(
        PROPAGATION_POLICIES,
        policy(
            "widgets",
            [{"apiVersion": f"{group}/v1", "kind": "Widget"}],
            {"clusterAffinity": {"clusterNames": ["member1"]}},
        ),
    )
    crd = widget_crd(group)
    member1 = fleet.member_clients["member1"]
    for client in (fleet.a, member1):
        await client.create(CRDS, crd)

    async def created() -> bool:
        fleet.a.invalidate_discovery()
        await fleet.a.create(
            widgets,
            {
                "apiVersion": f"{group}/v1",
                "kind": "Widget",
                "metadata": {"name": "w1", "namespace": "default"},
                "spec": {"size": 3},
            },
            "default",
        )
        return True

    await until(created)

    async def arrived() -> dict[str, Any]:
        member1.invalidate_discovery()
        return await member1.get(widgets, "w1", "default")

    got = await until(arrived)
    assert got["spec"] == {"size": 3}


async def search(fleet: Fleet, **query: str) -> dict[str, Any]:
    async with fleet.management.client() as client:
        result: dict[str, Any] = await client.request("GET", SEARCH, params=query)
    return result


def where(items: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (
            i["metadata"]["annotations"]["kairship.io/instance"],
            i["metadata"]["annotations"]["kairship.io/cluster"],
            i["metadata"]["name"],
        )
        for i in items
    }


async def test_search_matches_direct_lists(fleet: Fleet) -> None:
    direct = {("fleet-a", "-", d["metadata"]["name"]) for d in (await fleet.a.list(DEPLOYMENTS))["items"]}
    for name in ("member1", "member2"):
        listed = await fleet.member_clients[name].list(DEPLOYMENTS, label_selector="work.karmada.io/name")
        direct |= {("fleet-a", name, d["metadata"]["name"]) for d in listed["items"]}
    assert len(direct) == 3
    found = await search(fleet, kind="Deployment", apiVersion="apps/v1")
    assert where(found["items"]) == direct
    assert {(s["instance"], s["cluster"]) for s in found["sources"]} >= {
        ("fleet-a", "-"),
        ("fleet-a", "member1"),
        ("fleet-b", "member3"),
    }
    assert all(s["lastSyncTime"] and s["synced"] for s in found["sources"])
    assert where((await search(fleet, kind="Deployment", fuzzyName="WE"))["items"]) == direct
    assert (await search(fleet, kind="Deployment", fuzzyName="zzz"))["items"] == []
    tiered = await search(fleet, kind="Deployment", labelSelector="tier=second")
    assert where(tiered["items"]) == {("fleet-a", "member2", "web")}
    only_m1 = await search(fleet, instance="fleet-a", cluster="member1", fieldSelector="metadata.name=web")
    assert where(only_m1["items"]) == {("fleet-a", "member1", "web")}
    first = await search(fleet, kind="Deployment", limit="1")
    assert len(first["items"]) == 1 and first["metadata"]["remainingItemCount"] == 2
    rest = await search(fleet, kind="Deployment", limit="5", **{"continue": first["metadata"]["continue"]})
    assert where(first["items"]) | where(rest["items"]) == direct and "continue" not in rest["metadata"]
    template = await fleet.a.get(DEPLOYMENTS, "web", "default")
    owned = await search(fleet, instance="fleet-a", owner=template["metadata"]["uid"])
    assert [(i["kind"], i["metadata"]["name"]) for i in owned["items"]] == [("ResourceBinding", "web-deployment")]
    assert (await search(fleet, instance="fleet-b", kind="Deployment"))["items"] == []


async def test_member_down_turns_cluster_not_ready(fleet: Fleet) -> None:
    task = fleet.member_tasks["member3"]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    async def not_ready() -> dict[str, Any]:
        cluster = await fleet.b.get(CLUSTERS, "member3")
        ready = next(c for c in cluster["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "False", ready
        return dict(cluster)

    cluster = await until(not_ready)
    assert cluster["status"]["conditions"][0]["reason"] == "ClusterNotReachable"
    assert [t["key"] for t in cluster["spec"]["taints"]] == ["cluster.karmada.io/unreachable"]
    async with fleet.management.client() as client:

        async def counted() -> bool:
            summary = ((await client.get(INSTANCES, "fleet-b")).get("status") or {}).get("summary") or {}
            return bool(summary.get("clusterSummary") == {"totalNum": 1, "readyNum": 0})

        await until(counted)
    stale = await search(fleet, instance="fleet-b")
    source = next(s for s in stale["sources"] if s["cluster"] == "member3")
    assert source["ready"] is False and source["lastSyncTime"]
    assert any("member3" in w and "not ready" in w for w in stale["warnings"])
