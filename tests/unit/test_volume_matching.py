"""Pure rules of persistent storage: which volume a claim binds (pv-controller's matching), which
directories an agent may remove, and how a StatefulSet pod points at its ordinal's claims."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from atoll.agent.localpath import owned_dir
from atoll.api.storage import pv_single_node
from atoll.controllers.persistentvolume.matching import best_match
from atoll.controllers.statefulset.claims import claim_name, with_claims

JSON = dict[str, Any]


def pv(name: str, storage: str = "5Gi", *, cls: str = "", node: str | None = None, modes: tuple[str, ...] = (
        "ReadWriteOnce",), labels: JSON | None = None, claim: JSON | None = None) -> JSON:
    spec: JSON = {"capacity": {"storage": storage}, "accessModes": list(modes), "storageClassName": cls,
                  "hostPath": {"path": f"/srv/{name}"}}
    if node:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}
    if claim:
        spec["claimRef"] = claim
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec, "status": {"phase": "Available"}}


def pvc(storage: str = "1Gi", *, cls: str = "", modes: tuple[str, ...] = ("ReadWriteOnce",),
        selector: JSON | None = None) -> JSON:
    spec: JSON = {"accessModes": list(modes), "resources": {"requests": {"storage": storage}},
                  "storageClassName": cls}
    if selector:
        spec["selector"] = selector
    return {"metadata": {"name": "c", "namespace": "alice", "uid": "u1"}, "spec": spec}


def node(name: str) -> JSON:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}}


def pick(volumes: list[JSON], claim: JSON, *, selected: JSON | None = None,
         domain: list[JSON] | None = None) -> str | None:
    found = best_match(volumes, claim, selected=selected, domain_nodes=domain)
    return None if found is None else str(found["metadata"]["name"])


def test_smallest_fitting_volume_of_the_same_class_wins() -> None:
    volumes = [pv("big", "10Gi"), pv("small", "2Gi"), pv("tiny", "512Mi"), pv("fast", "1Gi", cls="ssd")]
    assert pick(volumes, pvc("1Gi")) == "small"
    assert pick(volumes, pvc("1Gi", cls="ssd")) == "fast"
    assert pick(volumes, pvc("20Gi")) is None


def test_access_modes_selector_and_claim_ref() -> None:
    assert pick([pv("rwo")], pvc(modes=("ReadWriteMany",))) is None
    labelled = [pv("a", labels={"tier": "gold"}), pv("b", "2Gi")]
    assert pick(labelled, pvc(selector={"matchLabels": {"tier": "gold"}})) == "a"
    taken = pv("taken", "1Gi", claim={"namespace": "alice", "name": "other", "uid": "u2"})
    prebound = pv("mine", "9Gi", claim={"namespace": "alice", "name": "c"})
    assert pick([taken, pv("free", "3Gi"), prebound], pvc()) == "mine"


def test_node_affinity_of_selected_node_and_domain() -> None:
    volumes = [pv("on-a", node="a"), pv("on-b", node="b", storage="1Gi")]
    assert pick(volumes, pvc(), selected=node("a")) == "on-a"
    assert pick(volumes, pvc(), domain=[node("a")]) == "on-a"
    assert pick([pv("on-b", node="b")], pvc(), domain=[node("a")]) is None
    assert pick([pv("anywhere")], pvc(), domain=[node("a")]) == "anywhere"  # no affinity: not pinned
    assert pv_single_node(volumes[0]) == "a" and pv_single_node(pv("x")) is None


@pytest.mark.parametrize(("path", "owned"), [
    ("{root}/pvc-1_ns_c", True), ("{root}", False), ("{root}/../etc", False), ("/etc", False),
])
def test_agent_removes_only_directories_strictly_under_its_root(tmp_path: Path, path: str, owned: bool) -> None:
    volume = {"metadata": {"name": "v"}, "spec": {"hostPath": {"path": path.format(root=tmp_path)}}}
    assert (owned_dir(tmp_path, volume) is not None) is owned


def test_statefulset_pod_volumes_point_at_the_ordinals_claims() -> None:
    sts = {"metadata": {"name": "db"}, "spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}}]}}
    pod: JSON = {"spec": {"volumes": [{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "x"}}]}}
    with_claims(sts, pod, 3)
    assert pod["spec"]["volumes"] == [{"name": "cfg", "configMap": {"name": "x"}},
                                      {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-3"}}]
    assert claim_name({"metadata": {"name": "www"}}, sts, 0) == "www-db-0"
