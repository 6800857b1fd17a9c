"""A two-party KusciaTask with alice on RunK and bob on RunP: the task and TaskResourceGroup
controllers and the kuscia-scheduler on the master; alice's pod runs in the institution's cluster
(a second control plane with its own scheduler and a RunP agent). The task succeeds with the same
TASK_CLUSTER_DEFINE / ALLOCATED_PORTS / rendered config as on RunP, ``kubectl logs`` works for both
parties, cleanup deletes the pods in both clusters; an agent killed mid-task is restarted, adopts
its pod (exactly one in the institution) and the task completes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from atoll.agent.runk.podspec import NODE_LABEL
from atoll.api import kinds
from atoll.api.kuscia_tasks import APPIMAGES, KUSCIATASKS
from atoll.client import Client
from atoll.mirror.names import target_name
from atoll.runtime import FakeClock
from tests.conftest import RunningServer, eventually, kubectl_binary, kubectl_environ
from tests.integration.agents import agent_config, kill_leftovers, load_image, start_agent
from tests.integration.jobs import KJ, create_domains, job, job_controller, task, wait_phase
from tests.integration.runk_clusters import INSTITUTION_NS, in_process_master, institution_cluster, runk_config
from tests.integration.task_network import CAPACITY, DOMAINS, TaskNetwork, app_image, kuscia_task

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]
JSON = dict[str, Any]
WITHIN = 45.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[TaskNetwork, RunningServer]]:
    base = tmp_path_factory.mktemp("runk-task")
    async with institution_cluster(base / "institution") as inst, in_process_master(base / "master") as server:
        async with server.client() as client:
            for domain in DOMAINS:
                await client.create(kinds.NAMESPACES, {"metadata": {"name": domain}})
            await client.create(APPIMAGES, app_image())
            await client.create(APPIMAGES, runk_image())
            network = TaskNetwork(server, client, FakeClock(), {}, base)
            network.start_controllers()
            try:
                bob = dataclasses.replace(agent_config(server, base / "bob", "bob"), capacity=dict(CAPACITY))
                load_image(base / "bob")
                network.agents["bob"] = await start_agent(server, bob)
                alice = dataclasses.replace(runk_config(server, base / "alice", "alice", inst.kubeconfig),
                                            node_name="alice-node", capacity=dict(CAPACITY))
                network.agents["alice"] = await start_agent(server, alice)
                yield network, inst
            finally:
                for agent in network.agents.values():
                    with contextlib.suppress(Exception):
                        await agent.stop()
                kill_leftovers(base / "bob")
                await network.stop_controllers()


async def task_phase(net: TaskNetwork, name: str, *phases: str) -> JSON:
    async def check() -> JSON:
        task = await net.get_task(name)
        assert (task.get("status") or {}).get("phase") in phases, task.get("status")
        return task

    return await eventually(check, WITHIN)


async def kubectl_logs(server: RunningServer, base: Path, namespace: str, pod: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        kubectl_binary(), "--kubeconfig", str(server.kubeconfig), "-n", namespace, "logs", pod,
        env=kubectl_environ(base), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def institution_pods(inst: RunningServer, node: str) -> list[JSON]:
    async with inst.client() as c:
        items, _ = await c.list_all(kinds.PODS, INSTITUTION_NS, label_selector=f"{NODE_LABEL}={node}")
    return items


SCRIPT = """
import json, os, pathlib, sys, time
conf = json.loads(os.environ["TASK_INPUT_CONFIG"])
me = os.environ["KUSCIA_DOMAIN_ID"]
print(f"party {me} of {os.environ['TASK_ID']}", flush=True)
time.sleep(conf.get("sleep", 0))
record = {"cluster_define": json.loads(os.environ["TASK_CLUSTER_DEFINE"]),
          "allocated_ports": json.loads(os.environ["ALLOCATED_PORTS"]),
          "conf": pathlib.Path("/etc/kuscia/task.conf").read_text()}
(pathlib.Path(conf["out"]) / f"{os.environ['TASK_ID']}-{me}.json").write_text(json.dumps(record))
"""


def runk_image() -> JSON:
    image = app_image("runk-test")
    image["spec"]["deployTemplates"][0]["spec"]["containers"][0]["command"] = [sys.executable, "-c", SCRIPT]
    return image


def runk_task(name: str, out: Path, **config: Any) -> JSON:
    body = kuscia_task(name, out, image="runk-test", lifecycle=600)
    body["spec"]["taskInputConfig"] = json.dumps({"out": str(out), **config})
    return body


async def test_two_party_task_with_alice_on_runk(net: tuple[TaskNetwork, RunningServer], tmp_path: Path) -> None:
    network, inst = net
    client = network.client
    await client.create(KUSCIATASKS, runk_task("rk-ok", tmp_path, sleep=4), "cross-domain")

    async def alice_in_institution() -> list[JSON]:
        pods = await institution_pods(inst, "alice-node")
        assert [p["metadata"]["name"] for p in pods] == [target_name("alice", "rk-ok-host-0")]
        assert (pods[0].get("status") or {}).get("phase") == "Running", pods[0].get("status")
        return pods

    [target] = await eventually(alice_in_institution, WITHIN)
    assert target["spec"]["nodeName"] == "inst-node"  # placed by the institution's scheduler
    for domain, pod in (("alice", "rk-ok-host-0"), ("bob", "rk-ok-guest-0")):
        async def logged(domain: str = domain, pod: str = pod) -> None:
            assert await kubectl_logs(network.server, tmp_path, domain, pod) == f"party {domain} of rk-ok\n"

        await eventually(logged, WITHIN)
    task = await task_phase(network, "rk-ok", "Succeeded", "Failed")
    assert task["status"]["phase"] == "Succeeded", task["status"]
    seen = {d: json.loads((tmp_path / f"rk-ok-{d}.json").read_text()) for d in DOMAINS}
    ports = {d: {p["name"]: p["port"] for p in seen[d]["allocated_ports"]["ports"]} for d in DOMAINS}
    assert seen["alice"]["conf"] == f"task=rk-ok port={ports['alice']['svc']}\n"  # config template rendered
    view = seen["alice"]["cluster_define"]
    own = {s["portName"]: s["endpoints"] for s in view["parties"][0]["services"]}
    assert own["svc"] == [f"127.0.0.1:{ports['alice']['svc']}"]
    peer = {s["portName"]: s["endpoints"] for s in view["parties"][1]["services"]}
    assert peer["svc"][0].startswith("127.0.0.1:")  # the lite's egress port (contract C2)

    async def none_left() -> None:  # cleanup after success deletes the pods in both clusters
        assert not await institution_pods(inst, "alice-node")
        for domain in DOMAINS:
            items, _ = await client.list_all(kinds.PODS, domain, label_selector="kuscia.secretflow/task-id=rk-ok")
            assert not items

    await eventually(none_left, WITHIN)


async def test_agent_killed_mid_task_adopts_and_the_task_completes(
    net: tuple[TaskNetwork, RunningServer], tmp_path: Path
) -> None:
    network, inst = net
    client: Client = network.client
    await client.create(KUSCIATASKS, runk_task("rk-kill", tmp_path, sleep=10), "cross-domain")

    async def running() -> str:
        pod = await client.get(kinds.PODS, "rk-kill-host-0", "alice")
        assert (pod.get("status") or {}).get("phase") == "Running", pod.get("status")
        return str(pod["metadata"]["annotations"]["kubeocean.io/physical-pod-uid"])

    uid = await eventually(running, WITHIN)
    alice = network.agents["alice"]
    await alice.stop()  # as kill -9: nothing is cleaned up on the way out
    network.agents["alice"] = await start_agent(network.server, alice.config)
    pods = await institution_pods(inst, "alice-node")
    assert [p["metadata"]["uid"] for p in pods] == [uid]  # the restarted agent adopted its one pod
    current = await client.get(kinds.PODS, "rk-kill-host-0", "alice")
    assert current["metadata"]["annotations"]["kubeocean.io/physical-pod-uid"] == uid  # adopted, not recreated
    task = await task_phase(network, "rk-kill", "Succeeded", "Failed")
    assert task["status"]["phase"] == "Succeeded", task["status"]
    assert (tmp_path / "rk-kill-alice.json").exists() and (tmp_path / "rk-kill-bob.json").exists()


async def test_a_kusciajob_with_alice_on_runk_succeeds(net: tuple[TaskNetwork, RunningServer], tmp_path: Path) -> None:
    network, inst = net
    client = network.client
    await create_domains(client, *DOMAINS)
    async with job_controller(client):
        parties = [{"domainID": "alice", "role": "host"}, {"domainID": "bob", "role": "guest"}]
        fields = {"appImage": "runk-test", "parties": parties, "taskInputConfig": json.dumps({"out": str(tmp_path)})}
        await client.create(KJ, job("rk-job", task("first", **fields), task("second", "first", **fields)))
        done = await wait_phase(client, "rk-job", "Succeeded", within=90)
        assert done["status"]["phase"] == "Succeeded"
        written = sorted(name.rsplit("-", 1)[-1] for name in os.listdir(tmp_path) if name.endswith(".json"))
        assert written == ["alice.json", "alice.json", "bob.json", "bob.json"]

        async def cleaned() -> None:  # the job's pods are gone from the institution too
            assert not await institution_pods(inst, "alice-node")

        await eventually(cleaned, WITHIN)
