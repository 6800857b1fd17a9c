"""apps/v1 through real kubectl 1.32 on a master process with one RunP lite (alice): Deployments
roll out, scale, update, undo, pause/resume and restart; every pod is a real process.

Pods are placed by the scheduler (toleration + nodeSelector in the template)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from atoll.api.timestamps import parse_time
from tests.conftest import REPO, RunningServer
from tests.e2e.conftest import Kubectl, make_kubectl, table
from tests.e2e.lite_network import Lite, one_lite, until
from tests.e2e.terminal import on_a_terminal
from tests.integration.agents import processes_with

pytestmark = pytest.mark.slow
NS = "alice"
ROLLOUT = "120s"


def _load_v2(config: Path) -> None:
    image = config.parent.parent / "image2" / "bin"  # beside the lite data dir, as app:v1
    image.mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "atoll.cli.main", "image", "load", "-c", str(config), str(image.parent),
                    "--name", "app:v2"], check=True, capture_output=True, cwd=REPO)


@pytest.fixture(scope="module")
def lite(module_server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lite]:
    with one_lite(module_server, tmp_path_factory.mktemp("lite"), NS, _load_v2) as running:
        yield running


def deployment(name: str, marker: str, *, replicas: int = 3, strategy: str = "", image: str = "app:v1") -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {NS}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
{strategy}  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      terminationGracePeriodSeconds: 2
      nodeSelector: {{kuscia.secretflow/namespace: {NS}}}
      tolerations:
      - {{key: kuscia.secretflow/agent, operator: Exists, effect: NoSchedule}}
      containers:
      - name: main
        image: {image}
        command: ["sh", "-c", {json.dumps(f"while :; do sleep 0.2; done # {marker}")}]
"""


def process_groups(marker: str) -> set[int]:
    groups = set()
    for pid in processes_with(marker):
        try:
            groups.add(os.getpgid(pid))
        except ProcessLookupError:
            continue
    return groups


def rollout_status(k: Kubectl, name: str) -> str:
    """The last line of ``kubectl rollout status`` (the earlier ones report progress)."""
    out = k.out("rollout", "status", f"deployment/{name}", "-n", NS, f"--timeout={ROLLOUT}", timeout=130)
    return out.splitlines()[-1]


def image_of(k: Kubectl, name: str) -> str:
    return k.out("get", "deployment", name, "-n", NS, "-o", "jsonpath={.spec.template.spec.containers[0].image}")


def replicasets(k: Kubectl, name: str) -> dict[str, list[str]]:
    rows = table(k.out("get", "rs", "-n", NS, "-l", f"app={name}", "-o", "wide"))
    return {r[0]: r for r in rows[1:]}


def test_deployment_rolls_out_updates_and_undoes(lite: Lite) -> None:
    k, marker = lite.kubectl, "marker-web-deploy"
    assert k.apply(deployment("web", marker), "web.yaml") == "deployment.apps/web created"
    assert rollout_status(k, "web") == 'deployment "web" successfully rolled out'
    row = table(k.out("get", "deployment", "web", "-n", NS, "-o", "wide"))
    assert row[0][:5] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert row[1][:4] == ["web", "3/3", "3", "3"] and row[1][5:] == ["main", "app:v1", "app=web"]
    until(lambda: len(process_groups(marker)) == 3, 10)

    k.run("set", "image", "deployment/web", "main=app:v2", "-n", NS)
    assert "successfully rolled out" in rollout_status(k, "web")
    assert image_of(k, "web") == "app:v2"
    rses = replicasets(k, "web")
    assert sorted(r[1:4] for r in rses.values()) == [["0", "0", "0"], ["3", "3", "3"]], rses
    history = table(k.out("rollout", "history", "deployment/web", "-n", NS))
    assert [r[0] for r in history[2:]] == ["1", "2"], history

    k.run("rollout", "undo", "deployment/web", "-n", NS)
    assert "successfully rolled out" in rollout_status(k, "web")
    assert image_of(k, "web") == "app:v1"
    assert len(replicasets(k, "web")) == 2, "undo reuses the first ReplicaSet"
    history = table(k.out("rollout", "history", "deployment/web", "-n", NS))
    assert [r[0] for r in history[2:]] == ["2", "3"], history
    until(lambda: len(process_groups(marker)) == 3, 20)

    assert k.out("scale", "deployment", "web", "--replicas=1", "-n", NS) == "deployment.apps/web scaled"
    assert "successfully rolled out" in rollout_status(k, "web")
    until(lambda: len(process_groups(marker)) == 1, 20)
    described = k.out("describe", "deployment", "web", "-n", NS)
    assert "ScalingReplicaSet" in described and "NewReplicaSetAvailable" in described, described


def test_pause_resume_and_restart(lite: Lite) -> None:
    k, marker = lite.kubectl, "marker-paused-deploy"
    k.apply(deployment("paused", marker, replicas=2), "paused.yaml")
    rollout_status(k, "paused")
    k.run("rollout", "pause", "deployment/paused", "-n", NS)
    k.run("set", "image", "deployment/paused", "main=app:v2", "-n", NS)
    until(lambda: k.out("get", "deployment", "paused", "-n", NS, "-o",
                        "jsonpath={.status.conditions[?(@.type=='Progressing')].reason}") == "DeploymentPaused", 20)
    assert len(replicasets(k, "paused")) == 1, "a paused Deployment does not roll out"
    k.run("rollout", "resume", "deployment/paused", "-n", NS)
    assert "successfully rolled out" in rollout_status(k, "paused")
    assert len(replicasets(k, "paused")) == 2
    k.run("rollout", "restart", "deployment/paused", "-n", NS)
    assert "successfully rolled out" in rollout_status(k, "paused")
    assert len(replicasets(k, "paused")) == 3
    until(lambda: len(process_groups(marker)) == 2, 20)


def test_recreate_stops_old_pods_before_starting_new_ones(lite: Lite) -> None:
    k, marker = lite.kubectl, "marker-recreate-deploy"
    k.apply(deployment("recreate", marker, replicas=2, strategy="  strategy: {type: Recreate}\n"), "recreate.yaml")
    rollout_status(k, "recreate")
    old = process_groups(marker)
    assert len(old) == 2
    k.run("set", "image", "deployment/recreate", "main=app:v2", "-n", NS)
    assert "successfully rolled out" in rollout_status(k, "recreate")
    new = process_groups(marker)
    assert len(new) == 2 and not (new & old)
    events = json.loads(k.out("get", "events", "-n", NS, "--field-selector", "involvedObject.name=recreate",
                              "-o", "json"))["items"]
    events.sort(key=lambda e: int(e["metadata"]["resourceVersion"]))  # in the order they were written
    ups_and_downs = [e["message"] for e in events if e["reason"] == "ScalingReplicaSet"]
    down = next(i for i, m in enumerate(ups_and_downs) if "to 0" in m)
    assert down < len(ups_and_downs) - 1 and "Scaled up" in ups_and_downs[-1], ups_and_downs


def job(name: str, script: str, *, extra: str = "") -> str:
    return f"""apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
  namespace: {NS}
spec:
{extra}  template:
    spec:
      restartPolicy: Never
      nodeSelector: {{kuscia.secretflow/namespace: {NS}}}
      tolerations:
      - {{key: kuscia.secretflow/agent, operator: Exists, effect: NoSchedule}}
      containers:
      - name: main
        image: app:v1
        command: ["sh", "-c", {json.dumps(script)}]
"""


def wait_condition(k: Kubectl, name: str, cond: str) -> None:
    k.run("wait", f"--for=condition={cond}", f"job/{name}", "-n", NS, "--timeout=90s", timeout=100)


def test_job_with_completions_and_parallelism_succeeds(lite: Lite) -> None:
    k = lite.kubectl
    k.apply(job("batch", "sleep 0.5; echo done", extra="  completions: 5\n  parallelism: 2\n"), "batch.yaml")
    wait_condition(k, "batch", "complete")
    row = table(k.out("get", "job", "batch", "-n", NS))
    assert row[0][:4] == ["NAME", "STATUS", "COMPLETIONS", "DURATION"] and row[1][:3] == ["batch", "Complete", "5/5"]
    pods = json.loads(k.out("get", "pods", "-n", NS, "-l", "job-name=batch", "-o", "json"))["items"]
    assert len(pods) == 5 and {p["status"]["phase"] for p in pods} == {"Succeeded"}
    assert k.out("logs", "job/batch", "-n", NS) == "done"


def test_failing_job_backs_off_and_exhausts_its_backoff_limit(lite: Lite) -> None:
    k = lite.kubectl
    k.apply(job("failing", "exit 3", extra="  backoffLimit: 1\n"), "failing.yaml")
    wait_condition(k, "failing", "failed")
    got = json.loads(k.out("get", "job", "failing", "-n", NS, "-o", "json"))
    failed = next(c for c in got["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded" and got["status"]["failed"] == 2
    assert table(k.out("get", "job", "failing", "-n", NS))[1][1:3] == ["Failed", "0/1"]
    pods = json.loads(k.out("get", "pods", "-n", NS, "-l", "job-name=failing", "-o", "json"))["items"]
    created = sorted(p["metadata"]["creationTimestamp"] for p in pods)
    assert len(pods) == 2 and parse_time(created[1]) - parse_time(created[0]) >= 9, "a 10 s backoff before the retry"


def test_indexed_job_gives_each_pod_its_index(lite: Lite) -> None:
    k = lite.kubectl
    extra = "  completions: 3\n  parallelism: 3\n  completionMode: Indexed\n"
    k.apply(job("indexed", "echo index=$JOB_COMPLETION_INDEX", extra=extra), "indexed.yaml")
    wait_condition(k, "indexed", "complete")
    assert k.out("get", "job", "indexed", "-n", NS, "-o", "jsonpath={.status.completedIndexes}") == "0-2"
    pods = json.loads(k.out("get", "pods", "-n", NS, "-l", "job-name=indexed", "-o", "json"))["items"]
    logs = sorted(k.out("logs", p["metadata"]["name"], "-n", NS) for p in pods)
    assert logs == ["index=0", "index=1", "index=2"]


def test_create_deployment_in_a_domain_runs_on_its_node(lite: Lite) -> None:
    """No toleration or node selector given: the domain's namespace places the pods on its lite."""
    k, marker = lite.kubectl, "marker-created-deploy"
    out = k.out("create", "deployment", "created", "--image=app:v1", "--replicas=3", "-n", NS, "--",
                "sh", "-c", f"while :; do sleep 0.2; done # {marker}")
    assert out == "deployment.apps/created created"
    assert "successfully rolled out" in rollout_status(k, "created")
    until(lambda: len(process_groups(marker)) == 3, 20)
    nodes = k.out("get", "pods", "-n", NS, "-l", "app=created", "-o", "jsonpath={.items[*].spec.nodeName}")
    assert nodes.split() == [f"{NS}-node"] * 3
    k.run("delete", "deployment", "created", "-n", NS)
    until(lambda: process_groups(marker) == set(), 30)


def test_priority_class_sets_pod_priority(lite: Lite) -> None:
    k = lite.kubectl
    assert k.out("create", "priorityclass", "high", "--value=1000") == "priorityclass.scheduling.k8s.io/high created"
    assert table(k.out("get", "pc", "high"))[1][:3] == ["high", "1000", "false"]
    k.apply(job("urgent", "true", extra="").replace("      restartPolicy: Never\n",
                                                    "      restartPolicy: Never\n      priorityClassName: high\n"),
            "urgent.yaml")
    wait_condition(k, "urgent", "complete")
    assert k.out("get", "pods", "-n", NS, "-l", "job-name=urgent", "-o", "jsonpath={.items[0].spec.priority}") == "1000"
    refused = k.run("run", "nopc", "--image=app:v1", "-n", NS, "--overrides",
                    json.dumps({"spec": {"priorityClassName": "missing"}}), check=False)
    assert "no PriorityClass with name missing was found" in refused.stderr, refused.stderr


def test_exec_and_cp_run_in_the_pods_sandbox(lite: Lite, module_server: RunningServer) -> None:
    k = lite.kubectl
    k.apply(deployment("shell", "marker-shell-deploy", replicas=1), "shell.yaml")
    k.run("set", "env", "deployment/shell", "KUSCIA_DOMAIN_ID=alice", "-n", NS)  # the container's own env
    rollout_status(k, "shell")
    pod = k.out("get", "pods", "-n", NS, "-l", "app=shell", "-o", "jsonpath={.items[0].metadata.name}")
    out = k.out("exec", pod, "-n", NS, "--", "sh", "-c", "echo domain=$KUSCIA_DOMAIN_ID; echo err >&2")
    assert out == "domain=alice", out
    failed = k.run("exec", pod, "-n", NS, "--", "sh", "-c", "exit 3", check=False)
    assert failed.returncode == 3, failed.stderr
    fed = k.out("exec", "-i", pod, "-n", NS, "--", "sh", "-c", "tr a-z A-Z", stdin="shout\n")
    assert fed == "SHOUT"
    code, printed = on_a_terminal(k, "exec", "-it", pod, "-n", NS, "--", "sh", "-c",
                                  "test -t 0 && test -t 1 && echo on-a-tty")
    assert code == 0 and "on-a-tty" in printed, printed
    local = lite.base / "upload.txt"
    local.write_text("payload 42\n")
    k.run("cp", str(local), f"{NS}/{pod}:upload.txt")
    assert k.out("exec", pod, "-n", NS, "--", "cat", "upload.txt") == "payload 42"
    back = lite.base / "download.txt"
    k.run("cp", f"{NS}/{pod}:upload.txt", str(back))
    assert back.read_text() == "payload 42\n"
    debug = k.run("debug", pod, "-n", NS, "--image=app:v1", "--container=dbg", "--", "true", check=False)
    assert debug.returncode == 0, debug.stderr  # an ephemeral container (tests/e2e/test_pod_streams_kubectl.py)
    status = "{.status.ephemeralContainerStatuses[0].state.terminated.exitCode}"
    until(lambda: k.out("get", "pod", pod, "-n", NS, "-o", f"jsonpath={status}") == "0", 30)
    newer = make_kubectl("1.33", module_server, lite.base / "kubectl133")
    assert newer.out("exec", pod, "-n", NS, "--", "sh", "-c", "echo via-1.33") == "via-1.33"
    old = make_kubectl("1.27", module_server, lite.base / "kubectl127")
    assert "Username    atoll-admin" in old.out("auth", "whoami"), "v1beta1 SelfSubjectReview for kubectl 1.27"
    refused = old.run("exec", pod, "-n", NS, "--", "true", check=False)
    assert refused.returncode != 0 and "v5.channel.k8s.io" in refused.stderr, refused.stderr


def test_official_python_client_apps_batch_policy_and_stream_exec(lite: Lite, module_server: RunningServer) -> None:
    from kubernetes import client as k8s
    from kubernetes import config as kube_config
    from kubernetes.stream import stream

    api = kube_config.new_client_from_config(str(module_server.kubeconfig))
    apps, batch, policy, core = k8s.AppsV1Api(api), k8s.BatchV1Api(api), k8s.PolicyV1Api(api), k8s.CoreV1Api(api)
    body = yaml.safe_load(deployment("pyclient", "marker-pyclient-deploy", replicas=1))
    apps.create_namespaced_deployment(NS, body)
    apps.patch_namespaced_deployment_scale("pyclient", NS, {"spec": {"replicas": 2}})
    assert apps.read_namespaced_deployment_scale("pyclient", NS).spec.replicas == 2
    until(lambda: apps.read_namespaced_deployment_status("pyclient", NS).status.available_replicas == 2, 60)
    pods = core.list_namespaced_pod(NS, label_selector="app=pyclient").items
    out = stream(core.connect_get_namespaced_pod_exec, pods[0].metadata.name, NS,
                 command=["sh", "-c", "echo from-python"], stderr=True, stdin=False, stdout=True, tty=False)
    assert out == "from-python\n"
    batch.create_namespaced_job(NS, yaml.safe_load(job("pyjob", "true")))
    assert [j.metadata.name for j in batch.list_namespaced_job(NS).items if j.metadata.name == "pyjob"] == ["pyjob"]
    pdb = {"metadata": {"name": "pypdb"}, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "x"}}}}
    policy.create_namespaced_pod_disruption_budget(NS, pdb)
    assert policy.read_namespaced_pod_disruption_budget("pypdb", NS).spec.max_unavailable == 1
    policy.delete_namespaced_pod_disruption_budget("pypdb", NS)
    apps.delete_namespaced_deployment("pyclient", NS)


FAKE_NODE = """apiVersion: v1
kind: Node
metadata:
  name: bob-node
  labels: {kuscia.secretflow/namespace: bob}
spec:
  taints:
  - {key: kuscia.secretflow/agent, value: v1, effect: NoSchedule}
"""


def daemonset(name: str, namespace: str, marker: str, extra: str = "") -> str:
    return f"""apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {name}
  namespace: {namespace}
spec:
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
{extra}      containers:
      - name: main
        image: app:v1
        command: ["sh", "-c", {json.dumps(f"while :; do sleep 0.2; done # {marker}")}]
"""


def test_daemonset_in_a_domain_stays_on_its_nodes(lite: Lite) -> None:
    """bob-node is a Node object without an agent: a domain's DaemonSet must not target it."""
    k = lite.kubectl
    k.apply(FAKE_NODE, "bob-node.yaml")
    k.apply(daemonset("agentd", NS, "marker-agentd-ds"), "agentd.yaml")
    until(lambda: table(k.out("get", "ds", "agentd", "-n", NS))[1][1:6] == ["1", "1", "1", "1", "1"], 30)
    nodes = k.out("get", "pods", "-n", NS, "-l", "app=agentd", "-o", "jsonpath={.items[*].spec.nodeName}")
    assert nodes == f"{NS}-node"
    assert len(process_groups("marker-agentd-ds")) == 1
    tolerate = "      tolerations:\n      - {key: kuscia.secretflow/agent, operator: Exists}\n"
    k.apply(daemonset("everywhere", "default", "marker-everywhere-ds", tolerate), "everywhere.yaml")
    until(lambda: k.out("get", "ds", "everywhere", "-n", "default", "-o",
                        "jsonpath={.status.desiredNumberScheduled}") == "2", 30)
    k.run("delete", "ds", "everywhere", "-n", "default")
    k.run("delete", "node", "bob-node")
    k.run("set", "env", "ds/agentd", "V=2", "-n", NS)
    k.run("rollout", "status", "ds/agentd", "-n", NS, "--timeout=60s", timeout=70)
    k.run("delete", "ds", "agentd", "-n", NS)
    until(lambda: process_groups("marker-agentd-ds") == set(), 30)


RC = f"""apiVersion: v1
kind: ReplicationController
metadata:
  name: legacy
  namespace: {NS}
spec:
  replicas: 2
  template:
    metadata:
      labels: {{app: legacy}}
    spec:
      containers:
      - name: main
        image: app:v1
        command: ["sh", "-c", "while :; do sleep 0.2; done # marker-legacy-rc"]
"""


def test_replication_controller_and_prune_with_the_default_allowlist(lite: Lite) -> None:
    k = lite.kubectl
    k.apply(RC, "rc.yaml")
    until(lambda: len(process_groups("marker-legacy-rc")) == 2, 30)
    k.run("scale", "rc", "legacy", "--replicas=1", "-n", NS)
    until(lambda: len(process_groups("marker-legacy-rc")) == 1, 30)
    assert table(k.out("get", "rc", "legacy", "-n", NS))[1][:4] == ["legacy", "1", "1", "1"]
    k.run("delete", "rc", "legacy", "-n", NS)
    both = lite.base / "prune-both"
    both.mkdir()
    cm = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: keep, namespace: {NS}, labels: {{app: x}}}}\n"
    (both / "cm.yaml").write_text(cm)
    dep = deployment("pruned", "marker-pruned").replace("metadata:\n  name: pruned\n",
                                                         "metadata:\n  name: pruned\n  labels: {app: x}\n", 1)
    (both / "deploy.yaml").write_text(dep)
    k.run("apply", "-f", str(both), "--prune", "-l", "app=x")
    (both / "deploy.yaml").unlink()
    out = k.out("apply", "-f", str(both), "--prune", "-l", "app=x")
    assert "deployment.apps/pruned pruned" in out, out
    k.run("delete", "cm", "keep", "-n", NS)


def statefulset(replicas: int, policy: str = "OrderedReady") -> str:
    return f"""apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
  namespace: {NS}
spec:
  serviceName: db
  replicas: {replicas}
  podManagementPolicy: {policy}
  selector:
    matchLabels: {{app: db}}
  template:
    metadata:
      labels: {{app: db}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: app:v1
        command: ["sh", "-c", "while :; do sleep 0.2; done # marker-db-sts"]
"""


def test_statefulset_orders_names_and_rolls_back_to_front(lite: Lite) -> None:
    k = lite.kubectl
    k.apply(statefulset(3), "sts.yaml")
    k.run("rollout", "status", "sts/db", "-n", NS, "--timeout=90s", timeout=100)
    pods = json.loads(k.out("get", "pods", "-n", NS, "-l", "app=db", "-o", "json"))["items"]
    assert sorted(p["metadata"]["name"] for p in pods) == ["db-0", "db-1", "db-2"]
    created = {p["metadata"]["name"]: parse_time(p["metadata"]["creationTimestamp"]) for p in pods}
    assert created["db-0"] <= created["db-1"] <= created["db-2"], "OrderedReady creates in order"
    assert {p["spec"]["hostname"] for p in pods} == {"db-0", "db-1", "db-2"} and pods[0]["spec"]["subdomain"] == "db"
    k.run("patch", "sts", "db", "-n", NS, "-p", '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":1}}}}')
    k.run("set", "env", "sts/db", "V=2", "-n", NS)

    def updated() -> bool:
        got = json.loads(k.out("get", "sts", "db", "-n", NS, "-o", "json"))["status"]
        return got.get("updatedReplicas") == 2 and got.get("readyReplicas") == 3

    until(updated, 90)
    revs = json.loads(k.out("get", "pods", "-n", NS, "-l", "app=db", "-o", "json"))["items"]
    by_name = {p["metadata"]["name"]: p["metadata"]["labels"]["controller-revision-hash"] for p in revs}
    assert by_name["db-0"] != by_name["db-1"] == by_name["db-2"], "the partition keeps db-0 on the old revision"
    history = table(k.out("rollout", "history", "sts/db", "-n", NS))
    assert [r[0] for r in history[2:]] == ["1", "2"], history
    k.run("scale", "sts", "db", "--replicas=1", "-n", NS)
    until(lambda: k.out("get", "pods", "-n", NS, "-l", "app=db", "-o",
                        "jsonpath={.items[*].metadata.name}") == "db-0", 60)
    k.run("delete", "sts", "db", "-n", NS)
    until(lambda: process_groups("marker-db-sts") == set(), 30)


def test_kubectl_top_reads_the_agents_process_statistics(lite: Lite) -> None:
    k, marker = lite.kubectl, "marker-busy-deploy"
    busy = deployment("busy", marker, replicas=1).replace(
        f"while :; do sleep 0.2; done # {marker}", f"while :; do :; done # {marker}")
    k.apply(busy, "busy.yaml")
    rollout_status(k, "busy")

    def busy_row() -> list[str]:
        rows = table(k.out("top", "pods", "-n", NS, "-l", "app=busy"))
        assert rows[0] == ["NAME", "CPU(cores)", "MEMORY(bytes)"] and len(rows) == 2, rows
        return rows[1]

    row = until(busy_row, 30)
    assert int(row[1].rstrip("m")) > 50, f"a spinning shell uses a good share of a core: {row}"
    nodes = table(k.out("top", "nodes"))
    assert nodes[1][0] == f"{NS}-node" and nodes[1][1].endswith("m") and nodes[1][3].endswith("Mi"), nodes
    k.run("delete", "deployment", "busy", "-n", NS)
    until(lambda: process_groups(marker) == set(), 30)


PDB = f"""apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: guarded
  namespace: {NS}
spec:
  minAvailable: 2
  selector:
    matchLabels: {{app: guarded}}
"""


def test_drain_honours_a_pod_disruption_budget(lite: Lite) -> None:
    """Last in the module: draining the node evicts every pod on it."""
    k, marker = lite.kubectl, "marker-guarded-deploy"
    k.apply(deployment("guarded", marker, replicas=3), "guarded.yaml")
    rollout_status(k, "guarded")
    k.apply(PDB, "pdb.yaml")
    until(lambda: table(k.out("get", "pdb", "guarded", "-n", NS))[1][1:4] == ["2", "N/A", "1"], 20)
    drain = k.run("drain", f"{NS}-node", "--timeout=12s", "--delete-emptydir-data", check=False, timeout=60)
    assert drain.returncode != 0, drain.stdout
    assert "Cannot evict pod as it would violate the pod's disruption budget." in drain.stderr, drain.stderr
    pods = json.loads(k.out("get", "pods", "-n", NS, "-l", "app=guarded", "-o", "json"))["items"]
    running = [p for p in pods if p["spec"].get("nodeName") and not p["metadata"].get("deletionTimestamp")]
    assert len(running) == 2, "one eviction was allowed, the budget kept two pods"
    assert table(k.out("get", "node", f"{NS}-node"))[1][1] == "Ready,SchedulingDisabled"
    k.run("uncordon", f"{NS}-node")
    assert "successfully rolled out" in rollout_status(k, "guarded")
    k.run("delete", "pdb", "guarded", "-n", NS)
    drained = k.run("drain", f"{NS}-node", "--timeout=60s", timeout=90)
    assert f"node/{NS}-node drained" in drained.stdout, drained.stdout
    until(lambda: process_groups(marker) == set(), 20)
    k.run("uncordon", f"{NS}-node")
