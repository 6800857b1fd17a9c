"""Reconcile one Deployment (``pkg/controller/deployment``): claim its ReplicaSets, find or create
the ReplicaSet of the current template (revision = newest + 1), then take one step of the
strategy — RollingUpdate (grow the new set within ``maxSurge``, shrink old sets while at least
``replicas - maxUnavailable`` pods stay available) or Recreate (old sets to 0, wait until their
pods are gone, then the new set) — prune old sets beyond ``revisionHistoryLimit`` and write the
status with its conditions (:mod:`.status`). A paused Deployment is only scaled and reported."""

from __future__ import annotations

import copy
from typing import Any

from atoll.api.clock import Clock
from atoll.api.errors import AlreadyExists, BadRequest, Conflict, NotFound
from atoll.api.kinds import DEPLOYMENTS, REPLICASETS
from atoll.api.podtemplates import controller_of, controller_ref, is_finished
from atoll.api.selectors import label_selector_from_spec
from atoll.client import Client
from atoll.controllers.deployment import rollout as ro
from atoll.controllers.deployment import status as st
from atoll.runtime import Cache, ObjectKey, Result, TerminalError
from atoll.runtime.events import EventRecorder
from atoll.runtime.wakeups import Wakeups

JSON = dict[str, Any]


class DeploymentReconciler:
    def __init__(self, client: Client, *, deployments: Cache, replicasets: Cache, pods: Cache, clock: Clock,
                 wakeups: Wakeups[ObjectKey]) -> None:
        self.client = client
        self.wakeups = wakeups
        self.deployments = deployments
        self.replicasets = replicasets
        self.pods = pods
        self.clock = clock
        self.events = EventRecorder(client, "deployment-controller", correlate=True, clock=clock)

    async def reconcile(self, key: ObjectKey) -> Result:
        d = self.deployments.get_key(key)
        if d is None or key.namespace is None or d["metadata"].get("deletionTimestamp"):
            return Result()
        d = {**d}  # this pass's view: keys are replaced below, the informer's dict is never changed
        all_rs = await self._claim(d, key.namespace)
        new_rs = next((rs for rs in sorted(all_rs, key=_created) if ro.same_template(rs, d)), None)
        old = [rs for rs in all_rs if rs is not new_rs]
        if ro.spec_of(d).get("paused"):
            if new_rs is not None and ro.replicas(new_rs) != ro.replicas(d) and not any(ro.replicas(r) for r in old):
                new_rs = await self._scale(d, new_rs, ro.replicas(d))
            return await self._write_status(d, old, new_rs)
        new_rs = await self._ensure_new(d, old, new_rs)
        if new_rs is None:  # a hash collision was recorded; the next pass uses another name
            return Result(requeue_after=0.05)
        if ro.is_rolling(d):
            await self._rolling(d, old, new_rs)
        else:
            await self._recreate(d, old, new_rs, key.namespace)
        await self._cleanup(d, old)
        return await self._write_status(d, old, new_rs)

    # ---- ReplicaSets ---------------------------------------------------------------------------

    async def _claim(self, d: JSON, namespace: str) -> list[JSON]:
        try:
            selector = label_selector_from_spec(ro.spec_of(d).get("selector"))
        except BadRequest as exc:
            raise TerminalError(f"deployment {namespace}/{d['metadata']['name']}: {exc.message}") from None
        uid, out = d["metadata"]["uid"], []
        for rs in self.replicasets.list(namespace):
            ref, labels = controller_of(rs), (rs["metadata"].get("labels") or {})
            if ref is not None and ref.get("uid") == uid:
                if selector.matches(labels):
                    out.append(rs)
                else:
                    await self._set_refs(rs, [r for r in rs["metadata"].get("ownerReferences") or []
                                              if r.get("uid") != uid])
            elif ref is None and selector.matches(labels) and not rs["metadata"].get("deletionTimestamp"):
                refs = [*(rs["metadata"].get("ownerReferences") or []), controller_ref(d)]
                if await self._set_refs(rs, refs):
                    out.append(rs)
        return out

    async def _set_refs(self, rs: JSON, refs: list[JSON]) -> bool:
        md = rs["metadata"]
        patch = {"metadata": {"resourceVersion": md["resourceVersion"], "ownerReferences": refs or None}}
        try:
            await self.client.patch(REPLICASETS, md["name"], patch, md["namespace"])
        except (NotFound, Conflict):
            return False
        return True

    async def _ensure_new(self, d: JSON, old: list[JSON], new_rs: JSON | None) -> JSON | None:
        """The ReplicaSet of the current template, with the newest revision (created if missing)."""
        next_revision = max((ro.revision(rs) for rs in old), default=0) + 1
        if new_rs is not None:
            if ro.revision(new_rs) < next_revision:
                new_rs = await self._bump_revision(new_rs, next_revision)
            await self._note_revision(d, ro.revision(new_rs))
            return new_rs
        status = d.get("status") or {}
        collisions = int(status.get("collisionCount") or 0)
        template = copy.deepcopy(ro.spec_of(d).get("template") or {})
        pod_hash = ro.template_hash(template, collisions)
        template.setdefault("metadata", {}).setdefault("labels", {})[ro.HASH_LABEL] = pod_hash
        selector = copy.deepcopy(ro.spec_of(d).get("selector") or {})
        selector.setdefault("matchLabels", {})[ro.HASH_LABEL] = pod_hash
        surge, _ = ro.fenceposts(d)
        annotations = {ro.REVISION: str(next_revision), ro.DESIRED_REPLICAS: str(ro.replicas(d)),
                       ro.MAX_REPLICAS: str(ro.replicas(d) + surge)}
        cause = (d["metadata"].get("annotations") or {}).get(ro.CHANGE_CAUSE)
        if cause:
            annotations[ro.CHANGE_CAUSE] = cause
        name = f"{d['metadata']['name']}-{pod_hash}"
        body: JSON = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "labels": dict(template["metadata"]["labels"]),
                         "annotations": annotations, "ownerReferences": [controller_ref(d)]},
            "spec": {"replicas": 0, "minReadySeconds": int(ro.spec_of(d).get("minReadySeconds") or 0),
                     "selector": selector, "template": template},
        }
        if ro.is_rolling(d) or not any(ro.replicas(rs) for rs in old):
            body["spec"]["replicas"] = ro.new_rs_size(d, [*old, body], body)
        try:
            created = await self.client.create(REPLICASETS, body, d["metadata"]["namespace"])
        except AlreadyExists:
            existing = self.replicasets.get(name, d["metadata"]["namespace"])
            if existing is not None and controller_of(existing) and ro.same_template(existing, d):
                return existing
            await self._patch_status(d, {"collisionCount": collisions + 1})
            return None
        size = ro.replicas(created)
        if size:
            await self.events.record(d, "Normal", "ScalingReplicaSet", f"Scaled up replica set {name} to {size}")
        await self._note_revision(d, next_revision)
        conds = st.set_condition(list((d.get("status") or {}).get("conditions") or []), st.PROGRESSING, "True",
                                 st.NEW_RS_CREATED, f'Created new replica set "{name}"', self.clock.now())
        await self._patch_status(d, {"conditions": conds})
        d["status"] = {**(d.get("status") or {}), "conditions": conds}
        return created

    async def _bump_revision(self, rs: JSON, revision: int) -> JSON:
        md = rs["metadata"]
        annotations = dict(md.get("annotations") or {})
        old = annotations.get(ro.REVISION)
        if old and old != str(revision):
            history = [h for h in (annotations.get(ro.REVISION_HISTORY) or "").split(",") if h]
            annotations[ro.REVISION_HISTORY] = ",".join([*history, old])
        annotations[ro.REVISION] = str(revision)
        return await self.client.patch(REPLICASETS, md["name"], {"metadata": {"annotations": annotations}},
                                       md["namespace"])

    async def _note_revision(self, d: JSON, revision: int) -> None:
        annotations = d["metadata"].get("annotations") or {}
        if annotations.get(ro.REVISION) != str(revision):
            patch = {"metadata": {"annotations": {ro.REVISION: str(revision)}}}
            await self.client.patch(DEPLOYMENTS, d["metadata"]["name"], patch, d["metadata"]["namespace"])

    async def _scale(self, d: JSON, rs: JSON, size: int) -> JSON:
        md, before = rs["metadata"], ro.replicas(rs)
        surge, _ = ro.fenceposts(d)
        annotations = {ro.DESIRED_REPLICAS: str(ro.replicas(d)), ro.MAX_REPLICAS: str(ro.replicas(d) + surge)}
        # pinned to the version we decided on: a stale cache gets a 409 and a fresh pass, never a double step
        patch = {"metadata": {"resourceVersion": md["resourceVersion"], "annotations": annotations},
                 "spec": {"replicas": size}}
        scaled = await self.client.patch(REPLICASETS, md["name"], patch, md["namespace"])
        if size != before:
            verb = "up" if size > before else "down"
            message = f"Scaled {verb} replica set {md['name']} to {size}" + (f" from {before}" if verb == "down"
                                                                              else "")
            await self.events.record(d, "Normal", "ScalingReplicaSet", message)
        return scaled

    # ---- strategies -------------------------------------------------------------------------------

    async def _rolling(self, d: JSON, old: list[JSON], new_rs: JSON) -> None:
        want = ro.replicas(d)
        all_rs = [*old, new_rs]
        if ro.replicas(new_rs) > want:
            new_rs = await self._scale(d, new_rs, want)
        elif ro.replicas(new_rs) < want:
            size = ro.new_rs_size(d, all_rs, new_rs)
            if size != ro.replicas(new_rs):
                await self._scale(d, new_rs, size)
                return  # scaled up: the next pass (on the ReplicaSet's event) scales old sets down
        live_old = [rs for rs in old if ro.replicas(rs)]
        if not live_old:
            return
        budget = ro.old_scale_down_budget(d, [*old, new_rs], new_rs)
        if budget <= 0:
            return
        for rs in sorted(live_old, key=_created):  # unhealthy pods of old sets go first
            if budget <= 0:
                break
            unhealthy = ro.replicas(rs) - ro.available(rs)
            cut = min(max(unhealthy, 0), budget)
            if cut:
                idx = old.index(rs)
                old[idx] = await self._scale(d, rs, ro.replicas(rs) - cut)
                budget -= cut
        remaining = min(ro.available_budget(d, [*old, new_rs]), budget)  # never below the minimum
        for i, rs in sorted(enumerate(old), key=lambda pair: _created(pair[1])):
            if remaining <= 0:
                break
            if not ro.replicas(rs):
                continue
            cut = min(ro.replicas(rs), remaining)
            old[i] = await self._scale(d, rs, ro.replicas(rs) - cut)
            remaining -= cut

    async def _recreate(self, d: JSON, old: list[JSON], new_rs: JSON, namespace: str) -> None:
        for i, rs in enumerate(old):
            if ro.replicas(rs):
                old[i] = await self._scale(d, rs, 0)
        old_uids = {rs["metadata"]["uid"] for rs in old}
        for pod in self.pods.list(namespace):
            ref = controller_of(pod)
            if ref is not None and ref.get("uid") in old_uids and not is_finished(pod):
                return  # old pods still running (or terminating): the pod's deletion requeues us
        if ro.replicas(new_rs) != ro.replicas(d):
            await self._scale(d, new_rs, ro.replicas(d))

    async def _cleanup(self, d: JSON, old: list[JSON]) -> None:
        limit = ro.spec_of(d).get("revisionHistoryLimit")
        if not isinstance(limit, int):
            return
        dead = [rs for rs in old if not ro.replicas(rs) and not ro.status_int(rs, "replicas")
                and not rs["metadata"].get("deletionTimestamp")]
        dead.sort(key=ro.revision)
        for rs in dead[: max(len(dead) - limit, 0)]:
            md = rs["metadata"]
            try:
                await self.client.delete(REPLICASETS, md["name"], md["namespace"], preconditions={"uid": md["uid"]})
            except (NotFound, Conflict):
                pass

    # ---- status -------------------------------------------------------------------------------------

    async def _write_status(self, d: JSON, old: list[JSON], new_rs: JSON | None) -> Result:
        now = self.clock.now()
        all_rs = [*old] + ([new_rs] if new_rs is not None else [])
        status = st.calculate(d, all_rs, new_rs)
        st.with_available(d, status, now)
        recheck = None
        paused = bool(ro.spec_of(d).get("paused"))
        progressing = st.find(status["conditions"], st.PROGRESSING)
        if paused and (progressing or {}).get("reason") != st.PAUSED:
            status["conditions"] = st.set_condition(status["conditions"], st.PROGRESSING, "Unknown", st.PAUSED,
                                                    "Deployment is paused", now)
        elif not paused and (progressing or {}).get("reason") == st.PAUSED:
            status["conditions"] = st.set_condition(status["conditions"], st.PROGRESSING, "Unknown", st.RESUMED,
                                                    "Deployment is resumed", now)
        else:
            recheck = st.with_progress(d, status, new_rs, now)
        if status != (d.get("status") or {}):
            await self._patch_status(d, status)
        if recheck:
            self.wakeups.at(ObjectKey(d["metadata"]["namespace"], d["metadata"]["name"]), recheck)
        return Result()

    async def _patch_status(self, d: JSON, status: JSON) -> None:
        md = d["metadata"]
        try:
            await self.client.patch(DEPLOYMENTS, md["name"], {"status": status}, md["namespace"],
                                    subresource="status")
        except NotFound:
            pass


def _created(obj: JSON) -> tuple[str, str]:
    md = obj["metadata"]
    return str(md.get("creationTimestamp") or ""), str(md.get("name") or "")
