"""Validating PropagationPolicy / ClusterPropagationPolicy / OverridePolicy writes inside an
instance (Karmada's webhook, plus a check it lacks: cluster names must be joined clusters).
Every refusal is a 422 naming the field."""

from __future__ import annotations

from typing import Any, Protocol

from atoll.api import errors

JSON = dict[str, Any]
_POLICY_PLURALS = ("propagationpolicies", "clusterpropagationpolicies")
_TYPES = ("Duplicated", "Divided")
_PREFERENCES = ("Aggregated", "Weighted")


class ClusterNames(Protocol):
    def cluster_names(self) -> set[str]: ...


def _unsupported(field: str, value: Any, allowed: tuple[str, ...]) -> JSON:
    return errors.cause(
        "FieldValueNotSupported",
        field,
        f'Unsupported value: "{value}": supported values: ' + ", ".join(f'"{a}"' for a in allowed),
    )


def _names(affinity: JSON | None, field: str, known: set[str], causes: list[JSON]) -> None:
    for key in ("clusterNames", "exclude"):
        for i, name in enumerate((affinity or {}).get(key) or ()):
            if name not in known:
                causes.append(
                    errors.cause(
                        "FieldValueNotFound",
                        f"{field}.{key}[{i}]",
                        f'Not found: "{name}": no such member cluster in this instance',
                    )
                )


def policy_problems(spec: JSON, known: set[str]) -> list[JSON]:
    causes: list[JSON] = []
    if not spec.get("resourceSelectors"):
        causes.append(
            errors.cause("FieldValueRequired", "spec.resourceSelectors", "Required value: at least one selector")
        )
    for i, sel in enumerate(spec.get("resourceSelectors") or ()):
        for key in ("apiVersion", "kind"):
            if not sel.get(key):
                causes.append(
                    errors.cause("FieldValueRequired", f"spec.resourceSelectors[{i}].{key}", "Required value")
                )
    placement = spec.get("placement") or {}
    if placement.get("clusterAffinity") and placement.get("clusterAffinities"):
        causes.append(
            errors.cause(
                "FieldValueForbidden",
                "spec.placement.clusterAffinities",
                "Forbidden: clusterAffinities and clusterAffinity are mutually exclusive",
            )
        )
    _names(placement.get("clusterAffinity"), "spec.placement.clusterAffinity", known, causes)
    for i, group in enumerate(placement.get("clusterAffinities") or ()):
        _names(group, f"spec.placement.clusterAffinities[{i}]", known, causes)
    rs = placement.get("replicaScheduling") or {}
    base = "spec.placement.replicaScheduling"
    if rs.get("replicaSchedulingType") and rs["replicaSchedulingType"] not in _TYPES:
        causes.append(_unsupported(f"{base}.replicaSchedulingType", rs["replicaSchedulingType"], _TYPES))
    if rs.get("replicaDivisionPreference") and rs["replicaDivisionPreference"] not in _PREFERENCES:
        causes.append(_unsupported(f"{base}.replicaDivisionPreference", rs["replicaDivisionPreference"], _PREFERENCES))
    weights = rs.get("weightPreference") or {}
    if weights.get("dynamicWeight") and weights["dynamicWeight"] != "AvailableReplicas":
        causes.append(
            _unsupported(f"{base}.weightPreference.dynamicWeight", weights["dynamicWeight"], ("AvailableReplicas",))
        )
    for i, entry in enumerate(weights.get("staticWeightList") or ()):
        field = f"{base}.weightPreference.staticWeightList[{i}]"
        weight = entry.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
            causes.append(
                errors.cause(
                    "FieldValueInvalid",
                    f"{field}.weight",
                    f"Invalid value: {weight!r}: must be an integer of at least 1",
                )
            )
        _names(entry.get("targetCluster"), f"{field}.targetCluster", known, causes)
    return causes


class PolicyValidation:
    """An admission plugin for an instance's API server."""

    def __init__(self, clusters: ClusterNames) -> None:
        self.clusters = clusters

    async def admit(self, attrs: Any) -> None:
        rd = attrs.rd
        if attrs.operation not in ("CREATE", "UPDATE") or attrs.subresource or rd.group != "policy.karmada.io":
            return
        if rd.plural not in _POLICY_PLURALS or attrs.obj is None:
            return
        causes = policy_problems(attrs.obj.get("spec") or {}, self.clusters.cluster_names())
        if causes:
            raise errors.invalid(rd.kind, rd.group, attrs.name, causes)
