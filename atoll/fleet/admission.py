"""Admission on the management plane: an Instance with member clusters cannot be deleted.

Kairship refuses to delete an instance while clusters remain joined; the refusal names the
instance and its clusters. The plugin asks the fleet manager for the live member list; when the
instance is not running on this replica it falls back to the cluster count in the Instance's
``status.summary``.
"""

from __future__ import annotations

from typing import Any, Protocol

from atoll.api import errors
from atoll.fleet.constants import KAIRSHIP_GROUP


class MemberLister(Protocol):
    async def member_clusters(self, name: str) -> list[str] | None: ...


class InstanceDeletionGuard:
    """An admission plugin (``admit(attrs)``, :mod:`atoll.apiserver.admission.chain`)."""

    def __init__(self, members: MemberLister) -> None:
        self.members = members

    async def admit(self, attrs: Any) -> None:
        rd = attrs.rd
        if attrs.operation != "DELETE" or rd.group != KAIRSHIP_GROUP or rd.plural != "instances":
            return
        clusters = await self.members.member_clusters(attrs.name)
        if clusters is None:
            summary = ((attrs.old or {}).get("status") or {}).get("summary") or {}
            count = int((summary.get("clusterSummary") or {}).get("totalNum") or 0)
            clusters = [f"{count} cluster(s)"] if count else []
        if clusters:
            raise errors.Forbidden(
                f'instances.kairship.io "{attrs.name}" is forbidden: instance "{attrs.name}" still has member '
                f"clusters ({', '.join(clusters)}); unjoin them first (status.summary.clusterSummary)",
                details={"name": attrs.name, "group": KAIRSHIP_GROUP, "kind": "instances"},
            )


class BindingLister(Protocol):
    def bindings_targeting(self, cluster: str) -> list[str]: ...


class ClusterRemovalGuard:
    """Inside an instance: a member Cluster cannot be deleted while bindings still target it
    (Kairship refuses to remove such a cluster; its workloads would be orphaned)."""

    def __init__(self, bindings: BindingLister) -> None:
        self.bindings = bindings

    async def admit(self, attrs: Any) -> None:
        rd = attrs.rd
        if attrs.operation != "DELETE" or rd.group != "cluster.karmada.io" or rd.plural != "clusters":
            return
        targeting = self.bindings.bindings_targeting(attrs.name)
        if targeting:
            shown = ", ".join(targeting[:5]) + (f" and {len(targeting) - 5} more" if len(targeting) > 5 else "")
            raise errors.Forbidden(
                f'clusters.cluster.karmada.io "{attrs.name}" is forbidden: bindings still target cluster '
                f'"{attrs.name}" in spec.clusters ({shown}); change their propagation policies first',
                details={"name": attrs.name, "group": "cluster.karmada.io", "kind": "clusters"},
            )
