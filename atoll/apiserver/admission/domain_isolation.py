"""Domain isolation admission: a domain's pods run only on its own nodes (or on shared nodes).

A *domain namespace* is one the Domain controller labelled ``kuscia.secretflow/domain-name``; a
*domain node* is one an agent labelled ``kuscia.secretflow/namespace``. A pod in domain ``D``
(created, updated or bound) is refused with 403, naming both domains, when

* ``spec.nodeName`` names a node of another domain ``E``;
* ``spec.nodeSelector`` or every required node-affinity term pins ``kuscia.secretflow/namespace``
  to values other than ``D``; or
* every required node-affinity term names nodes (``matchFields metadata.name``) that all belong to
  other domains.

A selector on other labels may match nodes the domain registers later, so it is left to the
scheduler (which never places the pod on another domain's node) and the agent.

Nodes without the domain label (shared or master nodes) are allowed. This is the API server's half
of defence in depth: the scheduler never binds across domains and the agent refuses such pods too.
Kuscia relies on the scheduler alone; a tenant setting ``nodeName`` bypasses it there.
"""

from __future__ import annotations

from typing import Any

from atoll.api import errors
from atoll.api.constants import LABEL_DOMAIN_NAME, LABEL_NODE_NAMESPACE
from atoll.api.registry import ResourceDef
from atoll.apiserver.admission.chain import Attributes
from atoll.apiserver.auth.nodegrants import node_domain
from atoll.apiserver.cache.watchcache import WatchCache
from atoll.scheduler.plugins.nodeaffinity import Term, pod_affinity

JSON = dict[str, Any]


def _labels(obj: JSON | None) -> dict[str, Any]:
    md = (obj or {}).get("metadata")
    labels = md.get("labels") if isinstance(md, dict) else None
    return labels if isinstance(labels, dict) else {}


def _pins_elsewhere(term: Term, domain: str) -> bool:
    """True when ``term`` requires the node's domain label and no value of it is ``domain``."""
    pinned = [r for r in term.labels if r.key == LABEL_NODE_NAMESPACE]
    return bool(pinned) and not all(r.matches({LABEL_NODE_NAMESPACE: domain}) for r in pinned)


class DomainIsolation:
    """Refuses pods of a domain namespace that can only run on another domain's nodes."""

    def __init__(self, cache: WatchCache) -> None:
        self._cache = cache

    def namespace_domain(self, namespace: str) -> str | None:
        cached = self._cache.get(f"/core/namespaces/{namespace}")
        value = _labels(cached.obj if cached else None).get(LABEL_DOMAIN_NAME)
        return str(value) if value else None

    @staticmethod
    def applies_to(rd: ResourceDef) -> bool:
        return not rd.group and rd.plural == "pods"

    @staticmethod
    def handles(rd: ResourceDef, operation: str, subresource: str) -> bool:
        return operation in ("CREATE", "UPDATE") and subresource != "status"

    async def admit(self, attrs: Attributes) -> None:
        if attrs.rd.group or attrs.rd.plural != "pods" or attrs.obj is None or attrs.namespace is None:
            return
        if attrs.operation not in ("CREATE", "UPDATE") or attrs.subresource == "status":
            return
        spec = attrs.obj.get("spec")
        if not isinstance(spec, dict):
            return
        domain = self.namespace_domain(attrs.namespace)
        if domain is None:
            return
        other = self._other_domain(attrs.obj, spec, domain)
        if other is not None:
            target, theirs = other
            raise errors.Forbidden(
                f'pods "{attrs.name}" is forbidden: a pod of domain "{domain}" cannot run on {target} '
                f'of domain "{theirs}"',
                details={"name": attrs.name, "kind": "pods"},
            )

    def _other_domain(self, pod: JSON, spec: JSON, domain: str) -> tuple[str, str] | None:
        node_name = spec.get("nodeName")
        if isinstance(node_name, str) and node_name:
            cached = self._cache.get(f"/core/nodes/{node_name}")
            theirs = node_domain(cached.obj if cached else None)
            return (f'node "{node_name}"', theirs) if theirs not in (None, domain) else None
        try:
            affinity = pod_affinity(pod)
        except (AttributeError, TypeError, ValueError):
            return None  # malformed: schema validation answers 422
        pinned = affinity.selector.get(LABEL_NODE_NAMESPACE)
        if pinned is not None and pinned != domain:
            return "nodes selected by spec.nodeSelector", pinned
        terms = affinity.required
        if terms and all(_pins_elsewhere(t, domain) for t in terms):
            values = sorted({v for t in terms for r in t.labels if r.key == LABEL_NODE_NAMESPACE for v in r.values})
            return "nodes required by spec.affinity.nodeAffinity", ", ".join(values) or "?"
        return self._named_foreign_nodes(terms, domain)

    def _named_foreign_nodes(self, terms: tuple[Term, ...] | None, domain: str) -> tuple[str, str] | None:
        """Required terms that each name nodes (``matchFields metadata.name In``), all of which
        exist and belong to other domains: the pod can run nowhere else."""
        if not terms:
            return None
        theirs: set[str] = set()
        for term in terms:
            named = [r for r in term.fields if r.key == "metadata.name" and r.op == "in"]
            if not named:
                return None
            for name in set.intersection(*(set(r.values) for r in named)):
                cached = self._cache.get(f"/core/nodes/{name}")
                other = node_domain(cached.obj if cached else None)
                if other is None or other == domain:
                    return None
                theirs.add(other)
        return ("the nodes named by spec.affinity.nodeAffinity", ", ".join(sorted(theirs))) if theirs else None
