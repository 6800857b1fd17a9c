"""Virtual node names, the object built from a physical node, and the three-way metadata merge."""

from __future__ import annotations

import hashlib
from typing import Any

from atoll.pooling.vnode import VNodeInputs, desired_vnode, merge_vnode, never_exported, vnode_name

JSON = dict[str, Any]


def test_names_and_the_hashing_rule() -> None:
    assert vnode_name("cls-worker1", "kubeocean-worker1-worker") == "vnode-cls-worker1-kubeocean-worker1-worker"
    long = "n" * 60
    candidate = f"vnode-c-{long}"
    name = vnode_name("c", long)
    assert name == candidate[:30] + "-" + hashlib.md5(candidate.encode()).hexdigest()
    assert len(name) == 63


def test_virtual_nodes_are_never_reexported() -> None:
    assert never_exported({"metadata": {"labels": {"type": "virtual-kubelet"}}})
    assert never_exported({"metadata": {"labels": {"node.kubernetes.io/instance-type": "eklet"}}})
    assert not never_exported({"metadata": {"labels": {}}})


PHYSICAL: JSON = {
    "metadata": {"name": "n1", "uid": "u1", "labels": {"zone": "a"}, "annotations": {"note": "x"}},
    "spec": {"unschedulable": True, "taints": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                                               {"key": "gpu", "effect": "NoSchedule"}]},
    "status": {"conditions": [{"type": "Ready", "status": "True"}],
               "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]},
}
BINDING: JSON = {"metadata": {"name": "cb1"}, "spec": {"clusterID": "c1"}}


def inputs(**kw: Any) -> VNodeInputs:
    base: dict[str, Any] = dict(binding=BINDING, physical=PHYSICAL, capacity={"cpu": "2"}, policy_name="rlp",
                                policy_details="rlp(cpu=-/50%)", proxier_host="127.0.0.1", proxier_port=15000,
                                out_of_window=False, force_reclaim=False, now=1_767_225_600.0)
    base.update(kw)
    return VNodeInputs(**base)


def test_labels_taints_and_kubelet_endpoint() -> None:
    node = desired_vnode(inputs(), "vnode-c1-n1", None)
    labels = node["metadata"]["labels"]
    assert labels["kubeocean.io/physical-cluster-id"] == "c1" and labels["zone"] == "a"
    assert labels["node.kubernetes.io/instance-type"] == "vnode" and labels["type"] == "virtual-kubelet"
    keys = [(t["key"], t["effect"]) for t in node["spec"]["taints"]]
    assert keys == [("kubeocean.io/physical-node-unschedulable", "NoSchedule"), ("gpu", "NoSchedule"),
                    ("kubeocean.io/vnode", "NoSchedule")]
    assert node["status"]["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 15000}}
    assert node["status"]["capacity"] == node["status"]["allocatable"] == {"cpu": "2"}


def test_out_of_window_taint_keeps_its_time_added() -> None:
    first = desired_vnode(inputs(out_of_window=True, force_reclaim=True), "v", None)
    taint = first["spec"]["taints"][-1]
    assert taint["key"] == "kubeocean.io/out-of-time-windows" and taint["effect"] == "NoExecute"
    later = desired_vnode(inputs(out_of_window=True, force_reclaim=True, now=1_767_229_200.0), "v", first)
    assert later["spec"]["taints"][-1]["timeAdded"] == taint["timeAdded"]


def test_merge_keeps_user_keys_and_drops_keys_we_stopped_setting() -> None:
    ours = merge_vnode(None, desired_vnode(inputs(), "v", None))
    live = {**ours, "metadata": {**ours["metadata"], "labels": {**ours["metadata"]["labels"], "team": "ml"},
                                 "resourceVersion": "7", "uid": "v-uid"},
            "spec": {"taints": [*ours["spec"]["taints"], {"key": "mine", "effect": "NoSchedule"}]}}
    physical = {**PHYSICAL, "metadata": {**PHYSICAL["metadata"], "labels": {}}}  # zone label removed upstream
    merged = merge_vnode(live, desired_vnode(inputs(physical=physical), "v", live))
    labels = merged["metadata"]["labels"]
    assert labels["team"] == "ml"  # added by a user: kept
    assert "zone" not in labels  # ours before, not wanted any more: removed
    assert any(t["key"] == "mine" for t in merged["spec"]["taints"])
    assert merged["metadata"]["resourceVersion"] == "7"
