"""Real kubectl 1.32 apply against a real ``atoll start`` process: server-side apply with
managedFields, conflicts and ``--force-conflicts``, client-side to server-side migration, and
client-side apply of a Pod (strategic merge keeps the other container fields)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import RunningServer, kubectl_binary
from tests.e2e.conftest import Kubectl as SharedKubectl

DOMAIN = """apiVersion: kuscia.secretflow/v1alpha1
kind: Domain
metadata:
  name: carol
spec:
  role: partner
  master: {master}
"""

CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: demo
  namespace: default
data:
{data}
"""

POD = """apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: ssa
spec:
  containers:
  - name: main
    image: {image}
    command: ["sleep", "3600"]
    env:
    - name: A
      value: "1"
"""


class Kubectl:
    """kubectl 1.32 (the shared e2e runner) with apply returning the whole process and JSON gets."""

    def __init__(self, server: RunningServer, env: dict[str, str], workdir: Path) -> None:
        self.kubectl = SharedKubectl(kubectl_binary("1.32"), server.kubeconfig, env, workdir, "1.32")
        self.workdir = workdir

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.kubectl.run(*args, check=check)

    def apply(self, name: str, text: str, *flags: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        path = self.workdir / name
        path.write_text(text)
        return self.run("apply", "-f", str(path), *flags, check=check)

    def get(self, *args: str) -> Any:
        return json.loads(self.run("get", *args, "-o", "json", "--show-managed-fields").stdout)


def _managers(obj: Any) -> dict[tuple[str, str], Any]:
    return {(e["manager"], e["operation"]): e["fieldsV1"] for e in obj["metadata"].get("managedFields") or []}


def test_server_side_apply_conflict_and_force(master_process: RunningServer, kubectl_env: dict[str, str],
                                              tmp_path: Path) -> None:
    k = Kubectl(master_process, kubectl_env, tmp_path)
    out = k.apply("d1.yaml", DOMAIN.format(master="m1"), "--server-side")
    assert out.stdout.strip() == "domain.kuscia.secretflow/carol serverside-applied"
    assert _managers(k.get("domain", "carol"))[("kubectl", "Apply")] == {"f:spec": {"f:master": {}, "f:role": {}}}

    failed = k.apply("d2.yaml", DOMAIN.format(master="m2"), "--server-side", "--field-manager=other", check=False)
    assert failed.returncode != 0
    assert 'Apply failed with 1 conflict: conflict with "kubectl": .spec.master' in failed.stderr
    assert "--force-conflicts" in failed.stderr

    forced = k.apply("d2.yaml", DOMAIN.format(master="m2"), "--server-side", "--field-manager=other",
                     "--force-conflicts")
    assert "serverside-applied" in forced.stdout
    obj = k.get("domain", "carol")
    assert obj["spec"]["master"] == "m2"
    managers = _managers(obj)
    assert managers[("kubectl", "Apply")] == {"f:spec": {"f:role": {}}}
    assert managers[("other", "Apply")] == {"f:spec": {"f:master": {}, "f:role": {}}}
    plain = k.run("get", "domain", "carol", "-o", "yaml").stdout
    assert "managedFields" not in plain


def test_client_side_conflicts_then_migration(master_process: RunningServer, kubectl_env: dict[str, str],
                                              tmp_path: Path) -> None:
    k = Kubectl(master_process, kubectl_env, tmp_path)
    assert "created" in k.apply("c1.yaml", CONFIGMAP.format(data="  k: v\n  drop: x")).stdout
    assert ("kubectl-client-side-apply", "Update") in _managers(k.get("cm", "demo"))

    failed = k.apply("c2.yaml", CONFIGMAP.format(data="  k: v2"), "--server-side", "--field-manager=other",
                     check=False)
    assert failed.returncode != 0
    assert 'conflict with "kubectl-client-side-apply" using v1: .data.k' in failed.stderr

    # kubectl's own server-side apply takes over what its client-side apply recorded, migrates the
    # managedFields entry, and the re-sent apply drops the key it no longer lists.
    assert "serverside-applied" in k.apply("c2.yaml", CONFIGMAP.format(data="  k: v2"), "--server-side").stdout
    obj = k.get("cm", "demo")
    assert obj["data"] == {"k": "v2"}
    managers = _managers(obj)
    assert ("kubectl-client-side-apply", "Update") not in managers
    assert managers[("kubectl", "Apply")] == {"f:data": {"f:k": {}}}
    assert '"k":"v2"' in obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]


def test_client_side_apply_of_a_pod_twice(master_process: RunningServer, kubectl_env: dict[str, str],
                                          tmp_path: Path) -> None:
    k = Kubectl(master_process, kubectl_env, tmp_path)
    k.run("create", "namespace", "ssa")
    assert "created" in k.apply("p1.yaml", POD.format(image="busybox:1")).stdout
    assert "configured" in k.apply("p2.yaml", POD.format(image="busybox:2")).stdout
    pod = k.get("pod", "web", "-n", "ssa")
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "busybox:2"
    assert container["command"] == ["sleep", "3600"] and container["env"] == [{"name": "A", "value": "1"}]
    assert container["terminationMessagePath"] == "/dev/termination-log"
    fields = _managers(pod)[("kubectl-client-side-apply", "Update")]
    main = fields["f:spec"]["f:containers"]['k:{"name":"main"}']
    assert {"f:image", "f:command", "f:env", "f:name"} <= set(main)
