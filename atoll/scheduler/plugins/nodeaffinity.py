"""``NodeAffinity``: ``spec.nodeSelector`` and required node affinity filter; preferred terms score.

Node selector terms are ORed, the requirements within a term ANDed, and a term without
requirements matches nothing (``v1.NodeSelectorTerm``). Operators: ``In``, ``NotIn``, ``Exists``,
``DoesNotExist``, ``Gt``, ``Lt`` (integers) on labels; ``matchFields`` supports ``metadata.name``.
The pod's terms are parsed once per scheduling cycle (PreFilter) and kept in the cycle state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from atoll.api.selectors import Requirement
from atoll.scheduler.framework import SUCCESS, CycleState, Status, normalize_to_max
from atoll.scheduler.nodeinfo import NodeInfo

JSON = dict[str, Any]
NAME = "NodeAffinity"
REASON = "node(s) didn't match Pod's node affinity/selector"
_OPS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists", "Gt": "gt", "Lt": "lt"}


@dataclass(frozen=True, slots=True)
class Term:
    """One ``NodeSelectorTerm``; ``valid`` is False for a term that can match no node."""

    labels: tuple[Requirement, ...] = ()
    fields: tuple[Requirement, ...] = ()
    valid: bool = True

    def matches(self, node_labels: Mapping[str, str], node_fields: Mapping[str, str]) -> bool:
        if not self.valid or not (self.labels or self.fields):
            return False
        return all(r.matches(node_labels) for r in self.labels) and all(r.matches(node_fields) for r in self.fields)


@dataclass(frozen=True, slots=True)
class PodAffinity:
    selector: Mapping[str, str]
    required: tuple[Term, ...] | None  # None: no required node affinity
    preferred: tuple[tuple[int, Term], ...]

    def fits(self, node: NodeInfo) -> bool:
        labels = node.labels
        if any(labels.get(k) != v for k, v in self.selector.items()):
            return False
        if self.required is None:
            return True
        fields = {"metadata.name": node.name}
        return any(term.matches(labels, fields) for term in self.required)


def _requirements(exprs: Any) -> tuple[tuple[Requirement, ...], bool]:
    out = []
    for expr in exprs or ():
        op = _OPS.get(str(expr.get("operator")))
        values = [str(v) for v in expr.get("values") or ()]
        if op is None or (op in ("gt", "lt") and (len(values) != 1 or not values[0].lstrip("-").isdigit())):
            return (), False
        out.append(Requirement(str(expr.get("key", "")), op, frozenset(values)))
    return tuple(out), True


def parse_term(term: JSON) -> Term:
    labels, labels_ok = _requirements(term.get("matchExpressions"))
    fields, fields_ok = _requirements(term.get("matchFields"))
    return Term(labels, fields, labels_ok and fields_ok)


def pod_affinity(pod: JSON) -> PodAffinity:
    spec = pod.get("spec") or {}
    node_affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    required_spec = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    required = None
    if required_spec is not None:
        required = tuple(parse_term(t) for t in required_spec.get("nodeSelectorTerms") or ())
    preferred = tuple(
        (int(p.get("weight") or 0), parse_term(p.get("preference") or {}))
        for p in node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or ()
    )
    selector = {str(k): str(v) for k, v in (spec.get("nodeSelector") or {}).items()}
    return PodAffinity(selector, required, preferred)


class NodeAffinity:
    """Filter on nodeSelector + required terms; score = sum of matching preferred term weights."""

    name = NAME
    weight = 2

    def pre_filter(self, state: CycleState, pod: JSON) -> Status:
        state[NAME] = pod_affinity(pod)
        return SUCCESS

    def _affinity(self, state: CycleState, pod: JSON) -> PodAffinity:
        affinity = state.get(NAME)
        if not isinstance(affinity, PodAffinity):
            affinity = state[NAME] = pod_affinity(pod)
        return affinity

    def filter(self, state: CycleState, pod: JSON, node: NodeInfo) -> Status:
        if self._affinity(state, pod).fits(node):
            return SUCCESS
        return Status.unschedulable(REASON, resolvable=False)

    def score(self, state: CycleState, pod: JSON, node: NodeInfo) -> float:
        labels, fields = node.labels, {"metadata.name": node.name}
        return float(sum(w for w, term in self._affinity(state, pod).preferred if term.matches(labels, fields)))

    def normalize(self, scores: dict[str, float]) -> None:
        normalize_to_max(scores)
