"""The Pull clusters' search index (objects from the Works' status) and the executor's labelled
copy of a manifest, which must leave the cached Work untouched."""

from __future__ import annotations

import copy
from typing import Any

from atoll.fleet.karmada.execution import MANIFEST_HASH, labelled, manifest_hash
from atoll.fleet.karmada.reported import ReportedIndex


def work(
    name: str, manifests: list[dict[str, Any]], applied: list[int], generation: int = 1, observed: int = 1
) -> dict[str, Any]:
    statuses = [
        {
            "identifier": {
                "ordinal": i,
                "group": "",
                "version": "v1",
                "kind": "ConfigMap",
                "resource": "configmaps",
                "namespace": "default",
                "name": manifests[i]["metadata"]["name"],
            },
            "status": {"seen": True} if i == 0 else None,
            "health": "Healthy",
        }
        for i in applied
    ]
    return {
        "metadata": {"name": name, "namespace": "karmada-es-edge", "generation": generation},
        "spec": {"workload": {"manifests": manifests}},
        "status": {
            "manifestStatuses": statuses,
            "conditions": [{"type": "Applied", "status": "True", "observedGeneration": observed}],
        },
    }


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}, "data": data}


def test_labelled_copy_leaves_the_work_untouched() -> None:
    w = work("w1", [cm("a", v="1")], [0])
    before = copy.deepcopy(w)
    applied = labelled(w, w["spec"]["workload"]["manifests"][0])
    assert w == before, "the cached Work must not change"
    assert applied["metadata"]["labels"] == {
        "work.karmada.io/namespace": "karmada-es-edge",
        "work.karmada.io/name": "w1",
    }
    assert applied["metadata"]["annotations"][MANIFEST_HASH] == manifest_hash(applied)


def test_index_follows_work_events() -> None:
    index = ReportedIndex()
    first = work("w1", [cm("a", v="1"), cm("b", v="2")], [0])  # b not applied yet: not listed
    index.on_add(first)
    [listing] = index.listings("edge")
    assert listing.rd.kind == "ConfigMap" and listing.rd.namespaced and listing.rd.api_version == "v1"
    objs = list(listing.cache)
    assert [o["metadata"]["name"] for o in objs] == ["a"]
    assert objs[0]["status"] == {"seen": True} and objs[0]["data"] == {"v": "1"}
    assert objs[0]["metadata"]["labels"]["work.karmada.io/name"] == "w1"
    # a new spec the agent has not applied yet: the member still holds (and the index lists) the old
    pending = work("w1", [cm("a", v="3"), cm("b", v="2")], [0], generation=2, observed=1)
    index.on_update(first, pending)
    assert [o["data"] for o in index.listings("edge")[0].cache] == [{"v": "1"}]
    second = work("w1", [cm("a", v="3"), cm("b", v="2")], [0, 1], generation=2, observed=2)
    index.on_update(pending, second)
    assert sorted((o["metadata"]["name"], o["data"]["v"]) for o in index.listings("edge")[0].cache) == [
        ("a", "3"),
        ("b", "2"),
    ]
    assert "status" not in next(o for o in index.listings("edge")[0].cache if o["metadata"]["name"] == "b")
    index.on_delete(second)
    assert list(index.listings("edge")[0].cache) == []
    assert index.listings("other") == ()
