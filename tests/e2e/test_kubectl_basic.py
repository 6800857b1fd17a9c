"""The real kubectl (1.32, and 1.28 for an older client) against a real ``atoll start`` process.

Aspects: the Domain session of the Kuscia documentation verbatim (apply, get, -o yaml, re-apply
"configured", delete, NotFound message); apply of a ConfigMap; ``get -w`` showing a change made
meanwhile; ``create ns`` (a protobuf request body); ``get ns --sort-by`` (full objects in Table
rows) and ``-L`` (label columns from the row metadata); ``api-resources`` with short names;
``version`` through the machine's kubectl dispatcher. Every kubectl call has a timeout and its own
HOME / discovery cache (``kubectl_env``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningServer, kubectl_binary, running_master
from tests.e2e.conftest import ALICE, table
from tests.e2e.conftest import Kubectl as SharedKubectl

VERSIONS = ["1.32", "1.28"]

CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: demo
  namespace: default
  labels:
    app: demo
data:
  k: v
"""


class Kubectl(SharedKubectl):
    @property
    def suffix(self) -> str:
        """Keeps names apart between kubectl versions sharing one server ("" for 1.32, "-128" for 1.28)."""
        return "" if self.version in ("", "1.32") else "-" + self.version.replace(".", "")


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One ``atoll start`` process for the module (tests keep their names apart)."""
    with running_master(tmp_path_factory.mktemp("kubectl-basic") / "master") as server:
        yield server


@pytest.fixture(params=VERSIONS)
def kubectl(
    request: pytest.FixtureRequest, master: RunningServer, kubectl_env: dict[str, str], tmp_path: Path
) -> Kubectl:
    return Kubectl(kubectl_binary(request.param), master.kubeconfig, kubectl_env, tmp_path, request.param)


def test_domain_session_from_the_kuscia_docs(kubectl: Kubectl) -> None:
    kubectl.run("delete", "domain", "alice", "--ignore-not-found")
    assert kubectl.apply(ALICE.format(pods=100), "alice-domain.yaml") == "domain.kuscia.secretflow/alice created"

    rows = table(kubectl.run("get", "domain", "alice").stdout)
    assert rows[0] == ["NAME", "AGE"]
    assert rows[1][0] == "alice" and re.fullmatch(r"\d+s", rows[1][1]), rows

    doc = kubectl.run("get", "domain", "alice", "-o", "yaml").stdout
    assert "kind: Domain" in doc and "apiVersion: kuscia.secretflow/v1alpha1" in doc
    assert "podMaxCount: 100" in doc and "role: partner" in doc
    assert re.search(r"uid: [0-9a-f-]{36}", doc) and "resourceVersion:" in doc
    assert "kubectl.kubernetes.io/last-applied-configuration" in doc

    generation = int(kubectl.run("get", "domain", "alice", "-o", "jsonpath={.metadata.generation}").stdout)
    assert kubectl.apply(ALICE.format(pods=200), "alice-domain.yaml") == "domain.kuscia.secretflow/alice configured"
    out = kubectl.run(
        "get", "domain", "alice", "-o", "jsonpath={.spec.resourceQuota.podMaxCount} {.metadata.generation}"
    )
    assert out.stdout == f"200 {generation + 1}"
    assert kubectl.apply(ALICE.format(pods=200), "alice-domain.yaml") == "domain.kuscia.secretflow/alice unchanged"

    data = json.loads(kubectl.run("get", "domains", "-o", "json").stdout)
    assert data["kind"] == "List" and "alice" in [i["metadata"]["name"] for i in data["items"]]

    assert kubectl.run("delete", "domain", "alice").stdout.strip() == 'domain.kuscia.secretflow "alice" deleted'
    proc = kubectl.run("get", "domain", "alice", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == 'Error from server (NotFound): domains.kuscia.secretflow "alice" not found'
    assert "alice" not in kubectl.run("get", "domains", "-o", "name").stdout


def test_apply_configmap(kubectl: Kubectl) -> None:
    ns = "apply" + kubectl.suffix
    kubectl.run("create", "ns", ns)
    assert (
        kubectl.apply(CONFIGMAP.replace("namespace: default", f"namespace: {ns}"), "cm.yaml")
        == "configmap/demo created"
    )
    rows = table(kubectl.run("get", "cm", "demo", "-n", ns).stdout)
    assert rows[0] == ["NAME", "DATA", "AGE"]
    assert rows[1][:2] == ["demo", "1"]
    changed = CONFIGMAP.replace("namespace: default", f"namespace: {ns}").replace("k: v", "k: v\n  k2: v2")
    assert kubectl.apply(changed, "cm.yaml") == "configmap/demo configured"
    assert table(kubectl.run("get", "configmap", "demo", "-n", ns).stdout)[1][:2] == ["demo", "2"]
    assert kubectl.run("get", "cm", "-n", ns, "-l", "app=demo", "-o", "name").stdout.strip() == "configmap/demo"
    assert kubectl.run("get", "cm", "-n", ns, "-l", "app!=demo", "-o", "name").stdout.strip() == ""
    out = kubectl.run("label", "cm", "demo", "-n", ns, "tier=web").stdout.strip()
    assert out == "configmap/demo labeled"
    assert kubectl.run("get", "cm", "demo", "-n", ns, "-o", "jsonpath={.metadata.labels.tier}").stdout == "web"
    assert kubectl.run("delete", "-f", str(kubectl.workdir / "cm.yaml")).stdout.strip() == 'configmap "demo" deleted'


def test_get_watch_shows_a_change_made_meanwhile(kubectl: Kubectl) -> None:
    ns = "watch" + kubectl.suffix
    kubectl.run("create", "ns", ns)
    kubectl.apply(CONFIGMAP.replace("namespace: default", f"namespace: {ns}"), "cm.yaml")
    proc = subprocess.Popen(
        kubectl.args("get", "cm", "demo", "-n", ns, "-w", "--output-watch-events"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=kubectl.env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # blocks until the header is printed
        assert re.split(r"\s+", first.strip()) == ["EVENT", "NAME", "DATA", "AGE"], first
        initial = re.split(r"\s+", proc.stdout.readline().strip())
        assert initial[:3] == ["ADDED", "demo", "1"], initial
        kubectl.run("patch", "cm", "demo", "-n", ns, "--type", "merge", "-p", '{"data":{"k2":"v2","k3":"v3"}}')
        deadline = time.monotonic() + 15
        lines = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "MODIFIED" in line:
                break
    finally:
        proc.kill()
        proc.wait(timeout=10)
    modified = [re.split(r"\s+", line.strip()) for line in lines if "MODIFIED" in line]
    assert modified, (first, lines, proc.stderr.read() if proc.stderr else "")
    assert modified[0][:3] == ["MODIFIED", "demo", "3"]


def test_create_namespace_with_a_protobuf_body(kubectl: Kubectl) -> None:
    bob = "bob" + kubectl.suffix
    assert kubectl.run("create", "ns", bob).stdout.strip() == f"namespace/{bob} created"
    rows = table(kubectl.run("get", "ns", bob).stdout)
    assert rows[0] == ["NAME", "STATUS", "AGE"] and rows[1][:2] == [bob, "Active"]
    assert (
        kubectl.run("create", "configmap", "c2", "-n", bob, "--from-literal=k=v").stdout.strip()
        == "configmap/c2 created"
    )
    assert kubectl.run("get", "cm", "c2", "-n", bob, "-o", "jsonpath={.data.k}").stdout == "v"
    proc = kubectl.run("create", "ns", bob, check=False)
    assert proc.returncode == 1
    assert f'namespaces "{bob}" already exists' in proc.stderr


def test_get_namespaces_sorted_and_with_label_columns(kubectl: Kubectl) -> None:
    zed, abe = "zed" + kubectl.suffix, "abe" + kubectl.suffix
    kubectl.run("create", "ns", zed)
    kubectl.run("create", "ns", abe)
    rows = table(kubectl.run("get", "ns", "--sort-by=.metadata.name").stdout)
    assert rows[0] == ["NAME", "STATUS", "AGE"]
    names = [r[0] for r in rows[1:]]
    assert names == sorted(names)
    assert {abe, zed, "default", "kube-system", "kuscia-system"} <= set(names)

    rows = table(kubectl.run("get", "ns", "-L", "kubernetes.io/metadata.name").stdout)
    assert rows[0] == ["NAME", "STATUS", "AGE", "METADATA.NAME"]
    for row in rows[1:]:
        assert row[1] == "Active" and row[3] == row[0], row

    kubectl.run("label", "ns", zed, "kuscia.secretflow/deleted=true")
    rows = table(kubectl.run("get", "namespace", zed, "-L", "kuscia.secretflow/deleted").stdout)
    assert rows == [["NAME", "STATUS", "AGE", "DELETED"], [zed, "Active", rows[1][2], "true"]]
    shown = kubectl.run("get", "ns", abe, "--show-labels").stdout
    assert f"kubernetes.io/metadata.name={abe}" in shown


def test_api_resources_lists_kuscia_kinds(kubectl: Kubectl) -> None:
    rows = table(kubectl.run("api-resources").stdout)
    assert rows[0] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    by_name = {r[0]: r for r in rows[1:]}
    assert by_name["domains"] == ["domains", "kuscia.secretflow/v1alpha1", "false", "Domain"]
    assert by_name["clusterdomainroutes"] == [
        "clusterdomainroutes",
        "cdr",
        "kuscia.secretflow/v1alpha1",
        "false",
        "ClusterDomainRoute",
    ]
    assert by_name["kusciajobs"] == ["kusciajobs", "kj", "kuscia.secretflow/v1alpha1", "true", "KusciaJob"]
    assert by_name["namespaces"] == ["namespaces", "ns", "v1", "false", "Namespace"]
    assert by_name["configmaps"] == ["configmaps", "cm", "v1", "true", "ConfigMap"]
    only = kubectl.run("api-resources", "--api-group=kuscia.secretflow", "-o", "name").stdout.split()
    assert "domains.kuscia.secretflow" in only and "kusciatasks.kuscia.secretflow" in only
    assert all(n.endswith(".kuscia.secretflow") for n in only)
    # short and qualified names resolve
    carol = "carol" + kubectl.suffix
    kubectl.apply(ALICE.format(pods=1).replace("name: alice", f"name: {carol}"), "carol.yaml")
    assert kubectl.run("get", "cdr", "-o", "name").returncode == 0
    assert f"domain.kuscia.secretflow/{carol}" in kubectl.run("get", "domain.kuscia.secretflow", "-o", "name").stdout


def test_dispatcher_picks_kubectl_132(master: RunningServer, kubectl_env: dict[str, str], tmp_path: Path) -> None:
    dispatcher = "/usr/bin/kubectl"
    if not os.path.exists(dispatcher):
        pytest.skip("no kubectl dispatcher on this machine")
    kubectl = Kubectl(dispatcher, master.kubeconfig, kubectl_env, tmp_path)
    out = kubectl.run("version", "-o", "json").stdout
    info = json.loads(out)
    assert info["serverVersion"]["minor"] == "32"
    assert info["clientVersion"]["minor"].startswith("32")
