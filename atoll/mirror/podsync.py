"""The checkpointed mapping of one source pod to one target pod (Kubeocean's VirtualPodReconciler).

Every cross-cluster step is recorded on the source pod *before* it is taken, so a crash at any
point resumes without orphans or duplicates:

1. no forward annotations → compute the target name; adopt a target pod that already points back
   at this pod (namespace/name/uid), delete a stale copy of an earlier pod with the same name,
   refuse any other pod; then write ``physical-pod-namespace``/``-name``;
2. name written, uid missing → copy the dependencies, create the target pod (or adopt it if it
   exists and points back), then write ``physical-pod-uid``;
3. all three written → mirror status back; if the target pod is gone the source pod becomes
   ``Failed/PhysicalPodLost`` (never silently recreated); a target pod left unscheduled for
   ``unschedulable_timeout`` (5 min, measured on the injected clock from when we first saw it
   unscheduled) is deleted and ``FailedSchedulingPod`` is recorded on the source pod.

Deletion both ways: a source pod being deleted deletes its target pod, and only when that is gone
is the source pod removed (grace 0, uid precondition); a target pod whose source pod no longer
exists is deleted (after checking it points back at that pod).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from atoll.api import kinds
from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.errors import AlreadyExists, Conflict, NotFound
from atoll.client import Client
from atoll.mirror import keys
from atoll.mirror.deps import dependencies
from atoll.mirror.names import target_name
from atoll.mirror.objects import DependencyMirror
from atoll.mirror.podspec import Placement, build_target_pod, pod_target_name
from atoll.mirror.status import lost_status, mirrored_status, terminal
from atoll.mirror.tokens import TokenSecrets
from atoll.runtime.events import EventRecorder

JSON = dict[str, Any]
TargetLookup = Callable[[str], Awaitable[JSON | None]]
CachedTarget = Callable[[str], JSON | None]
"""The target pod as the target informer last saw it (no request)."""
SourceLookup = Callable[[str, str, str], JSON | None]
"""(kind, namespace, name) → the source object (ConfigMap, Secret, PVC), or None."""
Customize = Callable[[JSON, JSON], JSON]
"""(source pod, target pod) → the target pod to create (RunK adds its env, DNS and labels)."""
UNSCHEDULABLE_TIMEOUT = 300.0


def _revision(obj: JSON) -> int | None:
    try:
        return int(obj["metadata"].get("resourceVersion") or "")
    except ValueError:
        return None  # an opaque resourceVersion: no ordering, no guard


class NameConflict(Exception):
    """The target name is taken by a pod that is not ours."""


@dataclass(slots=True)
class SyncCounters:
    created: int = 0
    create_errors: int = 0
    lost: int = 0
    hooks: list[Callable[[str], None]] = field(default_factory=list)

    def emit(self, what: str) -> None:
        for hook in self.hooks:
            hook(what)


def points_back(target: JSON, namespace: str, name: str, uid: str | None = None) -> bool:
    annotations = target["metadata"].get("annotations") or {}
    return (
        annotations.get(keys.VIRTUAL_POD_NAMESPACE) == namespace
        and annotations.get(keys.VIRTUAL_POD_NAME) == name
        and (uid is None or annotations.get(keys.VIRTUAL_POD_UID) == uid)
    )


class PodSync:
    """Mirrors source pods into ``deps.namespace`` of the target cluster."""

    def __init__(
        self,
        source: Client,
        target: Client,
        deps: DependencyMirror,
        *,
        target_pod: TargetLookup,
        source_object: SourceLookup,
        recorder: EventRecorder,
        clock: Clock = SYSTEM_CLOCK,
        unschedulable_timeout: float = UNSCHEDULABLE_TIMEOUT,
        customize: Customize | None = None,
        cached_target: CachedTarget | None = None,
    ) -> None:
        self.source = source
        self.target = target
        self.deps = deps
        self.namespace = deps.namespace
        self._target_pod = target_pod
        self._source_object = source_object
        self.recorder = recorder
        self.clock = clock
        self.unschedulable_timeout = unschedulable_timeout
        self.counters = SyncCounters()
        self._customize = customize
        self._unscheduled_since: dict[str, float] = {}
        self._cached_target = cached_target
        self._written: dict[str, int] = {}
        """Source pod uid → resourceVersion of our last write to it: a reconcile that sees an older
        version (the informer lags behind our own write) waits for the event of that write."""
        self.tokens = TokenSecrets(source, target, self.namespace, clock)

    # -- forward ----------------------------------------------------------------------------

    def stale(self, pod: JSON) -> bool:
        """True while ``pod`` is older than our last write to it (its event is on the way)."""
        uid = str(pod["metadata"].get("uid"))
        written = self._written.get(uid)
        if written is None:
            return False
        seen = _revision(pod)
        if seen is None or seen >= written:
            del self._written[uid]
            return False
        return True

    def _wrote(self, result: JSON) -> None:
        revision = _revision(result)
        if revision is not None:
            self._written[str(result["metadata"].get("uid"))] = revision

    def forget(self, uid: str) -> None:
        """The source pod is gone: drop what we remember of it."""
        self._written.pop(uid, None)
        self.tokens.forget(uid)

    async def _lookup(self, name: str, confirm: bool) -> JSON | None:
        """The target pod: from the informer when absence is harmless (a create that finds the pod
        fails and retries), confirmed with a GET when absence would mean "lost"."""
        if not confirm and self._cached_target is not None:
            return self._cached_target(name)
        return await self._target_pod(name)

    async def sync(self, pod: JSON, placement: Placement) -> float | None:
        """Advance ``pod`` through the mapping steps; returns seconds until it needs another look."""
        if self.stale(pod):
            return None
        md = pod["metadata"]
        annotations = md.get("annotations") or {}
        name = annotations.get(keys.PHYSICAL_POD_NAME)
        if not name:
            checkpointed = await self._checkpoint_name(pod)
            if checkpointed is None:
                return None
            pod = checkpointed
            annotations = pod["metadata"].get("annotations") or {}
            name = annotations[keys.PHYSICAL_POD_NAME]
        uid = annotations.get(keys.PHYSICAL_POD_UID)
        target = await self._lookup(str(name), confirm=bool(uid))
        if not uid:
            if target is None:
                if terminal(pod):
                    return None
                target = await self._create(pod, placement)
            elif not points_back(target, md["namespace"], md["name"], md["uid"]):
                await self._delete_stale(target, md["namespace"], md["name"])
                return 0.5
            pod = await self._annotate(pod, {keys.PHYSICAL_POD_UID: target["metadata"]["uid"]})
        elif target is None or target["metadata"].get("uid") != uid:
            await self._mark_lost(pod)
            return None
        elif not points_back(target, md["namespace"], md["name"], md["uid"]):
            # the mapping names a pod that belongs to an earlier pod of this name: never adopt it
            await self._delete_stale(target, md["namespace"], md["name"])
            await self._mark_lost(pod)
            return None
        return await self._observe(pod, target)

    async def _checkpoint_name(self, pod: JSON) -> JSON | None:
        md = pod["metadata"]
        name = pod_target_name(pod)
        existing = await self._lookup(name, confirm=False)
        if existing is not None and not points_back(existing, md["namespace"], md["name"], md["uid"]):
            if points_back(existing, md["namespace"], md["name"]):
                await self._delete_stale(existing, md["namespace"], md["name"])
                return None
            raise NameConflict(f"pod {self.namespace}/{name} in the worker cluster belongs to another pod")
        patch = {keys.PHYSICAL_POD_NAMESPACE: self.namespace, keys.PHYSICAL_POD_NAME: name}
        return await self._annotate(pod, patch)

    async def _annotate(self, pod: JSON, annotations: dict[str, str]) -> JSON:
        """Write checkpoint annotations with a merge patch carrying ``metadata.uid`` and no
        resourceVersion: the values are deterministic, so a concurrent writer of other fields is no
        reason to fail. kube-apiserver rejects the patch (409) if the pod was recreated meanwhile;
        Atoll's API server ignores ``metadata.uid`` in patches today, which is why step 3 also
        verifies the back-pointers before trusting a mapping."""
        md = pod["metadata"]
        patch = {"metadata": {"uid": md["uid"], "annotations": annotations}}
        result: JSON = await self.source.patch(kinds.PODS, md["name"], patch, md["namespace"])
        self._wrote(result)
        return result

    async def _create(self, pod: JSON, placement: Placement) -> JSON:
        md = pod["metadata"]
        needed = dependencies(pod)
        for kind, dep in needed.items():
            source = self._source_object(kind, md["namespace"], dep)
            if source is None:
                raise NotFound(f'{kind} "{dep}" used by pod {md["namespace"]}/{md["name"]} not found')
            await self.deps.ensure(kind, source)
        tokens = {volume: await self.tokens.ensure(pod, volume) for volume in needed.token_volumes}
        body = build_target_pod(pod, placement, lambda _kind, n: target_name(md["namespace"], n), tokens)
        if self._customize is not None:
            body = self._customize(pod, body)
        try:
            created: JSON = await self.target.create(kinds.PODS, body, self.namespace)
        except AlreadyExists:
            raise Conflict(f"pod {self.namespace}/{body['metadata']['name']} appeared concurrently") from None
        except Exception:
            self.counters.create_errors += 1
            self.counters.emit("create_error")
            raise
        self.counters.created += 1
        self.counters.emit("created")
        return created

    async def _observe(self, pod: JSON, target: JSON) -> float | None:
        """Step 3: status back, token renewals, and the unschedulable timer."""
        status = mirrored_status(pod, target)
        if status is not None:
            await self._write_status(pod, status)
        renew = None
        if terminal(target):
            self.tokens.forget(str(pod["metadata"]["uid"]))
        else:
            renew = await self.tokens.refresh(pod, dependencies(pod).token_volumes)
        unscheduled = await self._unscheduled(pod, target)
        return min((t for t in (renew, unscheduled) if t is not None), default=None)

    async def _unscheduled(self, pod: JSON, target: JSON) -> float | None:
        uid = str(target["metadata"]["uid"])
        if (target.get("spec") or {}).get("nodeName") or terminal(target):
            self._unscheduled_since.pop(uid, None)
            return None
        now = self.clock.monotonic()
        since = self._unscheduled_since.setdefault(uid, now)
        remaining = since + self.unschedulable_timeout - now
        if remaining > 0:
            return remaining
        self._unscheduled_since.pop(uid, None)
        minutes = self.unschedulable_timeout / 60
        await self.recorder.record(
            pod, "Warning", "FailedSchedulingPod",
            f"pod {self.namespace}/{target['metadata']['name']} stayed unscheduled in the worker cluster "
            f"for {minutes:g} minutes; deleted",
        )
        await self._delete_target(target)
        return None

    async def _write_status(self, pod: JSON, status: JSON) -> None:
        """Merge-patch the status (we own it: no resourceVersion, so a stale cache costs no conflict);
        fields the new status no longer has are removed explicitly."""
        md = pod["metadata"]
        patch = {**{k: None for k in pod.get("status") or {} if k not in status}, **status}
        try:
            result = await self.source.patch(kinds.PODS, md["name"], {"metadata": {"uid": md["uid"]}, "status": patch},
                                             md["namespace"], subresource="status")
        except NotFound:
            return
        self._wrote(result)

    async def _mark_lost(self, pod: JSON) -> None:
        if terminal(pod):
            return
        self.counters.lost += 1
        self.counters.emit("lost")
        await self._write_status(pod, lost_status(pod, self.clock.now()))

    # -- deletion ---------------------------------------------------------------------------

    async def delete(self, pod: JSON) -> bool:
        """The source pod is being deleted: delete its target pod; when that is gone remove the
        source pod (grace 0, uid precondition). Returns True once the source pod is removed."""
        md = pod["metadata"]
        name = (md.get("annotations") or {}).get(keys.PHYSICAL_POD_NAME) or pod_target_name(pod)
        target = await self._target_pod(str(name))
        if target is not None and points_back(target, md["namespace"], md["name"], md["uid"]):
            if not target["metadata"].get("deletionTimestamp"):
                await self._delete_target(target)
            return False
        await self.release_dependencies(pod)
        try:
            await self.source.delete(kinds.PODS, md["name"], md["namespace"], grace_period_seconds=0,
                                     preconditions={"uid": md["uid"]})
        except (NotFound, Conflict):
            pass
        self.forget(str(md["uid"]))
        return True

    async def delete_orphan(self, namespace: str, name: str) -> None:
        """The source pod no longer exists: delete the target pod if it points back at it."""
        target = await self._target_pod(target_name(namespace, name))
        if target is not None and points_back(target, namespace, name):
            self.forget(str((target["metadata"].get("annotations") or {}).get(keys.VIRTUAL_POD_UID)))
            await self._delete_target(target)

    async def _delete_stale(self, target: JSON, namespace: str, name: str) -> None:
        if points_back(target, namespace, name):
            await self._delete_target(target)

    async def _delete_target(self, target: JSON) -> None:
        md = target["metadata"]
        try:
            await self.target.delete(kinds.PODS, md["name"], md["namespace"], preconditions={"uid": md["uid"]})
        except (NotFound, Conflict):
            pass

    async def release_dependencies(self, pod: JSON) -> None:
        """Delete the pod's token Secrets in the target cluster (shared dependencies are released
        by their own reconciler once no pod uses them)."""
        await self.tokens.delete(pod, dependencies(pod).token_volumes)
