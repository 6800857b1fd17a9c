"""Merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atoll.api.errors import BadRequest, Invalid
from atoll.apiserver.patch.jsonpatch import json_patch
from atoll.apiserver.patch.merge import json_equal, merge_patch
from atoll.apiserver.patch.strategic import strategic_merge_patch

# --------------------------------------------------------------------------------------------------
# RFC 7386 (the RFC's own examples)


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_rfc_examples(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected


def test_merge_patch_does_not_mutate_and_shares_untouched() -> None:
    target = {"metadata": {"labels": {"a": "1"}, "annotations": {"x": "y"}}, "spec": {"big": list(range(10))}}
    snapshot = copy.deepcopy(target)
    patch = {"metadata": {"labels": {"b": "2"}}, "status": {"list": [1]}}
    out = merge_patch(target, patch)
    assert target == snapshot
    assert out["metadata"]["labels"] == {"a": "1", "b": "2"}
    assert out["spec"] is target["spec"]  # untouched subtree shared, not copied
    assert out["metadata"]["annotations"] is target["metadata"]["annotations"]
    assert out["metadata"] is not target["metadata"]
    out["status"]["list"].append(2)
    assert patch["status"]["list"] == [1]  # the result does not alias the patch


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=12,
)
_obj = st.dictionaries(st.text(max_size=3), _json, max_size=4)


def _no_nulls(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _no_nulls(x) for k, x in v.items() if x is not None}
    return v


def _merge_diff(a: Any, b: Any) -> Any:
    """The merge patch that turns ``a`` into ``b`` (both null-free objects)."""
    if not isinstance(a, dict) or not isinstance(b, dict):
        return b
    out: dict[str, Any] = {k: None for k in a if k not in b}
    for k, v in b.items():
        if k not in a:
            out[k] = v
        elif not json_equal(a[k], v):
            out[k] = _merge_diff(a[k], v) if isinstance(a[k], dict) and isinstance(v, dict) else v
    return out


@given(_obj, _obj)
def test_merge_patch_diff_round_trips(a: dict[str, Any], b: dict[str, Any]) -> None:
    a, b = _no_nulls(a), _no_nulls(b)
    before = copy.deepcopy(a)
    assert merge_patch(a, _merge_diff(a, b)) == b
    assert a == before


@given(_obj, _obj)
def test_merge_patch_idempotent(a: dict[str, Any], p: dict[str, Any]) -> None:
    once = merge_patch(a, p)
    assert merge_patch(once, p) == once


# --------------------------------------------------------------------------------------------------
# RFC 6902

DOC = {
    "metadata": {"name": "bob", "finalizers": ["a", "b"], "labels": {"x/y": "1", "t~n": "2"}},
    "spec": {"n": 1, "list": [1, 2, 3]},
}


@pytest.mark.parametrize(
    ("ops", "expected_at"),
    [
        ([{"op": "add", "path": "/spec/m", "value": 2}], ("spec", {"n": 1, "list": [1, 2, 3], "m": 2})),
        ([{"op": "add", "path": "/spec/list/0", "value": 0}], ("spec", {"n": 1, "list": [0, 1, 2, 3]})),
        ([{"op": "add", "path": "/spec/list/3", "value": 4}], ("spec", {"n": 1, "list": [1, 2, 3, 4]})),
        ([{"op": "add", "path": "/spec/list/-", "value": 4}], ("spec", {"n": 1, "list": [1, 2, 3, 4]})),
        ([{"op": "add", "path": "/spec/n", "value": [9]}], ("spec", {"n": [9], "list": [1, 2, 3]})),
        ([{"op": "remove", "path": "/spec/list/1"}], ("spec", {"n": 1, "list": [1, 3]})),
        ([{"op": "remove", "path": "/spec/n"}], ("spec", {"list": [1, 2, 3]})),
        (
            [{"op": "replace", "path": "/spec/n", "value": {"a": 1}}],
            ("spec", {"n": {"a": 1}, "list": [1, 2, 3]}),
        ),
        ([{"op": "replace", "path": "/spec/list/2", "value": 9}], ("spec", {"n": 1, "list": [1, 2, 9]})),
        ([{"op": "move", "from": "/spec/n", "path": "/spec/k"}], ("spec", {"list": [1, 2, 3], "k": 1})),
        (
            [{"op": "move", "from": "/spec/list/0", "path": "/spec/list/-"}],
            ("spec", {"n": 1, "list": [2, 3, 1]}),
        ),
        (
            [{"op": "copy", "from": "/spec/list", "path": "/spec/c"}],
            ("spec", {"n": 1, "list": [1, 2, 3], "c": [1, 2, 3]}),
        ),
        ([{"op": "test", "path": "/spec/n", "value": 1.0}], ("spec", {"n": 1, "list": [1, 2, 3]})),
        (
            [
                {"op": "remove", "path": "/metadata/finalizers/0"},
                {"op": "test", "path": "/metadata/finalizers", "value": ["b"]},
            ],
            ("metadata", {"name": "bob", "finalizers": ["b"], "labels": {"x/y": "1", "t~n": "2"}}),
        ),
        (
            [
                {"op": "remove", "path": "/metadata/labels/x~1y"},
                {"op": "replace", "path": "/metadata/labels/t~0n", "value": "3"},
            ],
            ("metadata", {"name": "bob", "finalizers": ["a", "b"], "labels": {"t~n": "3"}}),
        ),
        ([{"op": "move", "from": "/spec/n", "path": "/spec/n"}], ("spec", {"n": 1, "list": [1, 2, 3]})),
    ],
)
def test_json_patch_ops(ops: list[Any], expected_at: tuple[str, Any]) -> None:
    before = copy.deepcopy(DOC)
    out = json_patch(DOC, ops)
    key, expected = expected_at
    assert out[key] == expected
    assert DOC == before


def test_json_patch_root_and_sharing() -> None:
    assert json_patch({"a": 1}, [{"op": "replace", "path": "", "value": [1]}]) == [1]
    assert json_patch({"a": 1}, [{"op": "add", "path": "", "value": {"b": 2}}]) == {"b": 2}
    assert json_patch({"a": 1}, []) == {"a": 1}
    out = json_patch(DOC, [{"op": "add", "path": "/spec/x", "value": 1}])
    assert out["metadata"] is DOC["metadata"]
    value = {"deep": [1]}
    out = json_patch(
        DOC, [{"op": "add", "path": "/v", "value": value}, {"op": "add", "path": "/v/deep/-", "value": 2}]
    )
    assert value == {"deep": [1]} and out["v"] == {"deep": [1, 2]}
    out = json_patch(
        DOC,
        [
            {"op": "copy", "from": "/spec", "path": "/spec2"},
            {"op": "add", "path": "/spec2/list/-", "value": 4},
        ],
    )
    assert out["spec"]["list"] == [1, 2, 3] and out["spec2"]["list"] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "replace", "path": "/spec/missing", "value": 1}],
        [{"op": "remove", "path": "/spec/missing"}],
        [{"op": "add", "path": "/nope/x", "value": 1}],
        [{"op": "add", "path": "/spec/list/9", "value": 1}],
        [{"op": "add", "path": "/spec/list/01", "value": 1}],
        [{"op": "add", "path": "/spec/list/x", "value": 1}],
        [{"op": "remove", "path": "/spec/list/3"}],
        [{"op": "remove", "path": "/spec/list/-"}],
        [{"op": "remove", "path": ""}],
        [{"op": "test", "path": "/spec/n", "value": 2}],
        [{"op": "test", "path": "/spec/n", "value": True}],
        [{"op": "test", "path": "/spec/missing", "value": None}],
        [{"op": "move", "from": "/spec", "path": "/spec/inner"}],
        [{"op": "copy", "from": "/spec/missing", "path": "/x"}],
        [{"op": "add", "path": "/spec/n/x", "value": 1}],
    ],
)
def test_json_patch_failures_are_invalid(ops: list[Any]) -> None:
    with pytest.raises(Invalid) as err:
        json_patch(DOC, ops)
    assert err.value.code == 422
    assert ops[0]["path"] in err.value.message or ops[0].get("from", "") in err.value.message


@pytest.mark.parametrize(
    "ops",
    [
        {"op": "add"},
        ["add"],
        [{"op": "frobnicate", "path": "/a"}],
        [{"path": "/a"}],
        [{"op": "add", "value": 1}],
        [{"op": "add", "path": "/a"}],
        [{"op": "move", "path": "/a"}],
        [{"op": "add", "path": "a", "value": 1}],
        [{"op": "add", "path": 3, "value": 1}],
    ],
)
def test_json_patch_malformed_is_bad_request(ops: Any) -> None:
    with pytest.raises(BadRequest):
        json_patch(DOC, ops)


def _pointer(key: str) -> str:
    return "/" + key.replace("~", "~0").replace("/", "~1")


@given(_obj, st.text(max_size=6), _json)
def test_json_patch_add_then_remove_is_identity(doc: dict[str, Any], key: str, value: Any) -> None:
    if key in doc:
        return
    before = copy.deepcopy(doc)
    out = json_patch(
        doc,
        [
            {"op": "add", "path": _pointer(key), "value": value},
            {"op": "test", "path": _pointer(key), "value": value},
            {"op": "remove", "path": _pointer(key)},
        ],
    )
    assert out == before
    assert doc == before


@given(st.lists(st.integers(), max_size=6), st.integers(min_value=0, max_value=6), st.integers())
def test_json_patch_list_insert_remove(items: list[int], idx: int, value: int) -> None:
    idx = min(idx, len(items))
    doc = {"l": items}
    out = json_patch(doc, [{"op": "add", "path": f"/l/{idx}", "value": value}])
    assert out["l"] == [*items[:idx], value, *items[idx:]]
    assert json_patch(out, [{"op": "remove", "path": f"/l/{idx}"}]) == doc


def test_json_equal() -> None:
    assert json_equal(1, 1.0)
    assert not json_equal(True, 1)
    assert not json_equal(0, False)
    assert json_equal({"a": [1, {"b": None}]}, {"a": [1.0, {"b": None}]})
    assert not json_equal([1, 2], [2, 1])
    assert not json_equal({"a": 1}, {"a": 1, "b": 2})
    assert not json_equal("1", 1)


# --------------------------------------------------------------------------------------------------
# Strategic merge patch


def live_pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "demo",
            "annotations": {"old": "1"},
            "finalizers": ["f1"],
            "ownerReferences": [{"uid": "u1", "name": "a"}],
        },
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "busybox:1",
                    "command": ["sleep", "3600"],
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    "ports": [{"containerPort": 80, "name": "http"}],
                    "volumeMounts": [{"mountPath": "/data", "name": "data"}],
                },
                {"name": "side", "image": "side:1"},
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "tolerations": [{"key": "a"}],
        },
        "status": {
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}]
        },
    }


def test_smp_kubectl_csa_body_keeps_other_container_fields() -> None:
    live = {
        "metadata": {"name": "demo"},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "busybox:1",
                    "command": ["sleep", "3600"],
                    "imagePullPolicy": "IfNotPresent",
                }
            ]
        },
    }
    before = copy.deepcopy(live)
    patch = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {
            "$setElementOrder/containers": [{"name": "main"}],
            "containers": [{"image": "busybox:2", "name": "main"}],
        },
    }
    out = strategic_merge_patch(live, patch, "Pod")
    assert out["spec"]["containers"] == [
        {
            "name": "main",
            "image": "busybox:2",
            "command": ["sleep", "3600"],
            "imagePullPolicy": "IfNotPresent",
        }
    ]
    assert out["metadata"]["annotations"] == {"kubectl.kubernetes.io/last-applied-configuration": "{}"}
    assert live == before
    assert "$setElementOrder/containers" not in out["spec"]


def test_smp_nested_merge_keys() -> None:
    live = live_pod()
    before = copy.deepcopy(live)
    patch = {
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
                    "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}],
                    "volumeMounts": [{"mountPath": "/data", "readOnly": True}],
                }
            ],
            "volumes": [{"name": "cfg", "configMap": {"name": "c"}}],
            "tolerations": [{"key": "b"}],
        }
    }
    out = strategic_merge_patch(live, patch, "Pod")
    main = out["spec"]["containers"][0]
    assert main["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "3"},
        {"name": "C", "value": "4"},
    ]
    assert main["ports"] == [{"containerPort": 80, "name": "http", "protocol": "TCP"}, {"containerPort": 443}]
    assert main["volumeMounts"] == [{"mountPath": "/data", "name": "data", "readOnly": True}]
    assert main["image"] == "busybox:1"
    assert out["spec"]["containers"][1] == {"name": "side", "image": "side:1"}
    assert [v["name"] for v in out["spec"]["volumes"]] == ["cfg", "data"]  # new elements first, like Go
    assert out["spec"]["tolerations"] == [{"key": "b"}]  # no patch strategy: replaced
    assert live == before
    assert out["spec"]["containers"][1] is live["spec"]["containers"][1]  # untouched element shared


def test_smp_delete_and_replace_directives() -> None:
    live = live_pod()
    out = strategic_merge_patch(live, {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}, "Pod")
    assert [c["name"] for c in out["spec"]["containers"]] == ["main"]
    out = strategic_merge_patch(
        live, {"spec": {"containers": [{"name": "only", "image": "x"}, {"$patch": "replace"}]}}, "Pod"
    )
    assert out["spec"]["containers"] == [{"name": "only", "image": "x"}]
    out = strategic_merge_patch(live, {"spec": {"$patch": "replace", "containers": [{"name": "n"}]}}, "Pod")
    assert out["spec"] == {"containers": [{"name": "n"}]}
    out = strategic_merge_patch(live, {"status": {"$patch": "delete"}}, "Pod")
    assert out["status"] == {}
    out = strategic_merge_patch(live, {"spec": {"containers": [{"name": "main", "env": None}]}}, "Pod")
    assert "env" not in out["spec"]["containers"][0]
    out = strategic_merge_patch(
        live, {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}, "Pod"
    )
    assert out["status"]["conditions"] == [
        {"type": "Ready", "status": "True"},
        {"type": "PodScheduled", "status": "True"},
    ]


def test_smp_set_element_order() -> None:
    live = live_pod()
    out = strategic_merge_patch(
        live, {"spec": {"$setElementOrder/containers": [{"name": "side"}, {"name": "main"}]}}, "Pod"
    )
    assert [c["name"] for c in out["spec"]["containers"]] == ["side", "main"]
    out = strategic_merge_patch(
        live,
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "new"}, {"name": "main"}, {"name": "side"}],
                "containers": [{"name": "new", "image": "n"}],
            }
        },
        "Pod",
    )
    assert [c["name"] for c in out["spec"]["containers"]] == ["new", "main", "side"]
    # Without an order directive, new elements go first, as the real server does it.
    out = strategic_merge_patch(live, {"spec": {"containers": [{"name": "new"}]}}, "Pod")
    assert [c["name"] for c in out["spec"]["containers"]] == ["new", "main", "side"]


def test_smp_primitive_lists() -> None:
    live = live_pod()
    out = strategic_merge_patch(live, {"metadata": {"finalizers": ["f2", "f1"]}}, "Pod")
    assert out["metadata"]["finalizers"] == ["f2", "f1"]
    out = strategic_merge_patch(live, {"metadata": {"finalizers": ["f2"]}}, "Pod")
    assert sorted(out["metadata"]["finalizers"]) == ["f1", "f2"]
    out = strategic_merge_patch(live, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["f1"]}}, "Pod")
    assert out["metadata"]["finalizers"] == []
    out = strategic_merge_patch(live, {"metadata": {"finalizers": None}}, "Pod")
    assert "finalizers" not in out["metadata"]
    node = {"spec": {"podCIDRs": ["10.0.0.0/24"]}}
    assert strategic_merge_patch(node, {"spec": {"podCIDRs": ["10.1.0.0/24"]}}, "Node")["spec"][
        "podCIDRs"
    ] == ["10.1.0.0/24", "10.0.0.0/24"]
    # A command list has no patch strategy: replaced.
    out = strategic_merge_patch(
        live, {"spec": {"containers": [{"name": "main", "command": ["true"]}]}}, "Pod"
    )
    assert out["spec"]["containers"][0]["command"] == ["true"]


def test_smp_retain_keys() -> None:
    live = {"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}}
    patch = {
        "spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "configMap"], "configMap": {"name": "c"}}]}
    }
    out = strategic_merge_patch(live, patch, "Pod")
    assert out["spec"]["volumes"] == [{"name": "v", "configMap": {"name": "c"}}]
    with pytest.raises(BadRequest):
        strategic_merge_patch(
            live, {"spec": {"volumes": [{"name": "v", "$retainKeys": ["name"], "x": 1}]}}, "Pod"
        )


def test_smp_other_kinds() -> None:
    svc = {"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}}
    out = strategic_merge_patch(svc, {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}, "Service")
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 9090}, {"port": 443}]
    node = {
        "status": {
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "DiskPressure"}],
            "addresses": [{"type": "InternalIP", "address": "1.1.1.1"}],
        }
    }
    out = strategic_merge_patch(
        node, {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}, "Node"
    )
    assert out["status"]["conditions"][0] == {"type": "Ready", "status": "True"}
    assert len(out["status"]["conditions"]) == 2
    sa = {"secrets": [{"name": "a"}]}
    assert strategic_merge_patch(sa, {"secrets": [{"name": "b"}]}, "ServiceAccount")["secrets"] == [
        {"name": "b"},
        {"name": "a"},
    ]
    rb = {"subjects": [{"kind": "User", "name": "a"}]}
    assert strategic_merge_patch(rb, {"subjects": [{"kind": "User", "name": "b"}]}, "RoleBinding")[
        "subjects"
    ] == [{"kind": "User", "name": "b"}]  # RBAC subjects are atomic
    ep = {"subsets": [{"addresses": [{"ip": "1"}]}]}
    assert strategic_merge_patch(ep, {"subsets": []}, "Endpoints")["subsets"] == []
    owner = {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}}
    out = strategic_merge_patch(
        owner, {"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]}}, "ConfigMap"
    )
    assert [o["uid"] for o in out["metadata"]["ownerReferences"]] == ["2", "1"]
    ns = {"metadata": {"name": "n", "labels": {"a": "1"}}}
    assert strategic_merge_patch(ns, {"metadata": {"labels": {"a": None, "b": "2"}}}, "Namespace") == {
        "metadata": {"name": "n", "labels": {"b": "2"}}
    }


def test_smp_crd_is_merge_patch() -> None:
    dom = {"spec": {"list": [{"name": "a", "x": 1}], "role": "partner"}}
    out = strategic_merge_patch(dom, {"spec": {"list": [{"name": "a"}], "role": None}}, "Domain")
    assert out == {"spec": {"list": [{"name": "a"}]}}


@pytest.mark.parametrize(
    "patch",
    [
        {"spec": {"containers": [{"image": "no-name"}]}},
        {"spec": {"containers": ["str"]}},
        {"spec": {"containers": [{"$patch": "delete"}]}},
        {"spec": {"containers": [{"name": "a", "$patch": "merge"}]}},
        {"spec": {"$patch": "bogus"}},
        {"spec": {"$retainKeys": "name"}},
        {"spec": {"$setElementOrder/containers": "x"}},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": "f1"}},
    ],
)
def test_smp_malformed(patch: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        strategic_merge_patch(live_pod(), patch, "Pod")


def test_smp_new_values_are_cleaned_and_copied() -> None:
    patch = {
        "spec": {
            "containers": [
                {"name": "n", "env": [{"name": "A", "value": None}], "$setElementOrder/env": [{"name": "A"}]}
            ]
        }
    }
    out = strategic_merge_patch({"spec": {}}, patch, "Pod")
    assert out == {"spec": {"containers": [{"name": "n", "env": [{"name": "A"}]}]}}


@given(_obj, _obj)
def test_smp_on_plain_maps_equals_merge_patch(a: dict[str, Any], p: dict[str, Any]) -> None:
    """Without lists or directives, a strategic patch is a merge patch."""

    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if not k.startswith("$") and not isinstance(x, list)}
        return v

    a2, p2 = strip(a), strip(p)
    assert strategic_merge_patch(a2, p2, "ConfigMap") == merge_patch(a2, p2)


# Vectors from apimachinery's strategicpatch tests (Current + ThreeWay -> Result), with the test's
# "mergingList" (merge key "name") played by Pod spec.containers.
_GO_VECTORS: list[tuple[list[Any], dict[str, Any], list[Any]]] = [
    (  # add map and delete map from merging list
        [{"name": "1"}, {"name": "2", "other": "b"}, {"name": "4", "other": "c"}],
        {
            "$setElementOrder/containers": [{"name": "2"}, {"name": "3"}],
            "containers": [{"name": "3"}, {"name": "1", "$patch": "delete"}],
        },
        [{"name": "2", "other": "b"}, {"name": "4", "other": "c"}, {"name": "3"}],
    ),
    (  # set elements order in a list with server-only items
        [{"name": "1", "other": "a"}, {"name": "3"}, {"name": "4"}, {"name": "2"}, {"name": "9"}],
        {"$setElementOrder/containers": [{"name": "4"}, {"name": "2"}, {"name": "3"}, {"name": "1"}]},
        [{"name": "4"}, {"name": "2"}, {"name": "3"}, {"name": "1", "other": "a"}, {"name": "9"}],
    ),
    (  # ... server-only items 2
        [{"name": "1"}, {"name": "2"}, {"name": "9"}, {"name": "3"}, {"name": "4"}],
        {"$setElementOrder/containers": [{"name": "2"}, {"name": "1"}, {"name": "4"}, {"name": "3"}]},
        [{"name": "2"}, {"name": "1"}, {"name": "9"}, {"name": "4"}, {"name": "3"}],
    ),
    (  # ... server-only items 3
        [{"name": n} for n in "1279834"],
        {"$setElementOrder/containers": [{"name": "2"}, {"name": "1"}, {"name": "4"}, {"name": "3"}]},
        [{"name": n} for n in "2179843"],
    ),
    (  # add multiple items in a list and preserve order
        [{"name": "1", "other": "a"}, {"name": "2", "value": 2}],
        {
            "$setElementOrder/containers": [{"name": "1"}, {"name": "4"}, {"name": "2"}, {"name": "3"}],
            "containers": [{"name": "4", "value": 4}, {"name": "3", "value": 3}],
        },
        [
            {"name": "1", "other": "a"},
            {"name": "4", "value": 4},
            {"name": "2", "value": 2},
            {"name": "3", "value": 3},
        ],
    ),
]


@pytest.mark.parametrize(("current", "patch", "result"), _GO_VECTORS)
def test_smp_go_vectors(current: list[Any], patch: dict[str, Any], result: list[Any]) -> None:
    out = strategic_merge_patch({"spec": {"containers": current}}, {"spec": patch}, "Pod")
    assert out == {"spec": {"containers": result}}
