"""kubectl fidelity: the real kubectl 1.32 and 1.28 (legacy discovery) against one ``atoll start``
process per module, asserting on what kubectl prints.

Covered: ``get`` Tables of every served kind with kubectl's columns (ResourceQuota REQUEST/LIMIT, Pod
READY/STATUS/RESTARTS/AGE and ``-o wide``, Node, Namespace, ConfigMap, Secret, Service, Lease, CRD,
Event, CRD ``additionalPrinterColumns`` with a JSONPath filter); ``-L``, ``--show-labels``, ``-A``,
``--sort-by``, ``--chunk-size``, ``-o name|yaml|json|jsonpath|custom-columns``; ``get -w``;
``get all``; ``api-resources [-o wide]``; ``explain``; typed ``create`` commands (protobuf bodies);
client-side ``apply``; ``delete`` (waiting, ``--dry-run=server``); ``wait``; ``describe``;
``label``/``annotate``; ``patch`` (merge, json, strategic); ``edit``; ``replace``; ``logs`` against a
fake node agent; ``exec``. Objects carry a per-version suffix so both clients share one server.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import eventually
from tests.e2e.conftest import Kubectl, make_kubectl, table

VERSIONS = ["1.32", "1.28"]
AGE = r"\d+s|\d+m\d*s?"


@pytest.fixture(scope="module", params=VERSIONS)
def kubectl(request: pytest.FixtureRequest, module_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return make_kubectl(request.param, module_server, tmp_path_factory.mktemp(f"kubectl{request.param}"))


def _ns(kubectl: Kubectl, base: str) -> str:
    name = f"{base}-{kubectl.tag}"
    assert kubectl.out("create", "ns", name) == f"namespace/{name} created"
    return name


def _pod(name: str, ns: str, node: str = "", containers: tuple[str, ...] = ("main",), labels: str = "") -> str:
    spec_node = f"\n  nodeName: {node}" if node else ""
    cs = "".join(
        f"""
  - name: {c}
    image: busybox:1
    command: ["sleep", "3600"]
    env:
    - name: A
      value: "1\""""
        for c in containers
    )
    return f"""apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {ns}
  labels: {{app: {labels or name}}}
spec:{spec_node}
  containers:{cs}
"""


def _running_status(kubectl: Kubectl, pod: str, ns: str, containers: tuple[str, ...] = ("main",),
                    ip: str = "10.1.2.3") -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    status = {
        "status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "hostIP": "127.0.0.1",
            "startTime": now,
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
            "containerStatuses": [
                {
                    "name": c,
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "image": "busybox:1",
                    "imageID": "",
                    "state": {"running": {"startedAt": now}},
                }
                for c in containers
            ],
        }
    }
    kubectl.run("patch", "pod", pod, "-n", ns, "--subresource=status", "--type=merge", "-p", json.dumps(status))


def _node(kubectl: Kubectl, name: str, port: int = 10250, role: str = "") -> None:
    labels = {"kubernetes.io/hostname": name}
    if role:
        labels[f"node-role.kubernetes.io/{role}"] = ""
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}}
    kubectl.apply(json.dumps(node), f"node-{name}.json")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    status = {
        "status": {
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ready",
                 "lastHeartbeatTime": now, "lastTransitionTime": now}
            ],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
            "nodeInfo": {
                "kubeletVersion": "v1.32.0-atoll", "osImage": "Atoll Linux", "kernelVersion": "6.1.0",
                "containerRuntimeVersion": "atoll://1.0", "architecture": "amd64", "operatingSystem": "linux",
                "bootID": "", "machineID": "", "systemUUID": "", "kubeProxyVersion": "",
            },
        }
    }
    kubectl.run("patch", "node", name, "--subresource=status", "--type=merge", "-p", json.dumps(status))


# --------------------------------------------------------------------------------------------------
# kubectl get: Tables of the built-in kinds


def test_get_tables_of_builtin_kinds(kubectl: Kubectl) -> None:
    ns = _ns(kubectl, "tables")
    t = kubectl.tag

    # Namespace
    rows = table(kubectl.out("get", "ns", ns))
    assert rows[0] == ["NAME", "STATUS", "AGE"] and rows[1][:2] == [ns, "Active"]
    assert re.fullmatch(AGE, rows[1][2]), rows

    # ResourceQuota: REQUEST / LIMIT from status.hard and status.used
    assert kubectl.out("create", "quota", "q", "-n", ns, "--hard=pods=100,requests.cpu=4,limits.memory=8Gi") == \
        "resourcequota/q created"
    status = {"status": {"hard": {"pods": "100", "requests.cpu": "4", "limits.memory": "8Gi"},
                         "used": {"pods": "0", "requests.cpu": "0", "limits.memory": "0"}}}
    kubectl.run("patch", "quota", "q", "-n", ns, "--subresource=status", "--type=merge", "-p", json.dumps(status))
    rows = table(kubectl.out("get", "quota", "-n", ns))
    assert rows[0] == ["NAME", "AGE", "REQUEST", "LIMIT"]
    assert rows[1][0] == "q" and rows[1][2:] == ["pods: 0/100, requests.cpu: 0/4", "limits.memory: 0/8Gi"], rows

    # Node: STATUS / ROLES / AGE / VERSION (+ wide)
    node = f"worker-{t}"
    _node(kubectl, node, role="worker")
    rows = table(kubectl.out("get", "node", node))
    assert rows[0] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert rows[1][:3] == [node, "Ready", "worker"] and rows[1][4] == "v1.32.0-atoll", rows
    rows = table(kubectl.out("get", "node", node, "-o", "wide"))
    assert rows[0] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE",
                       "KERNEL-VERSION", "CONTAINER-RUNTIME"]
    assert rows[1][5:] == ["127.0.0.1", "<none>", "Atoll Linux", "6.1.0", "atoll://1.0"], rows

    # Pod: READY / STATUS / RESTARTS / AGE (+ wide IP / NODE)
    assert kubectl.apply(_pod("web", ns, node), "pod.yaml") == "pod/web created"
    rows = table(kubectl.out("get", "pod", "web", "-n", ns))
    assert rows[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert rows[1][:4] == ["web", "0/1", "Pending", "0"], rows
    _running_status(kubectl, "web", ns)
    rows = table(kubectl.out("get", "pods", "-n", ns))
    assert rows[1][:4] == ["web", "1/1", "Running", "0"], rows
    rows = table(kubectl.out("get", "pods", "-n", ns, "-o", "wide"))
    assert rows[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE",
                       "READINESS GATES"]
    assert rows[1][5:] == ["10.1.2.3", node, "<none>", "<none>"], rows

    # ConfigMap DATA, Secret TYPE/DATA, ServiceAccount
    kubectl.run("create", "configmap", "cfg", "-n", ns, "--from-literal=a=1", "--from-literal=b=2")
    rows = table(kubectl.out("get", "cm", "cfg", "-n", ns))
    assert rows[0] == ["NAME", "DATA", "AGE"] and rows[1][:2] == ["cfg", "2"]
    kubectl.run("create", "secret", "generic", "sec", "-n", ns, "--from-literal=password=x")
    rows = table(kubectl.out("get", "secret", "sec", "-n", ns))
    assert rows[0] == ["NAME", "TYPE", "DATA", "AGE"] and rows[1][:3] == ["sec", "Opaque", "1"]
    kubectl.run("create", "serviceaccount", "robot", "-n", ns)
    rows = table(kubectl.out("get", "sa", "robot", "-n", ns))
    assert rows[0] == ["NAME", "SECRETS", "AGE"] and rows[1][:2] == ["robot", "0"]

    # Service
    svc = f"""apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {ns}}}
spec:
  type: ClusterIP
  clusterIP: 10.96.0.20
  selector: {{app: web}}
  ports:
  - {{name: http, port: 80, targetPort: 8080, protocol: TCP}}
"""
    assert kubectl.apply(svc, "svc.yaml") == "service/web created"
    rows = table(kubectl.out("get", "svc", "web", "-n", ns, "-o", "wide"))
    assert rows[0] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"]
    assert rows[1][:5] == ["web", "ClusterIP", "10.96.0.20", "<none>", "80/TCP"] and rows[1][6] == "app=web", rows

    # Lease
    lease = f"""apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {{name: lock, namespace: {ns}}}
spec: {{holderIdentity: me-{t}, leaseDurationSeconds: 15}}
"""
    assert kubectl.apply(lease, "lease.yaml") == "lease.coordination.k8s.io/lock created"
    rows = table(kubectl.out("get", "lease", "lock", "-n", ns))
    assert rows[0] == ["NAME", "HOLDER", "AGE"] and rows[1][:2] == ["lock", f"me-{t}"]

    # Endpoints, RBAC kinds
    eps = f"""apiVersion: v1
kind: Endpoints
metadata: {{name: manual, namespace: {ns}}}
subsets:
- addresses: [{{ip: 10.1.2.3}}, {{ip: 10.1.2.4}}]
  ports: [{{name: http, port: 8080, protocol: TCP}}]
"""
    assert kubectl.apply(eps, "eps.yaml") == "endpoints/manual created"
    rows = table(kubectl.out("get", "endpoints", "manual", "-n", ns))
    assert rows[0] == ["NAME", "ENDPOINTS", "AGE"] and rows[1][:2] == ["manual", "10.1.2.3:8080,10.1.2.4:8080"], rows
    kubectl.run("create", "role", "r", "-n", ns, "--verb=get", "--resource=pods")
    rows = table(kubectl.out("get", "role", "r", "-n", ns))
    assert rows[0] == ["NAME", "CREATED AT"] and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rows[1][1])
    rows = table(kubectl.out("get", "clusterrole", "admin"))
    assert rows[0] == ["NAME", "CREATED AT"] and rows[1][0] == "admin"
    kubectl.run("create", "clusterrolebinding", f"view-{t}", "--clusterrole=view", f"--user=u{t}", "--group=g")
    rows = table(kubectl.out("get", "clusterrolebinding", f"view-{t}", "-o", "wide"))
    assert rows[0] == ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    assert rows[1][:2] == [f"view-{t}", "ClusterRole/view"] and rows[1][3:] == [f"u{t}", "g"], rows
    kubectl.run("delete", "clusterrolebinding", f"view-{t}")

    # CRD
    rows = table(kubectl.out("get", "crd", "domains.kuscia.secretflow"))
    assert rows[0] == ["NAME", "CREATED AT"]
    assert rows[1][0] == "domains.kuscia.secretflow" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rows[1][1])

    # Event (core/v1) about the pod
    _event(kubectl, ns, "web", "Pulled", "Container image already present")
    rows = table(kubectl.out("get", "events", "-n", ns))
    assert rows[0] == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert rows[1][1:] == ["Normal", "Pulled", "pod/web", "Container image already present"], rows


def _event(kubectl: Kubectl, ns: str, pod: str, reason: str, message: str) -> None:
    uid = kubectl.out("get", "pod", pod, "-n", ns, "-o", "jsonpath={.metadata.uid}")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{pod}.{reason.lower()}", "namespace": ns},
        "involvedObject": {"kind": "Pod", "namespace": ns, "name": pod, "uid": uid, "apiVersion": "v1",
                           "fieldPath": "spec.containers{main}"},
        "reason": reason,
        "message": message,
        "type": "Normal",
        "source": {"component": "kubelet", "host": "worker"},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    path = kubectl.workdir / f"event-{reason}.json"
    path.write_text(json.dumps(event))
    assert kubectl.out("create", "-f", str(path)) == f"event/{pod}.{reason.lower()} created"


# --------------------------------------------------------------------------------------------------
# CRD printer columns, output options


CDR = """apiVersion: kuscia.secretflow/v1alpha1
kind: ClusterDomainRoute
metadata:
  name: {name}
spec:
  source: alice
  destination: bob
  authenticationType: Token
  endpoint:
    host: bob.example
    ports:
    - {{name: http, port: 1080, protocol: HTTP}}
  tokenConfig:
    tokenGenMethod: RSA-GEN
"""

DOMAIN = """apiVersion: kuscia.secretflow/v1alpha1
kind: Domain
metadata:
  name: {name}
  labels: {{tier: "{tier}"}}
spec:
  role: partner
  cert: base64<certificate>
"""


def test_crd_printer_columns_with_a_filter(kubectl: Kubectl) -> None:
    name = f"alice-bob-{kubectl.tag}"
    assert kubectl.apply(CDR.format(name=name), "cdr.yaml") == \
        f"clusterdomainroute.kuscia.secretflow/{name} created"
    rows = table(kubectl.out("get", "cdr", name))
    assert rows[0] == ["NAME", "SOURCE", "DESTINATION", "HOST", "AUTHENTICATION", "READY"]
    assert rows[1][:5] == [name, "alice", "bob", "bob.example", "Token"], rows

    def ready_column(*resource: str) -> str:
        # READY filters .status.conditions[?(@.type=="Ready")].status; the ClusterDomainRoute
        # controller writes Ready=False here (neither domain exists), next to other conditions
        row = table(kubectl.out("get", *resource, name))[1]
        assert row[-1] == "False", row
        return row[-1]

    asyncio.run(eventually(lambda: ready_column("clusterdomainroutes")))
    ready_column("clusterdomainroute.kuscia.secretflow", "-o", "wide")
    obj = json.loads(kubectl.out("get", "cdr", name, "-o", "json"))
    assert [c["status"] for c in obj["status"]["conditions"] if c["type"] == "Ready"] == ["False"]
    kubectl.run("delete", "cdr", name)


def test_get_output_options(kubectl: Kubectl) -> None:
    ns = _ns(kubectl, "outputs")
    t = kubectl.tag
    for name, tier in (("c", "web"), ("a", "db"), ("d", "web"), ("b", "db")):
        kubectl.run("create", "configmap", name, "-n", ns, f"--from-literal=k={name}")
        kubectl.run("label", "cm", name, "-n", ns, f"tier={tier}")

    rows = table(kubectl.out("get", "cm", "-n", ns, "-L", "tier", "-l", "tier"))
    assert rows[0] == ["NAME", "DATA", "AGE", "TIER"]
    assert {r[0]: r[3] for r in rows[1:]} == {"a": "db", "b": "db", "c": "web", "d": "web"}

    shown = table(kubectl.out("get", "cm", "a", "-n", ns, "--show-labels"))
    assert shown[0] == ["NAME", "DATA", "AGE", "LABELS"] and shown[1][3] == "tier=db"

    rows = table(kubectl.out("get", "cm", "-A", "-l", "tier=web"))
    assert rows[0] == ["NAMESPACE", "NAME", "DATA", "AGE"]
    assert [r[:2] for r in rows[1:] if r[0] == ns] == [[ns, "c"], [ns, "d"]]

    rows = table(kubectl.out("get", "cm", "-n", ns, "-l", "tier", "--sort-by=.metadata.name"))
    assert [r[0] for r in rows[1:]] == ["a", "b", "c", "d"]
    rows = table(kubectl.out("get", "cm", "-n", ns, "-l", "tier", "--sort-by=.data.k"))
    assert [r[0] for r in rows[1:]] == ["a", "b", "c", "d"]

    out = kubectl.out("get", "cm", "-n", ns, "-l", "tier", "--chunk-size=2")
    rows = table(out)
    assert rows[0] == ["NAME", "DATA", "AGE"] and sorted(r[0] for r in rows[1:]) == ["a", "b", "c", "d"]
    assert out.count("NAME") == 1  # one header across pages
    out = kubectl.out("get", "cm", "-n", ns, "-l", "tier", "--chunk-size=2", "-o", "name")
    assert sorted(out.split()) == ["configmap/a", "configmap/b", "configmap/c", "configmap/d"]

    assert kubectl.out("get", "cm", "a", "-n", ns, "-o", "name") == "configmap/a"
    doc = yaml.safe_load(kubectl.out("get", "cm", "a", "-n", ns, "-o", "yaml"))
    assert doc["kind"] == "ConfigMap" and doc["apiVersion"] == "v1" and doc["data"] == {"k": "a"}
    assert "managedFields" not in doc["metadata"]
    data = json.loads(kubectl.out("get", "cm", "-n", ns, "-l", "tier=db", "-o", "json"))
    assert data["kind"] == "List" and sorted(i["metadata"]["name"] for i in data["items"]) == ["a", "b"]
    assert all(i["kind"] == "ConfigMap" for i in data["items"])
    out = kubectl.out("get", "cm", "-n", ns, "-l", "tier=db", "-o",
                      "jsonpath={range .items[*]}{.metadata.name}={.data.k};{end}")
    assert out == "a=a;b=b;"
    rows = table(kubectl.out("get", "cm", "-n", ns, "-l", "tier", "-o",
                             "custom-columns=N:.metadata.name,T:.metadata.labels.tier,K:.data.k"))
    assert rows == [["N", "T", "K"], ["a", "db", "a"], ["b", "db", "b"], ["c", "web", "c"], ["d", "web", "d"]]

    # Domains (cluster-scoped CRs) with the same options
    names = [f"o{t}-{i}" for i in range(3)]
    for i, n in enumerate(names):
        kubectl.apply(DOMAIN.format(name=n, tier="a" if i % 2 == 0 else "b"), f"dom-{n}.yaml")
    rows = table(kubectl.out("get", "domains", "-l", "tier", "-L", "tier", "--sort-by=.metadata.name",
                             "--chunk-size=2"))
    assert rows[0] == ["NAME", "AGE", "TIER"]
    assert [(r[0], r[2]) for r in rows[1:] if r[0] in names] == [(names[0], "a"), (names[1], "b"), (names[2], "a")]
    assert kubectl.out("get", "domain", names[1], "-o", "jsonpath={.spec.role}") == "partner"
    for n in names:
        kubectl.run("delete", "domain", n)


# --------------------------------------------------------------------------------------------------
# get -w, get all, api-resources, explain


def _read_until(proc: subprocess.Popen[str], pattern: str, deadline: float) -> list[str]:
    lines: list[str] = []
    assert proc.stdout is not None
    result: list[str] = []

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if re.search(pattern, line):
                result.append(line)
                return

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    th.join(max(0.0, deadline - time.monotonic()))
    return lines


def test_get_watch_prints_one_row_per_change(kubectl: Kubectl) -> None:
    ns = _ns(kubectl, "watch")
    kubectl.run("create", "configmap", "w1", "-n", ns, "--from-literal=k=v")
    proc = kubectl.popen("get", "cm", "-n", ns, "-w", "--request-timeout=20s")
    try:
        lines = _read_until(proc, r"^w1\s", time.monotonic() + 15)
        assert lines and lines[0].split() == ["NAME", "DATA", "AGE"], lines
        kubectl.run("create", "configmap", "w2", "-n", ns, "--from-literal=a=1", "--from-literal=b=2")
        lines += _read_until(proc, r"^w2\s", time.monotonic() + 15)
        kubectl.run("label", "cm", "w2", "-n", ns, "x=y")
        lines += _read_until(proc, r"^w2\s", time.monotonic() + 15)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    rows = [line.split() for line in lines]
    assert rows[0] == ["NAME", "DATA", "AGE"]
    assert [r[:2] for r in rows[1:]] == [["w1", "1"], ["w2", "2"], ["w2", "2"]], lines


def test_get_all_api_resources_and_explain(kubectl: Kubectl) -> None:
    ns = _ns(kubectl, "all")
    kubectl.apply(_pod("p", ns), "pod-all.yaml")
    kubectl.run("create", "service", "clusterip", "s", "-n", ns, "--tcp=80:8080")
    assert kubectl.out("create", "service", "nodeport", "np", "-n", ns, "--tcp=8080:http") == "service/np created"
    rows = table(kubectl.out("get", "svc", "np", "-n", ns))
    assert rows[1][1] == "NodePort" and re.fullmatch(r"8080:3[0-2]\d{3}/TCP", rows[1][4]), rows
    kubectl.run("delete", "svc", "np", "-n", ns)
    kubectl.run("create", "configmap", "not-in-all", "-n", ns)
    out = kubectl.out("get", "all", "-n", ns)
    assert "pod/p" in out and "service/s" in out and "not-in-all" not in out, out
    names = kubectl.out("get", "all", "-n", ns, "-o", "name").split()
    assert sorted(names) == ["pod/p", "service/s"]

    rows = table(kubectl.out("api-resources"))
    assert rows[0] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    by_name: dict[str, list[str]] = {}
    for r in rows[1:]:  # the core group first; "pods" is also metrics.k8s.io's PodMetrics, as with metrics-server
        by_name.setdefault(r[0], r)
    assert by_name["pods"] == ["pods", "po", "v1", "true", "Pod"]
    assert by_name["leases"] == ["leases", "coordination.k8s.io/v1", "true", "Lease"]
    assert by_name["domains"] == ["domains", "kuscia.secretflow/v1alpha1", "false", "Domain"]
    rows = table(kubectl.out("api-resources", "-o", "wide"))
    assert rows[0] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND", "VERBS", "CATEGORIES"]
    wide: dict[str, list[str]] = {}
    for r in rows[1:]:
        wide.setdefault(r[0], r)
    assert wide["pods"][5] == "create,delete,deletecollection,get,list,patch,update,watch" \
        or wide["pods"][5] == "[create delete deletecollection get list patch update watch]", wide["pods"]
    assert wide["pods"][6] in ("all", "[all]")
    namespaced = kubectl.out("api-resources", "--namespaced=false", "-o", "name").split()
    assert "namespaces" in namespaced and "nodes" in namespaced and "pods" not in namespaced
    listable = kubectl.out("api-resources", "--verbs=list", "--api-group=rbac.authorization.k8s.io", "-o", "name")
    assert sorted(listable.split()) == ["clusterrolebindings.rbac.authorization.k8s.io",
                                        "clusterroles.rbac.authorization.k8s.io",
                                        "rolebindings.rbac.authorization.k8s.io", "roles.rbac.authorization.k8s.io"]

    out = kubectl.out("explain", "domain.spec")
    assert ("KIND:" in out and "Domain" in out and "FIELD: spec" in out) or "RESOURCE: spec" in out, out
    assert re.search(r"^\s+role\s", out, re.M) and re.search(r"^\s+cert\s", out, re.M), out
    out = kubectl.out("explain", "pod.spec.containers")
    assert "KIND:" in out and "Pod" in out, out
    assert re.search(r"^\s+image\s", out, re.M) and re.search(r"^\s+name\s", out, re.M), out
    assert "DESCRIPTION:" in out


# --------------------------------------------------------------------------------------------------
# typed create commands (protobuf bodies), apply, delete


def test_typed_create_commands(kubectl: Kubectl) -> None:
    ns = _ns(kubectl, "typed")
    assert kubectl.out("create", "configmap", "c", "-n", ns, "--from-literal=k=v") == "configmap/c created"
    assert kubectl.out("create", "secret", "generic", "s", "-n", ns, "--from-literal=k=v",
                       "--type=example.com/x") == "secret/s created"
    assert kubectl.out("get", "secret", "s", "-n", ns, "-o", "jsonpath={.type} {.data.k}") == "example.com/x dg=="
    assert kubectl.out("create", "quota", "q", "-n", ns, "--hard=pods=3,services=2") == "resourcequota/q created"
    assert kubectl.out("get", "quota", "q", "-n", ns, "-o", "jsonpath={.spec.hard.pods}") == "3"
    assert kubectl.out("create", "serviceaccount", "robot", "-n", ns) == "serviceaccount/robot created"
    assert kubectl.out("create", "role", "reader", "-n", ns, "--verb=get,list", "--resource=pods,secrets") == \
        "role.rbac.authorization.k8s.io/reader created"
    rules = json.loads(kubectl.out("get", "role", "reader", "-n", ns, "-o", "jsonpath={.rules}"))
    assert rules == [{"apiGroups": [""], "resources": ["pods", "secrets"], "verbs": ["get", "list"]}]
    assert kubectl.out("create", "rolebinding", "robot-reads", "-n", ns, "--role=reader",
                       f"--serviceaccount={ns}:robot") == "rolebinding.rbac.authorization.k8s.io/robot-reads created"
    rows = table(kubectl.out("get", "rolebinding", "robot-reads", "-n", ns, "-o", "wide"))
    assert rows[0][:3] == ["NAME", "ROLE", "AGE"] and rows[1][:2] == ["robot-reads", "Role/reader"], rows
    token = kubectl.out("create", "token", "robot", "-n", ns, "--duration=10m")
    assert token.count(".") == 2 and len(token) > 100
    assert kubectl.run("create", "ns", ns, check=False).stderr.strip() == \
        f'Error from server (AlreadyExists): namespaces "{ns}" already exists'


BUILTINS_YAML = """apiVersion: v1
kind: ConfigMap
metadata: {{name: app, namespace: {ns}}}
data: {{mode: "{mode}"}}
---
apiVersion: v1
kind: Secret
metadata: {{name: app, namespace: {ns}}}
data: {{token: YWJj}}
---
apiVersion: v1
kind: Service
metadata: {{name: app, namespace: {ns}}}
spec:
  selector: {{app: app}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: app, namespace: {ns}}}
spec:
  containers:
  - {{name: main, image: "busybox:{mode}"}}
  - {{name: side, image: "busybox:1"}}
"""


def test_apply_builtins_and_kuscia_resources(kubectl: Kubectl) -> None:
    ns = _ns(kubectl, "apply")
    out = kubectl.apply(BUILTINS_YAML.format(ns=ns, mode=1), "b.yaml").splitlines()
    assert out == ["configmap/app created", "secret/app created", "service/app created", "pod/app created"]
    out = kubectl.apply(BUILTINS_YAML.format(ns=ns, mode=1), "b.yaml").splitlines()
    assert out == ["configmap/app unchanged", "secret/app unchanged", "service/app unchanged", "pod/app unchanged"]
    out = kubectl.apply(BUILTINS_YAML.format(ns=ns, mode=2), "b.yaml").splitlines()
    assert out == ["configmap/app configured", "secret/app unchanged", "service/app unchanged", "pod/app configured"]
    images = kubectl.out("get", "pod", "app", "-n", ns, "-o", "jsonpath={.spec.containers[*].image}")
    assert images == "busybox:2 busybox:1"

    name = f"ap-{kubectl.tag}"
    assert kubectl.apply(DOMAIN.format(name=name, tier="x"), "d.yaml") == f"domain.kuscia.secretflow/{name} created"
    assert kubectl.apply(DOMAIN.format(name=name, tier="x"), "d.yaml") == f"domain.kuscia.secretflow/{name} unchanged"
    assert kubectl.apply(DOMAIN.format(name=name, tier="y"), "d.yaml") == \
        f"domain.kuscia.secretflow/{name} configured"
    assert kubectl.out("get", "domain", name, "-o", "jsonpath={.metadata.labels.tier}") == "y"
    cdr = f"cdr-{kubectl.tag}"
    assert kubectl.apply(CDR.format(name=cdr), "cdr2.yaml") == f"clusterdomainroute.kuscia.secretflow/{cdr} created"
    assert kubectl.apply(CDR.format(name=cdr).replace("bob.example", "bob2.example"), "cdr2.yaml") == \
        f"clusterdomainroute.kuscia.secretflow/{cdr} configured"
    assert kubectl.out("get", "cdr", cdr, "-o", "jsonpath={.spec.endpoint.host}") == "bob2.example"
    kubectl.run("delete", "cdr", cdr)
    kubectl.run("delete", "domain", name)


def test_delete_waits_and_dry_run_server_keeps_the_object(kubectl: Kubectl) -> None:
    ns = _ns(kubectl, "delete")
    kubectl.run("create", "configmap", "keep", "-n", ns)
    out = kubectl.out("delete", "cm", "keep", "-n", ns, "--dry-run=server")
    assert out == 'configmap "keep" deleted (server dry run)'
    assert kubectl.out("get", "cm", "keep", "-n", ns, "-o", "name") == "configmap/keep"

    # a finalizer holds the object: delete waits until another client removes it
    name = f"fin-{kubectl.tag}"
    held = DOMAIN.format(name=name, tier="f").replace("  labels:", "  finalizers: [example.com/hold]\n  labels:")
    kubectl.apply(held, "fin.yaml")
    proc = kubectl.popen("delete", "domain", name, "--timeout=25s")
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if kubectl.out("get", "domain", name, "-o", "jsonpath={.metadata.deletionTimestamp}"):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("deletionTimestamp never set")
        assert proc.poll() is None, "kubectl delete returned before the object was gone"
        kubectl.run("patch", "domain", name, "--type=json", "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert stdout.strip() == f'domain.kuscia.secretflow "{name}" deleted'
    assert "NotFound" in kubectl.run("get", "domain", name, check=False).stderr

    out = kubectl.out("delete", "cm", "keep", "-n", ns)
    assert out == 'configmap "keep" deleted'
    again = kubectl.run("delete", "cm", "keep", "-n", ns, check=False)
    assert again.returncode == 1
    assert again.stderr.strip() == 'Error from server (NotFound): configmaps "keep" not found'


# --------------------------------------------------------------------------------------------------
# wait, describe


def test_wait_for_condition_jsonpath_and_delete(kubectl: Kubectl) -> None:
    name = f"wait-{kubectl.tag}"
    kubectl.apply(CDR.format(name=name), "wait-cdr.yaml")
    proc, log = kubectl.popen_watching("wait", "--for=condition=Ready", f"cdr/{name}", "--timeout=25s")
    cond = {"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Ok",
                                       "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}
    kubectl.run("patch", "cdr", name, "--subresource=status", "--type=merge", "-p", json.dumps(cond))
    stdout, stderr = proc.communicate(timeout=25)
    assert proc.returncode == 0, log + stderr
    assert stdout.strip() == f"clusterdomainroute.kuscia.secretflow/{name} condition met"

    out = kubectl.out("wait", "--for=jsonpath={.spec.destination}=bob", f"cdr/{name}", "--timeout=10s")
    assert out == f"clusterdomainroute.kuscia.secretflow/{name} condition met"
    unmet = kubectl.run("wait", "--for=jsonpath={.spec.destination}=carol", f"cdr/{name}", "--timeout=2s",
                        check=False)
    assert unmet.returncode == 1 and "timed out waiting for the condition" in unmet.stderr

    proc, log = kubectl.popen_watching("wait", "--for=delete", f"cdr/{name}", "--timeout=25s")
    kubectl.run("delete", "cdr", name, "--wait=false")
    stdout, stderr = proc.communicate(timeout=25)
    assert proc.returncode == 0, log + stderr
    assert stdout.strip() == f"clusterdomainroute.kuscia.secretflow/{name} condition met"
    # kubectl 1.28 prints "... condition met" too; an object already gone is also met (or NotFound-free)


def test_describe_domain_namespace_and_pod_with_events(kubectl: Kubectl) -> None:
    name = f"desc-{kubectl.tag}"
    kubectl.apply(DOMAIN.format(name=name, tier="d"), "desc.yaml")
    out = kubectl.out("describe", "domain", name)
    assert re.search(rf"^Name:\s+{name}$", out, re.M), out
    assert re.search(r"^Kind:\s+Domain$", out, re.M) and re.search(r"^\s+Role:\s+partner$", out, re.M), out
    assert re.search(r"^Labels:\s+(\S+=\S+\n\s+)*tier=d$", out, re.M), out

    ns = _ns(kubectl, "describe")
    kubectl.run("create", "quota", "pods", "-n", ns, "--hard=pods=100")
    status = {"status": {"hard": {"pods": "100"}, "used": {"pods": "0"}}}
    kubectl.run("patch", "quota", "pods", "-n", ns, "--subresource=status", "--type=merge", "-p", json.dumps(status))
    out = kubectl.out("describe", "ns", ns)
    assert re.search(rf"^Name:\s+{ns}$", out, re.M) and re.search(r"^Status:\s+Active$", out, re.M), out
    assert re.search(r"^\s*Name:\s+pods$", out, re.M), out
    assert re.search(r"^\s+pods\s+0\s+100$", out, re.M), out
    assert out.rstrip().endswith("No LimitRange resource."), out
    limits = f"""apiVersion: v1
kind: LimitRange
metadata: {{name: defaults, namespace: {ns}}}
spec:
  limits:
  - type: Container
    default: {{cpu: 500m, memory: 128Mi}}
    defaultRequest: {{cpu: 100m}}
"""
    assert kubectl.apply(limits, "limits.yaml") == "limitrange/defaults created"
    rows = table(kubectl.out("get", "limits", "-n", ns))
    assert rows[0] == ["NAME", "CREATED AT"] and rows[1][0] == "defaults"
    out = kubectl.out("describe", "ns", ns)
    assert re.search(r"^Resource Limits$", out, re.M), out
    assert re.search(r"^\s+Container\s+cpu\s+-\s+-\s+100m\s+500m\s+-$", out, re.M), out

    kubectl.apply(_pod("shown", ns), "desc-pod.yaml")
    _event(kubectl, ns, "shown", "Scheduled", "Successfully assigned to worker")
    out = kubectl.out("describe", "pod", "shown", "-n", ns)
    assert re.search(r"^Name:\s+shown$", out, re.M) and re.search(rf"^Namespace:\s+{ns}$", out, re.M), out
    assert re.search(r"^Status:\s+Pending$", out, re.M), out
    assert re.search(r"^\s+Image:\s+busybox:1$", out, re.M), out
    assert re.search(r"^Events:$", out, re.M), out
    assert re.search(r"Normal\s+Scheduled\s+\S+\s+kubelet\s+Successfully assigned to worker", out), out
    kubectl.run("delete", "domain", name)


# --------------------------------------------------------------------------------------------------
# label, annotate, patch, edit, replace


def test_label_and_annotate(kubectl: Kubectl) -> None:
    ns = _ns(kubectl, "label")
    kubectl.run("create", "configmap", "l", "-n", ns)
    assert kubectl.out("label", "cm", "l", "-n", ns, "a=1", "b=2") == "configmap/l labeled"
    proc = kubectl.run("label", "cm", "l", "-n", ns, "a=3", check=False)
    assert proc.returncode == 1 and "'a' already has a value (1), and --overwrite is false" in proc.stderr
    assert kubectl.out("label", "cm", "l", "-n", ns, "a=3", "--overwrite") == "configmap/l labeled"
    assert kubectl.out("label", "cm", "l", "-n", ns, "b-") == "configmap/l unlabeled"
    assert json.loads(kubectl.out("get", "cm", "l", "-n", ns, "-o", "jsonpath={.metadata.labels}")) == {"a": "3"}
    assert kubectl.out("annotate", "cm", "l", "-n", ns, "note=hi") == "configmap/l annotated"
    assert kubectl.out("annotate", "cm", "l", "-n", ns, "note=ho", "--overwrite") == "configmap/l annotated"
    assert kubectl.out("get", "cm", "l", "-n", ns, "-o", "jsonpath={.metadata.annotations.note}") == "ho"
    assert kubectl.out("annotate", "cm", "l", "-n", ns, "note-") == "configmap/l annotated"
    assert kubectl.out("get", "cm", "l", "-n", ns, "-o", "jsonpath={.metadata.annotations}") == ""
    name = f"lab-{kubectl.tag}"
    kubectl.apply(DOMAIN.format(name=name, tier="t"), "lab.yaml")
    assert kubectl.out("label", "domain", name, "kuscia.secretflow/deleted=true") == \
        f"domain.kuscia.secretflow/{name} labeled"
    rows = table(kubectl.out("get", "domain", name, "-L", "kuscia.secretflow/deleted"))
    assert rows[0] == ["NAME", "AGE", "DELETED"] and rows[1][2] == "true"
    assert kubectl.out("label", "domain", name, "kuscia.secretflow/deleted-") == \
        f"domain.kuscia.secretflow/{name} unlabeled"
    kubectl.run("delete", "domain", name)


def test_patch_merge_json_and_strategic(kubectl: Kubectl) -> None:
    ns = _ns(kubectl, "patch")
    kubectl.apply(_pod("pp", ns, containers=("main", "side")), "pp.yaml")
    # strategic (default): containers merge by name; the other container and fields stay
    out = kubectl.out("patch", "pod", "pp", "-n", ns,
                      "-p", '{"spec":{"containers":[{"name":"side","image":"busybox:9"}]}}')
    assert out == "pod/pp patched"
    pod = json.loads(kubectl.out("get", "pod", "pp", "-n", ns, "-o", "json"))
    images = [(c["name"], c["image"]) for c in pod["spec"]["containers"]]
    assert images == [("main", "busybox:1"), ("side", "busybox:9")]
    assert pod["spec"]["containers"][1]["command"] == ["sleep", "3600"]
    # merge patch replaces the list wholesale on a CR field; json patch edits in place
    kubectl.run("create", "configmap", "pm", "-n", ns, "--from-literal=a=1")
    assert kubectl.out("patch", "cm", "pm", "-n", ns, "--type", "merge", "-p", '{"data":{"a":null,"b":"2"}}') == \
        "configmap/pm patched"
    assert kubectl.out("get", "cm", "pm", "-n", ns, "-o", "jsonpath={.data}") == '{"b":"2"}'
    assert kubectl.out("patch", "cm", "pm", "-n", ns, "--type", "json",
                       "-p", '[{"op":"add","path":"/data/c","value":"3"},{"op":"remove","path":"/data/b"}]') == \
        "configmap/pm patched"
    assert kubectl.out("get", "cm", "pm", "-n", ns, "-o", "jsonpath={.data}") == '{"c":"3"}'
    assert kubectl.out("patch", "cm", "pm", "-n", ns, "--type", "merge", "-p", '{"data":{"c":"3"}}') == \
        "configmap/pm patched (no change)"
    proc = kubectl.run("patch", "cm", "pm", "-n", ns, "--type", "json",
                       "-p", '[{"op":"test","path":"/data/c","value":"4"}]', check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("The request is invalid: the server rejected our request due to an error in our "
                                   "request: jsonpatch test operation does not apply: testing value failed: /data/c")
    name = f"pt-{kubectl.tag}"
    kubectl.apply(DOMAIN.format(name=name, tier="p"), "pt.yaml")
    assert kubectl.out("patch", "domain", name, "-p", '{"spec":{"role":""}}') == \
        f"domain.kuscia.secretflow/{name} patched"
    assert kubectl.out("patch", "domain", name, "--type=merge", "-p", '{"spec":{"role":"partner"}}') == \
        f"domain.kuscia.secretflow/{name} patched"
    assert kubectl.out("patch", "domain", name, "--type=json", "-p",
                       '[{"op":"replace","path":"/spec/cert","value":"other"}]') == \
        f"domain.kuscia.secretflow/{name} patched"
    assert kubectl.out("get", "domain", name, "-o", "jsonpath={.spec.role}/{.spec.cert}") == "partner/other"
    kubectl.run("delete", "domain", name)


def test_edit_with_a_noninteractive_editor_and_replace(kubectl: Kubectl) -> None:
    ns = _ns(kubectl, "edit")
    kubectl.run("create", "quota", "q", "-n", ns, "--hard=pods=100")
    # the editor changes only the pods lines: a "100" in the random uid would otherwise be edited too
    # and kubectl would find no original object for the edited one
    out = kubectl.out("edit", "quota", "q", "-n", ns, env={"EDITOR": "sed -i /pods:/s/100/300/", "KUBE_EDITOR": ""})
    assert out == "resourcequota/q edited"
    assert kubectl.out("get", "quota", "q", "-n", ns, "-o", "jsonpath={.spec.hard.pods}") == "300"
    proc = kubectl.run("edit", "quota", "q", "-n", ns, env={"EDITOR": "true", "KUBE_EDITOR": ""})
    assert proc.stdout == "" and proc.stderr.strip() == "Edit cancelled, no changes made."

    name = f"ed-{kubectl.tag}"
    kubectl.apply(DOMAIN.format(name=name, tier="e"), "ed.yaml")
    out = kubectl.out("edit", "domain", name, env={"EDITOR": "sed -i s/tier:\\ e/tier:\\ edited/", "KUBE_EDITOR": ""})
    assert out == f"domain.kuscia.secretflow/{name} edited"
    assert kubectl.out("get", "domain", name, "-o", "jsonpath={.metadata.labels.tier}") == "edited"

    doc = kubectl.out("get", "quota", "q", "-n", ns, "-o", "yaml").replace('pods: "300"', 'pods: "400"')
    assert kubectl.out("replace", "-f", "-", stdin=doc) == "resourcequota/q replaced"
    assert kubectl.out("get", "quota", "q", "-n", ns, "-o", "jsonpath={.spec.hard.pods}") == "400"
    proc = kubectl.run("replace", "-f", "-", stdin=doc, check=False)  # stale resourceVersion
    assert proc.returncode == 1
    assert "Operation cannot be fulfilled on resourcequotas \"q\": the object has been modified" in proc.stderr
    stale = yaml.safe_load(kubectl.out("get", "domain", name, "-o", "yaml"))
    stale["spec"]["role"] = ""
    del stale["metadata"]["resourceVersion"]
    assert kubectl.out("replace", "-f", "-", stdin=yaml.safe_dump(stale)) == \
        f"domain.kuscia.secretflow/{name} replaced"
    kubectl.run("delete", "domain", name)


# --------------------------------------------------------------------------------------------------
# logs (fake node agent) and exec


class FakeAgent:
    """A node agent serving the kubelet log contract of ``atoll.apiserver.http.podlogs`` over HTTPS."""

    LINES = [f"line {i}\n" for i in range(1, 6)]

    def __init__(self, pki_dir: Path) -> None:
        from atoll.pki import PKI, issue_serving_cert

        pki = PKI(pki_dir)
        cert, key = issue_serving_cert(pki, "fake-agent")
        self.dir = pki_dir.parent / "fake-agent"
        self.dir.mkdir(exist_ok=True)
        (self.dir / "tls.crt").write_bytes(cert)
        (self.dir / "tls.key").write_bytes(key)
        self.ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca_cert))
        self.ssl.load_cert_chain(str(self.dir / "tls.crt"), str(self.dir / "tls.key"))
        self.ssl.verify_mode = ssl.CERT_REQUIRED  # only the API server (a CA-signed client) may read logs
        self.port = 0
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> FakeAgent:
        self._thread.start()
        assert self._started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        from aiohttp import web

        async def logs(request: web.Request) -> web.StreamResponse:
            self.requests.append((request.path, dict(request.query)))
            lines = list(self.LINES)
            if "tailLines" in request.query:
                lines = lines[-int(request.query["tailLines"]):]
            resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for line in lines:
                await resp.write(line.encode())
            if request.query.get("follow") == "true":
                for i in range(3):
                    await asyncio.sleep(0.2)
                    await resp.write(f"followed {i}\n".encode())
            await resp.write_eof()
            return resp

        async def start() -> None:
            app = web.Application()
            app.router.add_get("/containerLogs/{ns}/{pod}/{container}", logs)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self.ssl)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(start())
        self._started.set()
        self._loop.run_forever()


@pytest.fixture(scope="module")
def agent(module_server: Any) -> Iterator[FakeAgent]:
    with FakeAgent(module_server.data_dir / "pki") as a:
        yield a


def test_logs_from_a_node_agent(kubectl: Kubectl, agent: FakeAgent) -> None:
    ns = _ns(kubectl, "logs")
    node = f"agent-{kubectl.tag}"
    _node(kubectl, node, port=agent.port)
    kubectl.apply(_pod("demo", ns, node), "logs-pod.yaml")
    proc = kubectl.run("logs", "demo", "-n", ns, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == \
        'Error from server (BadRequest): container "main" in pod "demo" is waiting to start: ContainerCreating'
    _running_status(kubectl, "demo", ns)
    assert kubectl.run("logs", "demo", "-n", ns).stdout == "".join(FakeAgent.LINES)
    assert agent.requests[-1][0] == f"/containerLogs/{ns}/demo/main"
    assert kubectl.run("logs", "demo", "-n", ns, "--tail=2").stdout == "line 4\nline 5\n"
    assert agent.requests[-1][1].get("tailLines") == "2"
    out = kubectl.run("logs", "-f", "demo", "-n", ns, "-c", "main").stdout
    assert out == "".join(FakeAgent.LINES) + "followed 0\nfollowed 1\nfollowed 2\n"
    assert agent.requests[-1][1].get("follow") == "true"
    proc = kubectl.run("logs", "nosuch", "-n", ns, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() in (
        f'error: error from server (NotFound): pods "nosuch" not found in namespace "{ns}"',  # 1.32
        'Error from server (NotFound): pods "nosuch" not found',  # 1.28
    )


def test_exec_fails_with_one_clear_line(kubectl: Kubectl) -> None:
    ns = _ns(kubectl, "exec")
    kubectl.apply(_pod("x", ns, "somewhere"), "exec-pod.yaml")
    _running_status(kubectl, "x", ns)
    proc = kubectl.run("exec", "x", "-n", ns, "--", "echo", "hi", check=False, timeout=30)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.strip().splitlines() if line]
    assert len(lines) == 1, proc.stderr
    assert "exec" in lines[0] and ("not" in lines[0] or "Not" in lines[0]), lines
