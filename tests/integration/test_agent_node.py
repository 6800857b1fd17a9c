"""Node registration, Lease heartbeat and NotReady after the agent stops."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from atoll.api import kinds
from atoll.api.quantity import parse_quantity
from tests.conftest import RunningServer, eventually
from tests.integration.agents import agent_config, running_agent, start_agent


async def test_node_registered_with_kuscia_labels_taint_capacity(api_server: RunningServer, tmp_path: Path) -> None:
    async with running_agent(api_server, tmp_path / "alice", "alice") as agent:
        node = await agent.client.get(kinds.NODES, "alice-node")
        labels = node["metadata"]["labels"]
        assert labels["kuscia.secretflow/namespace"] == "alice"
        assert labels["kuscia.secretflow/runtime"] == "runp"
        assert labels["kubernetes.io/role"] == "agent"
        assert labels["kubernetes.io/os"] == "linux"
        assert labels["kubernetes.io/hostname"] == "alice-node"
        assert "kubernetes.io/arch" in labels
        assert node["spec"]["taints"] == [{"key": "kuscia.secretflow/agent", "value": "v1", "effect": "NoSchedule"}]
        status = node["status"]
        assert int(status["capacity"]["cpu"]) >= 1
        assert status["capacity"]["pods"] == "110"
        assert parse_quantity(status["capacity"]["memory"]) > 0
        conditions = {c["type"]: c["status"] for c in status["conditions"]}
        assert conditions["Ready"] == "True"
        assert conditions["MemoryPressure"] in ("True", "False")
        assert {"DiskPressure", "PIDPressure"} <= set(conditions)
        info = status["nodeInfo"]
        assert info["kubeletVersion"] == "v1.32.0-atoll"
        assert info["containerRuntimeVersion"] == "runp://0.1"
        assert info["kernelVersion"] and info["osImage"]
        assert {"type": "InternalIP", "address": "127.0.0.1"} in status["addresses"]
        assert any(a["type"] == "Hostname" for a in status["addresses"])
        assert status["daemonEndpoints"]["kubeletEndpoint"]["Port"] == agent.agent.logs.port > 0
        lease = await agent.client.get(kinds.LEASES, "alice-node", "kube-node-lease")
        assert lease["spec"]["holderIdentity"] == "alice-node"
        assert lease["spec"]["leaseDurationSeconds"] == 4


async def test_node_marked_unknown_reads_ready_at_the_next_check(api_server: RunningServer, tmp_path: Path) -> None:
    """The lifecycle controller wrote Unknown while the agent was cut off; the agent, back, must
    not wait for ``status_max_age`` (5 min) to say Ready again."""
    async with running_agent(api_server, tmp_path / "alice", "alice") as agent:
        client = agent.client
        node = await client.get(kinds.NODES, "alice-node")
        unknown = [{**c, "status": "Unknown", "reason": "NodeStatusUnknown"} for c in node["status"]["conditions"]]
        await client.patch(kinds.NODES, "alice-node", {"status": {"conditions": unknown}}, subresource="status")

        async def ready_again() -> dict[str, str]:
            current = await client.get(kinds.NODES, "alice-node")
            conditions = {c["type"]: c for c in current["status"]["conditions"]}
            assert conditions["Ready"]["status"] == "True", conditions["Ready"]
            return conditions["Ready"]

        ready = await eventually(ready_again, 3 * agent.config.timers.status_check + 5)
        assert ready["reason"] != "NodeStatusUnknown"
        assert ready["lastTransitionTime"] >= node["status"]["conditions"][0]["lastTransitionTime"]


async def test_capacity_override_and_reserved(api_server: RunningServer, tmp_path: Path) -> None:
    base = agent_config(api_server, tmp_path / "bob", "bob")
    config = dataclasses.replace(
        base, capacity={"cpu": "8", "memory": "16Gi", "pods": "20"}, reserved={"cpu": "500m", "memory": "1Gi"}
    )
    agent = await start_agent(api_server, config)
    try:
        node = await agent.client.get(kinds.NODES, "bob-node")
        assert node["status"]["capacity"]["cpu"] == "8"
        assert node["status"]["capacity"]["pods"] == "20"
        assert node["status"]["allocatable"]["cpu"] == "7500m"
        assert node["status"]["allocatable"]["memory"] == "15Gi"
    finally:
        await agent.stop()


async def test_stopped_agent_node_becomes_not_ready(api_server: RunningServer, tmp_path: Path) -> None:
    config = agent_config(api_server, tmp_path / "alice", "alice")
    agent = await start_agent(api_server, config)
    client = api_server.node.client() if api_server.node else None
    assert client is not None
    async with client:
        node = await client.get(kinds.NODES, "alice-node")
        assert {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"] == "True"
        await agent.stop()

        async def not_ready() -> bool:
            current = await client.get(kinds.NODES, "alice-node")
            ready = {c["type"]: c["status"] for c in current["status"]["conditions"]}["Ready"]
            return ready != "True"

        await eventually(not_ready, 30, every=0.5)
        current = await client.get(kinds.NODES, "alice-node")
        assert "node.kuscia.secretflow/stop-timestamp" in current["metadata"]["labels"]
        # and back: a restarted agent reclaims its node and reports Ready again
        again = await start_agent(api_server, config)
        try:
            node = await client.get(kinds.NODES, "alice-node")
            assert {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"] == "True"
            assert "node.kuscia.secretflow/stop-timestamp" not in node["metadata"]["labels"]
        finally:
            await again.stop()
