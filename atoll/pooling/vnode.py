"""Virtual nodes: names, the object the syncer wants, and the merge that keeps users' own keys.

Name: ``vnode-<clusterID>-<physical node>``; when that is 64 characters or longer, its first 30
characters + ``-`` + hex MD5 of the whole candidate (63 characters).

Labels, annotations and taints are Kubeocean's (docs/pooling.md). What the syncer sets is
recorded base64(JSON) in ``kubeocean.io/expected-metadata``; on update, keys present on the live
node but in neither the previous nor the new expected set were added by someone else and are
kept (a three-way merge keyed on label/annotation key and taint key).
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from atoll.api.timestamps import format_time
from atoll.pooling import constants as c

JSON = dict[str, Any]
MAX_NAME = 63


def vnode_name(cluster_id: str, node: str) -> str:
    candidate = f"vnode-{cluster_id}-{node}"
    if len(candidate) <= MAX_NAME:
        return candidate
    return f"{candidate[:30]}-{hashlib.md5(candidate.encode(), usedforsecurity=False).hexdigest()}"


def never_exported(node: JSON) -> bool:
    """Virtual or serverless nodes are never re-exported (no recursion between clusters)."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    if labels.get("type") == "virtual-kubelet":
        return True
    return any(labels.get(k) in c.VIRTUAL_INSTANCE_TYPES for k in (c.INSTANCE_TYPE, c.BETA_INSTANCE_TYPE))


def internal_ip(node: JSON) -> str:
    for address in (node.get("status") or {}).get("addresses") or ():
        if address.get("type") == "InternalIP":
            return str(address.get("address") or "")
    return ""


@dataclass(frozen=True, slots=True)
class VNodeInputs:
    binding: JSON
    physical: JSON
    capacity: dict[str, str]
    policy_name: str
    policy_details: str
    proxier_host: str
    proxier_port: int
    out_of_window: bool
    force_reclaim: bool
    now: float


def desired_taints(inputs: VNodeInputs, current: JSON | None) -> list[JSON]:
    taints = []
    for taint in (inputs.physical.get("spec") or {}).get("taints") or ():
        if taint.get("key") == c.TAINT_OUT_OF_WINDOW:
            continue
        if taint.get("key") == c.UNSCHEDULABLE_TAINT:
            taint = {**taint, "key": c.TAINT_PHYSICAL_UNSCHEDULABLE}
        taints.append(dict(taint))
    if (inputs.physical.get("spec") or {}).get("unschedulable") and not any(
        t["key"] == c.TAINT_PHYSICAL_UNSCHEDULABLE for t in taints
    ):
        taints.append({"key": c.TAINT_PHYSICAL_UNSCHEDULABLE, "effect": "NoSchedule"})
    if not (inputs.binding.get("spec") or {}).get("disableNodeDefaultTaint"):
        taints.append({"key": c.TAINT_VNODE, "effect": "NoSchedule"})
    if inputs.out_of_window:
        effect = "NoExecute" if inputs.force_reclaim else "NoSchedule"
        live = ((current or {}).get("spec") or {}).get("taints") or ()
        previous = next((t for t in live if t.get("key") == c.TAINT_OUT_OF_WINDOW), None)
        added = (previous or {}).get("timeAdded") or format_time(inputs.now)
        taints.append({"key": c.TAINT_OUT_OF_WINDOW, "value": "true", "effect": effect, "timeAdded": added})
    return taints


def desired_vnode(inputs: VNodeInputs, name: str, current: JSON | None) -> JSON:
    physical, binding = inputs.physical, inputs.binding
    pmd = physical["metadata"]
    ip = internal_ip(physical)
    labels = {
        **(pmd.get("labels") or {}),
        c.LABEL_CLUSTER_BINDING: binding["metadata"]["name"],
        c.LABEL_CLUSTER_ID: binding["spec"]["clusterID"],
        c.LABEL_PHYSICAL_NODE_NAME: pmd["name"],
        c.LABEL_PHYSICAL_NODE_UID: pmd["uid"],
        c.MANAGED_BY: c.MANAGED_BY_VALUE,
        "type": "virtual-kubelet",
        c.INSTANCE_TYPE: "vnode",
        c.BETA_INSTANCE_TYPE: "vnode",
        "kubernetes.io/hostname": name,
        c.LABEL_PHYSICAL_NODE_INNER_IP: ip,
        c.LABEL_PROXIER_PORT: str(inputs.proxier_port),
    }
    labels.pop(c.LABEL_POLICY_APPLIED, None)
    annotations = {
        **{k: v for k, v in (pmd.get("annotations") or {}).items() if k != c.ANN_EXPECTED_METADATA},
        c.ANN_LAST_SYNC_TIME: format_time(inputs.now),
        c.LABEL_PHYSICAL_NODE_NAME: pmd["name"],
        c.LABEL_PHYSICAL_NODE_UID: pmd["uid"],
        c.ANN_POLICIES_APPLIED: inputs.policy_name,
        c.ANN_POLICY_DETAILS: inputs.policy_details,
        c.ANN_PROMETHEUS_URL: f"{inputs.proxier_host}:9006/{name}",
    }
    taints = desired_taints(inputs, current)
    pstatus = physical.get("status") or {}
    status = {
        "capacity": dict(inputs.capacity),
        "allocatable": dict(inputs.capacity),
        "conditions": copy.deepcopy(pstatus.get("conditions") or []),
        "nodeInfo": copy.deepcopy(pstatus.get("nodeInfo") or {}),
        "addresses": [{"type": "InternalIP", "address": inputs.proxier_host}, {"type": "Hostname", "address": name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": inputs.proxier_port}},
    }
    if pstatus.get("phase"):
        status["phase"] = pstatus["phase"]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": annotations, "finalizers": [c.FINALIZER_VNODE]},
        "spec": {"taints": taints},
        "status": status,
    }


# -- the three-way merge -----------------------------------------------------------------------


def _expected(node: JSON | None) -> JSON:
    raw = (((node or {}).get("metadata") or {}).get("annotations") or {}).get(c.ANN_EXPECTED_METADATA)
    if not raw:
        return {}
    try:
        decoded = orjson.loads(base64.b64decode(raw))
    except (binascii.Error, orjson.JSONDecodeError, ValueError):
        return {}
    return decoded if isinstance(decoded, dict) else {}


def _encode(labels: dict[str, str], annotations: dict[str, str], taints: list[JSON]) -> str:
    doc = {"labels": sorted(labels), "annotations": sorted(annotations), "taints": sorted({t["key"] for t in taints})}
    return base64.b64encode(orjson.dumps(doc)).decode()


def _keep_users(live: dict[str, str], wanted: dict[str, str], previous: list[str]) -> dict[str, str]:
    kept = {k: v for k, v in live.items() if k not in wanted and k not in previous}
    return {**kept, **wanted}


NEVER_USERS = (c.TAINT_VNODE_DELETING, c.TAINT_OUT_OF_WINDOW, c.ANN_DELETION_TAINT_TIME)


def merge_vnode(current: JSON | None, wanted: JSON) -> JSON:
    """``wanted`` with the user-added labels/annotations/taints of ``current`` kept."""
    out = copy.deepcopy(wanted)
    md, spec = out["metadata"], out["spec"]
    if current is not None:
        previous = _expected(current)
        cmd = current["metadata"]
        md["labels"] = _keep_users(cmd.get("labels") or {}, md["labels"], list(previous.get("labels") or ()))
        live_ann = {k: v for k, v in (cmd.get("annotations") or {}).items() if k not in NEVER_USERS}
        md["annotations"] = _keep_users(live_ann, md["annotations"], [*(previous.get("annotations") or ()),
                                                                       c.ANN_EXPECTED_METADATA])
        wanted_keys = {t["key"] for t in spec["taints"]}
        old_keys = set(previous.get("taints") or ())
        spec["taints"] += [
            t for t in (current.get("spec") or {}).get("taints") or ()
            if t.get("key") not in wanted_keys and t.get("key") not in old_keys and t.get("key") not in NEVER_USERS
        ]
        for key in ("resourceVersion", "uid", "creationTimestamp"):
            if key in cmd:
                md[key] = cmd[key]
        md["finalizers"] = sorted(set(cmd.get("finalizers") or []) | set(md["finalizers"]))
        if (current.get("spec") or {}).get("unschedulable"):
            spec["unschedulable"] = True
    wanted_annotations = {k: v for k, v in md["annotations"].items() if k != c.ANN_EXPECTED_METADATA}
    own_labels = {k: v for k, v in wanted["metadata"]["labels"].items()}
    own_annotations = {k: v for k, v in wanted["metadata"]["annotations"].items()}
    md["annotations"] = {**wanted_annotations, c.ANN_EXPECTED_METADATA: _encode(own_labels, own_annotations,
                                                                                wanted["spec"]["taints"])}
    return out


def metadata_differs(current: JSON, merged: JSON) -> bool:
    """Labels, annotations (ignoring last-sync-time) or taints differ."""
    def strip(ann: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in ann.items() if k != c.ANN_LAST_SYNC_TIME}

    cmd, mmd = current["metadata"], merged["metadata"]
    return (
        (cmd.get("labels") or {}) != mmd["labels"]
        or strip(cmd.get("annotations") or {}) != strip(mmd["annotations"])
        or ((current.get("spec") or {}).get("taints") or []) != merged["spec"]["taints"]
        or sorted(cmd.get("finalizers") or []) != sorted(mmd.get("finalizers") or [])
    )


def _conditions(conditions: Any) -> list[tuple[Any, ...]]:
    return sorted((c.get("type"), c.get("status"), c.get("reason")) for c in conditions or ())


def status_differs(current: JSON, merged: JSON) -> bool:
    """Anything but the heartbeat times of the copied conditions differs (the vnode's heartbeat is
    its Lease; rewriting every physical heartbeat would only cost writes and conflicts)."""
    cs, ms = current.get("status") or {}, merged["status"]
    if _conditions(cs.get("conditions")) != _conditions(ms.get("conditions")):
        return True
    return any(cs.get(k) != v for k, v in ms.items() if k != "conditions")
