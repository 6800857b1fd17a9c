"""Karmada's placement pieces: Webster division, scheduling strategies, policy precedence, overriders."""

from __future__ import annotations

from typing import Any

import pytest

from atoll.fleet.karmada.division import DivisionError, aggregated, divide_by_availability, fnv32a, webster
from atoll.fleet.karmada.names import binding_name, work_name
from atoll.fleet.karmada.overrides import apply_overrides
from atoll.fleet.karmada.placement import ScheduleError, schedule
from atoll.fleet.karmada.policies import matching_policy
from atoll.fleet.karmada.validation import policy_problems


def cluster(
    name: str,
    labels: dict[str, str] | None = None,
    taints: list[Any] | None = None,
    cpu: str = "8",
    allocated: str = "0",
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"taints": taints or []},
        "status": {"resourceSummary": {"allocatable": {"cpu": cpu, "pods": "110"}, "allocated": {"cpu": allocated}}},
    }


def test_webster_static_weights_and_tie_break() -> None:
    assert webster(6, {"m1": 1, "m2": 2}) == {"m1": 2, "m2": 4}
    assert webster(12, {"a": 6, "b": 12, "c": 18}) == {"a": 2, "b": 4, "c": 6}
    # an odd seat between equal weights goes by the UID hash parity: name order flips
    even = next(u for u in ("u1", "u2", "u3", "u4") if fnv32a(u) % 2 == 0)
    odd = next(u for u in ("u1", "u2", "u3", "u4") if fnv32a(u) % 2 == 1)
    assert webster(1, {"a": 1, "b": 1}, even) == {"a": 1, "b": 0}
    assert webster(1, {"a": 1, "b": 1}, odd) == {"a": 0, "b": 1}
    assert sum(webster(7, {"a": 1, "b": 1, "c": 1}, "x").values()) == 7
    with pytest.raises(DivisionError):
        webster(3, {"a": 0})


def test_dynamic_and_aggregated() -> None:
    assert divide_by_availability(12, {"a": 6, "b": 12, "c": 18}, "u") == {"a": 2, "b": 4, "c": 6}
    assert aggregated(10, {"a": 6, "b": 12, "c": 3}, "u") == {"b": 10}
    assert sum(aggregated(15, {"a": 6, "b": 12, "c": 3}, "u").values()) == 15
    with pytest.raises(DivisionError, match="not enough"):
        divide_by_availability(40, {"a": 6, "b": 12}, "u")


def test_schedule_affinity_tolerations_and_strategies() -> None:
    clusters = [
        cluster("m1", {"env": "prod"}),
        cluster("m2", {"env": "prod"}),
        cluster("m3", {"env": "dev"}),
        cluster("m4", {"env": "prod"}, [{"key": "cluster.karmada.io/not-ready", "effect": "NoSchedule"}]),
    ]
    placement = {
        "clusterAffinity": {"labelSelector": {"matchLabels": {"env": "prod"}}, "exclude": ["m2"]},
        "replicaScheduling": {"replicaSchedulingType": "Duplicated"},
    }
    targets, _ = schedule(placement, clusters, api_version="v1", kind="ConfigMap", replicas=3, uid="u")
    assert [(t.name, t.replicas) for t in targets] == [("m1", 3)]
    tolerating = {**placement, "clusterTolerations": [{"key": "cluster.karmada.io/not-ready", "operator": "Exists"}]}
    targets, _ = schedule(tolerating, clusters, api_version="v1", kind="ConfigMap", replicas=3, uid="u")
    assert [t.name for t in targets] == ["m1", "m4"]
    fallback = {
        "clusterAffinities": [
            {"affinityName": "gpu", "clusterNames": ["m9"]},
            {"affinityName": "any", "clusterNames": ["m3"]},
        ]
    }
    targets, group = schedule(fallback, clusters, api_version="v1", kind="ConfigMap", replicas=0, uid="u")
    assert group == "any" and [t.name for t in targets] == ["m3"]
    dynamic = {
        "clusterAffinity": {"clusterNames": ["m1", "m3"]},
        "replicaScheduling": {
            "replicaSchedulingType": "Divided",
            "weightPreference": {"dynamicWeight": "AvailableReplicas"},
        },
    }
    busy = [cluster("m1", cpu="4"), cluster("m3", cpu="8")]
    targets, _ = schedule(
        dynamic, busy, api_version="apps/v1", kind="Deployment", replicas=6, uid="u", request={"cpu": "1"}
    )
    assert {t.name: t.replicas for t in targets} == {"m1": 2, "m3": 4}
    with pytest.raises(ScheduleError) as none:
        schedule(
            {"clusterAffinity": {"clusterNames": ["zz"]}},
            clusters,
            api_version="v1",
            kind="ConfigMap",
            replicas=0,
            uid="u",
        )
    assert none.value.reason == "NoClusterFit"
    spread = {"spreadConstraints": [{"spreadByField": "cluster", "maxGroups": 2, "minGroups": 2}]}
    targets, _ = schedule(spread, clusters[:3], api_version="v1", kind="ConfigMap", replicas=0, uid="u")
    assert len(targets) == 2


def test_policy_precedence() -> None:
    template = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "a", "namespace": "ns", "labels": {"x": "1"}},
    }

    def pp(name: str, selector: dict[str, Any], priority: int = 0, ns: str | None = "ns") -> dict[str, Any]:
        md: dict[str, Any] = {"name": name, "uid": name}
        if ns:
            md["namespace"] = ns
        return {
            "metadata": md,
            "spec": {
                "priority": priority,
                "resourceSelectors": [{"apiVersion": "v1", "kind": "ConfigMap", **selector}],
            },
        }

    kind_only, by_label, by_name = (
        pp("k", {}),
        pp("l", {"labelSelector": {"matchLabels": {"x": "1"}}}),
        pp("n", {"name": "a"}),
    )

    def winner(policies: list[dict[str, Any]], cluster_policies: list[dict[str, Any]]) -> str:
        found = matching_policy(template, policies, cluster_policies)
        return str(found["metadata"]["name"]) if found else ""

    assert winner([kind_only, by_label, by_name], []) == "n"
    assert winner([kind_only, by_label], []) == "l"
    assert winner([kind_only, pp("p", {}, priority=5), by_name], []) == "p"
    assert winner([], [pp("c", {}, ns=None)]) == "c"
    assert matching_policy(template, [pp("other", {"name": "b"})], []) is None


def test_overriders_in_karmadas_order() -> None:
    deploy: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "w", "labels": {"a": "1"}},
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "main", "image": "docker.io/library/nginx:1.25", "args": ["--x"]}]}
            }
        },
    }
    cop = {
        "metadata": {"name": "cop"},
        "spec": {
            "overrideRules": [
                {"overriders": {"imageOverrider": [{"component": "Tag", "operator": "replace", "value": "1.26"}]}}
            ]
        },
    }
    op = {
        "metadata": {"name": "op", "namespace": "d"},
        "spec": {
            "overrideRules": [
                {
                    "targetCluster": {"clusterNames": ["m2"]},
                    "overriders": {
                        "imageOverrider": [{"component": "Registry", "operator": "replace", "value": "mirror.local"}],
                        "argsOverrider": [{"containerName": "main", "operator": "add", "value": ["--y"]}],
                        "labelsOverrider": [{"operator": "add", "value": {"b": "2"}}],
                        "plaintext": [{"path": "/spec/replicas", "operator": "add", "value": 3}],
                    },
                }
            ]
        },
    }
    m1, applied1 = apply_overrides(deploy, cluster("m1"), [cop], [op])
    m2, applied2 = apply_overrides(deploy, cluster("m2"), [cop], [op])
    assert m1["spec"]["template"]["spec"]["containers"][0]["image"] == "docker.io/library/nginx:1.26"
    assert applied1 == ["cop"] and applied2 == ["cop", "op"]
    c2 = m2["spec"]["template"]["spec"]["containers"][0]
    assert c2["image"] == "mirror.local/library/nginx:1.26" and c2["args"] == ["--x", "--y"]
    assert m2["metadata"]["labels"] == {"a": "1", "b": "2"} and m2["spec"]["replicas"] == 3
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "docker.io/library/nginx:1.25"


def test_names_and_validation() -> None:
    assert binding_name("Deployment", "web") == "web-deployment"
    assert work_name("default", "web", "Deployment") == f"web-{fnv32a('default-web-Deployment')}"
    problems = policy_problems(
        {
            "resourceSelectors": [],
            "placement": {
                "clusterAffinity": {"clusterNames": ["nope"]},
                "replicaScheduling": {
                    "replicaSchedulingType": "Split",
                    "weightPreference": {
                        "staticWeightList": [{"targetCluster": {"clusterNames": ["m1"]}, "weight": -1}]
                    },
                },
            },
        },
        {"m1"},
    )
    fields = {p["field"] for p in problems}
    assert fields == {
        "spec.resourceSelectors",
        "spec.placement.clusterAffinity.clusterNames[0]",
        "spec.placement.replicaScheduling.replicaSchedulingType",
        "spec.placement.replicaScheduling.weightPreference.staticWeightList[0].weight",
    }
