"""PersistentVolume controller (kube-controller-manager's ``persistentvolume-binder``,
``pvc-protection`` and ``pv-protection``, plus the local-path provisioner's master half).

One work queue holds both kinds: a key without namespace is a PersistentVolume
(:func:`.volumes.sync_volume`), a namespaced key a claim (:func:`.claims.sync_claim`). A claim's
change enqueues its volume and a volume's change its claim; a pod's change enqueues the claims it
uses (protection); a StorageClass its claims; a Node its selected claims (its local-path root may
have appeared) and, when it goes away, the volumes pinned to it.
"""

from __future__ import annotations

from collections.abc import Iterable

from atoll.api.errors import Conflict
from atoll.api.kinds import NAMESPACES, NODES, PODS
from atoll.api.storage import SELECTED_NODE, STORAGE_CLASSES, claim_class, pod_claims, pv_single_node
from atoll.controllers import ControllerContext
from atoll.controllers.persistentvolume.claims import sync_claim
from atoll.controllers.persistentvolume.state import CLAIMS_INDEX, PVCS, PVS, Volumes, claims_of_pod, ensure_index
from atoll.controllers.persistentvolume.volumes import sync_volume
from atoll.runtime import Cache, Controller, Manager, ObjectKey, Result
from atoll.runtime.events import EventRecorder
from atoll.runtime.keys import JSON, Mapper, key_of

NAME = "persistentvolume"
SELECTED_INDEX = "persistentvolume/selected-node"
CONFLICT_RETRY = 0.2


class PersistentVolumeReconciler:
    def __init__(self, volumes: Volumes) -> None:
        self.v = volumes

    async def reconcile(self, key: ObjectKey) -> Result:
        try:
            if key.namespace is None:
                pv = self.v.volumes.get_key(key)
                if pv is not None:
                    await sync_volume(self.v, pv)
            else:
                claim = self.v.claims.get_key(key)
                if claim is not None:
                    await sync_claim(self.v, claim)
        except Conflict:
            return Result(requeue_after=CONFLICT_RETRY)  # our cache was behind: the next event or retry converges
        return Result()


def setup(manager: Manager, ctx: ControllerContext) -> None:
    claims, volumes = manager.informer(PVCS), manager.informer(PVS)
    classes, nodes = manager.informer(STORAGE_CLASSES), manager.informer(NODES)
    namespaces, pods = manager.informer(NAMESPACES), manager.informer(PODS)
    ensure_index(pods.cache, CLAIMS_INDEX, claims_of_pod)
    ensure_index(claims.cache, SELECTED_INDEX, _selected_node)
    state = Volumes(ctx.client, claims=claims.cache, volumes=volumes.cache, classes=classes.cache,
                    nodes=nodes.cache, namespaces=namespaces.cache, pods=pods.cache,
                    events=EventRecorder(ctx.client, "persistentvolume-controller"))
    controller: Controller[ObjectKey] = Controller(NAME, PersistentVolumeReconciler(state), workers=ctx.workers)
    controller.watch(claims, _claim_and_volume)
    controller.watch(volumes, _volume_and_claim)
    controller.watch(pods, _claims_of, update_predicate=_pod_claims_or_phase_changed)
    controller.watch(classes, _claims_of_class(claims.cache))
    controller.watch(nodes, _on_node(claims.cache, volumes.cache), update_predicate=_annotations_changed)
    manager.add(controller)


def _selected_node(claim: JSON) -> Iterable[str]:
    node = ((claim.get("metadata") or {}).get("annotations") or {}).get(SELECTED_NODE)
    return (str(node),) if node else ()


def _claim_and_volume(claim: JSON) -> Iterable[ObjectKey]:
    keys = [key_of(claim)]
    name = (claim.get("spec") or {}).get("volumeName")
    if name:
        keys.append(ObjectKey(None, str(name)))
    return keys


def _volume_and_claim(pv: JSON) -> Iterable[ObjectKey]:
    keys = [key_of(pv)]
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    if ref.get("name") and ref.get("namespace"):
        keys.append(ObjectKey(str(ref["namespace"]), str(ref["name"])))
    return keys


def _claims_of(pod: JSON) -> Iterable[ObjectKey]:
    namespace = (pod.get("metadata") or {}).get("namespace")
    return [ObjectKey(str(namespace), name) for name in pod_claims(pod)]


def _pod_claims_or_phase_changed(old: JSON, new: JSON) -> bool:
    return bool(pod_claims(new)) and ((old.get("status") or {}).get("phase") != (new.get("status") or {}).get(
        "phase") or pod_claims(old) != pod_claims(new))


def _claims_of_class(claims: Cache) -> Mapper:
    def mapper(sc: JSON) -> Iterable[ObjectKey]:
        name = (sc.get("metadata") or {}).get("name")
        return [key_of(c) for c in claims.list() if claim_class(c) == name and not (c.get("spec") or {}).get(
            "volumeName")]

    return mapper


def _on_node(claims: Cache, volumes: Cache) -> Mapper:
    def mapper(node: JSON) -> Iterable[ObjectKey]:
        name = str((node.get("metadata") or {}).get("name") or "")
        keys = [key_of(c) for c in claims.by_index(SELECTED_INDEX, name)]
        keys += [key_of(pv) for pv in volumes.list() if pv["metadata"].get("deletionTimestamp")
                 and pv_single_node(pv) == name]
        return keys

    return mapper


def _annotations_changed(old: JSON, new: JSON) -> bool:
    return (old.get("metadata") or {}).get("annotations") != (new.get("metadata") or {}).get("annotations")
