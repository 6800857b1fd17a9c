"""``atoll fleet``: instances and member clusters from the command line, errors as one line."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import yaml

from atoll.node.config import NodeConfig
from atoll.node.master import MasterNode
from tests.conftest import (
    ATOLL,
    REPO,
    RunningServer,
    _write_kubeconfig,
    kubectl_binary,
    kubectl_environ,
    start_until_ready,
)

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def member(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    data = tmp_path_factory.mktemp("cli-member") / "master"
    node = MasterNode(NodeConfig(mode="master", domain_id="kuscia-system", data_dir=data, api_port=0, controllers=()))
    task = await start_until_ready(node.run(), node.ready, 30, "member not ready")
    kubeconfig, token, ca = _write_kubeconfig(data, node.url)
    yield RunningServer(node.url, data, kubeconfig, token, ca, node)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def atoll(management: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(management.kubeconfig)}
    return await asyncio.to_thread(
        subprocess.run, [*ATOLL, "fleet", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=90
    )


async def test_instance_lifecycle_and_clusters(
    management: RunningServer, member: RunningServer, tmp_path: Path
) -> None:
    created = await atoll(management, "instance", "create", "cli-a")
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "instance.kairship.io/cli-a created"
    listed = await atoll(management, "instance", "ls")
    row = next(line.split() for line in listed.stdout.splitlines() if line.startswith("cli-a "))
    assert row[:3] == ["cli-a", "Running", "True"]

    config = await atoll(management, "instance", "kubeconfig", "cli-a")
    assert config.returncode == 0, config.stderr
    doc = yaml.safe_load(config.stdout)
    assert doc["clusters"][0]["cluster"]["server"].endswith("/apis/kairship.io/v1alpha1/instances/cli-a/proxy")
    path = tmp_path / "cli-a.kubeconfig"
    path.write_text(config.stdout)
    ns = await asyncio.to_thread(
        subprocess.run,
        [kubectl_binary(), "--kubeconfig", str(path), "get", "ns", "-o", "name"],
        capture_output=True,
        text=True,
        env=kubectl_environ(tmp_path),
        timeout=60,
    )
    assert "namespace/karmada-cluster" in ns.stdout, ns.stderr

    joined = await atoll(management, "cluster", "join", "cli-a", "m1", "--member-kubeconfig", str(member.kubeconfig))
    assert joined.returncode == 0, joined.stderr
    refused = await atoll(management, "instance", "delete", "cli-a")
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and 'instance "cli-a" still has member clusters (m1)' in refused.stderr
    again = await atoll(management, "cluster", "join", "cli-a", "m1", "--member-kubeconfig", str(member.kubeconfig))
    assert again.returncode == 1 and "already joined" in again.stderr
    unjoined = await atoll(management, "cluster", "unjoin", "cli-a", "m1")
    assert unjoined.returncode == 0, unjoined.stderr


async def test_errors_are_one_line(management: RunningServer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.kubeconfig"
    doc = yaml.safe_load(management.kubeconfig.read_text())
    doc["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    bad.write_text(yaml.safe_dump(doc))
    created = await atoll(management, "instance", "create", "cli-b")
    assert created.returncode == 0, created.stderr
    unreachable = await atoll(management, "cluster", "join", "cli-b", "m9", "--member-kubeconfig", str(bad))
    assert unreachable.returncode == 1 and unreachable.stderr.startswith("error: --member-kubeconfig: ")
    assert "Traceback" not in unreachable.stderr
    missing = await atoll(management, "instance", "kubeconfig", "nope")
    assert missing.returncode == 1 and 'instances.kairship.io "nope" not found' in missing.stderr
    deleted = await atoll(management, "instance", "delete", "cli-b")
    assert deleted.returncode == 0, deleted.stderr


async def test_agent_registers_a_pull_cluster(
    management: RunningServer, member: RunningServer, tmp_path: Path
) -> None:
    from atoll.client import Client
    from atoll.fleet.kinds import CLUSTERS
    from tests.conftest import eventually
    from tests.fleet.conftest import proxy_url

    created = await atoll(management, "instance", "create", "cli-pull")
    assert created.returncode == 0, created.stderr
    issued = await atoll(management, "cluster", "token", "cli-pull", "edge")
    assert issued.returncode == 0, issued.stderr
    own = yaml.safe_load(issued.stdout)
    assert own["users"][0]["name"].endswith("karmada-agent-edge") and own["users"][0]["user"]["token"]
    assert "/proxy" not in own["clusters"][0]["cluster"]["server"], "the agent talks to the instance itself"
    agent_config = tmp_path / "edge-agent.kubeconfig"
    agent_config.write_text(issued.stdout)
    agent_log = (tmp_path / "agent.log").open("wb")
    # no management-plane credentials in the agent's environment: only its own kubeconfig
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"} | {"HOME": str(tmp_path)}
    command = [*ATOLL, "fleet", "agent", "cli-pull", "edge", "--member-kubeconfig", str(member.kubeconfig)]
    agent = await asyncio.create_subprocess_exec(
        *command,
        "--instance-kubeconfig",
        str(agent_config),
        "--label",
        "site=edge",
        "--period",
        "0.5",
        env=env,
        cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=agent_log,
    )
    instance = Client(proxy_url(management, "cli-pull"), ssl_context=management.ssl_context(), token=management.token)
    try:

        async def registered() -> None:
            assert agent.returncode is None, (tmp_path / "agent.log").read_text()
            cluster = await instance.get(CLUSTERS, "edge")
            assert cluster["spec"]["syncMode"] == "Pull" and cluster["metadata"].get("labels") == {"site": "edge"}
            assert cluster["spec"]["apiEndpoint"] == member.url
            ready = [c for c in (cluster.get("status") or {}).get("conditions") or () if c["type"] == "Ready"]
            assert ready and ready[0]["status"] == "True", cluster.get("status")

        await eventually(registered, 60)
    finally:
        agent.terminate()
        await asyncio.wait_for(agent.wait(), 30)
        agent_log.close()
        await instance.close()
    # a second agent for a Push cluster is refused, in one line
    joined = await atoll(
        management, "cluster", "join", "cli-pull", "pushed", "--member-kubeconfig", str(member.kubeconfig)
    )
    assert joined.returncode == 0, joined.stderr
    refused = await atoll(management, "agent", "cli-pull", "pushed", "--member-kubeconfig", str(member.kubeconfig))
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused.stderr
    assert "registered with syncMode Push" in refused.stderr
    no_token = await atoll(management, "cluster", "token", "cli-pull", "pushed")
    assert no_token.returncode == 1 and no_token.stderr.count("\n") == 1, no_token.stderr
    assert "joined with syncMode Push" in no_token.stderr
