"""deploy/k8s: every manifest is valid against Kubernetes' published schemas (kubernetes-validate,
strict), its embedded node config loads, the lite's Role is the RunK agent's least privilege, and
the steps of docs/kubernetes.md (kubectl create ns / -f service.yaml / -f configmap.yaml /
-f rbac.yaml / -f deployment.yaml) are accepted as written by an Atoll control plane. The master's
Deployment really runs in tests/integration/test_k8s_master_deployment.py."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from atoll.agent.config import from_node_config
from atoll.agent.runk.permissions import role_rules
from atoll.api import kinds
from atoll.client import Client
from atoll.node.config import load_config
from tests.conftest import ATOLL, REPO, RunningServer, kubectl_binary, kubectl_environ

JSON = dict[str, Any]
DEPLOY = REPO / "deploy" / "k8s"
K8S_VERSION = "1.32"
MANIFESTS = sorted(DEPLOY.glob("*/*.yaml"))
NAMESPACES = {"master": "kuscia-master", "lite": "lite-alice"}


def docs(path: Path) -> list[JSON]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_manifest_is_schema_valid(path: Path) -> None:
    for doc in docs(path):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_schema_check_can_fail() -> None:
    doc = docs(DEPLOY / "lite" / "deployment.yaml")[0]
    doc["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []  # misspelt field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("part", ["master", "lite"])
def test_embedded_node_config_loads(part: str, tmp_path: Path) -> None:
    [cm] = docs(DEPLOY / part / "configmap.yaml")
    path = tmp_path / "kuscia.yaml"
    path.write_text(cm["data"]["kuscia.yaml"])
    config = load_config(path)
    assert config.mode == part
    if part == "master":
        assert config.datastore_endpoint.startswith("mysql://")  # seed 003: the master on MySQL
        return
    agent = from_node_config(config.domain_id, config.data_dir, config.extra, config.runtime)
    assert agent.runk is not None and agent.runk.namespace == NAMESPACES["lite"]
    assert agent.runk.kubeconfig_file == ""  # the pod's ServiceAccount, bound by rbac.yaml
    assert config.master_endpoint == "http://kuscia-master.kuscia-master.svc.cluster.local:1080"


def test_deployments_mount_their_configmap() -> None:
    for part in ("master", "lite"):
        [deployment] = docs(DEPLOY / part / "deployment.yaml")
        [cm] = docs(DEPLOY / part / "configmap.yaml")
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        assert volumes["kuscia-config"]["configMap"]["name"] == cm["metadata"]["name"]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["command"] == ["atoll", "start", "-c", "/home/atoll/etc/conf/kuscia.yaml"]


def test_lite_role_is_the_agents_least_privilege() -> None:
    role, binding = docs(DEPLOY / "lite" / "rbac.yaml")
    assert role["rules"] == role_rules()
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "default", "namespace": "lite-alice"}]


def test_init_emits_the_configmap(tmp_path: Path) -> None:
    out = tmp_path / "cm.yaml"
    subprocess.run([*ATOLL, "init", "--mode", "lite", "-d", "alice", "--data-dir", "/home/atoll/var", "-r", "runk",
                    "--output-format", "configmap", "-o", str(out)], check=True, capture_output=True, cwd=REPO)
    [cm] = docs(out)
    kubernetes_validate.validate(cm, K8S_VERSION, strict=True)
    assert (cm["metadata"]["name"], cm["metadata"]["namespace"]) == ("kuscia-lite-alice-cm", "lite-alice")
    (tmp_path / "kuscia.yaml").write_text(cm["data"]["kuscia.yaml"])
    config = load_config(tmp_path / "kuscia.yaml")
    assert config.runtime == "runk" and config.extra["runk"]["namespace"] == "lite-alice"
    assert config.domain_key_data


async def kubectl(server: RunningServer, base: Path, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        kubectl_binary(), "--kubeconfig", str(server.kubeconfig), *args, env=kubectl_environ(base),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {err.decode()}"
    return out.decode()


@pytest.mark.slow
async def test_docs_steps_are_accepted_by_atoll(api_server: RunningServer, tmp_path: Path) -> None:
    async with api_server.client() as client:
        for part, namespace in NAMESPACES.items():
            await kubectl(api_server, tmp_path, "create", "ns", namespace)  # step 1
            steps = ["service.yaml", "configmap.yaml"] + (["rbac.yaml"] if part == "lite" else []) + ["deployment.yaml"]
            for step in steps:
                await kubectl(api_server, tmp_path, "create", "-f", str(DEPLOY / part / step))
                for doc in docs(DEPLOY / part / step):
                    await assert_stored_as_written(client, doc)


async def assert_stored_as_written(client: Client, doc: JSON) -> None:
    rd = {"Service": kinds.SERVICES, "ConfigMap": kinds.CONFIGMAPS, "RoleBinding": kinds.ROLEBINDINGS,
          "Role": kinds.kind("rbac.authorization.k8s.io", "roles"),
          "Deployment": kinds.DEPLOYMENTS}[doc["kind"]]
    stored = await client.get(rd, doc["metadata"]["name"], doc["metadata"]["namespace"])
    if doc["kind"] == "Deployment":  # defaults are added; what was written is kept
        written, kept = doc["spec"]["template"]["spec"], stored["spec"]["template"]["spec"]
        for field in ("command", "image", "volumeMounts", "workingDir"):
            assert kept["containers"][0].get(field) == written["containers"][0].get(field), field
        assert [v["name"] for v in kept["volumes"]] == [v["name"] for v in written["volumes"]]
        assert stored["spec"]["selector"] == doc["spec"]["selector"]
    for field in ("data", "rules", "roleRef", "subjects"):
        if field in doc:
            assert stored[field] == doc[field], field
    if doc["kind"] == "Service":
        assert [(p["name"], p["port"]) for p in stored["spec"]["ports"]] == [
            (p["name"], p["port"]) for p in doc["spec"]["ports"]]
