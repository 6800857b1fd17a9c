"""The garbage collector's dependency graph and the namespace controller's conditions, without a
server: which events enqueue which work items, and how the graph's edges follow ownerReferences."""

from __future__ import annotations

from typing import Any

from atoll.controllers.garbagecollector.graph import Graph, WorkItem
from atoll.controllers.namespace.content import ContentOutcome
from atoll.controllers.namespace.controller import conditions_for, merge_conditions

JSON = dict[str, Any]


def obj(
    name: str, uid: str, *owners: str, block: bool = True, deleting: bool = False, finalizers: tuple[str, ...] = ()
) -> JSON:
    meta: JSON = {
        "name": name,
        "namespace": "ns",
        "uid": uid,
        "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": f"cm-{o}", "uid": o, "blockOwnerDeletion": block}
            for o in owners
        ],
    }
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    if finalizers:
        meta["finalizers"] = list(finalizers)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


def graph() -> tuple[Graph, list[WorkItem]]:
    work: list[WorkItem] = []
    return Graph(work.append), work


def test_unknown_owner_becomes_a_virtual_node_to_verify() -> None:
    g, work = graph()
    g.observe(obj("dep", "d", "o"))
    owner = g.get("o")
    assert owner is not None and not owner.observed and owner.dependents == {"d"}
    assert owner.ref.namespace == "ns" and owner.ref.name == "cm-o"
    assert work == [WorkItem("delete", "o")]
    work.clear()
    g.observe(obj("cm-o", "o"))  # the owner's informer catches up: the node becomes real
    assert g.get("o").observed and work == []


def test_deleted_owner_enqueues_its_dependents() -> None:
    g, work = graph()
    g.observe(obj("owner", "o"))
    g.observe(obj("a", "a", "o"))
    g.observe(obj("b", "b", "o"))
    assert work == []
    g.forget(obj("owner", "o"))
    assert sorted(work) == [WorkItem("delete", "a"), WorkItem("delete", "b")]
    assert g.get("o") is None


def test_foreground_transition_enqueues_dependents_and_owner_once() -> None:
    g, work = graph()
    g.observe(obj("owner", "o"))
    g.observe(obj("a", "a", "o"))
    g.observe(obj("owner", "o", deleting=True, finalizers=("foregroundDeletion",)))
    assert work == [WorkItem("delete", "a"), WorkItem("delete", "o")]
    assert g.get("o").deleting_dependents
    work.clear()
    g.observe(obj("owner", "o", deleting=True, finalizers=("foregroundDeletion", "x")))
    assert work == []  # not a transition
    g.forget(obj("a", "a", "o"))  # the blocking dependent went: the owner may go now
    assert work == [WorkItem("delete", "o")]


def test_orphan_transition_enqueues_orphan() -> None:
    g, work = graph()
    g.observe(obj("owner", "o"))
    g.observe(obj("owner", "o", deleting=True, finalizers=("orphan",)))
    assert work == [WorkItem("orphan", "o")]


def test_owner_reference_changes_move_edges_and_unblock_owners() -> None:
    g, work = graph()
    g.observe(obj("o1", "o1"))
    g.observe(obj("o2", "o2", deleting=True, finalizers=("foregroundDeletion",)))
    work.clear()
    g.observe(obj("dep", "d", "o1", "o2"))
    assert work == [WorkItem("delete", "d")]  # an owner already going away: classify the dependent
    work.clear()
    g.observe(obj("dep", "d", "o1"))  # the reference to the foreground-deleting owner is removed
    assert work == [WorkItem("delete", "o2")]
    assert g.get("o1").dependents == {"d"} and g.get("o2").dependents == set()
    assert [d.ref.uid for d in g.blocking_dependents(g.get("o1"))] == ["d"]


def test_virtual_owner_without_dependents_is_dropped() -> None:
    g, _ = graph()
    g.observe(obj("dep", "d", "ghost"))
    g.forget(obj("dep", "d", "ghost"))
    assert g.get("ghost") is None and g.get("d") is None


def test_namespace_conditions_and_transition_times() -> None:
    outcome = ContentOutcome()
    outcome.remaining["configmaps"] = 2
    outcome.finalizers["example.com/hold"] = 1
    messages = conditions_for(outcome)
    assert messages["NamespaceContentRemaining"] == "Some resources are remaining: configmaps has 2 resource instances"
    assert "example.com/hold in 1 resource instances" in messages["NamespaceFinalizersRemaining"]
    first = merge_conditions([], messages, "t1")
    by_type = {c["type"]: c for c in first}
    assert by_type["NamespaceContentRemaining"]["status"] == "True"
    assert by_type["NamespaceContentRemaining"]["reason"] == "SomeResourcesRemain"
    assert by_type["NamespaceDeletionContentFailure"]["reason"] == "ContentDeleted"
    again = {c["type"]: c for c in merge_conditions(first, messages, "t2")}
    assert again["NamespaceContentRemaining"]["lastTransitionTime"] == "t1"
    done = {c["type"]: c for c in merge_conditions(first, conditions_for(ContentOutcome()), "t3")}
    assert done["NamespaceContentRemaining"]["status"] == "False"
    assert done["NamespaceContentRemaining"]["lastTransitionTime"] == "t3"
