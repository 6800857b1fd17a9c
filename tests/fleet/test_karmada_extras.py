"""Karmada features beyond Push propagation, on one management master with one instance and three
member masters (no agents: the objects, not pods, are what is checked):

- Pull mode: an in-process ``PullAgent`` beside member3, with its own least-privilege identity
  (``atoll fleet cluster token``: refused everything but its Cluster, Works, Lease and token),
  registers it, applies its Works, reports status and its lease; the management plane's search
  lists what it applied; stopping the agent turns the cluster not ready.
- ``fieldOverrider`` inside a ConfigMap's JSON and YAML values.
- Custom resources: a ``ResourceInterpreterCustomization`` (Lua) gives a CRD's binding health and
  the template an aggregated status, and divides its replicas.
- ``propagateDeps``: editing a dependency reaches the member on its own.
- Failover (last: it stops member2): NotReady → ``NoSchedule`` then ``NoExecute`` taints, eviction
  with a graceful eviction task, replicas moved to member1, the task dropped after its grace.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from atoll.api import errors, kinds
from atoll.api.registry import ResourceDef
from atoll.api.timestamps import parse_time
from atoll.client import Client
from atoll.fleet.agentid import IdentityError, agent_kubeconfig, grant_agent, request_token
from atoll.fleet.join import join_cluster
from atoll.fleet.karmada.agent import PullAgent, token_expiry
from atoll.fleet.karmada.members import flatten_kubeconfig
from atoll.fleet.kinds import (
    CLUSTERS,
    OVERRIDE_POLICIES,
    PROPAGATION_POLICIES,
    RESOURCE_BINDINGS,
    RESOURCE_INTERPRETER_CUSTOMIZATIONS,
    WORKS,
)
from atoll.node.config import NodeConfig
from atoll.node.master import MasterNode
from tests.conftest import RunningServer, _write_kubeconfig, eventually, start_until_ready
from tests.fleet.conftest import create_instance, proxy_url, widget_crd

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]
WITHIN = 30.0
CRDS = kinds.kind("apiextensions.k8s.io", "customresourcedefinitions")
GROUP = "extras.fleet.test"
SEARCH = "/apis/search.kairship.io/v1alpha1/resources"
INSTANCE_HOST = "127.0.0.2"
"""Where instances listen (``fleet.instanceHost``): what remote agents reach; not the loopback default."""
WIDGETS = ResourceDef(GROUP, "v1", "Widget", "widgets", "widget", True, subresources=("status",))


async def until(check: Callable[[], Awaitable[Any]], within: float = WITHIN) -> Any:
    result: Any = await eventually(check, within)
    return result


@dataclass
class Net:
    management: RunningServer
    a: Client
    members: dict[str, Client]
    member_tasks: dict[str, asyncio.Task[None]]
    agent: PullAgent
    agent_task: asyncio.Task[None]
    own: Client
    """member3's agent's client of the instance: its own identity (``atoll fleet cluster token``)."""


async def _master(
    base: Path, controllers: tuple[str, ...], extra: dict[str, Any] | None = None
) -> tuple[RunningServer, asyncio.Task[None]]:
    data = base / "master"
    config = NodeConfig(
        mode="master",
        domain_id="kuscia-system",
        data_dir=data,
        api_port=0,
        controllers=controllers,
        extra=extra or {},
    )
    node = MasterNode(config)
    task = await start_until_ready(node.run(), node.ready, 30, f"{base.name} not ready")
    kubeconfig, token, ca = _write_kubeconfig(data, node.url)
    return RunningServer(node.url, data, kubeconfig, token, ca, node), task


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Net]:
    fleet_config = {
        "clusterStatusPeriod": 0.5,
        "statisticsPeriod": 1,
        "clusterFailureThreshold": 1.5,
        "clusterMonitorGracePeriod": 2,
        "instanceHost": INSTANCE_HOST,
    }
    management, management_task = await _master(tmp_path_factory.mktemp("mgmt"), ("fleet",), {"fleet": fleet_config})
    started = {n: await _master(tmp_path_factory.mktemp(n), ("namespace",)) for n in ("member1", "member2", "member3")}
    servers = {n: server for n, (server, _task) in started.items()}
    tasks = {n: task for n, (_server, task) in started.items()}
    async with management.client() as client:
        await create_instance(client, "extras")
    a = Client(proxy_url(management, "extras"), ssl_context=management.ssl_context(), token=management.token)
    members = {n: s.client() for n, s in servers.items()}
    for name in ("member1", "member2"):
        await join_cluster(a, name, flatten_kubeconfig(servers[name].kubeconfig), labels={"member": name})
    async with management.client() as client:
        agent_doc = await agent_kubeconfig(client, "extras", "member3")
    assert agent_doc["clusters"][0]["cluster"]["server"].startswith(f"https://{INSTANCE_HOST}:")
    own = Client.from_kubeconfig(agent_doc, user_agent="karmada-agent")
    agent = PullAgent(own, members["member3"], "member3", labels={"member": "member3"}, period=0.5, renew_token=True)
    agent_task = asyncio.create_task(agent.run())
    for name in ("member1", "member2", "member3"):
        await until(partial(ready, a, name))
    yield Net(management, a, members, tasks, agent, agent_task, own)
    agent_task.cancel()
    await asyncio.gather(agent_task, return_exceptions=True)
    for c in (a, own, *members.values()):
        await c.close()
    for task in (*tasks.values(), management_task):
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def ready(instance: Client, name: str) -> bool:
    cluster = await instance.get(CLUSTERS, name)
    conditions = (cluster.get("status") or {}).get("conditions") or ()
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def policy(name: str, selectors: list[dict[str, Any]], placement: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "policy.karmada.io/v1alpha1",
        "kind": "PropagationPolicy",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"resourceSelectors": selectors, "placement": placement, **spec},
    }


async def gone(client: Client, rd: ResourceDef, name: str, namespace: str | None = "default") -> bool:
    with contextlib.suppress(errors.NotFound):
        await client.get(rd, name, namespace)
        return False
    return True


# --------------------------------------------------------------------------------------- Pull mode
async def test_pull_agent_applies_works_and_reports_status(net: Net) -> None:
    a, m3 = net.a, net.members["member3"]
    cluster = await a.get(CLUSTERS, "member3")
    assert cluster["spec"]["syncMode"] == "Pull" and cluster["metadata"]["labels"] == {"member": "member3"}
    assert cluster["status"]["nodeSummary"] == {"totalNum": 0, "readyNum": 0}
    assert cluster["status"]["apiEnablements"], "the agent reports the member's API enablements"
    lease = await a.get(kinds.LEASES, "member3", "karmada-cluster")
    assert lease["spec"]["holderIdentity"] == "karmada-agent-member3"
    await a.create(
        PROPAGATION_POLICIES,
        policy(
            "to-pull",
            [{"apiVersion": "v1", "kind": "ConfigMap", "name": "pulled"}],
            {"clusterAffinity": {"clusterNames": ["member3"]}},
        ),
    )
    await a.create(kinds.CONFIGMAPS, {"metadata": {"name": "pulled"}, "data": {"v": "1"}}, "default")
    copy = await until(partial(m3.get, kinds.CONFIGMAPS, "pulled", "default"))
    assert copy["data"] == {"v": "1"}
    assert copy["metadata"]["labels"]["work.karmada.io/namespace"] == "karmada-es-member3"

    async def applied() -> dict[str, Any]:
        binding = await a.get(RESOURCE_BINDINGS, "pulled-configmap", "default")
        assert binding["status"].get("aggregatedStatus") == [
            {"clusterName": "member3", "applied": True, "status": {}, "health": "Healthy"}
        ], binding["status"]
        return dict(binding)

    await until(applied)
    await a.patch(kinds.CONFIGMAPS, "pulled", {"data": {"v": "2"}}, "default")

    async def updated() -> None:
        assert (await m3.get(kinds.CONFIGMAPS, "pulled", "default"))["data"] == {"v": "2"}

    await until(updated)
    await a.delete(kinds.CONFIGMAPS, "pulled", "default")
    await until(partial(gone, m3, kinds.CONFIGMAPS, "pulled"))


async def test_pull_agent_identity_is_least_privilege(net: Net) -> None:
    """The agent runs with its own ServiceAccount: its Cluster, Works, Lease and token only."""
    own = net.own
    assert (await own.list(WORKS, "karmada-es-member3"))["kind"] == "WorkList"
    assert (await own.get(CLUSTERS, "member3"))["metadata"]["name"] == "member3"
    refusals = [
        (own.list(WORKS, "karmada-es-member1"), 'resource "works" in API group "work.karmada.io"'),
        (own.get(CLUSTERS, "member1"), 'clusters.cluster.karmada.io "member1" is forbidden'),
        (
            own.patch(CLUSTERS, "member1", {"status": {}}, subresource="status"),
            'resource "clusters/status" in API group "cluster.karmada.io"',
        ),
        (own.list(kinds.SECRETS, "karmada-cluster"), 'resource "secrets"'),
        (own.list(PROPAGATION_POLICIES, "default"), 'resource "propagationpolicies"'),
        (
            own.create(CLUSTERS, {"metadata": {"name": "rogue"}, "spec": {"syncMode": "Pull"}}),
            'resource "clusters" in API group "cluster.karmada.io"',
        ),
        (own.get(kinds.LEASES, "member1", "karmada-cluster"), 'leases.coordination.k8s.io "member1" is forbidden'),
    ]
    for call, named in refusals:
        with pytest.raises(errors.Forbidden) as refused:
            await call
        assert named in refused.value.message, refused.value.message
        assert "system:serviceaccount:karmada-cluster:karmada-agent-member3" in refused.value.message
    # it may renew its own token, not another agent's
    expiry = token_expiry(own.token or "")
    assert expiry is not None and expiry - time.time() > 47 * 3600
    renewed = await request_token(own, "member3", 600)
    assert token_expiry(renewed) is not None
    with pytest.raises(errors.Forbidden):
        await request_token(own, "member1", 600)
    # a Push cluster's name cannot be taken over by an agent identity
    with pytest.raises(IdentityError, match="joined with syncMode Push"):
        await grant_agent(net.a, "member1")


async def test_search_covers_pull_cluster(net: Net) -> None:
    """The management plane's search lists what member3's agent applied (from the Works' status)."""
    a, m1, m3 = net.a, net.members["member1"], net.members["member3"]
    await a.create(
        PROPAGATION_POLICIES,
        policy(
            "searched",
            [{"apiVersion": "v1", "kind": "ConfigMap", "labelSelector": {"matchLabels": {"searched": "yes"}}}],
            {"clusterAffinity": {"clusterNames": ["member1", "member3"]}},
        ),
    )
    for name in ("found-a", "found-b"):
        body = {"metadata": {"name": name, "labels": {"searched": "yes"}}, "data": {"name": name}}
        await a.create(kinds.CONFIGMAPS, body, "default")

    def view(obj: dict[str, Any]) -> tuple[Any, ...]:
        md = obj["metadata"]
        mine = {k: v for k, v in (md.get("annotations") or {}).items() if not k.startswith("kairship.io/")}
        return md["namespace"], md["name"], md.get("labels"), mine, obj.get("data")

    async def listed() -> dict[str, Any]:
        direct = (await m3.list(kinds.CONFIGMAPS, "default", label_selector="searched=yes"))["items"]
        found = await search(net.management, instance="extras", cluster="member3", labelSelector="searched=yes")
        assert len(direct) == 2 and sorted(map(view, found["items"])) == sorted(map(view, direct)), found["items"]
        return found

    found = await until(listed)
    assert {i["metadata"]["annotations"]["kairship.io/cluster"] for i in found["items"]} == {"member3"}
    assert all(i["kind"] == "ConfigMap" and i["apiVersion"] == "v1" for i in found["items"])
    [source] = found["sources"]
    assert source["cluster"] == "member3" and source["ready"] and source["synced"]

    async def last_renewal() -> float:  # a Pull member is as current as its agent's last lease renewal
        [current] = (await search(net.management, instance="extras", cluster="member3"))["sources"]
        lease = await a.get(kinds.LEASES, "member3", "karmada-cluster")
        assert current["lastSyncTime"] == lease["spec"]["renewTime"], (current, lease["spec"])
        return parse_time(current["lastSyncTime"])

    synced_at = await until(last_renewal)  # equal unless the agent renewed between the two reads

    async def renewed_since() -> None:  # and it follows the renewals (every 0.5 s), not frozen
        assert await last_renewal() > synced_at

    await until(renewed_since)
    # fuzzy names and the Push member alongside
    fuzzy = await search(net.management, instance="extras", kind="ConfigMap", fuzzyName="ND-B")
    assert {i["metadata"]["annotations"]["kairship.io/cluster"] for i in fuzzy["items"]} >= {"member1", "member3"}
    assert (await m1.get(kinds.CONFIGMAPS, "found-b", "default"))["data"] == {"name": "found-b"}
    # an update and a deletion reach the index through the agent's Work status
    await a.patch(kinds.CONFIGMAPS, "found-a", {"data": {"name": "changed"}}, "default")
    await until(listed)
    await a.delete(kinds.CONFIGMAPS, "found-b", "default")

    async def dropped() -> None:
        found = await search(net.management, instance="extras", cluster="member3", labelSelector="searched=yes")
        assert [i["metadata"]["name"] for i in found["items"]] == ["found-a"], found["items"]
        assert [i["data"] for i in found["items"]] == [{"name": "changed"}]

    await until(dropped)
    await a.delete(kinds.CONFIGMAPS, "found-a", "default")
    await a.delete(PROPAGATION_POLICIES, "searched", "default")


async def search(management: RunningServer, **query: str) -> dict[str, Any]:
    async with management.client() as client:
        result: dict[str, Any] = await client.request("GET", SEARCH, params=query)
    return result


async def test_pull_cluster_not_ready_when_agent_stops(net: Net) -> None:
    net.agent_task.cancel()
    await asyncio.gather(net.agent_task, return_exceptions=True)

    async def unknown() -> dict[str, Any]:
        cluster = await net.a.get(CLUSTERS, "member3")
        cond = next(c for c in cluster["status"]["conditions"] if c["type"] == "Ready")
        assert cond["status"] == "False" and cond["reason"] == "ClusterStatusUnknown", cond
        return dict(cluster)

    cluster = await until(unknown)
    assert "cluster.karmada.io/unreachable" in [t["key"] for t in cluster["spec"]["taints"]]
    # a new agent brings it back
    agent = PullAgent(net.own, net.members["member3"], "member3", labels={"member": "member3"}, period=0.5)
    net.agent_task = asyncio.create_task(agent.run())
    await until(partial(ready, net.a, "member3"))

    async def untainted() -> None:
        cluster = await net.a.get(CLUSTERS, "member3")
        assert not (cluster["spec"].get("taints") or []), cluster["spec"]

    await until(untainted)


# --------------------------------------------------------------------------------- fieldOverrider
async def test_field_overrider_edits_json_and_yaml_inside_values(net: Net) -> None:
    a, m1, m2 = net.a, net.members["member1"], net.members["member2"]
    data = {"config.json": '{"db": {"host": "primary", "port": 5432}}', "app.yaml": "log:\n  level: info\n"}
    await a.create(
        PROPAGATION_POLICIES,
        policy(
            "fields",
            [{"apiVersion": "v1", "kind": "ConfigMap", "name": "settings"}],
            {"clusterAffinity": {"clusterNames": ["member1", "member2"]}},
        ),
    )
    await a.create(
        OVERRIDE_POLICIES,
        {
            "apiVersion": "policy.karmada.io/v1alpha1",
            "kind": "OverridePolicy",
            "metadata": {"name": "fields", "namespace": "default"},
            "spec": {
                "resourceSelectors": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "settings"}],
                "overrideRules": [
                    {
                        "targetCluster": {"clusterNames": ["member2"]},
                        "overriders": {
                            "fieldOverrider": [
                                {
                                    "fieldPath": "/data/config.json",
                                    "json": [
                                        {"subPath": "/db/host", "operator": "replace", "value": "replica"},
                                        {"subPath": "/db/readOnly", "operator": "add", "value": True},
                                    ],
                                },
                                {
                                    "fieldPath": "/data/app.yaml",
                                    "yaml": [{"subPath": "/log/level", "operator": "replace", "value": "debug"}],
                                },
                            ]
                        },
                    }
                ],
            },
        },
    )
    await a.create(kinds.CONFIGMAPS, {"metadata": {"name": "settings"}, "data": data}, "default")

    async def overridden() -> dict[str, Any]:
        got = await m2.get(kinds.CONFIGMAPS, "settings", "default")
        assert "replica" in got["data"]["config.json"], got["data"]
        return dict(got)

    got = await until(overridden)
    import json

    import yaml

    assert json.loads(got["data"]["config.json"]) == {"db": {"host": "replica", "port": 5432, "readOnly": True}}
    assert yaml.safe_load(got["data"]["app.yaml"]) == {"log": {"level": "debug"}}
    untouched = await until(partial(m1.get, kinds.CONFIGMAPS, "settings", "default"))
    assert untouched["data"] == data


# ------------------------------------------------------------------------- custom resource status
WIDGET_CRD = widget_crd(GROUP, status=True)
INTERPRETER = {
    "apiVersion": "config.karmada.io/v1alpha1",
    "kind": "ResourceInterpreterCustomization",
    "metadata": {"name": "widgets"},
    "spec": {
        "target": {"apiVersion": f"{GROUP}/v1", "kind": "Widget"},
        "customizations": {
            "replicaResource": {
                "luaScript": "function GetReplicas(obj)\n  return obj.spec.size, {}\nend",
            },
            "replicaRevision": {
                "luaScript": "function ReviseReplica(obj, desired)\n  obj.spec.size = desired\n  return obj\nend",
            },
            "healthInterpretation": {
                "luaScript": (
                    "function InterpretHealth(observed)\n"
                    "  return observed.status ~= nil and observed.status.ready == observed.spec.size\nend"
                ),
            },
            "statusAggregation": {
                "luaScript": (
                    "function AggregateStatus(desired, items)\n"
                    "  local ready = 0\n"
                    "  for i = 1, #items do\n"
                    "    if items[i].status ~= nil and items[i].status.ready ~= nil then\n"
                    "      ready = ready + items[i].status.ready\n"
                    "    end\n"
                    "  end\n"
                    "  desired.status = {ready = ready, clusters = #items}\n"
                    "  return desired\nend"
                ),
            },
        },
    },
}


async def test_custom_resource_health_and_status_from_interpreter(net: Net) -> None:
    a, m1, m2 = net.a, net.members["member1"], net.members["member2"]
    for client in (a, m1, m2):
        await client.create(CRDS, WIDGET_CRD)
    await a.create(RESOURCE_INTERPRETER_CUSTOMIZATIONS, INTERPRETER)
    await a.create(
        PROPAGATION_POLICIES,
        policy(
            "widgets",
            [{"apiVersion": f"{GROUP}/v1", "kind": "Widget"}],
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

    async def created() -> None:
        await a.create(
            WIDGETS,
            {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3}},
            "default",
        )

    await until(created)  # the instance serves the kind once its CRD is established

    async def divided() -> None:
        sizes = [(await m.get(WIDGETS, "w", "default"))["spec"]["size"] for m in (m1, m2)]
        assert sizes == [1, 2], sizes  # GetReplicas, then ReviseReplica with the Webster split

    await until(divided)

    async def health(expected: list[str]) -> dict[str, Any]:
        binding = await a.get(RESOURCE_BINDINGS, "w-widget", "default")
        got = [e.get("health") for e in binding["status"].get("aggregatedStatus") or ()]
        assert got == expected, binding["status"]
        return dict(binding)

    await until(partial(health, ["Unhealthy", "Unhealthy"]))
    for member, ready_count in ((m1, 1), (m2, 2)):
        obj = await member.get(WIDGETS, "w", "default")
        await member.update(WIDGETS, {**obj, "status": {"ready": ready_count}}, subresource="status")
    binding = await until(partial(health, ["Healthy", "Healthy"]))
    assert [e["status"] for e in binding["status"]["aggregatedStatus"]] == [{"ready": 1}, {"ready": 2}]

    async def aggregated() -> None:
        template = await a.get(WIDGETS, "w", "default")
        assert template.get("status") == {"ready": 3, "clusters": 2}, template.get("status")

    await until(aggregated)


# --------------------------------------------------------------------------------- propagateDeps
async def test_dependency_edit_reaches_member_on_its_own(net: Net) -> None:
    # a Secret: no policy in this module selects Secrets, so only the dependency watch sees the edit
    a, m1 = net.a, net.members["member1"]
    await a.create(kinds.SECRETS, {"metadata": {"name": "dep-secret"}, "data": {"mode": b64("slow")}}, "default")
    await a.create(
        PROPAGATION_POLICIES,
        policy(
            "deps",
            [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "consumer"}],
            {"clusterAffinity": {"clusterNames": ["member1"]}},
            propagateDeps=True,
        ),
    )
    consumer = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "consumer"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "consumer"}},
            "template": {
                "metadata": {"labels": {"app": "consumer"}},
                "spec": {
                    "containers": [{"name": "c", "image": "x", "envFrom": [{"secretRef": {"name": "dep-secret"}}]}]
                },
            },
        },
    }
    await a.create(kinds.DEPLOYMENTS, consumer, "default")
    copy = await until(partial(m1.get, kinds.SECRETS, "dep-secret", "default"))
    assert copy["data"] == {"mode": b64("slow")}
    generation = (await a.get(kinds.DEPLOYMENTS, "consumer", "default"))["metadata"]["generation"]
    await a.patch(kinds.SECRETS, "dep-secret", {"data": {"mode": b64("fast")}}, "default")

    async def edited() -> None:
        assert (await m1.get(kinds.SECRETS, "dep-secret", "default"))["data"] == {"mode": b64("fast")}

    await until(edited)
    # the workload itself was not edited (nothing changed it into re-sending its dependencies)
    assert (await a.get(kinds.DEPLOYMENTS, "consumer", "default"))["metadata"]["generation"] == generation


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# ---------------------------------------------------------------------------------------- failover
async def test_failover_evicts_and_reschedules_to_healthy_member(net: Net) -> None:
    a, m1, m2 = net.a, net.members["member1"], net.members["member2"]
    toleration = {"key": "cluster.karmada.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
    await a.create(
        PROPAGATION_POLICIES,
        policy(
            "failover",
            [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "evictable"},
                {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "name": "moving"},
            ],
            {
                "clusterAffinity": {"clusterNames": ["member1", "member2"]},
                "clusterTolerations": [{**toleration, "tolerationSeconds": 1}],
                "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted"},
            },
            failover={"cluster": {"purgeMode": "Gracefully", "gracePeriodSeconds": 6}},
        ),
    )
    moving = {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": "moving"}, "spec": {"size": 4}}
    await a.create(WIDGETS, moving, "default")
    await a.create(kinds.CONFIGMAPS, {"metadata": {"name": "evictable"}, "data": {"k": "v"}}, "default")
    await until(partial(m2.get, kinds.CONFIGMAPS, "evictable", "default"))
    assert (await until(partial(m2.get, WIDGETS, "moving", "default")))["spec"]["size"] == 2
    assert (await until(partial(m1.get, WIDGETS, "moving", "default")))["spec"]["size"] == 2

    task = net.member_tasks["member2"]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    async def tainted() -> list[tuple[str, str]]:
        cluster = await a.get(CLUSTERS, "member2")
        taints = [(t["key"], t["effect"]) for t in cluster["spec"].get("taints") or ()]
        assert ("cluster.karmada.io/unreachable", "NoExecute") in taints, taints
        return taints

    taints = await until(tainted)
    assert ("cluster.karmada.io/unreachable", "NoSchedule") in taints

    async def evicted(name: str) -> dict[str, Any]:
        binding = await a.get(RESOURCE_BINDINGS, name, "default")
        assert [c["name"] for c in binding["spec"]["clusters"]] == ["member1"], binding["spec"]
        return dict(binding)

    widget = await until(partial(evicted, "moving-widget"))
    assert widget["spec"]["clusters"] == [{"name": "member1", "replicas": 4}]
    assert widget["spec"].get("gracefulEvictionTasks"), widget  # kept: member1 share is not healthy yet
    [eviction] = widget["spec"]["gracefulEvictionTasks"]
    assert eviction["fromCluster"] == "member2" and eviction["reason"] == "TaintUntolerated"
    assert eviction["producer"] == "TaintManager" and eviction["purgeMode"] == "Gracefully"
    assert eviction["replicas"] == 2 and eviction["clustersBeforeFailover"] == ["member1", "member2"]

    async def moved() -> None:
        assert (await m1.get(WIDGETS, "moving", "default"))["spec"]["size"] == 4

    await until(moved)
    await until(partial(evicted, "evictable-configmap"))

    async def drained(name: str, prefix: str) -> None:
        current = await a.get(RESOURCE_BINDINGS, name, "default")
        assert not current["spec"].get("gracefulEvictionTasks"), current["spec"]
        works = (await a.list(WORKS, "karmada-es-member2"))["items"]
        stale = [w for w in works if w["metadata"]["name"].startswith(prefix)]
        assert not stale or stale[0]["metadata"].get("deletionTimestamp"), stale  # deleting; member unreachable

    await until(partial(drained, "evictable-configmap", "evictable-"))  # healthy in member1 at once
    await until(partial(drained, "moving-widget", "moving-"))  # after gracePeriodSeconds
