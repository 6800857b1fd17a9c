"""NodeRestriction: a domain's own credentials write only Nodes (and node Leases) of that domain.

The grants themselves are ``atoll.apiserver.auth.nodegrants``; this admission plugin checks the
objects: a Node created or updated by a domain identity must be labelled
``kuscia.secretflow/namespace=<domain>`` before and after, and a Lease in ``kube-node-lease`` must
belong to one of its nodes — as Kubernetes' NodeRestriction does for kubelets.

PersistentVolumes: the grants let a domain identity (its ServiceAccount or its lite's certificate)
update a volume pinned to one of its nodes so that its agent can release the local-path cleanup
finalizer. That update may do nothing else: any change of ``spec`` (path, node affinity, claim),
labels, annotations or owners, or a finalizer added or other than ``local-path.atoll.dev/cleanup``
removed, is a 403 naming the field. Without it a tenant could repoint its own volume at another
domain's node and directory and have that node's agent delete the other domain's data when the
volume is released. (Kubernetes' NodeRestriction gives kubelets no PersistentVolume writes at all.)
"""

from __future__ import annotations

from typing import Any

from atoll.api import errors
from atoll.api.constants import LABEL_NODE_NAMESPACE, NODE_LEASE_NAMESPACE
from atoll.api.registry import ResourceDef
from atoll.api.storage import LOCAL_PATH_CLEANUP
from atoll.apiserver.admission.chain import Attributes
from atoll.apiserver.auth.nodegrants import NodeGrants, node_domain
from atoll.apiserver.cache.watchcache import WatchCache

JSON = dict[str, Any]
_FROZEN_META = ("labels", "annotations", "ownerReferences")


def volume_change_refusal(old: JSON, new: JSON) -> str | None:
    """The field a node agent's volume update may not change, if it changes one (None: it only
    removes the ``local-path.atoll.dev/cleanup`` finalizer, or nothing)."""
    if new.get("spec") != old.get("spec"):
        return "spec"
    old_md, new_md = old.get("metadata") or {}, new.get("metadata") or {}
    for key in _FROZEN_META:
        if (new_md.get(key) or None) != (old_md.get(key) or None):
            return f"metadata.{key}"
    before, after = set(old_md.get("finalizers") or []), set(new_md.get("finalizers") or [])
    if not after <= before or not before - after <= {LOCAL_PATH_CLEANUP}:
        return "metadata.finalizers"
    return None


class NodeRestriction:
    """A domain identity writes only Nodes (and node Leases) of its own domain, and releases but
    never rewrites its nodes' volumes."""

    def __init__(self, grants: NodeGrants, cache: WatchCache) -> None:
        self._grants = grants
        self._cache = cache

    @staticmethod
    def applies_to(rd: ResourceDef) -> bool:
        return (rd.plural, rd.group) in (("persistentvolumes", ""), ("nodes", ""), ("leases", "coordination.k8s.io"))

    async def admit(self, attrs: Attributes) -> None:
        if attrs.user is None or attrs.operation not in ("CREATE", "UPDATE"):
            return
        plural, group = attrs.rd.plural, attrs.rd.group
        if plural == "persistentvolumes" and group == "":
            self._admit_volume(attrs)
            return
        if not ((plural == "nodes" and group == "") or (plural == "leases" and group == "coordination.k8s.io")):
            return
        domain = self._grants.domain_of(attrs.user)
        if domain is None:
            return
        if plural == "nodes":
            for obj in (attrs.obj, attrs.old):
                if obj is not None and node_domain(obj) != domain:
                    raise errors.Forbidden(
                        f'nodes "{attrs.name}" is forbidden: domain "{domain}" may only write nodes labelled '
                        f"{LABEL_NODE_NAMESPACE}={domain}",
                        details={"name": attrs.name, "kind": "nodes"},
                    )
            return
        if attrs.namespace == NODE_LEASE_NAMESPACE:
            cached = self._cache.get(f"/core/nodes/{attrs.name}")
            if cached is None or node_domain(cached.obj) != domain:
                raise errors.Forbidden(
                    f'leases.coordination.k8s.io "{attrs.name}" is forbidden: domain "{domain}" may only write '
                    f"the leases of its own nodes",
                    details={"name": attrs.name, "group": "coordination.k8s.io", "kind": "leases"},
                )

    def _admit_volume(self, attrs: Attributes) -> None:
        if attrs.operation != "UPDATE" or attrs.old is None or attrs.obj is None or attrs.user is None:
            return
        domain = self._grants.volume_writer(attrs.user)
        if domain is None:
            return
        field = volume_change_refusal(attrs.old, attrs.obj)
        if field is not None:
            raise errors.Forbidden(
                f'persistentvolumes "{attrs.name}" is forbidden: domain "{domain}" may only remove the '
                f"{LOCAL_PATH_CLEANUP} finalizer of its node's volumes, not change {field}",
                details={"name": attrs.name, "kind": "persistentvolumes",
                         "causes": [{"reason": "FieldValueForbidden", "field": field,
                                     "message": "may not be changed by a node agent"}]},
            )
