"""A RunK lite as a real ``atoll start`` process (``atoll init -r runk``): its pod runs in the
institution's cluster; ``kill -9`` of the lite mid-pod and a restart adopt that pod (same uid, one
pod) and the pod completes with its log readable from the master."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import yaml

from atoll.api import kinds
from atoll.mirror import keys
from atoll.mirror.names import target_name
from tests.conftest import REPO, RunningServer, eventually
from tests.integration.lite_procs import ATOLL, TIMERS, node_ready, start, stop
from tests.integration.runk_clusters import (
    INSTITUTION_NS,
    ensure_namespace,
    in_process_master,
    institution_cluster,
    task_pod,
)

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def clusters(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[RunningServer, RunningServer]]:
    base = tmp_path_factory.mktemp("runk-proc")
    async with institution_cluster(base / "institution") as inst, in_process_master(base / "master") as master:
        async with master.client() as c:
            await ensure_namespace(c, "alice")
        yield master, inst


def init_runk_lite(master: RunningServer, inst: RunningServer, data: Path) -> Path:
    config = data / "atoll.yaml"
    subprocess.run([*ATOLL, "init", "--mode", "lite", "--domain", "alice", "--data-dir", str(data), "--kubeconfig",
                    str(master.kubeconfig), "--master-data-dir", str(master.data_dir), "-r", "runk",
                    "--runk-namespace", INSTITUTION_NS, "-o", str(config)], check=True, capture_output=True, cwd=REPO)
    doc = yaml.safe_load(config.read_text())
    assert doc["runtime"] == "runk" and doc["runk"]["namespace"] == INSTITUTION_NS
    doc["runk"]["kubeconfigFile"] = str(inst.kubeconfig)
    doc["capacity"] = {"cpu": "4", "memory": "8Gi"}
    doc["agent"] = {"nodeName": "alice-runk", "timers": dict(TIMERS)}
    config.write_text(yaml.safe_dump(doc))
    return config


async def test_kill_9_and_restart_adopt_the_pod(clusters: tuple[RunningServer, RunningServer], tmp_path: Path) -> None:
    master, inst = clusters
    config = init_runk_lite(master, inst, tmp_path / "alice")
    proc = start(config)
    try:
        async with master.client() as m, inst.client() as i:
            await eventually(lambda: node_ready(m, "alice-runk"), 30)
            node = await m.get(kinds.NODES, "alice-runk")
            assert node["metadata"]["labels"]["kuscia.secretflow/runtime"] == "runk"
            assert node["status"]["capacity"]["cpu"] == "4"
            await m.create(kinds.PODS, task_pod("slow", "alice-runk", ["sh", "-c", "sleep 6; echo done"],
                                                namespace="alice"))

            async def running() -> str:
                pod = await m.get(kinds.PODS, "slow", "alice")
                assert (pod.get("status") or {}).get("phase") == "Running", pod.get("status")
                return str(pod["metadata"]["annotations"][keys.PHYSICAL_POD_UID])

            uid = await eventually(running, 30)
            proc.kill()  # kill -9: nothing is cleaned up
            proc.wait()
            proc = start(config)

            async def succeeded() -> None:
                pod = await m.get(kinds.PODS, "slow", "alice")
                assert (pod.get("status") or {}).get("phase") == "Succeeded", pod.get("status")

            await eventually(succeeded, 40)
            mine, _ = await i.list_all(kinds.PODS, INSTITUTION_NS, label_selector="atoll.io/runk-node=alice-runk")
            assert [(p["metadata"]["name"], p["metadata"]["uid"]) for p in mine] == [
                (target_name("alice", "slow"), uid)]
            text = await eventually(lambda: m.request("GET", "/api/v1/namespaces/alice/pods/slow/log"), 20)
            assert text == "done\n"
    finally:
        stop(proc)
