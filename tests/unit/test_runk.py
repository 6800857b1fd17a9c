"""RunK settings, capacity from ResourceQuotas, and what RunK adds to the target pod."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from atoll.agent.config import from_node_config
from atoll.agent.runk.capacity import from_quotas
from atoll.agent.runk.permissions import REQUIRED, condition
from atoll.agent.runk.podspec import NODE_LABEL, customize
from atoll.agent.runk.settings import RunKSettings, RunKSettingsError, runk_settings


def test_settings_use_kuscia_field_names() -> None:
    s = runk_settings({"runk": {"namespace": "inst", "kubeconfigFile": "/k", "dnsServers": ["10.0.0.10"],
                                "enableLogging": False, "hostAddress": "10.1.2.3"}})
    assert s == RunKSettings(namespace="inst", kubeconfig_file="/k", dns_servers=("10.0.0.10",),
                             enable_logging=False, host_address="10.1.2.3")


@pytest.mark.parametrize(("extra", "field"), [
    ({}, "runk:"),
    ({"runk": {}}, "runk.namespace"),
    ({"runk": {"namespace": "Bad_NS"}}, "runk.namespace"),
    ({"runk": {"namespace": "ok", "dnsServers": "1.1.1.1"}}, "runk.dnsServers"),
    ({"runk": {"namespace": "ok", "unschedulableTimeoutSeconds": 0}}, "runk.unschedulableTimeoutSeconds"),
])
def test_bad_settings_name_the_field(extra: dict[str, object], field: str) -> None:
    with pytest.raises(RunKSettingsError, match=field.replace(".", r"\.")):
        runk_settings(extra)


def test_agent_config_selects_the_runtime(tmp_path: Path) -> None:
    config = from_node_config("alice", tmp_path, {"runk": {"namespace": "inst"}}, "runk")
    assert config.runtime == "runk" and config.runk is not None and config.runk.namespace == "inst"
    assert from_node_config("alice", tmp_path, {}).runk is None
    with pytest.raises(RunKSettingsError, match="runtime: 'runc'"):
        from_node_config("alice", tmp_path, {}, "runc")


def test_capacity_takes_the_smallest_quota() -> None:
    quotas = [
        {"spec": {"hard": {"requests.cpu": "8", "requests.memory": "16Gi", "pods": "50"}}},
        {"spec": {"hard": {"cpu": "4", "memory": "32Gi"}}, "status": {"hard": {"cpu": "4", "memory": "32Gi"}}},
    ]
    assert from_quotas(quotas) == {"cpu": "4", "memory": "16Gi", "pods": "50"}
    assert from_quotas([]) == {}


def test_customize_labels_env_loopback_and_dns() -> None:
    settings = RunKSettings(namespace="inst", host_address="10.0.0.7", dns_servers=("10.96.0.10",),
                            labels={"team": "x"})
    target = {"metadata": {"labels": {"a": "b"}, "annotations": {}},
              "spec": {"containers": [{"name": "main", "env": [
                  {"name": "TASK_CLUSTER_DEFINE", "value": '{"endpoints":["127.0.0.1:20001"]}'},
                  {"name": "DATAMESH_ADDR", "value": "own"}]}]}}
    pod_env = {"DATAMESH_ADDR": "127.0.0.1:1", "DATAMESH_GRPC_ADDR": "127.0.0.1:2"}
    out = customize(target, settings, "alice-runk", pod_env)
    assert out["metadata"]["labels"] == {"team": "x", "a": "b", NODE_LABEL: "alice-runk"}
    env = {e["name"]: e["value"] for e in out["spec"]["containers"][0]["env"]}
    assert env == {"TASK_CLUSTER_DEFINE": '{"endpoints":["10.0.0.7:20001"]}', "DATAMESH_ADDR": "own",
                   "DATAMESH_GRPC_ADDR": "10.0.0.7:2"}
    assert out["spec"]["dnsPolicy"] == "None" and out["spec"]["dnsConfig"]["nameservers"] == ["10.96.0.10"]


def test_permission_condition_names_verb_and_resource() -> None:
    assert ("pods/log", ("get",)) in REQUIRED
    cond = condition("inst", ["get pods/log", "create secrets"])
    assert cond["status"] == "False"
    assert "may not get pods/log, create secrets in namespace inst" in cond["message"]
    assert condition("inst", [])["status"] == "True"


@pytest.mark.parametrize(("spec", "policy"), [
    ({"image": "app:v1"}, "IfNotPresent"),
    ({"image": "app"}, "Always"),
    ({"image": "registry:5000/app:latest"}, "Always"),
    ({"image": "registry:5000/app"}, "Always"),
    ({"image": "app:v1", "imagePullPolicy": "Never"}, "Never"),
])
def test_missing_image_message_names_the_pods_policy(spec: dict[str, str], policy: str) -> None:
    from atoll.agent.runp.images import image_missing, pull_policy

    assert pull_policy(spec) == policy
    reason, message = image_missing(spec["image"], spec)
    assert reason == "ErrImageNeverPull"
    assert (f"pull policy of {policy}" if policy == "Never" else f"pull policy {policy}") in message


def test_cluster_ca_from_kubeconfig(tmp_path: Path) -> None:
    import base64

    from atoll.node.cluster_ca import ensure_cluster_ca

    kubeconfig = tmp_path / "kc"
    data = base64.b64encode(b"PEM").decode()
    cluster = {"server": "https://x", "certificate-authority-data": data}
    contexts = [{"name": "c", "context": {"cluster": "k"}}]
    doc = {"current-context": "c", "contexts": contexts, "clusters": [{"name": "k", "cluster": cluster}]}
    kubeconfig.write_text(yaml.safe_dump(doc))
    path = ensure_cluster_ca(str(kubeconfig), tmp_path / "node")
    assert path is not None and path.read_bytes() == b"PEM"
