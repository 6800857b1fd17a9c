"""Label and field selectors: parsing, matching, errors, and the kind tables."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atoll.api.errors import BadRequest
from atoll.api.selectors import (
    field_selectors_for,
    label_selector_from_spec,
    parse_field_selector,
    parse_label_selector,
)

LABELS = {"app": "web", "tier": "front", "env": "prod", "n": "5", "kuscia.secretflow/role": "alice"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("   ", True),
        ("app=web", True),
        ("app==web", True),
        ("app=db", False),
        ("app!=db", True),
        ("app!=web", False),
        ("missing!=x", True),  # != matches absent labels
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("env in (prod, staging)", True),
        ("env in (staging)", False),
        ("env notin (staging,dev)", True),
        ("env notin (prod)", False),
        ("missing notin (a)", True),
        ("missing in (a)", False),
        ("app=web,tier=front", True),
        ("app=web, tier=back", False),
        (" app = web , !missing , env in ( prod ) ", True),
        ("kuscia.secretflow/role=alice", True),
        ("n>3", True),
        ("n<3", False),
        ("missing>3", False),
        ("app=", False),
        ("x in (a,)", False),
    ],
)
def test_label_selector_matches(text: str, expected: bool) -> None:
    assert parse_label_selector(text).matches(LABELS) is expected


def test_empty_and_none_labels() -> None:
    sel = parse_label_selector("")
    assert sel.empty
    assert sel.matches(None)
    assert not parse_label_selector("a").empty
    assert parse_label_selector("!a").matches(None)
    assert not parse_label_selector("a=b").matches(None)
    assert parse_label_selector("a=").matches({"a": ""})
    assert parse_label_selector("x in (a,)").matches({"x": ""})


def test_equality_requirements() -> None:
    sel = parse_label_selector("a=1,b==2,c!=3,d in (4),e in (5,6),f")
    assert sel.equality_requirements() == {"a": "1", "b": "2", "d": "4"}


def test_parse_is_cached() -> None:
    assert parse_label_selector("app=web,x") is parse_label_selector("app=web,x")


@pytest.mark.parametrize(
    "text",
    ["=x", "a b", "a in ()", "a in (b", "a in b", "!", "a,", ",a", "a=b c", "a=(b)", "bad key!=x",
     "a=b=c", "-a=b", "a=-b", "a>x", "a notin", "a ===b", "a in (b c)", "(a)"],
)
def test_label_selector_errors(text: str) -> None:
    with pytest.raises(BadRequest) as err:
        parse_label_selector(text)
    assert repr(text) in err.value.message or text in err.value.message


def test_label_selector_str_round_trips() -> None:
    text = "a=1,b!=2,c in (x,y),d notin (z),e,!f"
    sel = parse_label_selector(text)
    assert parse_label_selector(str(sel)) == sel


def test_label_selector_from_spec() -> None:
    sel = label_selector_from_spec({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "tier", "operator": "NotIn", "values": ["back"]},
            {"key": "app", "operator": "Exists"},
            {"key": "gone", "operator": "DoesNotExist"},
        ],
    })
    assert sel.matches(LABELS)
    assert not sel.matches({**LABELS, "gone": "1"})
    assert not sel.matches({**LABELS, "env": "qa"})
    assert sel.equality_requirements() == {"app": "web"}
    assert label_selector_from_spec({}).matches({"x": "y"})
    assert label_selector_from_spec({}).empty
    assert not label_selector_from_spec(None).matches({})


@pytest.mark.parametrize(
    "spec",
    [
        {"matchExpressions": [{"key": "a", "operator": "Bogus"}]},
        {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
        {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
        {"matchLabels": {"a": 1}},
        {"matchLabels": {"bad key": "x"}},
        {"matchLabels": ["x"]},
    ],
)
def test_label_selector_from_spec_errors(spec: dict[str, object]) -> None:
    with pytest.raises(BadRequest):
        label_selector_from_spec(spec)


_LABEL_TEXT = st.text(alphabet="ab=!,() \tinotx-./1", max_size=30)


@given(_LABEL_TEXT)
def test_label_parse_only_raises_bad_request(text: str) -> None:
    try:
        sel = parse_label_selector(text)
    except BadRequest:
        return
    sel.matches({"a": "b"})
    assert parse_label_selector(str(sel)).matches({"a": "b"}) == sel.matches({"a": "b"})


@given(st.text(max_size=40))
def test_label_parse_random_unicode(text: str) -> None:
    try:
        parse_label_selector(text)
    except BadRequest:
        pass


# --------------------------------------------------------------------------------------------------
# Field selectors

POD = {
    "metadata": {"name": "demo", "namespace": "alice"},
    "spec": {"nodeName": "n1", "restartPolicy": "Never"},
    "status": {"phase": "Running", "podIP": "10.0.0.1"},
}
POD_FIELDS = field_selectors_for("", "Pod")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("metadata.name=demo", True),
        ("metadata.name==demo", True),
        ("metadata.name!=demo", False),
        ("metadata.name=other", False),
        ("metadata.name=demo,metadata.namespace=alice", True),
        ("metadata.name=demo,metadata.namespace!=alice", False),
        ("spec.nodeName=n1,status.phase=Running", True),
        ("spec.schedulerName=", True),  # missing -> ""
        ("spec.schedulerName!=", False),
        ("status.podIP=10.0.0.1", True),
    ],
)
def test_field_selector_matches(text: str, expected: bool) -> None:
    assert parse_field_selector(text, POD_FIELDS).matches(POD) is expected


def test_field_selector_unsupported_field_kube_wording() -> None:
    with pytest.raises(BadRequest) as err:
        parse_field_selector("spec.foo=bar", POD_FIELDS)
    assert err.value.message == "field label not supported: spec.foo"
    with pytest.raises(BadRequest):
        parse_field_selector("type=Opaque", field_selectors_for("kuscia.secretflow", "Domain"))


@pytest.mark.parametrize("text", ["metadata.name", "=x", "metadata.name=a=b", "metadata.name=a\\q", "a\\"])
def test_field_selector_syntax_errors(text: str) -> None:
    with pytest.raises(BadRequest):
        parse_field_selector(text, POD_FIELDS)


def test_field_selector_exact_and_escapes() -> None:
    sel = parse_field_selector("metadata.name=a\\,b,metadata.namespace!=x", POD_FIELDS)
    assert sel.exact("metadata.name") == "a,b"
    assert sel.exact("metadata.namespace") is None
    assert sel.exact("status.phase") is None
    assert sel.matches({"metadata": {"name": "a,b", "namespace": "y"}})
    assert parse_field_selector(str(sel), POD_FIELDS) == sel
    assert parse_field_selector("", POD_FIELDS).empty
    assert not sel.empty


def test_describe_event_selector() -> None:
    ev_fields = field_selectors_for("", "Event")
    sel = parse_field_selector(
        "involvedObject.uid=u1,involvedObject.name=alice,involvedObject.namespace=,involvedObject.kind=Domain",
        ev_fields,
    )
    event = {"involvedObject": {"uid": "u1", "name": "alice", "kind": "Domain"}, "type": "Normal",
             "source": {"component": "kuscia"}}
    assert sel.matches(event)
    assert not sel.matches({**event, "involvedObject": {"uid": "u2", "name": "alice", "kind": "Domain"}})
    assert parse_field_selector("source=kuscia,type=Normal", ev_fields).matches(event)


def test_field_selector_bool_values() -> None:
    node_fields = field_selectors_for("", "Node")
    cordoned = {"spec": {"unschedulable": True}}
    assert parse_field_selector("spec.unschedulable=true", node_fields).matches(cordoned)
    assert parse_field_selector("spec.unschedulable=false", node_fields).matches({"spec": {}}) is False
    assert parse_field_selector("spec.unschedulable!=true", node_fields).matches({"spec": {}})


def test_field_selectors_for_tables() -> None:
    common = {"metadata.name", "metadata.namespace"}
    assert field_selectors_for("kuscia.secretflow", "Domain") == common
    pod_keys = {"spec.nodeName", "status.phase", "spec.schedulerName", "spec.restartPolicy", "status.podIP"}
    assert pod_keys <= POD_FIELDS
    assert {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
            "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
            "reason", "source", "type"} <= field_selectors_for("", "Event")
    assert field_selectors_for("", "Secret") == common | {"type"}
    assert field_selectors_for("", "Namespace") == common | {"status.phase"}
    assert field_selectors_for("", "Node") == common | {"spec.unschedulable"}


@given(st.text(max_size=40))
def test_field_parse_only_raises_bad_request(text: str) -> None:
    try:
        sel = parse_field_selector(text, POD_FIELDS)
    except BadRequest:
        return
    sel.matches(POD)
