"""Failover taints and evictions, fieldOverrider and the Lua resource interpreter (pure functions)."""

from __future__ import annotations

import json
from typing import Any

import yaml

from atoll.api.timestamps import format_time
from atoll.fleet.karmada import failover
from atoll.fleet.karmada.interpreter import Interpreter
from atoll.fleet.karmada.overrides import apply_overrides

T0 = 1_800_000_000.0
UNREACHABLE = "cluster.karmada.io/unreachable"


def cluster(name: str, ready: str = "True", since: float = T0, taints: list[dict[str, Any]] | None = None) -> Any:
    return {
        "metadata": {"name": name},
        "spec": {"taints": taints or []},
        "status": {"conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": format_time(since)}]},
    }


def test_no_schedule_at_once_no_execute_after_the_failure_threshold() -> None:
    other = {"key": "team", "value": "a", "effect": "NoSchedule"}
    down = cluster("m1", "False", since=T0, taints=[other])
    taints, due = failover.cluster_taints(down, UNREACHABLE, T0 + 10, failure_threshold=30)
    assert [(t["key"], t["effect"]) for t in taints] == [("team", "NoSchedule"), (UNREACHABLE, "NoSchedule")]
    assert due == 20
    later, due = failover.cluster_taints({**down, "spec": {"taints": taints}}, UNREACHABLE, T0 + 31, 30)
    assert [(t["key"], t["effect"]) for t in later] == [
        ("team", "NoSchedule"),
        (UNREACHABLE, "NoSchedule"),
        (UNREACHABLE, "NoExecute"),
    ]
    assert due is None and later[1] == taints[1]  # the NoSchedule taint keeps its timeAdded
    healthy, due = failover.cluster_taints({**down, "spec": {"taints": later}}, "", T0 + 40, 30)
    assert healthy == [other] and due is None


def test_evictions_follow_tolerations_and_defaults() -> None:
    no_execute = {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": format_time(T0)}
    clusters = {"m1": cluster("m1"), "m2": cluster("m2", "False", taints=[no_execute])}
    spec: dict[str, Any] = {"clusters": [{"name": "m1"}, {"name": "m2"}], "placement": {}}
    # Karmada's default toleration: 300 s
    assert failover.evictions(spec, clusters, T0 + 100) == ([], 200)
    assert failover.evictions(spec, clusters, T0 + 300) == (["m2"], None)
    tolerate_10 = {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}
    spec["placement"] = {"clusterTolerations": [tolerate_10]}
    assert failover.evictions(spec, clusters, T0 + 11) == (["m2"], None)
    forever = {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}
    spec["placement"] = {"clusterTolerations": [forever]}
    assert failover.evictions(spec, clusters, T0 + 10_000) == ([], None)
    other_key = {"key": "team", "operator": "Exists", "effect": "NoExecute"}
    spec["placement"] = {"clusterTolerations": [other_key]}  # the defaults still cover unreachable
    assert failover.evictions(spec, clusters, T0 + 1) == ([], 299)


def test_eviction_task_and_its_end() -> None:
    spec: dict[str, Any] = {
        "clusters": [{"name": "m1", "replicas": 2}, {"name": "m2", "replicas": 2}],
        "failover": {"cluster": {"purgeMode": "Gracefully", "gracePeriodSeconds": 60}},
    }
    task = failover.eviction_task(spec, "m2", T0)
    assert task["fromCluster"] == "m2" and task["replicas"] == 2 and task["gracePeriodSeconds"] == 60
    assert task["clustersBeforeFailover"] == ["m1", "m2"] and task["producer"] == "TaintManager"
    after = {"clusters": [{"name": "m1", "replicas": 4}], "gracefulEvictionTasks": [task]}
    unhealthy = {
        "status": {"conditions": [{"type": "Applied", "status": "True"}], "manifestStatuses": [{"health": "Unhealthy"}]}
    }
    healthy = json.loads(json.dumps(unhealthy).replace("Unhealthy", "Healthy"))
    assert failover.finished_tasks(after, {"m1": unhealthy}, T0 + 10) == ([task], 50)
    assert failover.finished_tasks(after, {"m1": unhealthy}, T0 + 60) == ([], None)  # grace over
    assert failover.finished_tasks(after, {"m1": healthy}, T0 + 10) == ([], None)  # moved and healthy
    assert failover.draining(after) == {"m2"}
    direct = {**task, "purgeMode": "Directly"}
    assert failover.draining({"gracefulEvictionTasks": [direct]}) == set()
    assert failover.finished_tasks({**after, "gracefulEvictionTasks": [direct]}, {}, T0) == ([], None)


def test_no_schedule_does_not_move_placed_replicas() -> None:
    no_schedule = {"key": UNREACHABLE, "effect": "NoSchedule"}
    down = cluster("m2", "False", taints=[no_schedule])
    placed = {"clusters": [{"name": "m2"}]}
    assert failover.schedulable(down, placed)["spec"]["taints"] == []
    assert failover.schedulable(down, {"clusters": [{"name": "m1"}]}) is down


def test_field_overrider_json_and_yaml() -> None:
    template = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"a.json": '{"x": {"y": 1}, "l": [1, 2]}', "b.yaml": "k: v\nn:\n  - 1\n", "plain": "text"},
    }
    overriders = {
        "fieldOverrider": [
            {
                "fieldPath": "/data/a.json",
                "json": [
                    {"subPath": "/x/y", "operator": "replace", "value": 2},
                    {"subPath": "/l/-", "operator": "add", "value": 3},
                    {"subPath": "/x/z", "operator": "add", "value": "new"},
                ],
            },
            {"fieldPath": "/data/b.yaml", "yaml": [{"subPath": "/k", "operator": "remove"}]},
            {"fieldPath": "/data/plain", "json": [{"subPath": "/x", "operator": "add", "value": 1}]},  # not JSON
            {"fieldPath": "/data/missing", "yaml": [{"subPath": "/x", "operator": "add", "value": 1}]},
        ],
        "plaintext": [{"path": "/data/plain", "operator": "replace", "value": "after"}],  # plaintext comes last
    }
    policy = {"metadata": {"name": "p"}, "spec": {"overrideRules": [{"overriders": overriders}]}}
    manifest, applied = apply_overrides(template, {"metadata": {"name": "m1"}}, [], [policy])
    assert applied == ["p"]
    assert json.loads(manifest["data"]["a.json"]) == {"x": {"y": 2, "z": "new"}, "l": [1, 2, 3]}
    assert yaml.safe_load(manifest["data"]["b.yaml"]) == {"n": [1]}
    assert manifest["data"]["plain"] == "after" and "missing" not in manifest["data"]
    assert template["data"]["a.json"] == '{"x": {"y": 1}, "l": [1, 2]}'  # the template is untouched


def _ric(kind: str, **scripts: str) -> dict[str, Any]:
    return {
        "metadata": {"name": kind.lower(), "uid": kind, "resourceVersion": "1"},
        "spec": {
            "target": {"apiVersion": "ex.io/v1", "kind": kind},
            "customizations": {op: {"luaScript": src} for op, src in scripts.items()},
        },
    }


class _Cache(list[dict[str, Any]]):
    pass


def test_interpreter_scripts_sandbox_and_defaults() -> None:
    rics = _Cache(
        [
            _ric(
                "Widget",
                healthInterpretation="function InterpretHealth(o) return o.status.ready == o.spec.size end",
                statusReflection="function ReflectStatus(o) return {ready = o.status.ready} end",
                statusAggregation=(
                    "function AggregateStatus(d, items)\n local n = 0\n"
                    " for i = 1, #items do n = n + items[i].status.ready end\n"
                    " d.status = {ready = n, names = {items[1].clusterName, items[2].clusterName}}\n return d\nend"
                ),
            ),
            _ric("Loop", healthInterpretation="function InterpretHealth(o) while true do end end"),
            _ric("Escape", healthInterpretation="function InterpretHealth(o) return os.execute('true') end"),
            _ric("Broken", healthInterpretation="function InterpretHealth(o) return ( end"),
            _ric("Hog", healthInterpretation='function InterpretHealth(o) return #string.rep("x", 1e9) > 0 end'),
        ]
    )
    interpreter = Interpreter(rics)
    widget = {"apiVersion": "ex.io/v1", "kind": "Widget", "spec": {"size": 2}, "status": {"ready": 2, "extra": 1}}
    assert interpreter.health(widget) == "Healthy"
    assert interpreter.health({**widget, "status": {"ready": 1}}) == "Unhealthy"
    assert interpreter.reflect_status(widget) == {"ready": 2}
    items = [{"clusterName": "m1", "status": {"ready": 1}}, {"clusterName": "m2", "status": {"ready": 2}}]
    assert interpreter.aggregate({**widget, "metadata": {"name": "w"}}, items) == {"ready": 3, "names": ["m1", "m2"]}
    for kind in ("Loop", "Escape", "Broken", "Hog"):  # budget, no os library, does not compile, memory cap
        assert interpreter.health({**widget, "kind": kind}) == "Unknown", kind
    # defaults: a Ready condition for other kinds; no template aggregation without a script
    ready_false = {
        "apiVersion": "x.io/v1",
        "kind": "Z",
        "status": {"conditions": [{"type": "Ready", "status": "False"}]},
    }
    assert interpreter.health(ready_false) == "Unhealthy"
    assert interpreter.health({"apiVersion": "x.io/v1", "kind": "Z"}) == "Healthy"
    assert interpreter.aggregate({"apiVersion": "x.io/v1", "kind": "Z", "metadata": {}}, items) is None
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"generation": 3}}
    summed = interpreter.aggregate(deployment, [{"status": {"readyReplicas": 1}}, {"status": {"readyReplicas": 2}}])
    assert summed is not None and summed["readyReplicas"] == 3 and summed["observedGeneration"] == 3
