"""Which PropagationPolicy / ClusterPropagationPolicy claims a resource template (Karmada's
resource detector): namespaced policies (same namespace) win over cluster ones; then the highest
``priority``; then the most precise matching selector (name > labelSelector > kind only); then
the name, alphabetically.
"""

from __future__ import annotations

from typing import Any

from atoll.api.errors import BadRequest
from atoll.api.selectors import label_selector_from_spec

JSON = dict[str, Any]
PRECISION_NAME, PRECISION_LABELS, PRECISION_KIND, NO_MATCH = 3, 2, 1, 0


def precision(selector: JSON, template: JSON) -> int:
    """How precisely ``selector`` matches ``template`` (``NO_MATCH`` when it does not)."""
    md = template.get("metadata") or {}
    if selector.get("apiVersion") != template.get("apiVersion") or selector.get("kind") != template.get("kind"):
        return NO_MATCH
    if selector.get("namespace") and selector["namespace"] != md.get("namespace"):
        return NO_MATCH
    if selector.get("name"):
        return PRECISION_NAME if selector["name"] == md.get("name") else NO_MATCH
    if selector.get("labelSelector") is not None:
        try:
            matches = label_selector_from_spec(selector["labelSelector"]).matches(md.get("labels") or {})
        except BadRequest:
            return NO_MATCH
        return PRECISION_LABELS if matches else NO_MATCH
    return PRECISION_KIND


def selector_matches(selector: JSON, template: JSON) -> bool:
    return precision(selector, template) != NO_MATCH


def best_precision(policy: JSON, template: JSON) -> int:
    return max((precision(s, template) for s in (policy.get("spec") or {}).get("resourceSelectors") or ()), default=0)


def matching_policy(template: JSON, policies: list[JSON], cluster_policies: list[JSON]) -> JSON | None:
    """The policy that claims ``template`` (``policies`` are namespaced, ``cluster_policies`` not)."""
    namespace = (template.get("metadata") or {}).get("namespace")
    for candidates in ([p for p in policies if p["metadata"].get("namespace") == namespace], cluster_policies):
        scored = [(p, best_precision(p, template)) for p in candidates if not p["metadata"].get("deletionTimestamp")]
        scored = [(p, s) for p, s in scored if s != NO_MATCH]
        if scored:
            scored.sort(
                key=lambda ps: (
                    -int((ps[0].get("spec") or {}).get("priority") or 0),
                    -ps[1],
                    str(ps[0]["metadata"]["name"]),
                )
            )
            return scored[0][0]
    return None
