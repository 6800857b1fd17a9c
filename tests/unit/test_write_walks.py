"""The cheap walks of the write path give the answers of the full ones.

``jsonvalues.same`` lets the schema check and the managedFields diff skip unchanged subtrees, so it
must never call two JSON-different values equal; the FieldsV1 forms built directly (a create's set,
the writer's entry after an update) must be the bytes the set algebra and conversion would give.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import orjson
import pytest

from atoll.api.builtin_validation import check
from atoll.api.builtins import BUILTINS
from atoll.api.crd import kuscia_resource_defs
from atoll.api.jsonvalues import same
from atoll.api.registry import ResourceDef
from atoll.apiserver.patch import managed_fields
from atoll.apiserver.patch.diff import changes
from atoll.apiserver.patch.fields_v1 import created_fields_v1, from_fields_v1, to_fields_v1, update_fields_v1
from atoll.apiserver.patch.fieldsets import DOT, difference, root_type, union

JSON = dict[str, Any]


def _rd(kind: str) -> ResourceDef:
    return next(rd for rd in (*BUILTINS, *kuscia_resource_defs()) if rd.kind == kind)


POD, EVENT, DOMAIN = _rd("Pod"), _rd("Event"), _rd("Domain")


def _pod() -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns", "labels": {"a": "b"}},
        "spec": {
            "nodeName": "n",
            "containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80, "protocol": "TCP"}]}],
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                },
                {
                    "type": "PodScheduled",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                },
            ],
            "podIPs": [{"ip": "10.0.0.1"}],
        },
    }


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ({"x": [1, {"y": "z"}]}, {"x": [1, {"y": "z"}]}, True),
        ("s", "s", True),
        (None, None, True),
        (True, 1, False),
        ({"x": True}, {"x": 1}, False),
        ([0], [False], False),
        (1, 1.0, False),  # equal as JSON, but "not certainly": the caller walks it
        ({"a": [1], "b": 2}, {"b": 2, "a": [1]}, False),  # another key order: walked
        ({"a": 1}, {"a": 2}, False),
        ({"t": "Ready", "s": "True", "p": None, "n": 3}, {"t": "Ready", "s": "True", "p": None, "n": 3}, True),
        ({"t": "Ready", "n": 3}, {"n": 3, "t": "Ready"}, True),  # flat map, another key order: equal as JSON
        ({"t": "Ready", "n": 1}, {"t": "Ready", "n": True}, False),
        ({"t": "Ready", "f": 0.0}, {"t": "Ready", "f": -0.0}, False),  # equal floats may encode apart
        ({"t": "Ready", "f": 1.5}, {"t": "Ready", "f": 1.5}, True),  # (then encoded: the same bytes)
    ],
)
def test_same_is_true_only_for_json_equal_values(a: Any, b: Any, expected: bool) -> None:
    assert same(a, b) is expected


def test_same_accepts_a_copied_map_without_encoding_it() -> None:
    shared = {"deep": [1, 2, 3]}
    original = {"a": shared, "b": "c"}
    assert same(original, dict(original))


def test_changes_records_a_value_that_changed_type_inside_an_equal_looking_subtree() -> None:
    old = {"data": {"a": {"b": 1, "c": "x"}}}
    new = {"data": {"a": {"b": True, "c": "x"}}}
    changed, removed = changes(old, new, root_type(_rd("ConfigMap")))
    assert changed == {"f:data": {"f:a": {"f:b": {DOT: {}}}}} and removed == {}


def test_changes_sees_nothing_in_equal_values_with_keys_in_another_order() -> None:
    old = _pod()
    new = copy.deepcopy(old)
    new["status"]["conditions"][0] = dict(reversed(list(new["status"]["conditions"][0].items())))
    assert changes(old, new, root_type(POD)) == ({}, {})


def test_changes_of_a_keyed_list_item_names_only_the_changed_field() -> None:
    old = _pod()
    new = copy.deepcopy(old)
    new["status"]["conditions"][0]["status"] = "False"
    new["status"]["podIPs"].append({"ip": "10.0.0.2"})
    changed, removed = changes(old, new, root_type(POD))
    assert changed == {
        "f:status": {
            "f:conditions": {'k:{"type":"Ready"}': {"f:status": {DOT: {}}}},
            "f:podIPs": {'k:{"ip":"10.0.0.2"}': {DOT: {}, "f:ip": {DOT: {}}}},
        }
    }
    assert removed == {}


@pytest.mark.parametrize(
    ("wire", "changed", "removed"),
    [
        ({"f:a": {}, "f:b": {"f:c": {}}}, {"f:d": {DOT: {}}}, {}),
        ({"f:a": {}, "f:b": {"f:c": {}}}, {"f:a": {DOT: {}}}, {"f:a": {DOT: {}}}),  # removed, then added: last
        ({"f:a": {".": {}, "f:x": {}}, "f:b": {}}, {"f:a": {"f:y": {DOT: {}}}}, {"f:a": {"f:x": {DOT: {}}}}),
        ({"f:a": {".": {}, "f:x": {}}}, {}, {"f:a": {DOT: {}}}),  # no longer a member, still a parent
        ({"f:a": {"f:x": {}}}, {}, {"f:a": {"f:x": {DOT: {}}}}),  # nothing left: dropped
        ({}, {"f:a": {DOT: {}, "f:b": {DOT: {}}}}, {}),
        ({"f:a": {}, "f:b": {".": {}, "f:c": {}}}, {"f:b": {"f:c": {DOT: {}}}}, {}),  # owned already: kept
        ({"f:a": {}, "f:b": {"f:c": {}}}, {"f:b": {DOT: {}, "f:c": {DOT: {}}}}, {}),  # b becomes a member
        ({"f:a": {}}, {"f:a": {DOT: {}, "f:x": {DOT: {}}}}, {}),  # a leaf gains a child
        ({"f:a": {}, "f:b": {"f:c": {}}}, {"f:a": {DOT: {}}}, {"f:b": {"f:d": {DOT: {}}}}),  # removes nothing
        ({"f:a": {}, "f:b": {"f:c": {}}}, {}, {"f:b": {DOT: {}}}),  # b not a member: nothing removed
    ],
)
def test_update_fields_v1_is_the_set_algebra_in_wire_form(wire: JSON, changed: JSON, removed: JSON) -> None:
    expected = to_fields_v1(union(difference(from_fields_v1(wire), removed), changed))
    assert orjson.dumps(update_fields_v1(wire, changed, removed)) == orjson.dumps(expected)


def _random_set(rng: random.Random, depth: int) -> JSON:
    """An internal-form field set over a few names (members carry ``"."``)."""
    out: JSON = {}
    for name in rng.sample(["f:a", "f:b", "f:c", 'k:{"x":"1"}'], rng.randint(0, 3)):
        sub = _random_set(rng, depth - 1) if depth and rng.random() < 0.5 else {}
        if not sub or rng.random() < 0.5:
            sub[DOT] = {}
        out[name] = sub
    return out


def test_update_fields_v1_matches_the_set_algebra_on_random_sets() -> None:
    rng = random.Random(14)
    kept = 0
    for _ in range(20_000):
        wire = to_fields_v1(_random_set(rng, 3))
        changed, removed = _random_set(rng, 3), _random_set(rng, 3)
        if rng.random() < 0.3:
            changed = from_fields_v1(wire)  # a writer rewriting fields it owns
        if rng.random() < 0.3:
            removed = {}
        expected = to_fields_v1(union(difference(from_fields_v1(wire), removed), changed))
        got = update_fields_v1(wire, changed, removed)
        assert orjson.dumps(got) == orjson.dumps(expected), (wire, changed, removed)
        kept += got is wire
    assert kept > 1_000  # the owned-already fast path is taken


@pytest.mark.parametrize("rd", [POD, EVENT, DOMAIN])
def test_a_create_records_the_set_the_update_path_would(rd: ResourceDef) -> None:
    obj = (
        _pod()
        if rd is POD
        else {
            "metadata": {"name": "x", "namespace": "ns", "uid": "u", "annotations": {"a": "b"}},
            "spec": {"cert": "c", "role": "partner", "extra": {"k": [1, 2]}},
            "involvedObject": {"kind": "Pod", "name": "p"},
            "reason": "Started",
            "count": 1,
        }
    )
    view = managed_fields.tracked(rd, "", obj)
    expected = to_fields_v1(managed_fields.scope(rd, "", changes(None, view, root_type(rd))[0]))
    assert orjson.dumps(created_fields_v1(view or {}, root_type(rd))) == orjson.dumps(expected)
    written = copy.deepcopy(obj)
    managed_fields.record_update(rd, None, written, "m")
    [entry] = written["metadata"]["managedFields"]
    assert entry["manager"] == "m" and entry["operation"] == "Update" and entry["fieldsV1"] == expected


def test_a_status_write_updates_the_writers_entry_in_place_and_keeps_the_others() -> None:
    created = _pod()
    managed_fields.record_update(POD, None, created, "creator")
    running = dict(created, status={"phase": "Running"}, metadata=dict(created["metadata"]))
    managed_fields.record_update(POD, created, running, "agent", "status")
    done = dict(running, status={"phase": "Succeeded", "reason": "Done"}, metadata=dict(running["metadata"]))
    managed_fields.record_update(POD, running, done, "agent", "status")
    entries = {e["manager"]: e for e in done["metadata"]["managedFields"]}
    assert entries["creator"] is created["metadata"]["managedFields"][0]  # untouched: the stored entry
    assert entries["agent"]["fieldsV1"] == {"f:status": {"f:phase": {}, "f:reason": {}}}
    assert entries["agent"]["subresource"] == "status"


def test_schema_check_skips_equal_list_items_and_checks_changed_ones_by_index() -> None:
    stored = _pod()
    stored["status"]["conditions"][1]["status"] = {"not": "a string"}  # as if stored before the check
    new = copy.deepcopy(stored)
    new["status"]["conditions"][0]["lastTransitionTime"] = "yesterday"
    _, causes = check(new, "", "v1", "Pod", old=stored)
    assert [c["field"] for c in causes] == ["status.conditions[0].lastTransitionTime"]


def test_schema_check_on_update_refuses_a_boolean_where_the_stored_object_had_an_integer() -> None:
    stored = _pod()
    new = copy.deepcopy(stored)
    new["spec"]["containers"][0]["ports"][0]["containerPort"] = True  # == 1 in Python, not in JSON
    stored["spec"]["containers"][0]["ports"][0]["containerPort"] = 1
    _, causes = check(new, "", "v1", "Pod", old=stored)
    assert [c["field"] for c in causes] == ["spec.containers[0].ports[0].containerPort"]


def test_unknown_fields_keep_their_order_and_are_pruned() -> None:
    new = _pod()
    new["zzz"] = 1
    new["spec"]["bogus"] = 2
    new["aaa"] = 3
    unknown, _ = check(new, "", "v1", "Pod")
    assert unknown == ["spec.bogus", "zzz", "aaa"]  # in the order of the walk, as before
    assert "zzz" not in new and "aaa" not in new and "bogus" not in new["spec"]
