"""The pod-mirroring core: target names, dependencies, reference rewriting, the target pod, status."""

from __future__ import annotations

import hashlib
from typing import Any

from atoll.mirror.deps import dependencies
from atoll.mirror.names import target_name
from atoll.mirror.podspec import Placement, build_target_pod
from atoll.mirror.status import lost_status, mirrored_status

JSON = dict[str, Any]

POD: JSON = {
    "metadata": {"name": "job-a", "namespace": "team", "uid": "u1", "labels": {"app": "x"},
                 "annotations": {"kubeocean.io/physical-pod-name": "old", "note": "keep"}},
    "spec": {
        "nodeName": "vnode-c-n1", "schedulerName": "default-scheduler", "serviceAccountName": "runner",
        "priority": 5, "nodeSelector": {"a": "b"},
        "volumes": [{"name": "cfg", "configMap": {"name": "settings"}},
                    {"name": "tok", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}},
                                                              {"secret": {"name": "extra"}}]}}],
        "containers": [{"name": "main", "image": "app:v1",
                        "env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "k"}}}],
                        "envFrom": [{"configMapRef": {"name": "env"}}]}],
        "imagePullSecrets": [{"name": "pull"}],
    },
}


def test_target_names_hash_namespace_and_name() -> None:
    digest = hashlib.md5(b"team/" + b"x" * 40).hexdigest()
    assert target_name("team", "x" * 40) == "x" * 30 + "-" + digest


def test_dependencies_are_found_everywhere() -> None:
    deps = dependencies(POD)
    assert deps.configmaps == {"settings", "env"}
    assert deps.secrets == {"creds", "extra", "pull"}
    assert deps.token_volumes == ["tok"]


def test_target_pod() -> None:
    placement = Placement("pool", "n1", "vnode-c-n1", direct=False, priority_class="kubeocean-default")
    out = build_target_pod(POD, placement, lambda _k, n: target_name("team", n), {"tok": "tok-secret"})
    md, spec = out["metadata"], out["spec"]
    assert md["name"] == target_name("team", "job-a") and md["namespace"] == "pool"
    assert md["labels"]["kubeocean.io/managed-by"] == "kubeocean" and md["labels"]["app"] == "x"
    assert md["annotations"]["kubeocean.io/virtual-pod-uid"] == "u1"
    assert md["annotations"]["note"] == "keep" and "kubeocean.io/physical-pod-name" not in md["annotations"]
    for gone in ("nodeName", "schedulerName", "serviceAccountName", "priority", "nodeSelector"):
        assert gone not in spec
    term = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
    assert term["matchFields"] == [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]
    assert spec["priorityClassName"] == "kubeocean-default" and spec["hostname"] == "job-a"
    assert spec["volumes"][0]["configMap"]["name"] == target_name("team", "settings")
    sources = spec["volumes"][1]["projected"]["sources"]
    assert sources[0] == {"secret": {"name": "tok-secret", "items": [{"key": "token", "path": "token"}]}}
    assert spec["imagePullSecrets"] == [{"name": target_name("team", "pull")}]
    direct = build_target_pod(POD, Placement("pool", "n1", "v", direct=True), lambda _k, n: n, {})
    assert direct["spec"]["nodeName"] == "n1" and "affinity" not in direct["spec"]


def test_status_comes_back_keeping_pod_scheduled() -> None:
    source = {"status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}]}}
    target = {"status": {"phase": "Running", "podIP": "10.1.1.1",
                         "conditions": [{"type": "PodScheduled", "status": "True", "reason": "theirs"},
                                        {"type": "Ready", "status": "True"}],
                         "containerStatuses": [{"name": "main", "ready": True}]}}
    status = mirrored_status(source, target)
    assert status is not None and status["phase"] == "Running" and status["podIP"] == "10.1.1.1"
    assert status["conditions"] == [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}]
    assert mirrored_status({"status": status}, target) is None
    # a fresh target pod with nothing new to say costs no write (no empty condition list added)
    fresh = {"status": {"phase": "Pending", "qosClass": "Burstable"}}
    assert mirrored_status({"status": {"phase": "Pending", "qosClass": "Burstable"}}, fresh) is None
    lost = lost_status({"status": status}, 0.0)
    assert (lost["phase"], lost["reason"]) == ("Failed", "PhysicalPodLost")
