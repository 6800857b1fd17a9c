"""The target pod built from a source pod (Kubeocean's physical-pod construction).

- **Metadata**: the source labels plus ``managed-by``, ``virtual-namespace`` and the workload
  (controller owner) kind/name; the source annotations minus the forward mapping keys, plus the
  backward pointers (namespace/name/uid of the source pod, the virtual node) and
  ``expected-metadata`` (what we set, for later drift sync).
- **Placement**: ``spec.nodeName`` when scheduling directly, else a required node affinity on
  ``metadata.name`` so the target cluster's scheduler admits the pod to that node itself; no
  node at all (RunK) leaves the placement to the target cluster's scheduler.
  ``nodeSelector``/``schedulerName``/``priority`` are cleared; ``priorityClassName`` is the
  placement's (or none when the target cluster serves no PriorityClasses).
- **Identity**: service-account fields are cleared (the pod runs as the target namespace's
  default account); ``hostname`` and ``HOSTNAME`` are the source pod's name; ConfigMap/Secret/PVC
  references are renamed (:mod:`atoll.mirror.deps`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson

from atoll.mirror import keys
from atoll.mirror.deps import Rename, rewrite_spec
from atoll.mirror.names import target_name

JSON = dict[str, Any]
CLEARED_SPEC_FIELDS = (
    "nodeName",
    "nodeSelector",
    "schedulerName",
    "priority",
    "serviceAccountName",
    "serviceAccount",
    "automountServiceAccountToken",
)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where and how a source pod runs in the target cluster."""

    namespace: str
    node_name: str
    virtual_node: str
    direct: bool = False
    priority_class: str | None = None


def pod_target_name(pod: JSON) -> str:
    md = pod["metadata"]
    return target_name(str(md["namespace"]), str(md["name"]))


def workload(pod: JSON) -> tuple[str, str]:
    """(kind, name) of the pod's controller owner, or ("Pod", pod name)."""
    for ref in pod["metadata"].get("ownerReferences") or ():
        if ref.get("controller"):
            return str(ref.get("kind") or ""), str(ref.get("name") or "")
    return "Pod", str(pod["metadata"]["name"])


def encode_expected(labels: dict[str, str], annotations: dict[str, str]) -> str:
    return base64.b64encode(orjson.dumps({"labels": labels, "annotations": annotations})).decode()


def build_target_pod(pod: JSON, placement: Placement, rename: Rename, token_secrets: dict[str, str]) -> JSON:
    md = pod["metadata"]
    kind, owner = workload(pod)
    labels = {
        **(md.get("labels") or {}),
        keys.MANAGED_BY: keys.MANAGED_BY_VALUE,
        keys.VIRTUAL_NAMESPACE_LABEL: md["namespace"],
        keys.WORKLOAD_TYPE: kind.lower(),
        keys.WORKLOAD_NAME: owner[:63],
    }
    source_annotations = {
        k: v
        for k, v in (md.get("annotations") or {}).items()
        if k not in keys.FORWARD_POD_KEYS and k not in (keys.LAST_SYNC_TIME, keys.EXPECTED_METADATA)
    }
    annotations = {
        **source_annotations,
        keys.VIRTUAL_POD_NAMESPACE: md["namespace"],
        keys.VIRTUAL_POD_NAME: md["name"],
        keys.VIRTUAL_POD_UID: md["uid"],
        keys.VIRTUAL_NODE_NAME: placement.virtual_node,
    }
    annotations[keys.EXPECTED_METADATA] = encode_expected(labels, source_annotations)
    spec = rewrite_spec(pod.get("spec") or {}, rename, token_secrets)
    for name in CLEARED_SPEC_FIELDS:
        spec.pop(name, None)
    if placement.direct:
        spec["nodeName"] = placement.node_name
    elif placement.node_name:
        spec["affinity"] = {**(spec.get("affinity") or {}), "nodeAffinity": _pin(placement.node_name)}
    if placement.priority_class:
        spec["priorityClassName"] = placement.priority_class
    else:
        spec.pop("priorityClassName", None)
    spec["hostname"] = str(md["name"])[:63].rstrip("-.")
    for container in spec.get("containers") or ():
        env = container.setdefault("env", [])
        if not any(e.get("name") == "HOSTNAME" for e in env):
            env.append({"name": "HOSTNAME", "value": md["name"]})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_target_name(pod),
            "namespace": placement.namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
    }


def _pin(node: str) -> JSON:
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
    return {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}
