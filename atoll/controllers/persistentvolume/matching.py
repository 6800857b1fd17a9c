"""Which PersistentVolume a claim may bind to (pv-controller's ``findBestMatchForClaim``).

A volume matches a claim when it is not being deleted, is free (no ``claimRef``) or pre-bound to
this claim, has the claim's class (``""`` matches ``""``), volume mode and every requested access
mode, at least the requested ``storage``, the labels of the claim's ``selector``, and — when the
claim has a selected node — node affinity admitting that node. In a Domain's namespace a volume
pinned to nodes must admit one of that domain's nodes (a claim of alice never binds a volume on
bob's node). Among matches the pre-bound one wins, then the smallest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Any

from atoll.api.errors import BadRequest
from atoll.api.quantity import parse_quantity
from atoll.api.selectors import label_selector_from_spec
from atoll.api.storage import claim_class, pv_node_terms
from atoll.scheduler.plugins.volumebinding import volume_fits

JSON = dict[str, Any]
NodeLookup = Callable[[str], JSON | None]


def storage_of(resources: Any) -> Fraction:
    try:
        return parse_quantity((resources or {}).get("storage") or "0")
    except (ValueError, TypeError):
        return Fraction(0)


def claimed_by(pv: JSON, claim: JSON) -> bool:
    """The volume's ``claimRef`` names this claim (a ref without uid is a pre-binding)."""
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    md = claim["metadata"]
    return (ref.get("name") == md.get("name") and ref.get("namespace") == md.get("namespace")
            and ref.get("uid") in (None, "", md.get("uid")))


def node_admits(pv: JSON, node: JSON | None) -> bool:
    if node is None:
        return False
    md = node.get("metadata") or {}
    return volume_fits(pv, md.get("labels") or {}, str(md.get("name") or ""))


def domain_admits(pv: JSON, domain_nodes: Iterable[JSON] | None) -> bool:
    """``domain_nodes`` None: the claim is not in a Domain's namespace (no restriction)."""
    if domain_nodes is None or not pv_node_terms(pv):
        return True
    return any(node_admits(pv, node) for node in domain_nodes)


def matches(pv: JSON, claim: JSON, *, selected: JSON | None, domain_nodes: Iterable[JSON] | None) -> bool:
    spec, cspec = pv.get("spec") or {}, claim.get("spec") or {}
    if pv["metadata"].get("deletionTimestamp") or (pv.get("status") or {}).get("phase") in ("Released", "Failed"):
        return False
    if spec.get("claimRef") and not claimed_by(pv, claim):
        return False
    if str(spec.get("storageClassName") or "") != claim_class(claim):
        return False
    if (spec.get("volumeMode") or "Filesystem") != (cspec.get("volumeMode") or "Filesystem"):
        return False
    if not set(cspec.get("accessModes") or []) <= set(spec.get("accessModes") or []):
        return False
    if storage_of(spec.get("capacity")) < storage_of((cspec.get("resources") or {}).get("requests")):
        return False
    if cspec.get("selector"):
        try:
            if not label_selector_from_spec(cspec["selector"]).matches(pv["metadata"].get("labels") or {}):
                return False
        except BadRequest:
            return False
    if selected is not None and not node_admits(pv, selected):
        return False
    return domain_admits(pv, domain_nodes)


def best_match(volumes: Iterable[JSON], claim: JSON, *, selected: JSON | None,
               domain_nodes: list[JSON] | None) -> JSON | None:
    fits = [pv for pv in volumes if matches(pv, claim, selected=selected, domain_nodes=domain_nodes)]
    if not fits:
        return None
    return min(fits, key=lambda pv: (not claimed_by(pv, claim), storage_of((pv.get("spec") or {}).get("capacity")),
                                     str(pv["metadata"].get("name"))))
