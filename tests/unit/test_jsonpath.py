"""Kubernetes JSONPath: paths, filters, unions, slices, recursive descent, templates."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atoll.api.errors import BadRequest
from atoll.api.jsonpath import compile_jsonpath, format_value, render_template

DOC: dict[str, Any] = {
    "kind": "List",
    "items": [
        {
            "metadata": {"name": "alice", "labels": {"kuscia.secretflow/deleted": "true", "app": "x"}},
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}],
                "replicas": 3,
                "deployTokenStatuses": [{"state": "used", "token": "t1"}, {"state": "unused", "token": "t2"}],
            },
        },
        {"metadata": {"name": "bob"}, "status": {"replicas": 5, "ok": True}},
        {"metadata": {"name": "carol"}, "status": {"replicas": 1.5}},
    ],
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("{.kind}", ["List"]),
        (".kind", ["List"]),
        ("kind", ["List"]),
        ("$.kind", ["List"]),
        ("{.items[*].metadata.name}", ["alice", "bob", "carol"]),
        ("{.items[0].metadata.name}", ["alice"]),
        ("{.items[-1].metadata.name}", ["carol"]),
        ("{.items[-3].metadata.name}", ["alice"]),
        ("{.items[3].metadata.name}", []),
        ("{.items[-4].metadata.name}", []),
        ("{.items[0:2].metadata.name}", ["alice", "bob"]),
        ("{.items[1:].metadata.name}", ["bob", "carol"]),
        ("{.items[:1].metadata.name}", ["alice"]),
        ("{.items[::2].metadata.name}", ["alice", "carol"]),
        ("{.items[0,2].metadata.name}", ["alice", "carol"]),
        ("{.items[0]['metadata']['name']}", ["alice"]),
        ('{.items[0]["metadata"].name}', ["alice"]),
        ("{.items[0].metadata['name','missing']}", ["alice"]),
        ("{.items[0].metadata.labels['kuscia.secretflow/deleted']}", ["true"]),
        ("{.items[0].metadata.labels.kuscia\\.secretflow/deleted}", ["true"]),
        ("{.items[0].metadata.labels['kuscia\\.secretflow/deleted']}", ["true"]),
        ('{.items[*].status.conditions[?(@.type=="Ready")].status}', ["True"]),
        ("{.items[*].status.conditions[?(@.type=='Synced')].status}", ["False"]),
        ('{.items[*].status.conditions[?(@.type!="Ready")].type}', ["Synced"]),
        ('{.items[0].status.deployTokenStatuses[?(@.state=="unused")].token}', ["t2"]),
        ("{.items[?(@.status.replicas>2)].metadata.name}", ["alice", "bob"]),
        ("{.items[?(@.status.replicas>=3)].metadata.name}", ["alice", "bob"]),
        ("{.items[?(@.status.replicas<3)].metadata.name}", ["carol"]),
        ("{.items[?(@.status.replicas<=1.5)].metadata.name}", ["carol"]),
        ("{.items[?(@.status.replicas==5)].metadata.name}", ["bob"]),
        ("{.items[?(@.status.ok==true)].metadata.name}", ["bob"]),
        ("{.items[?(@.status.conditions)].metadata.name}", ["alice"]),
        ('{.items[?(@.metadata.name=="bob")].status.replicas}', [5]),
        ('{.items[?(@.status.replicas=="5")].metadata.name}', []),  # string vs number never equal
        ("{..name}", ["alice", "bob", "carol"]),
        ("{..token}", ["t1", "t2"]),
        ("{.items[*].metadata.missing}", []),
        ("{.nope.deeper}", []),
        ("{.items.metadata}", []),
        ("{.items[0].status.replicas}", [3]),
        ("{.items[1].status.*}", [5, True]),
        ("{.items[0].metadata.labels[*]}", ["true", "x"]),
        ("{.kind,.items[1].metadata.name}", ["List", "bob"]),
        ("{ .kind }", ["List"]),
    ],
)
def test_find(expr: str, expected: list[Any]) -> None:
    assert compile_jsonpath(expr).find(DOC) == expected


def test_find_root_and_first() -> None:
    assert compile_jsonpath("{.}").find({"a": 1}) == [{"a": 1}]
    path = compile_jsonpath(".status.phase")
    assert path.first({"status": {"phase": "Running"}}) == "Running"
    assert path.first({}) is None
    assert path.first({}, "x") == "x"
    assert compile_jsonpath("{.a}").find({"a": None}) == [None]


def test_compile_cached() -> None:
    assert compile_jsonpath("{.items[*].metadata.name}") is compile_jsonpath("{.items[*].metadata.name}")


@pytest.mark.parametrize(
    "expr",
    ["{.items[}", "{.items[0}", "{.a", "{.items[?(@.x=)]}", "{.items['a}", "{.items[1:2:3:4]}",
     "{.items[::0]}", "{range .items[*]}{.x}", "{end}", "{.a b}", "{.items[?(@.x==foo)]}"],
)
def test_syntax_errors_are_bad_request(expr: str) -> None:
    with pytest.raises(BadRequest):
        compile_jsonpath(expr)


@given(st.text(alphabet=".[]{}()?@=!<>*'\"abc0123-:, $\\", max_size=25))
def test_compile_never_raises_other_errors(expr: str) -> None:
    try:
        path = compile_jsonpath(expr)
    except BadRequest:
        return
    path.find(DOC)
    path.render(DOC)


# --------------------------------------------------------------------------------------------------
# Templates (kubectl -o jsonpath)


def test_render_range() -> None:
    out = render_template('{range .items[*]}{.metadata.name}{"\\n"}{end}', DOC)
    assert out == "alice\nbob\ncarol\n"


def test_render_nested_range_and_text() -> None:
    expr = ("{range .items[*]}[{.metadata.name}]{range .status.conditions[*]} {.type}={.status}{end};{end}")
    assert render_template(expr, DOC) == "[alice] Ready=True Synced=False;[bob];[carol];"


def test_render_values() -> None:
    assert render_template("{.items[*].metadata.name}", DOC) == "alice bob carol"
    assert render_template("kind: {.kind}", DOC) == "kind: List"
    assert render_template("{.items[1].status}", DOC) == '{"replicas":5,"ok":true}'
    assert render_template("{.items[0].status.conditions[0]}", DOC) == '{"type":"Ready","status":"True"}'
    assert render_template("{.items[*].status.replicas}", DOC) == "3 5 1.5"
    assert render_template("{.items[1].status.ok}", DOC) == "true"
    assert render_template("{.missing}", DOC) == ""
    assert render_template("{'\\t'}", DOC) == "\t"


def test_format_value() -> None:
    assert format_value("s") == "s"
    assert format_value(2.0) == "2"
    assert format_value(False) == "false"
    assert format_value([1, "a"]) == '[1,"a"]'
    assert format_value(None) == "<nil>"


def test_large_list_speed() -> None:
    import time

    doc = {"items": [{"metadata": {"name": f"n{i}"}, "status": {"conditions": [{"type": "Ready",
                                                                                "status": "True"}]}}
                     for i in range(2000)]}
    path = compile_jsonpath('{.items[*].status.conditions[?(@.type=="Ready")].status}')
    t = time.perf_counter()
    assert len(path.find(doc)) == 2000
    assert time.perf_counter() - t < 0.2
