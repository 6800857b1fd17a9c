"""``VolumeBinding``: pods with PersistentVolumeClaims go where their volumes can be.

kube-scheduler's plugin of that name, for what Atoll provisions:

* **PreFilter**: every claim the pod names must exist and not be being deleted (else the pod is
  unschedulable until it is created); a claim that is unbound in an ``Immediate`` class must be
  bound first (``pod has unbound immediate PersistentVolumeClaims``).
* **Filter**: a bound claim's volume must accept the node (``spec.nodeAffinity`` of a local or
  hostPath PV: ``node(s) had volume node affinity conflict``). An unbound claim of a
  ``WaitForFirstConsumer`` class fits any node the pod itself fits (the class provisions there),
  unless a node was already selected for it (by an earlier pod): then only that node.
* **PreBind**: each unbound ``WaitForFirstConsumer`` claim is annotated
  ``volume.kubernetes.io/selected-node: <node>``, which tells the provisioner (the
  ``persistentvolume`` controller) where to create the volume; the patch is pinned to the claim's
  resourceVersion, so two pods racing for one claim never move it. Unlike kube-scheduler the binding
  does not wait for the claim to be bound: the node's agent holds the container in
  ``ContainerCreating`` until it is, as the kubelet does while a volume attaches.

Domain isolation needs nothing here: the pod is already limited to its domain's nodes, and the
controller refuses a selected node of another domain.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from atoll.api.errors import APIError, Conflict, NotFound
from atoll.api.kinds import kind
from atoll.api.storage import SELECTED_NODE, STORAGE_CLASSES, WAIT_FOR_FIRST_CONSUMER, pod_claims, pv_node_terms
from atoll.client import Client, ClientError
from atoll.runtime.cache import Cache
from atoll.scheduler.framework import SUCCESS, CycleState, Status
from atoll.scheduler.nodeinfo import NodeInfo
from atoll.scheduler.plugins.nodeaffinity import parse_term

JSON = dict[str, Any]
NAME = "VolumeBinding"
PVCS = kind("", "persistentvolumeclaims")
PVS = kind("", "persistentvolumes")
CONFLICT = "node(s) had volume node affinity conflict"
SELECTED_ELSEWHERE = "node(s) did not match the node selected for the pod's unbound PersistentVolumeClaims"
_STATE = "VolumeBinding/claims"
log = logging.getLogger(__name__)


def volume_fits(pv: JSON, node_labels: Mapping[str, str], node_name: str) -> bool:
    """Whether a PersistentVolume's required node affinity admits the node (none: every node)."""
    terms = pv_node_terms(pv)
    if not terms:
        return True
    fields = {"metadata.name": node_name}
    return any(parse_term(t).matches(node_labels, fields) for t in terms)


def waits_for_consumer(sc: JSON | None) -> bool:
    return bool(sc) and (sc or {}).get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER


class VolumeBinding:
    name = NAME

    def __init__(self, client: Client, *, claims: Cache, volumes: Cache, classes: Cache) -> None:
        self.client, self.claims, self.volumes, self.classes = client, claims, volumes, classes

    def pre_filter(self, state: CycleState, pod: JSON) -> Status:
        names = pod_claims(pod)
        if not names:
            return SUCCESS
        namespace = str(pod["metadata"].get("namespace") or "")
        bound: list[JSON] = []
        delayed: list[tuple[str, str]] = []
        pinned: set[str] = set()
        for name in names:
            claim = self.claims.get(name, namespace)
            if claim is None:
                return Status.unschedulable(f'persistentvolumeclaim "{name}" not found', resolvable=False)
            if claim["metadata"].get("deletionTimestamp"):
                return Status.unschedulable(f'persistentvolumeclaim "{name}" is being deleted', resolvable=False)
            volume_name = (claim.get("spec") or {}).get("volumeName")
            if volume_name:
                pv = self.volumes.get(str(volume_name))
                if pv is None:
                    return Status.unschedulable(f'persistentvolume "{volume_name}" not found', resolvable=False)
                bound.append(pv)
                continue
            sc = self.classes.get(str((claim.get("spec") or {}).get("storageClassName") or ""))
            if not waits_for_consumer(sc):
                return Status.unschedulable("pod has unbound immediate PersistentVolumeClaims", resolvable=False)
            selected = (claim["metadata"].get("annotations") or {}).get(SELECTED_NODE)
            if selected:
                pinned.add(str(selected))  # provisioning there is under way: follow it
            else:
                delayed.append((name, str(claim["metadata"].get("resourceVersion") or "")))
        if len(pinned) > 1:
            return Status.unschedulable("pod's claims were selected for different nodes", resolvable=False)
        state[_STATE] = (bound, delayed, pinned)
        return SUCCESS

    def filter(self, state: CycleState, pod: JSON, node: NodeInfo) -> Status:
        bound, _, pinned = state.get(_STATE) or ((), (), set())
        for pv in bound:
            if not volume_fits(pv, node.labels, node.name):
                return Status.unschedulable(CONFLICT, resolvable=False)
        if pinned and node.name not in pinned:
            return Status.unschedulable(SELECTED_ELSEWHERE, resolvable=False)
        return SUCCESS

    async def pre_bind(self, state: CycleState, pod: JSON, node_name: str) -> Status:
        _, delayed, _ = state.get(_STATE) or ((), (), set())
        namespace = str(pod["metadata"].get("namespace") or "")
        for name, version in delayed:
            # pinned to the version seen: a claim another pod selected a node for meanwhile is not moved
            patch = {"metadata": {"annotations": {SELECTED_NODE: node_name}, "resourceVersion": version or None}}
            try:
                await self.client.patch(PVCS, name, patch, namespace)
            except NotFound:
                return Status.unschedulable(f'persistentvolumeclaim "{name}" not found')
            except Conflict as exc:
                return Status.error(str(exc))
            except (APIError, ClientError) as exc:
                log.warning("could not select node %s for claim %s/%s: %s", node_name, namespace, name, exc)
                return Status.error(f"selecting node for claim {name}: {exc}")
        return SUCCESS


__all__ = ["NAME", "PVCS", "PVS", "STORAGE_CLASSES", "VolumeBinding", "volume_fits", "waits_for_consumer"]
