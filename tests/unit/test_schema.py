"""Structural-schema admission: pruning, defaulting, validation messages, speed, and a differential
check of validity decisions against the reference ``jsonschema`` implementation."""

from __future__ import annotations

import time
from functools import cache
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atoll.api.crd import kuscia_crds
from atoll.apiserver.apiextensions.schema import StructuralSchema

JSON = dict[str, Any]


@cache
def _raw(kind: str) -> JSON:
    for c in kuscia_crds():
        if c["spec"]["names"]["kind"] == kind:
            schema: JSON = c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            return schema
    raise KeyError(kind)


@cache
def schema(kind: str) -> StructuralSchema:
    return StructuralSchema(_raw(kind))


def obj(kind: str, spec: Any = None, **extra: Any) -> JSON:
    o: JSON = {"apiVersion": "kuscia.secretflow/v1alpha1", "kind": kind, "metadata": {"name": "x"}}
    if spec is not None:
        o["spec"] = spec
    o.update(extra)
    return o


def job(**spec: Any) -> JSON:
    base: JSON = {
        "initiator": "alice",
        "tasks": [
            {
                "alias": "a",
                "appImage": "img",
                "taskInputConfig": "{}",
                "parties": [{"domainID": "alice"}, {"domainID": "bob"}],
            }
        ],
    }
    base.update(spec)
    return obj("KusciaJob", base)


def causes(kind: str, o: JSON) -> list[JSON]:
    return schema(kind).validate(o)


def one(kind: str, o: JSON) -> JSON:
    got = causes(kind, o)
    assert len(got) == 1, got
    return got[0]


# ------------------------------------------------------------------------------------ validation


SEED_DOMAIN = """
apiVersion: kuscia.secretflow/v1alpha1
kind: Domain
metadata:
  name: alice
spec:
  role: partner
  cert: base64<certificate>
  resourceQuota:
    podMaxCount: 100
"""


def test_seed_domain_validates() -> None:
    d = yaml.safe_load(SEED_DOMAIN)
    assert schema("Domain").admit(d) == ([], [])
    assert d["spec"]["cert"] == "base64<certificate>"


def test_enum_unsupported_value() -> None:
    assert one("Domain", obj("Domain", {"role": "wrong"})) == {
        "reason": "FieldValueNotSupported",
        "message": 'Unsupported value: "wrong": supported values: "", "partner"',
        "field": "spec.role",
    }


def test_type_invalid() -> None:
    assert one("Domain", obj("Domain", {"resourceQuota": {"podMaxCount": "string"}})) == {
        "reason": "FieldValueTypeInvalid",
        "message": 'Invalid value: "string": spec.resourceQuota.podMaxCount in body must be of type integer: "string"',
        "field": "spec.resourceQuota.podMaxCount",
    }
    c = one("Domain", obj("Domain", {"cert": 5}))
    assert c["message"] == 'Invalid value: "integer": spec.cert in body must be of type string: "integer"'
    c = one("Domain", obj("Domain", {"interConnProtocols": "kuscia"}))
    assert c["message"].endswith('spec.interConnProtocols in body must be of type array: "string"')
    c = one("Domain", obj("Domain", {"resourceQuota": {"podMaxCount": True}}))
    assert c["message"].startswith('Invalid value: "boolean"')


def test_required_value() -> None:
    assert one("Domain", obj("Domain")) == {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec",
    }
    c = one("Domain", obj("Domain", {"authCenter": {"tokenGenMethod": "RSA-GEN"}}))
    assert (c["field"], c["message"]) == ("spec.authCenter.authenticationType", "Required value")
    c = one("KusciaJob", job(tasks=[{"alias": "a", "appImage": "i", "parties": []}]))
    assert c["field"] == "spec.tasks[0].taskInputConfig"


def test_minimum_and_maximum() -> None:
    c = one("Domain", obj("Domain", {"resourceQuota": {"podMaxCount": -1}}))
    assert c == {
        "reason": "FieldValueInvalid",
        "message": "Invalid value: -1: spec.resourceQuota.podMaxCount in body should be greater than or equal to 0",
        "field": "spec.resourceQuota.podMaxCount",
    }
    c = one("KusciaJob", job(maxParallelism=129))
    assert c["message"] == "Invalid value: 129: spec.maxParallelism in body should be less than or equal to 128"
    c = one("KusciaJob", job(maxParallelism=0))
    assert c["message"] == "Invalid value: 0: spec.maxParallelism in body should be greater than or equal to 1"


def test_min_items_and_max_items() -> None:
    c = one("KusciaJob", job(tasks=[]))
    assert c == {
        "reason": "FieldValueInvalid",
        "field": "spec.tasks",
        "message": "Invalid value: 0: spec.tasks in body should have at least 1 items",
    }
    task = job()["spec"]["tasks"][0]
    c = one("KusciaJob", job(tasks=[task] * 129))
    assert c == {
        "reason": "FieldValueTooMany",
        "field": "spec.tasks",
        "message": "Too many: 129: must have at most 128 items",
    }
    c = one("KusciaJob", job(tasks=[{**task, "dependencies": []}]))
    assert c["field"] == "spec.tasks[0].dependencies"


def test_pattern() -> None:
    task = {**job()["spec"]["tasks"][0], "taskID": "ABC_"}
    c = one("KusciaJob", job(tasks=[task]))
    assert c == {
        "reason": "FieldValueInvalid",
        "field": "spec.tasks[0].taskID",
        "message": "Invalid value: \"ABC_\": spec.tasks[0].taskID in body should match '[a-z0-9]([-a-z0-9]*[a-z0-9])?'",
    }
    route = obj(
        "DomainRoute",
        {
            "source": "a",
            "destination": "b",
            "authenticationType": "Token",
            "endpoint": {"host": "bad host!", "ports": []},
        },
    )
    assert one("DomainRoute", route)["field"] == "spec.endpoint.host"


def test_nested_array_paths() -> None:
    route = obj(
        "ClusterDomainRoute",
        {
            "source": "a",
            "destination": "b",
            "authenticationType": "Token",
            "endpoint": {
                "host": "10.0.0.1",
                "ports": [
                    {"name": "http", "protocol": "HTTP", "port": 80},
                    {"name": "x", "protocol": "TCP", "port": 70000},
                ],
            },
        },
    )
    got = {c["field"]: c["message"] for c in causes("ClusterDomainRoute", route)}
    assert got == {
        "spec.endpoint.ports[1].protocol": 'Unsupported value: "TCP": supported values: "HTTP", "GRPC"',
        "spec.endpoint.ports[1].port": (
            "Invalid value: 70000: spec.endpoint.ports[1].port in body should be less than or equal to 65535"
        ),
    }


def test_all_violations_reported() -> None:
    d = obj(
        "Domain",
        {"role": "x", "cert": 1, "resourceQuota": {"podMaxCount": -5}, "authCenter": {"authenticationType": "Basic"}},
    )
    fields = sorted(c["field"] for c in causes("Domain", d))
    assert fields == ["spec.authCenter.authenticationType", "spec.cert", "spec.resourceQuota.podMaxCount", "spec.role"]


def test_int_or_string_quantities() -> None:
    def with_limits(limits: JSON) -> JSON:
        j = job()
        j["spec"]["tasks"][0]["parties"][0]["resources"] = {"limits": limits}
        return j

    assert causes("KusciaJob", with_limits({"cpu": 2, "memory": "2Gi", "x": "100m"})) == []
    c = causes("KusciaJob", with_limits({"cpu": True}))
    assert c[0]["reason"] == "FieldValueTypeInvalid"
    assert c[0]["field"] == "spec.tasks[0].parties[0].resources.limits.cpu"
    assert c[0]["message"].endswith('must be of type integer,string: "boolean"')
    c = causes("KusciaJob", with_limits({"cpu": "two"}))
    assert c and c[0]["field"] == "spec.tasks[0].parties[0].resources.limits.cpu"
    assert "should match" in c[0]["message"]


def test_format_date_time() -> None:
    ok = obj(
        "KusciaJob",
        job()["spec"],
        status={"startTime": "2023-04-06T08:49:14Z", "completionTime": "2023-04-06T08:49:14.123+08:00"},
    )
    assert causes("KusciaJob", ok) == []
    bad = obj("KusciaJob", job()["spec"], status={"startTime": "yesterday"})
    assert one("KusciaJob", bad) == {
        "reason": "FieldValueTypeInvalid",
        "field": "status.startTime",
        "message": 'Invalid value: "yesterday": status.startTime in body must be of type date-time: "yesterday"',
    }


def test_format_int32_range() -> None:
    t = obj(
        "KusciaTask",
        {
            "initiator": "a",
            "taskInputConfig": "",
            "parties": [{"domainID": "a", "appImageRef": "i", "template": {"replicas": 2**31}}],
        },
    )
    c = one("KusciaTask", t)
    assert c["field"] == "spec.parties[0].template.replicas"
    assert "int32" in c["message"]


def test_integer_accepts_integral_floats_only() -> None:
    assert causes("KusciaJob", job(maxParallelism=3.0)) == []
    c = one("KusciaJob", job(maxParallelism=2.5))
    assert c["message"].startswith('Invalid value: "number": spec.maxParallelism in body must be of type integer')


def test_null_is_a_type_error_unless_nullable() -> None:
    c = one("Domain", obj("Domain", {"cert": None}))
    assert c["message"] == 'Invalid value: "null": spec.cert in body must be of type string: "null"'
    s = StructuralSchema({"type": "object", "properties": {"n": {"type": "string", "nullable": True}}})
    assert s.validate({"n": None}) == []


def test_additional_properties_values() -> None:
    c = one(
        "DomainRoute",
        obj(
            "DomainRoute",
            {
                "source": "a",
                "destination": "b",
                "authenticationType": "None",
                "requestHeadersToAdd": {"Authorization": 1},
            },
        ),
    )
    assert c["field"] == "spec.requestHeadersToAdd.Authorization"


GENERIC = StructuralSchema(
    {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 2, "maxLength": 5},
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            "step": {"type": "number", "multipleOf": 0.5, "exclusiveMinimum": True, "minimum": 0},
            "level": {"type": "integer", "enum": [1, 2, 3]},
            "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            "notx": {"type": "string", "not": {"enum": ["x"]}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 1},
            "ip": {"type": "string", "format": "ipv4"},
            "embedded": {
                "type": "object",
                "x-kubernetes-embedded-resource": True,
                "x-kubernetes-preserve-unknown-fields": True,
            },
        },
    }
)


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        ({"name": "toolong"}, "name", "Too long: may not be longer than 5"),
        ({"name": "a"}, "name", 'Invalid value: "a": name in body should be at least 2 chars long'),
        ({"tags": ["a", "a"]}, "tags", 'Duplicate value: ["a","a"]'),
        ({"step": 0.3}, "step", "Invalid value: 0.3: step in body should be a multiple of 0.5"),
        ({"step": 0}, "step", "Invalid value: 0: step in body should be greater than 0"),
        ({"level": 7}, "level", 'Unsupported value: 7: supported values: "1", "2", "3"'),
        ({"either": True}, "either", 'Invalid value: true: "either" must validate at least one schema (oneOf)'),
        ({"notx": "x"}, "notx", 'Invalid value: "x": "notx" must not validate the schema (not)'),
        ({"labels": {"a": "1", "b": "2"}}, "labels", "Too many: 2: must have at most 1 items"),
        ({"ip": "300.1.1.1"}, "ip", 'Invalid value: "300.1.1.1": ip in body must be of type ipv4: "300.1.1.1"'),
        ({"embedded": {"metadata": {}}}, "embedded.kind", "Required value: must not be empty"),
    ],
)
def test_generic_rules(value: JSON, field: str, message: str) -> None:
    got = GENERIC.validate(value)
    assert {"field": field, "message": message} in [{"field": c["field"], "message": c["message"]} for c in got]


def test_generic_valid() -> None:
    ok = {
        "name": "ab",
        "tags": ["a", "b"],
        "step": 1.5,
        "level": 2,
        "either": 3,
        "notx": "y",
        "labels": {"a": "b"},
        "ip": "10.0.0.1",
        "embedded": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": 1}},
    }
    assert GENERIC.validate(ok) == []


# ------------------------------------------------------------------------------------- defaulting


def test_kusciajob_defaults() -> None:
    j = job()
    schema("KusciaJob").default(j)
    assert j["spec"]["scheduleMode"] == "Strict"
    assert j["spec"]["maxParallelism"] == 1
    assert j["spec"]["tasks"][0]["tolerable"] is False


def test_defaults_do_not_override_and_fill_non_nullable_nulls() -> None:
    j = job(scheduleMode="BestEffort", maxParallelism=None)
    schema("KusciaJob").default(j)
    assert j["spec"]["scheduleMode"] == "BestEffort"
    assert j["spec"]["maxParallelism"] == 1


def test_defaults_inside_array_items() -> None:
    img = obj(
        "AppImage",
        {
            "image": {"name": "n", "tag": "t"},
            "deployTemplates": [
                {
                    "name": "d",
                    "spec": {
                        "containers": [
                            {
                                "name": "c",
                                "workingDir": "/w",
                                "ports": [{"name": "a"}, {"name": "b", "scope": "Cluster"}],
                            }
                        ]
                    },
                }
            ],
        },
    )
    schema("AppImage").default(img)
    ports = img["spec"]["deployTemplates"][0]["spec"]["containers"][0]["ports"]
    assert ports == [
        {"name": "a", "protocol": "HTTP", "scope": "Local"},
        {"name": "b", "scope": "Cluster", "protocol": "HTTP"},
    ]


def test_defaults_for_null_items_and_map_values_are_copies() -> None:
    s = StructuralSchema(
        {
            "type": "object",
            "properties": {
                "list": {
                    "type": "array",
                    "items": {"type": "object", "default": {"a": 1}, "properties": {"a": {"type": "integer"}}},
                },
                "map": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}, "default": ["x"]},
                },
                "nested": {"type": "object", "default": {}, "properties": {"k": {"type": "string", "default": "v"}}},
                "keep": {"type": "string", "nullable": True, "default": "d"},
            },
        }
    )
    o: JSON = {"list": [None, {"a": 2}], "map": {"m": None, "n": ["y"]}, "keep": None}
    s.default(o)
    assert o == {"list": [{"a": 1}, {"a": 2}], "map": {"m": ["x"], "n": ["y"]}, "keep": None, "nested": {"k": "v"}}
    o["list"][0]["a"] = 99
    o2: JSON = {"list": [None]}
    s.default(o2)
    assert o2["list"] == [{"a": 1}]


def test_kusciajobsummary_stage_default() -> None:
    o = obj("KusciaJobSummary", {})
    schema("KusciaJobSummary").default(o)
    assert o["spec"] == {"stage": "Create"}


# --------------------------------------------------------------------------------------- pruning


def test_prune_unknown_fields() -> None:
    j = job(foo=1)
    j["spec"]["tasks"][0]["parties"][0]["bar"] = {"x": 1}
    j["extra"] = True
    j["metadata"]["whatever"] = {"kept": True}
    j["status"] = {"phase": "Running", "nope": 1, "taskStatus": {}}
    removed = schema("KusciaJob").prune(j)
    assert sorted(removed) == ["extra", "spec.foo", "spec.tasks[0].parties[0].bar", "status.nope"]
    assert "foo" not in j["spec"] and "bar" not in j["spec"]["tasks"][0]["parties"][0]
    assert j["metadata"]["whatever"] == {"kept": True}
    assert j["apiVersion"] == "kuscia.secretflow/v1alpha1" and j["kind"] == "KusciaJob"
    assert j["status"] == {"phase": "Running", "taskStatus": {}}


def test_prune_map_values_and_preserved_subtrees() -> None:
    t = obj(
        "KusciaTask",
        {
            "initiator": "a",
            "taskInputConfig": "",
            "parties": [
                {
                    "domainID": "a",
                    "appImageRef": "i",
                    "template": {
                        "spec": {
                            "containers": [
                                {
                                    "name": "c",
                                    "workingDir": "/w",
                                    "image": "busybox",
                                    "env": [{"name": "E", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
                                    "livenessProbe": {"exec": {"command": ["true"]}, "anything": 1},
                                }
                            ],
                            "affinity": {"nodeAffinity": {"x": 1}},
                        }
                    },
                }
            ],
        },
        status={"podStatuses": {"ns/p": {"podName": "p", "podPhase": "Running", "namespace": "ns", "junk": 1}}},
    )
    removed = schema("KusciaTask").prune(t)
    assert sorted(removed) == ["spec.parties[0].template.spec.containers[0].image", "status.podStatuses.ns/p.junk"]
    c = t["spec"]["parties"][0]["template"]["spec"]["containers"][0]
    assert c["env"][0]["valueFrom"] == {"secretKeyRef": {"name": "s", "key": "k"}}
    assert c["livenessProbe"]["anything"] == 1
    assert t["spec"]["parties"][0]["template"]["spec"]["affinity"] == {"nodeAffinity": {"x": 1}}


def test_prune_drops_non_nullable_nulls_without_default() -> None:
    d = yaml.safe_load(
        "apiVersion: kuscia.secretflow/v1alpha1\nkind: Domain\nmetadata: {name: a}\nspec:\n  role:\n  cert: c\n"
    )
    assert schema("Domain").admit(d) == ([], [])
    assert d["spec"] == {"cert": "c"}
    j = job(maxParallelism=None)
    schema("KusciaJob").prune(j)
    assert "maxParallelism" in j["spec"]  # has a default: left for defaulting


def test_prune_value_of_scalar_field_that_is_an_object() -> None:
    d = obj("Domain", {"cert": {"a": 1}})
    assert schema("Domain").prune(d) == ["spec.cert.a"]
    assert one("Domain", d)["reason"] == "FieldValueTypeInvalid"


def test_prune_embedded_resource_keeps_type_meta() -> None:
    s = StructuralSchema(
        {
            "type": "object",
            "properties": {
                "tpl": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "properties": {"spec": {"type": "object", "properties": {"a": {"type": "string"}}}},
                }
            },
        }
    )
    o: JSON = {
        "tpl": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"a": "x", "b": 1}, "other": 1}
    }
    assert sorted(s.prune(o)) == ["tpl.other", "tpl.spec.b"]
    assert o == {"tpl": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"a": "x"}}}


# ------------------------------------------------------------------------------------------ speed


def test_validation_speed_kusciajob() -> None:
    j = yaml.safe_load(
        open(__file__.replace("test_schema.py", "fixtures/kuscia_examples.yaml"), encoding="utf-8")
        .read()
        .split("\n---\n")[5]
    )
    assert j["kind"] == "KusciaJob"
    s = schema("KusciaJob")
    s.default(j)
    assert s.validate(j) == []
    n = 2000
    start = time.perf_counter()
    for _ in range(n):
        s.validate(j)
    per_call = (time.perf_counter() - start) / n
    assert per_call < 500e-6, f"validate took {per_call * 1e6:.0f} µs"


# ------------------------------------------------------------------- differential vs jsonschema


def _to_json_schema(node: Any) -> Any:
    """OpenAPI/Kubernetes extensions -> plain JSON Schema (formats dropped: jsonschema ignores them)."""
    if isinstance(node, list):
        return [_to_json_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {
        k: _to_json_schema(v)
        for k, v in node.items()
        if k not in ("format", "nullable", "default", "description") and not k.startswith("x-kubernetes")
    }
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    for bound in ("Minimum", "Maximum"):  # OpenAPI 3.0 boolean form -> draft 7 numeric form
        if out.get(f"exclusive{bound}") is True:
            out[f"exclusive{bound}"] = out.pop(bound.lower())
        elif f"exclusive{bound}" in out:
            del out[f"exclusive{bound}"]
    return out


def _strategy(node: JSON, depth: int = 0) -> st.SearchStrategy[Any]:
    junk = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-3, 300),
        st.floats(-2, 2, allow_nan=False),
        st.text(max_size=3),
        st.just([]),
        st.just({}),
    )
    typ = node.get("type")
    good: list[st.SearchStrategy[Any]] = []
    if "enum" in node:
        good.append(st.sampled_from(node["enum"]))
    if typ == "object" and depth < 6:
        props = {k: _strategy(v, depth + 1) for k, v in (node.get("properties") or {}).items()}
        req = {k: v for k, v in props.items() if k in (node.get("required") or ())}
        opt = {k: v for k, v in props.items() if k not in req}
        ap = node.get("additionalProperties")
        extra = (
            st.dictionaries(st.sampled_from(["zz", "k1"]), _strategy(ap, depth + 1), max_size=2)
            if isinstance(ap, dict)
            else st.just({})
        )
        merge = st.builds(lambda a, b: {**b, **a}, st.fixed_dictionaries(req, optional=opt), extra)
        good += [
            merge,
            merge,
            merge,
            st.builds(lambda a, b: {**b, **a}, st.fixed_dictionaries({}, optional=props), extra),
        ]
    elif typ == "array" and depth < 6:
        good.append(st.lists(_strategy(node.get("items") or {}, depth + 1), max_size=3))
    elif typ == "string" or node.get("x-kubernetes-int-or-string"):
        good.append(st.sampled_from(["", "a", "abc-1", "ABC", "2Gi", "100m", "x y"]))
    if typ == "integer" or node.get("x-kubernetes-int-or-string"):
        good.append(st.integers(-2, 200) | st.sampled_from([1.0, 128.0]))
    if typ == "boolean":
        good.append(st.booleans())
    if typ == "number":
        good.append(st.floats(-5, 5, allow_nan=False))
    if not good:
        return junk
    valid_ish = st.one_of(*good)
    return st.integers(0, 19).flatmap(lambda i: junk if i == 0 else valid_ish)


def _strip_formats(node: Any) -> Any:
    if isinstance(node, list):
        return [_strip_formats(x) for x in node]
    if isinstance(node, dict):
        return {k: _strip_formats(v) for k, v in node.items() if k != "format"}
    return node


def _differential_schema() -> JSON:
    s: JSON = _strip_formats(_raw("KusciaJob"))
    s["properties"]["spec"]["properties"]["flowID"]["nullable"] = True
    s["properties"]["spec"]["properties"]["note"] = {
        "type": "string",
        "nullable": True,
        "enum": ["a", "b"],
        "minLength": 1,
        "maxLength": 2,
    }
    s["properties"]["spec"]["properties"]["labels"] = {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": {"type": "integer", "minimum": 5},
    }
    for k in ("metadata", "apiVersion", "kind"):
        s["properties"].pop(k)
    s["required"] = ["spec"]
    return s


def test_validity_matches_reference_jsonschema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    raw = _differential_schema()
    ours = StructuralSchema(raw)
    ref = jsonschema.Draft7Validator(_to_json_schema(raw))
    spec_strategy = _strategy(raw["properties"]["spec"])
    status_strategy = _strategy(raw["properties"]["status"])

    seen = {True: 0, False: 0}

    @settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
    @given(spec=spec_strategy, status=st.none() | status_strategy)
    def check(spec: Any, status: Any) -> None:
        o: JSON = {"spec": spec}
        if status is not None:
            o["status"] = status
        mine = ours.validate(o)
        theirs = list(ref.iter_errors(o))
        assert (not mine) == (not theirs), (mine, [e.message for e in theirs])
        seen[not mine] += 1

    check()
    assert seen[True] and seen[False], seen  # both outcomes were exercised


def test_generic_validity_matches_reference_jsonschema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    raw = _strip_formats(GENERIC.source)
    raw["properties"].pop("embedded")
    ours = StructuralSchema(raw)
    ref = jsonschema.Draft7Validator(_to_json_schema(raw))
    values = st.fixed_dictionaries(
        {},
        optional={
            "name": st.text(max_size=6) | st.integers(),
            "tags": st.lists(st.sampled_from(["a", "b", 1]), max_size=3),
            "step": st.sampled_from([0, 0.5, 0.3, -1, 2, 1.5, "x"]),
            "level": st.sampled_from([1, 2, 3, 4, 1.0, True, "1", None]),
            # (null is left out: kube-openapi runs only type/enum checks on null, so oneOf passes)
            "either": st.sampled_from(["s", 1, True, 1.5]),
            "notx": st.sampled_from(["x", "y", 3]),
            "labels": st.dictionaries(st.sampled_from("abc"), st.sampled_from(["v", 1]), max_size=2),
            "ip": st.sampled_from(["1.2.3.4", "nope"]),
        },
    )

    @settings(max_examples=300, deadline=None)
    @given(values)
    def check(o: JSON) -> None:
        assert (not ours.validate(o)) == ref.is_valid(o), (o, ours.validate(o))

    check()
