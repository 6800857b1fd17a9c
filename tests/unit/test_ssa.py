"""Server-side apply: field sets (FieldsV1), Update ownership, conflicts, pruning, force."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from atoll.api import errors
from atoll.api.builtins import BUILTINS
from atoll.api.crd import kuscia_resource_defs
from atoll.api.registry import ResourceDef
from atoll.apiserver.patch import apply as ssa
from atoll.apiserver.patch import fields_v1, fieldsets, managed_fields

JSON = dict[str, Any]


def _rd(kind: str) -> ResourceDef:
    for rd in (*BUILTINS, *kuscia_resource_defs()):
        if rd.kind == kind:
            return rd
    raise KeyError(kind)


POD, CM, DOMAIN = _rd("Pod"), _rd("ConfigMap"), _rd("Domain")


def _entries(obj: JSON) -> dict[tuple[str, str], JSON]:
    return {(e["manager"], e["operation"]): e for e in obj["metadata"].get("managedFields") or []}


def _created(rd: ResourceDef, obj: JSON, manager: str) -> JSON:
    obj = copy.deepcopy(obj)
    managed_fields.record_update(rd, None, obj, manager)
    return obj


def _updated(rd: ResourceDef, old: JSON, new: JSON, manager: str) -> JSON:
    new = copy.deepcopy(new)
    new["metadata"].pop("managedFields", None)
    new["metadata"]["managedFields"] = copy.deepcopy(old["metadata"].get("managedFields"))
    managed_fields.record_update(rd, old, new, manager)
    return new


def _cm(**data: str) -> JSON:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}, "data": data}


def _domain(**spec: Any) -> JSON:
    return {"apiVersion": "kuscia.secretflow/v1alpha1", "kind": "Domain", "metadata": {"name": "alice"},
            "spec": spec}


def _pod(image: str = "busybox:1", **extra: Any) -> JSON:
    container = {"name": "main", "image": image, **extra}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [container]}}


# ---- field sets ---------------------------------------------------------------------------------


def test_update_set_on_create_has_dots_for_maps_and_list_items() -> None:
    obj = _created(CM, {**_cm(a="1"), "metadata": {"name": "c", "namespace": "ns", "labels": {"x": "y"}}},
                   "kubectl-create")
    entry = _entries(obj)[("kubectl-create", "Update")]
    assert entry["fieldsV1"] == {"f:data": {".": {}, "f:a": {}}, "f:metadata": {"f:labels": {".": {}, "f:x": {}}}}
    assert entry["apiVersion"] == "v1" and entry["fieldsType"] == "FieldsV1" and entry["time"].endswith("Z")
    pod = _created(POD, {**_pod(), "status": {"phase": "Pending"}}, "kubectl-run")
    fields = _entries(pod)[("kubectl-run", "Update")]["fieldsV1"]
    assert fields == {"f:spec": {"f:containers": {'k:{"name":"main"}': {".": {}, "f:image": {}, "f:name": {}}}}}


def test_crd_map_list_keys_and_set_lists() -> None:
    rd = _rd("Domain")
    t = fieldsets.root_type(rd)
    cfg = {**_domain(role="partner"), "metadata": {"name": "alice", "finalizers": ["a", "b"]}}
    s = fields_v1.to_fields_v1(fieldsets.to_set(cfg, t))
    assert s["f:spec"] == {"f:role": {}}
    assert s["f:metadata"]["f:finalizers"] == {'v:"a"': {}, 'v:"b"': {}}
    assert "." not in s["f:spec"]


def test_port_keys_use_list_map_keys_and_atomic_lists_are_leaves() -> None:
    t = fieldsets.root_type(POD)
    pod = _pod(ports=[{"containerPort": 80}], command=["sh", "-c"])
    s = fields_v1.to_fields_v1(fieldsets.to_set(pod, t))
    container = s["f:spec"]["f:containers"]['k:{"name":"main"}']
    assert container["."] == {}
    assert container["f:ports"] == {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}
    assert container["f:command"] == {}


def test_path_strings() -> None:
    assert fieldsets.path_string(["f:spec", 'k:{"name":"main"}', "f:image"]) == '.spec[name="main"].image'
    assert fieldsets.path_string(["f:metadata", "f:finalizers", 'v:"x"']) == '.metadata.finalizers[="x"]'


def test_fields_v1_round_trip() -> None:
    wire = {"f:data": {".": {}, "f:a": {}}, "f:spec": {"f:c": {'k:{"name":"m"}': {".": {}, "f:x": {}}}}}
    assert fields_v1.to_fields_v1(fields_v1.from_fields_v1(wire)) == wire


# ---- Update ownership ---------------------------------------------------------------------------


def test_update_moves_changed_fields_and_drops_removed() -> None:
    v1 = _created(CM, _cm(a="1", b="2"), "creator")
    v2 = _updated(CM, v1, _cm(a="9"), "kubectl-edit")
    entries = _entries(v2)
    assert entries[("creator", "Update")]["fieldsV1"] == {"f:data": {}}
    assert entries[("kubectl-edit", "Update")]["fieldsV1"] == {"f:data": {"f:a": {}}}


def test_no_change_keeps_entries_and_time() -> None:
    v1 = _created(CM, _cm(a="1"), "creator")
    v2 = _updated(CM, v1, _cm(a="1"), "other")
    assert v2["metadata"]["managedFields"] == v1["metadata"]["managedFields"]


def test_client_provided_managed_fields_are_kept() -> None:
    v1 = _created(CM, _cm(a="1"), "creator")
    new = copy.deepcopy(v1)
    new["metadata"]["managedFields"] = [{"manager": "kubectl", "operation": "Apply", "apiVersion": "v1",
                                         "time": "2024-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                                         "fieldsV1": {"f:data": {"f:a": {}}}}]
    managed_fields.record_update(CM, v1, new, "kubectl")
    assert [e["manager"] for e in new["metadata"]["managedFields"]] == ["kubectl"]


# ---- apply --------------------------------------------------------------------------------------


def test_apply_create_and_conflict_with_update_manager() -> None:
    live = _created(DOMAIN, _domain(role=""), "kubectl-client-side-apply")
    with pytest.raises(errors.Conflict) as exc:
        ssa.apply(DOMAIN, live, _domain(role="partner"), "other", force=False)
    assert exc.value.message == ('Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" '
                                 "using kuscia.secretflow/v1alpha1: .spec.role")
    assert exc.value.details == {"causes": [{
        "reason": "FieldManagerConflict", "field": ".spec.role",
        "message": 'conflict with "kubectl-client-side-apply" using kuscia.secretflow/v1alpha1'}]}
    assert exc.value.code == 409


def test_same_value_is_shared_not_a_conflict() -> None:
    live = ssa.apply(DOMAIN, None, _domain(role="", master="m"), "kubectl", force=False)
    out = ssa.apply(DOMAIN, live, _domain(role=""), "other", force=False)
    entries = _entries(out)
    assert entries[("other", "Apply")]["fieldsV1"] == {"f:spec": {"f:role": {}}}
    assert entries[("kubectl", "Apply")]["fieldsV1"] == {"f:spec": {"f:master": {}, "f:role": {}}}


def test_force_takes_ownership() -> None:
    live = ssa.apply(DOMAIN, None, _domain(role="", master="m"), "kubectl", force=False)
    with pytest.raises(errors.Conflict, match=r'conflict with "kubectl": \.spec\.role'):
        ssa.apply(DOMAIN, live, _domain(role="partner"), "other", force=False)
    out = ssa.apply(DOMAIN, live, _domain(role="partner"), "other", force=True)
    assert out["spec"] == {"role": "partner", "master": "m"}
    entries = _entries(out)
    assert entries[("kubectl", "Apply")]["fieldsV1"] == {"f:spec": {"f:master": {}}}
    assert entries[("other", "Apply")]["fieldsV1"] == {"f:spec": {"f:role": {}}}


def test_multiple_conflicts_message() -> None:
    live = ssa.apply(CM, None, _cm(a="1", b="2"), "first", force=False)
    with pytest.raises(errors.Conflict) as exc:
        ssa.apply(CM, live, _cm(a="x", b="y"), "second", force=False)
    assert exc.value.message == 'Apply failed with 2 conflicts: conflicts with "first":\n- .data.a\n- .data.b'


def test_apply_removes_fields_the_manager_dropped() -> None:
    live = ssa.apply(CM, None, _cm(a="1", b="2"), "kubectl", force=False)
    out = ssa.apply(CM, live, _cm(a="1"), "kubectl", force=False)
    assert out["data"] == {"a": "1"}
    assert _entries(out)[("kubectl", "Apply")]["fieldsV1"] == {"f:data": {"f:a": {}}}


def test_dropped_field_owned_by_someone_else_stays() -> None:
    live = ssa.apply(CM, None, _cm(a="1", b="2"), "kubectl", force=False)
    live = ssa.apply(CM, live, _cm(b="2"), "other", force=False)
    out = ssa.apply(CM, live, _cm(a="1"), "kubectl", force=False)
    assert out["data"] == {"a": "1", "b": "2"}
    assert _entries(out)[("other", "Apply")]["fieldsV1"] == {"f:data": {"f:b": {}}}


def test_dropped_list_item_is_removed_and_map_lists_merge() -> None:
    two = _pod()
    two["spec"]["containers"].append({"name": "side", "image": "nginx"})
    live = ssa.apply(POD, None, two, "kubectl", force=False)
    live["spec"]["containers"][0]["terminationMessagePath"] = "/dev/termination-log"  # a server default
    out = ssa.apply(POD, live, _pod("busybox:2"), "kubectl", force=False)
    assert out["spec"]["containers"] == [{"name": "main", "image": "busybox:2",
                                          "terminationMessagePath": "/dev/termination-log"}]


def test_apply_noop_keeps_time() -> None:
    live = ssa.apply(CM, None, _cm(a="1"), "kubectl", force=False)
    live["metadata"]["managedFields"][0]["time"] = "2020-01-01T00:00:00Z"
    out = ssa.apply(CM, live, _cm(a="1"), "kubectl", force=False)
    assert out["metadata"]["managedFields"] == live["metadata"]["managedFields"]


def test_kubectl_may_take_over_client_side_apply_fields() -> None:
    cfg = _cm(a="1")
    csa = copy.deepcopy(cfg)
    csa["metadata"]["annotations"] = {ssa.LAST_APPLIED: ssa.build_last_applied(cfg)}
    live = _created(CM, csa, "kubectl-client-side-apply")
    with pytest.raises(errors.Conflict):
        ssa.apply(CM, live, _cm(a="2"), "someone", force=False)
    out = ssa.apply(CM, live, _cm(a="2"), "kubectl", force=False)
    assert out["data"] == {"a": "2"}
    assert '"a":"2"' in out["metadata"]["annotations"][ssa.LAST_APPLIED]
    assert _entries(out)[("kubectl", "Apply")]["fieldsV1"] == {"f:data": {"f:a": {}}}


def test_status_subresource_is_scoped() -> None:
    live = ssa.apply(POD, None, {**_pod(), "status": {"phase": "Running"}}, "kubectl", force=False)
    assert "f:status" not in _entries(live)[("kubectl", "Apply")]["fieldsV1"]
    new = copy.deepcopy(live)
    new["status"] = {"phase": "Running", "podIP": "10.0.0.1"}
    managed_fields.record_update(POD, live, new, "kubelet", "status")
    entry = next(e for e in new["metadata"]["managedFields"] if e["manager"] == "kubelet")
    assert entry["subresource"] == "status" and entry["fieldsV1"] == {"f:status": {"f:podIP": {}}}


def test_apply_options_validation() -> None:
    with pytest.raises(errors.Invalid, match="fieldManager: Required value: is required for apply patch"):
        ssa.validate_apply_query("", None)
    with pytest.raises(errors.BadRequest, match="managedFields must be nil"):
        ssa.apply(CM, None, {**_cm(), "metadata": {"name": "c", "managedFields": []}}, "m", force=False)


def test_manager_from_user_agent() -> None:
    assert managed_fields.manager_from_user_agent("kubectl/v1.32.4 (linux/amd64) kubernetes/abc") == "kubectl"
    assert managed_fields.manager_from_user_agent("Go-http-client/1.1") == "Go-http-client"


# ---- incremental bookkeeping ----------------------------------------------------------------------


def test_update_keeps_untouched_managers_stored_entries_as_they_are() -> None:
    v1 = _created(CM, _cm(a="1", b="2", c="3"), "creator")
    v2 = _updated(CM, v1, _cm(a="1", b="9", c="3"), "editor")
    v3 = _updated(CM, v2, _cm(a="1", b="9", c="7"), "third")
    stored = {e["manager"]: e for e in v3["metadata"]["managedFields"]}
    new = copy.deepcopy(v3)
    new["metadata"]["managedFields"] = v3["metadata"]["managedFields"]  # sent back unchanged
    new["data"]["c"] = "8"
    managed_fields.record_update(CM, v3, new, "third")
    after = {e["manager"]: e for e in new["metadata"]["managedFields"]}
    assert after["editor"] is stored["editor"]  # untouched: not decoded and re-encoded
    assert after["creator"] is stored["creator"]
    assert after["creator"]["fieldsV1"] == {"f:data": {".": {}, "f:a": {}}}
    assert after["third"]["fieldsV1"] == {"f:data": {"f:c": {}}}
    new2 = copy.deepcopy(new)
    new2["metadata"].pop("managedFields")  # not sent: same bookkeeping from the stored entries
    new2["data"]["a"] = "0"
    managed_fields.record_update(CM, new, new2, "editor")
    entries = _entries(new2)
    assert entries[("creator", "Update")]["fieldsV1"] == {"f:data": {}}
    assert entries[("editor", "Update")]["fieldsV1"] == {"f:data": {"f:a": {}, "f:b": {}}}
    assert [e["manager"] for e in new2["metadata"]["managedFields"]] == sorted(
        (e["manager"] for e in new2["metadata"]["managedFields"]),
        key=lambda m: next(x["time"] for x in new2["metadata"]["managedFields"] if x["manager"] == m),
    )


def test_manager_losing_every_field_is_dropped_incrementally() -> None:
    v1 = _created(CM, _cm(a="1"), "creator")
    v2 = _updated(CM, v1, _cm(a="2"), "editor")
    assert [e["manager"] for e in v2["metadata"]["managedFields"]] == ["creator", "editor"]
    v4 = _updated(CM, v2, _cm(a="3"), "creator")
    assert [e["manager"] for e in v4["metadata"]["managedFields"]] == ["creator"]
