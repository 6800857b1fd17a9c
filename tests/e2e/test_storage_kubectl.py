"""Persistent volumes and revision history through real kubectl 1.32 on a master process with one
RunP lite (alice), as a K3s user would use them: the default ``local-path`` class, a claim whose
data outlives the pod that wrote it, a StatefulSet with ``volumeClaimTemplates``, and
``kubectl rollout history|undo`` of a DaemonSet. Every pod is a real process; volumes are real
directories under the lite's data dir."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningServer
from tests.e2e.conftest import Kubectl, table
from tests.e2e.lite_network import Lite, one_lite, until

pytestmark = pytest.mark.slow
NS = "alice"
PLACED = f"""      nodeSelector: {{kuscia.secretflow/namespace: {NS}}}
      tolerations:
      - {{key: kuscia.secretflow/agent, operator: Exists, effect: NoSchedule}}
"""


@pytest.fixture(scope="module")
def lite(module_server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lite]:
    with one_lite(module_server, tmp_path_factory.mktemp("lite"), NS) as running:
        yield running


def pod(name: str, claim: str, script: str) -> str:
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {NS}}}
spec:
  restartPolicy: Never
  nodeSelector: {{kuscia.secretflow/namespace: {NS}}}
  tolerations: [{{key: kuscia.secretflow/agent, operator: Exists, effect: NoSchedule}}]
  containers:
  - name: main
    image: app:v1
    command: ["sh", "-c", {json.dumps(script)}]
    volumeMounts: [{{name: data, mountPath: /data}}]
  volumes:
  - {{name: data, persistentVolumeClaim: {{claimName: {claim}}}}}
"""


def phase(k: Kubectl, what: str) -> str:
    return k.out("get", what, "-n", NS, "-o", "jsonpath={.status.phase}")


def test_claim_data_outlives_the_pod_that_wrote_it(lite: Lite) -> None:
    k = lite.kubectl
    classes = table(k.out("get", "storageclass"))
    assert classes[0][:5] == ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION"]
    assert classes[1][:5] == ["local-path (default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer",
                              "false"]
    claim = f"""apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: notes, namespace: {NS}}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 64Mi}}}}
"""
    assert k.apply(claim, "claim.yaml") == "persistentvolumeclaim/notes created"
    assert phase(k, "pvc/notes") == "Pending"
    until(lambda: "WaitForFirstConsumer" in k.out("describe", "pvc", "notes", "-n", NS), 20)

    k.apply(pod("writer", "notes", "echo kept-across-pods > /data/note.txt"), "writer.yaml")
    until(lambda: phase(k, "pod/writer") == "Succeeded", 60)
    row = table(k.out("get", "pvc", "notes", "-n", NS))[1]
    volume = row[2]
    assert row[:2] == ["notes", "Bound"] and volume.startswith("pvc-") and row[3:6] == ["64Mi", "RWO", "local-path"]
    path = Path(k.out("get", "pv", volume, "-o", "jsonpath={.spec.hostPath.path}"))
    assert path.is_relative_to((lite.base / NS).resolve()), path
    assert os.stat(path).st_mode & 0o777 == 0o700
    assert (path / "note.txt").read_text() == "kept-across-pods\n"

    k.run("delete", "pod", "writer", "-n", NS)
    k.apply(pod("reader", "notes", "cat /data/note.txt"), "reader.yaml")
    until(lambda: phase(k, "pod/reader") == "Succeeded", 60)
    assert k.out("logs", "reader", "-n", NS) == "kept-across-pods"

    # Delete reclaim: the claim goes once no pod uses it, its volume after the agent removed the directory
    k.run("delete", "pvc", "notes", "-n", NS, "--wait=false")
    k.run("delete", "pod", "reader", "-n", NS)
    until(lambda: k.run("get", "pv", volume, check=False).returncode != 0, 60)
    assert not path.exists()


ID_SCRIPT = ("if [ -f /data/id ]; then echo found $(cat /data/id); else echo $POD_NAME > /data/id; echo new; fi; "
             "while :; do sleep 0.2; done")
STATEFUL = f"""apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db, namespace: {NS}}}
spec:
  replicas: 2
  serviceName: db
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec:
      terminationGracePeriodSeconds: 2
{PLACED}      containers:
      - name: main
        image: app:v1
        env: [{{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}]
        command: ["sh", "-c", {json.dumps(ID_SCRIPT)}]
        volumeMounts: [{{name: data, mountPath: /data}}]
  volumeClaimTemplates:
  - metadata: {{name: data}}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {{requests: {{storage: 16Mi}}}}
"""


def test_statefulset_volume_claim_templates(lite: Lite) -> None:
    k = lite.kubectl
    k.apply(STATEFUL, "sts.yaml")
    k.run("rollout", "status", "statefulset/db", "-n", NS, "--timeout=120s", timeout=130)
    claims = {r[0]: r[1] for r in table(k.out("get", "pvc", "-n", NS, "-l", "app=db"))[1:]}
    assert claims == {"data-db-0": "Bound", "data-db-1": "Bound"}
    assert [k.out("logs", f"db-{i}", "-n", NS) for i in range(2)] == ["new", "new"]

    uid = k.out("get", "pod", "db-1", "-n", NS, "-o", "jsonpath={.metadata.uid}")
    # no --wait: kubectl before 1.36 GETs the pod, then LISTs it by name and waits for a DELETED; the
    # agent confirms and the controller recreates db-1 within ~5 ms, so now and then both land between
    # its GET and LIST and it waits forever on the new pod (kubernetes a14f528ffe; reproduced
    # deterministically against this server). The recreated pod's new uid is what we wait for.
    k.run("delete", "pod", "db-1", "-n", NS, "--wait=false")
    until(lambda: k.out("get", "pod", "db-1", "-n", NS, "-o", "jsonpath={.metadata.uid}", check=False) not in (
        "", uid), 60)
    k.run("wait", "--for=condition=Ready", "pod/db-1", "-n", NS, "--timeout=60s", timeout=70)
    until(lambda: k.out("logs", "db-1", "-n", NS) == "found db-1", 20)

    k.run("scale", "statefulset", "db", "--replicas=1", "-n", NS)
    until(lambda: k.run("get", "pod", "db-1", "-n", NS, check=False).returncode != 0, 60)
    assert k.out("get", "pvc", "data-db-1", "-n", NS, "-o", "jsonpath={.status.phase}") == "Bound"  # retained
    k.run("scale", "statefulset", "db", "--replicas=2", "-n", NS)
    k.run("rollout", "status", "statefulset/db", "-n", NS, "--timeout=120s", timeout=130)
    until(lambda: k.out("logs", "db-1", "-n", NS) == "found db-1", 20)
    history = table(k.out("rollout", "history", "statefulset/db", "-n", NS))
    assert [r[0] for r in history[2:]] == ["1"], history

    # a template change rolls both pods onto their own claims again; undo renumbers the first revision
    k.run("set", "env", "statefulset/db", "COLOUR=blue", "-n", NS)
    k.run("rollout", "status", "statefulset/db", "-n", NS, "--timeout=120s", timeout=130)
    k.run("rollout", "undo", "statefulset/db", "-n", NS)
    k.run("rollout", "status", "statefulset/db", "-n", NS, "--timeout=120s", timeout=130)
    until(lambda: [r[0] for r in table(k.out("rollout", "history", "statefulset/db", "-n", NS))[2:]] == ["2", "3"],
          20)
    until(lambda: [k.out("logs", f"db-{i}", "-n", NS) for i in range(2)] == ["found db-0", "found db-1"], 30)


DAEMON = f"""apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: agent, namespace: {NS}}}
spec:
  selector: {{matchLabels: {{app: agent}}}}
  template:
    metadata: {{labels: {{app: agent}}}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: main
        image: app:v1
        command: ["sh", "-c", "while :; do sleep 0.2; done"]
"""


def test_daemonset_rollout_history_and_undo(lite: Lite) -> None:
    k = lite.kubectl
    k.apply(DAEMON, "ds.yaml")
    k.run("rollout", "status", "daemonset/agent", "-n", NS, "--timeout=90s", timeout=100)
    k.run("set", "env", "daemonset/agent", "COLOUR=blue", "-n", NS)
    k.run("rollout", "status", "daemonset/agent", "-n", NS, "--timeout=90s", timeout=100)
    until(lambda: [r[0] for r in table(k.out("rollout", "history", "daemonset/agent", "-n", NS))[2:]] == ["1", "2"],
          20)
    second = k.out("rollout", "history", "daemonset/agent", "-n", NS, "--revision=2")
    assert "COLOUR:\tblue" in second, second

    k.run("rollout", "undo", "daemonset/agent", "-n", NS)
    k.run("rollout", "status", "daemonset/agent", "-n", NS, "--timeout=90s", timeout=100)
    assert k.out("get", "ds", "agent", "-n", NS, "-o", "jsonpath={.spec.template.spec.containers[0].env}") == ""
    until(lambda: [r[0] for r in table(k.out("rollout", "history", "daemonset/agent", "-n", NS))[2:]] == ["2", "3"],
          20)
    until(lambda: "COLOUR" not in k.out("get", "pods", "-n", NS, "-l", "app=agent", "-o",
                                        "jsonpath={.items[*].spec.containers[0].env}"), 60)
