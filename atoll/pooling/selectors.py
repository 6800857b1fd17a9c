"""``core/v1`` NodeSelector matching for ClusterBinding and ResourceLeasingPolicy selectors.

Terms are ORed, requirements within a term ANDed; operators ``In``, ``NotIn``, ``Exists``,
``DoesNotExist``, ``Gt``, ``Lt`` on labels and ``matchFields`` on ``metadata.name`` (the same
semantics as the scheduler's NodeAffinity). A nil/empty selector (no terms) selects every node,
which is Kubeocean's rule for ``spec.nodeSelector``.
"""

from __future__ import annotations

from typing import Any

from atoll.api.selectors import Requirement

JSON = dict[str, Any]
_OPS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists", "Gt": "gt", "Lt": "lt"}


def _requirements(exprs: Any) -> list[Requirement] | None:
    out = []
    for expr in exprs or ():
        op = _OPS.get(str(expr.get("operator")))
        if op is None:
            return None
        out.append(Requirement(str(expr.get("key", "")), op, frozenset(str(v) for v in expr.get("values") or ())))
    return out


def selector_problem(selector: Any, path: str) -> str | None:
    """Why ``selector`` is not a valid NodeSelector (naming the field), or None."""
    if selector is None:
        return None
    if not isinstance(selector, dict):
        return f"{path}: must be a NodeSelector object"
    for i, term in enumerate(selector.get("nodeSelectorTerms") or ()):
        for key in ("matchExpressions", "matchFields"):
            for j, expr in enumerate(term.get(key) or ()):
                if str(expr.get("operator")) not in _OPS:
                    return f"{path}.nodeSelectorTerms[{i}].{key}[{j}].operator: unsupported {expr.get('operator')!r}"
    return None


def matches(selector: JSON | None, node: JSON) -> bool:
    terms = (selector or {}).get("nodeSelectorTerms") or []
    if not terms:
        return True
    labels = (node.get("metadata") or {}).get("labels") or {}
    fields = {"metadata.name": str((node.get("metadata") or {}).get("name", ""))}
    for term in terms:
        label_reqs = _requirements(term.get("matchExpressions"))
        field_reqs = _requirements(term.get("matchFields"))
        if label_reqs is None or field_reqs is None or not (label_reqs or field_reqs):
            continue
        if all(r.matches(labels) for r in label_reqs) and all(r.matches(fields) for r in field_reqs):
            return True
    return False
