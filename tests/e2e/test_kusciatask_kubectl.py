"""A KusciaTask through real kubectl against real ``atoll start`` processes: a master (with every
controller and the scheduler's ``kuscia-scheduler`` profile, as registered for any master) and
lite agents for alice and bob. The AppImage and the task are applied as a Kuscia user would; each
party's process reads its cluster define, allocated ports and rendered config and writes a file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningServer
from tests.e2e.conftest import table
from tests.e2e.lite_network import DOMAINS, Network, lite_network, until

pytestmark = pytest.mark.slow
SCRIPT = """
import json, os, pathlib
out = pathlib.Path(json.loads(os.environ["TASK_INPUT_CONFIG"])["out"])
(out / (os.environ["KUSCIA_DOMAIN_ID"] + ".json")).write_text(json.dumps({
    "cluster_define": json.loads(os.environ["TASK_CLUSTER_DEFINE"]),
    "ports": json.loads(os.environ["ALLOCATED_PORTS"]),
    "conf": pathlib.Path("/etc/kuscia/task.conf").read_text(),
}))
"""


@pytest.fixture(scope="module")
def network(module_server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    with lite_network(module_server, tmp_path_factory.mktemp("kt-lite")) as net:
        yield net


def app_image() -> dict[str, object]:
    return {
        "apiVersion": "kuscia.secretflow/v1alpha1",
        "kind": "AppImage",
        "metadata": {"name": "e2e-app"},
        "spec": {
            "image": {"name": "app", "tag": "v1"},
            "configTemplates": {"task.conf": "port={{{.ALLOCATED_PORTS.ports[name=svc].port}}}"},
            "deployTemplates": [{
                "name": "main",
                "replicas": 1,
                "spec": {"containers": [{
                    "name": "main",
                    "workingDir": "/",
                    "command": [sys.executable, "-c", SCRIPT],
                    "configVolumeMounts": [{"mountPath": "/etc/kuscia/task.conf", "subPath": "task.conf"}],
                    "ports": [{"name": "svc", "scope": "Cluster", "protocol": "GRPC"}],
                }]},
            }],
        },
    }


def kuscia_task(out: Path) -> dict[str, object]:
    return {
        "apiVersion": "kuscia.secretflow/v1alpha1",
        "kind": "KusciaTask",
        "metadata": {"name": "e2e-task", "namespace": "cross-domain"},
        "spec": {
            "initiator": "alice",
            "taskInputConfig": json.dumps({"out": str(out)}),
            "parties": [
                {"domainID": "alice", "appImageRef": "e2e-app", "role": "host"},
                {"domainID": "bob", "appImageRef": "e2e-app", "role": "guest"},
            ],
        },
    }


def test_kuscia_task_applied_with_kubectl_succeeds_on_real_processes(network: Network, tmp_path: Path) -> None:
    kubectl = network.kubectl
    out = tmp_path / "out"
    out.mkdir()
    kubectl.apply(json.dumps(app_image()), "appimage.json")
    kubectl.apply(json.dumps(kuscia_task(out)), "task.json")

    def phase() -> str:
        return kubectl.out("get", "kt", "e2e-task", "-n", "cross-domain", "-o", "jsonpath={.status.phase}")

    assert until(lambda: phase() in ("Succeeded", "Failed") and phase(), 90) == "Succeeded", kubectl.out(
        "get", "kt", "e2e-task", "-n", "cross-domain", "-o", "yaml"
    )
    seen = {d: json.loads((out / f"{d}.json").read_text()) for d in DOMAINS}
    alice_port = next(p["port"] for p in seen["alice"]["ports"]["ports"] if p["name"] == "svc")
    assert seen["alice"]["conf"] == f"port={alice_port}"
    define = seen["bob"]["cluster_define"]
    assert define["selfPartyIdx"] == 1 and [p["name"] for p in define["parties"]] == ["alice", "bob"]
    assert define["parties"][1]["services"][0]["endpoints"] == [
        f"127.0.0.1:{next(p['port'] for p in seen['bob']['ports']['ports'] if p['name'] == 'svc')}"
    ]
    rows = table(kubectl.out("get", "kt,trg", "-A"))
    assert ["cross-domain", "kusciatask.kuscia.secretflow/e2e-task"] == rows[1][:2] and rows[1][-1] == "Succeeded"
    trg = next(r for r in rows if r[0].startswith("taskresourcegroup.kuscia.secretflow/e2e-task"))
    assert trg[1:3] == ["2", "Reserved"]
    resources = table(kubectl.out("get", "tr", "-A", "--no-headers"))
    assert sorted((r[0], r[3]) for r in resources) == [("alice", "Schedulable"), ("bob", "Schedulable")]
