"""The default scheduler against a real in-process master (API server + manager with leader election).

Aspects: each filter rule (node selector, required/preferred node affinity, taints and
tolerations incl. Kuscia's agent taint, cordoned and not-ready nodes), resource fit with pods
created concurrently (no two pods take the last slot), the FailedScheduling condition and Event
text, retry when a node appears or a bound pod goes away, and pods of other schedulers left alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from atoll.api.kinds import EVENTS, NAMESPACES, NODES, PODS
from atoll.client import Client
from tests.conftest import RunningServer, eventually
from tests.integration.controllers import idle

pytestmark = pytest.mark.controllers("scheduler")
JSON = dict[str, Any]
NS = "sched"
TIMEOUT = 15.0
AGENT_TAINT = {"key": "kuscia.secretflow/agent", "value": "v1", "effect": "NoSchedule"}



@pytest.fixture
async def client(api_server: RunningServer) -> AsyncIterator[Client]:
    async with api_server.client() as c:
        await c.create(NAMESPACES, {"metadata": {"name": NS}})
        yield c


def node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: str = "110",
    labels: dict[str, str] | None = None,
    taints: list[JSON] | None = None,
    ready: str = "True",
    unschedulable: bool = False,
) -> JSON:
    spec: JSON = {"taints": taints} if taints else {}
    if unschedulable:
        spec["unschedulable"] = True
    resources = {"cpu": cpu, "memory": memory, "pods": pods}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": spec,
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [{"type": "Ready", "status": ready, "reason": "KubeletReady"}],
        },
    }


def pod(name: str, *, cpu: str | None = None, memory: str | None = None, **spec: Any) -> JSON:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    container: JSON = {"name": "main", "image": "busybox:1", "resources": {"requests": requests} if requests else {}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [container], **spec}}


async def add_nodes(client: Client, *nodes: JSON) -> None:
    for obj in nodes:
        created = await client.create(NODES, obj)
        if created.get("status", {}).get("allocatable") != obj["status"]["allocatable"]:
            await client.update(NODES, {**created, "status": obj["status"]}, subresource="status")


async def wait_pod(client: Client, name: str, check: Callable[[JSON], bool], what: str) -> JSON:
    async def matched() -> JSON:
        last = await client.get(PODS, name, NS)
        assert check(last), f"pod {name} never {what}: {last.get('spec', {}).get('nodeName')} {last.get('status')}"
        return last

    return await eventually(matched, TIMEOUT)


def scheduled_condition(obj: JSON) -> JSON:
    return next((c for c in obj.get("status", {}).get("conditions") or [] if c["type"] == "PodScheduled"), {})


async def bound(client: Client, name: str) -> str:
    obj = await wait_pod(client, name, lambda p: bool(p["spec"].get("nodeName")), "bound")
    assert scheduled_condition(obj)["status"] == "True"
    return str(obj["spec"]["nodeName"])


async def unschedulable(client: Client, name: str) -> str:
    obj = await wait_pod(
        client, name, lambda p: scheduled_condition(p).get("reason") == "Unschedulable", "marked unschedulable"
    )
    assert not obj["spec"].get("nodeName")
    assert scheduled_condition(obj)["status"] == "False"
    return str(scheduled_condition(obj)["message"])


async def test_binds_pod_and_records_scheduled_event(client: Client) -> None:
    await add_nodes(client, node("n1"))
    await client.create(PODS, pod("web", cpu="100m"), NS)
    assert await bound(client, "web") == "n1"
    events = (await client.list(EVENTS, NS, field_selector="involvedObject.name=web"))["items"]
    scheduled = [e for e in events if e["reason"] == "Scheduled"]
    assert scheduled and scheduled[0]["message"] == f"Successfully assigned {NS}/web to n1"
    assert scheduled[0]["type"] == "Normal"


async def test_node_selector_and_required_affinity(client: Client) -> None:
    await add_nodes(
        client,
        node("a", labels={"zone": "a", "gpus": "2"}),
        node("b", labels={"zone": "b", "gpus": "8", "ssd": "true"}),
        node("c", labels={"zone": "c"}),
    )
    await client.create(PODS, pod("sel", nodeSelector={"zone": "b"}), NS)

    def required(*exprs: JSON) -> JSON:
        return {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": list(exprs)}]
                }
            }
        }

    cases = {
        "in": (required({"key": "zone", "operator": "In", "values": ["c", "x"]}), "c"),
        "gt": (required({"key": "gpus", "operator": "Gt", "values": ["4"]}), "b"),
        "lt": (required({"key": "gpus", "operator": "Lt", "values": ["4"]}), "a"),
        "notin-exists": (
            required({"key": "zone", "operator": "NotIn", "values": ["a"]}, {"key": "ssd", "operator": "Exists"}),
            "b",
        ),
        "doesnotexist": (
            required({"key": "gpus", "operator": "DoesNotExist"}),
            "c",
        ),
    }
    for name, (affinity, _) in cases.items():
        await client.create(PODS, pod(name, affinity=affinity), NS)
    assert await bound(client, "sel") == "b"
    for name, (_, expected) in cases.items():
        assert await bound(client, name) == expected, name

    await client.create(PODS, pod("nowhere", nodeSelector={"zone": "moon"}), NS)
    message = await unschedulable(client, "nowhere")
    assert message.startswith("0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.")
    assert message.endswith("preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.")


async def test_preferred_affinity_scores(client: Client) -> None:
    await add_nodes(client, node("plain"), node("fast", labels={"disk": "ssd"}), node("other"))
    preferred = {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 50,
                    "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]},
                }
            ]
        }
    }
    for i in range(3):
        await client.create(PODS, pod(f"pref-{i}", cpu="100m", affinity=preferred), NS)
    assert {await bound(client, f"pref-{i}") for i in range(3)} == {"fast"}


async def test_taints_and_tolerations(client: Client) -> None:
    noexec = {"key": "dedicated", "value": "db", "effect": "NoExecute"}
    await add_nodes(client, node("agent", taints=[AGENT_TAINT]), node("db", taints=[noexec]))
    await client.create(PODS, pod("plain"), NS)
    tolerate_agent = [{"key": "kuscia.secretflow/agent", "operator": "Equal", "value": "v1", "effect": "NoSchedule"}]
    await client.create(PODS, pod("task", tolerations=tolerate_agent), NS)
    await client.create(PODS, pod("dbpod", tolerations=[{"key": "dedicated", "operator": "Exists"}]), NS)
    wrong_value = [{"key": "kuscia.secretflow/agent", "operator": "Equal", "value": "v2"}]
    await client.create(PODS, pod("wrong", tolerations=wrong_value), NS)
    assert await bound(client, "task") == "agent"
    assert await bound(client, "dbpod") == "db"
    for name in ("plain", "wrong"):
        message = await unschedulable(client, name)
        assert message.startswith(
            "0/2 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, "
            "1 node(s) had untolerated taint {kuscia.secretflow/agent: v1}."
        ), message


async def test_cordoned_and_not_ready_nodes(client: Client) -> None:
    await add_nodes(client, node("cordoned", unschedulable=True), node("down", ready="False"))
    await client.create(PODS, pod("p"), NS)
    message = await unschedulable(client, "p")
    assert message.startswith("0/2 nodes are available: 1 node(s) were not ready, 1 node(s) were unschedulable.")
    # a pod tolerating the cordon goes there
    cordon = [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]
    await client.create(PODS, pod("tolerant", tolerations=cordon), NS)
    assert await bound(client, "tolerant") == "cordoned"


async def test_concurrent_pods_never_share_the_last_slot(client: Client) -> None:
    await add_nodes(client, node("small", cpu="1", pods="3"))
    names = [f"c{i}" for i in range(5)]
    await asyncio.gather(*(client.create(PODS, pod(n, cpu="400m"), NS) for n in names))
    placed = await _settle(client, names)
    assert len(placed) == 2, placed
    for name in set(names) - placed:
        assert "1 Insufficient cpu" in await unschedulable(client, name)
    # pod count: one slot is left (3 pods allowed); best-effort pods fill it, then "Too many pods"
    await asyncio.gather(*(client.create(PODS, pod(f"be{i}"), NS) for i in range(3)))
    placed_be = await _settle(client, [f"be{i}" for i in range(3)])
    assert len(placed_be) == 1
    for name in {f"be{i}" for i in range(3)} - placed_be:
        message = await unschedulable(client, name)
        assert message.startswith("0/1 nodes are available: 1 Too many pods."), message


async def _settle(client: Client, names: list[str]) -> set[str]:
    """Wait until each pod is bound or marked unschedulable; return the bound ones."""
    placed = set()
    for name in names:
        obj = await wait_pod(
            client,
            name,
            lambda p: bool(p["spec"].get("nodeName")) or scheduled_condition(p).get("status") == "False",
            "settled",
        )
        if obj["spec"].get("nodeName"):
            placed.add(name)
    return placed


async def test_failed_scheduling_condition_and_event(client: Client) -> None:
    await add_nodes(client, node("agent", taints=[AGENT_TAINT]), node("w1", cpu="1"), node("w2", cpu="1"))
    await client.create(PODS, pod("big", cpu="2"), NS)
    message = await unschedulable(client, "big")
    assert message == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {kuscia.secretflow/agent: v1}, "
        "2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, "
        "2 No preemption victims found for incoming pod."
    )
    async def failed_scheduling() -> JSON:
        events = (await client.list(EVENTS, NS, field_selector="involvedObject.name=big"))["items"]
        failed = [e for e in events if e["reason"] == "FailedScheduling"]
        assert failed, events
        return failed[0]

    event = await eventually(failed_scheduling, TIMEOUT)
    assert event["type"] == "Warning"
    assert event["message"] == message
    assert event["reportingComponent"] == "default-scheduler"
    assert event["source"]["component"] == "default-scheduler"
    assert event["involvedObject"]["kind"] == "Pod" and event["involvedObject"]["namespace"] == NS


async def test_retries_when_a_node_appears(client: Client) -> None:
    await client.create(PODS, pod("early", cpu="1"), NS)
    assert await unschedulable(client, "early") == "no nodes available to schedule pods"
    await add_nodes(client, node("late"))
    assert await bound(client, "early") == "late"


async def test_retries_when_a_bound_pod_goes_away(client: Client) -> None:
    await add_nodes(client, node("one", cpu="1"))
    await client.create(PODS, pod("first", cpu="800m"), NS)
    assert await bound(client, "first") == "one"
    await client.create(PODS, pod("second", cpu="800m"), NS)
    await unschedulable(client, "second")
    await client.delete(PODS, "first", NS, grace_period_seconds=0)
    assert await bound(client, "second") == "one"


async def test_other_scheduler_names_are_left_alone(api_server: RunningServer, client: Client) -> None:
    await add_nodes(client, node("n"))
    # a pod for a partner's scheduler (Kuscia: ``<domain>-kuscia-scheduler``) is never bound locally
    await client.create(PODS, pod("kuscia", schedulerName="bob-kuscia-scheduler"), NS)
    await client.create(PODS, pod("preset", nodeName="elsewhere"), NS)
    await client.create(PODS, pod("normal"), NS)
    assert await bound(client, "normal") == "n"
    await eventually(lambda: idle(api_server, "scheduler"))  # it has seen all three pods
    kuscia = await client.get(PODS, "kuscia", NS)
    assert not kuscia["spec"].get("nodeName") and not scheduled_condition(kuscia)
    assert (await client.get(PODS, "preset", NS))["spec"]["nodeName"] == "elsewhere"
