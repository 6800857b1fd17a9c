"""The scheduler as a level-based reconciler of pending pods.

``reconcile(pod key)`` runs one **scheduling cycle** (snapshot → filter → score → reserve →
assume) without awaiting in between, then hands the pod to a **binding cycle** task (permit →
pre-bind → ``POST pods/NAME/binding`` → post-bind) so slow permits do not stall other pods.
A pod that fits nowhere gets ``PodScheduled=False`` (reason ``Unschedulable``) and a
``FailedScheduling`` Event, and waits in :class:`RetryQueue` for a cluster change.

Pods are this scheduler's when ``spec.schedulerName`` names one of its profiles, ``spec.nodeName``
is empty and they are neither finished nor being deleted; all other pods are left alone (e.g.
``kuscia-scheduler`` pods until a profile for it is registered).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable, Sequence
from typing import Any

from atoll.api.errors import APIError, Conflict, NotFound
from atoll.api.kinds import PODS
from atoll.api.podusage import TERMINAL
from atoll.api.timestamps import now_time
from atoll.client import Client, ClientError
from atoll.runtime import Cache, ObjectKey, Result, get_logger
from atoll.runtime.keys import key_of
from atoll.scheduler.algorithm import schedule
from atoll.scheduler.cache import SchedulerCache
from atoll.scheduler.diagnosis import Diagnosis, fit_error_message
from atoll.scheduler.events import EventRecorder
from atoll.scheduler.framework import Code, CycleState, Profile, Status
from atoll.scheduler.nodeinfo import NodeInfo
from atoll.scheduler.retry import RetryQueue, RetrySettings

JSON = dict[str, Any]
log = get_logger(__name__)
DEFAULT_SCHEDULER = "default-scheduler"


class BindingRejected(Exception):
    """A Permit or PreBind plugin said no."""

    def __init__(self, status: Status) -> None:
        super().__init__(f"{status.plugin}: {status.message}" if status.plugin else status.message)
        self.status = status


def pod_scheduled_condition(pod: JSON) -> JSON | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled":
            return dict(condition)
    return None


class Scheduler:
    """Schedules the pods of its profiles onto nodes from the informer caches."""

    def __init__(
        self,
        client: Client,
        *,
        nodes: Cache,
        pods: Cache,
        profiles: Sequence[Profile],
        settings: RetrySettings = RetrySettings(),
        recorder: EventRecorder | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.cache = SchedulerCache(nodes=nodes, pods=pods)
        self.profiles = {p.scheduler_name: p for p in profiles}
        self.retry = RetryQueue(settings)
        self.recorder = recorder or EventRecorder(client, DEFAULT_SCHEDULER)
        self.rng = rng or random.Random()
        self.bindings: asyncio.TaskGroup | None = None
        """Owner of binding-cycle tasks while running; ``None`` binds inline (tests)."""

    # -- which pods ------------------------------------------------------------------------------

    def profile_for(self, pod: JSON) -> Profile | None:
        spec = pod.get("spec") or {}
        profile = self.profiles.get(str(spec.get("schedulerName") or DEFAULT_SCHEDULER))
        if profile is None or spec.get("nodeName"):
            return None
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            return None
        if (pod.get("status") or {}).get("phase") in TERMINAL:
            return None
        return profile

    def pods_to_schedule(self, pod: JSON) -> Iterable[ObjectKey]:
        """Controller mapper: the pod's own key if this scheduler should place it."""
        return (key_of(pod),) if self.profile_for(pod) is not None else ()

    # -- scheduling cycle ------------------------------------------------------------------------

    async def reconcile(self, key: ObjectKey) -> Result:
        pod = self.cache.pods.get_key(key)
        if pod is None:
            self.retry.dropped(key)
            return Result()
        profile = self.profile_for(pod)
        if profile is None or self.cache.is_assumed(key):
            return Result()
        state = CycleState()
        candidates = self.cache.selector_candidates(pod)
        if candidates is None:
            outcome = schedule(profile, state, pod, self.cache.node_infos(), self.rng)
        else:
            chosen = set(candidates)

            def excluded() -> list[NodeInfo]:
                return self.cache.node_infos(k.name for k in self.cache.nodes.keys() if k.name not in chosen)

            outcome = schedule(profile, state, pod, lambda: self.cache.node_infos(candidates), self.rng,
                               excluded=excluded, total=len(self.cache.nodes))
        if isinstance(outcome, Diagnosis):
            delay = self.retry.failed(key, unschedulable=True)
            if outcome.pre_filter is not None and outcome.pre_filter.code is Code.PENDING:
                log.debug("pod %s is waiting: %s", key, outcome.pre_filter.message)
                return Result(requeue_after=delay)
            message = fit_error_message(pod, outcome)
            log.info("pod %s is unschedulable: %s", key, message)
            await self._report_failure(pod, "Unschedulable", message)
            return Result(requeue_after=delay)
        node_name = outcome.node_name
        for index, plugin in enumerate(profile.reserve):
            status = plugin.reserve(state, pod, node_name)
            if not status.ok:
                self._unreserve(profile, state, pod, node_name, upto=index + 1)
                delay = self.retry.failed(key, unschedulable=status.code is not Code.ERROR)
                await self._report_failure(pod, _reason(status), f"{plugin.name}: {status.message}")
                return Result(requeue_after=delay)
        self.cache.assume(pod, node_name)
        cycle = self._binding_cycle(profile, state, pod, node_name)
        if self.bindings is None:
            await cycle
        else:
            self.bindings.create_task(cycle, name=f"scheduler/bind/{key}")
        return Result()

    # -- binding cycle ---------------------------------------------------------------------------

    async def _binding_cycle(self, profile: Profile, state: CycleState, pod: JSON, node_name: str) -> None:
        key = key_of(pod)
        try:
            for permit in profile.permit:
                _check(await permit.permit(state, pod, node_name), permit.name)
            for pre_bind in profile.pre_bind:
                _check(await pre_bind.pre_bind(state, pod, node_name), pre_bind.name)
            await self._bind(pod, node_name)
        except asyncio.CancelledError:
            self._abandon(profile, state, pod, node_name)
            raise
        except (NotFound, Conflict) as exc:  # deleted, or bound by someone else: the informer will tell
            log.info("binding %s to %s: %s", key, node_name, exc)
            self._abandon(profile, state, pod, node_name)
        except Exception as exc:
            self._abandon(profile, state, pod, node_name)
            rejected = isinstance(exc, BindingRejected) and exc.status.code is not Code.ERROR
            delay = self.retry.failed(key, unschedulable=False)
            log.warning("binding %s to %s failed: %s; retrying in %.1fs", key, node_name, exc, delay)
            reason = "Unschedulable" if rejected else "SchedulerError"
            await self._report_failure(pod, reason, f"Binding rejected: {exc}")
            self.retry.requeue(key, delay)
        else:
            for post_bind in profile.post_bind:
                post_bind.post_bind(state, pod, node_name)
            self.retry.succeeded(key)
            meta = pod.get("metadata") or {}
            message = f"Successfully assigned {meta.get('namespace')}/{meta.get('name')} to {node_name}"
            log.debug("%s", message)  # the Scheduled event says it; kube-scheduler logs it only at -v=2
            await self.recorder.record(pod, "Normal", "Scheduled", message, action="Binding")

    async def _bind(self, pod: JSON, node_name: str) -> None:
        meta = pod.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or "default"), str(meta.get("name", ""))
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace, "uid": meta.get("uid", "")},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node_name},
        }
        await self.client.create(PODS, binding, namespace, subresource="binding")

    def _abandon(self, profile: Profile, state: CycleState, pod: JSON, node_name: str) -> None:
        self._unreserve(profile, state, pod, node_name, upto=len(profile.reserve))
        self.cache.forget(key_of(pod))

    @staticmethod
    def _unreserve(profile: Profile, state: CycleState, pod: JSON, node_name: str, *, upto: int) -> None:
        for plugin in reversed(profile.reserve[:upto]):
            try:
                plugin.unreserve(state, pod, node_name)
            except Exception:
                log.exception("unreserve of plugin %s failed", plugin.name)

    # -- reporting -------------------------------------------------------------------------------

    async def _report_failure(self, pod: JSON, reason: str, message: str) -> None:
        """``PodScheduled=False`` (only when it changes) and a ``FailedScheduling`` Warning."""
        meta = pod.get("metadata") or {}
        current = pod_scheduled_condition(pod) or {}
        if (current.get("status"), current.get("reason"), current.get("message")) != ("False", reason, message):
            since = current.get("lastTransitionTime") if current.get("status") == "False" else None
            condition = {
                "type": "PodScheduled",
                "status": "False",
                "reason": reason,
                "message": message,
                "lastProbeTime": None,
                "lastTransitionTime": since or now_time(),
            }
            try:
                await self.client.patch(
                    PODS,
                    str(meta.get("name", "")),
                    {"status": {"conditions": [condition]}},
                    str(meta.get("namespace") or "default"),
                    patch_type="strategic",
                    subresource="status",
                )
            except NotFound:
                return
            except (APIError, ClientError) as exc:
                log.warning("could not update PodScheduled of %s: %s", key_of(pod), exc)
        await self.recorder.record(pod, "Warning", "FailedScheduling", message, action="Scheduling")

    # -- informer events (in-memory only; they never do I/O) -----------------------------------

    def on_pod_add(self, pod: JSON) -> None:
        self.cache.pod_changed(None, pod)
        self.cache.confirm(pod)

    def on_pod_update(self, old: JSON, new: JSON) -> None:
        self.cache.pod_changed(old, new)
        self.cache.confirm(new)
        if (new.get("spec") or {}).get("nodeName") and _finished(new) and not _finished(old):
            self.retry.cluster_changed()

    def on_pod_delete(self, pod: JSON) -> None:
        key = key_of(pod)
        held = bool((pod.get("spec") or {}).get("nodeName")) or self.cache.is_assumed(key)
        self.cache.pod_changed(pod, None)
        self.cache.remove_pod(pod)
        self.retry.dropped(key)
        if held:
            self.retry.cluster_changed()

    def on_node_add(self, node: JSON) -> None:
        self.retry.cluster_changed()

    def on_node_update(self, old: JSON, new: JSON) -> None:
        if _schedulable_view(old) != _schedulable_view(new):
            self.retry.cluster_changed()


def _check(status: Status, plugin: str) -> None:
    if not status.ok:
        raise BindingRejected(Status(status.code, status.reasons, status.plugin or plugin))


def _reason(status: Status) -> str:
    return "SchedulerError" if status.code is Code.ERROR else "Unschedulable"


def _finished(pod: JSON) -> bool:
    return (pod.get("status") or {}).get("phase") in TERMINAL


def _schedulable_view(node: JSON) -> tuple[Any, ...]:
    """What of a Node the filters read; heartbeats (condition timestamps) are left out."""
    status = node.get("status") or {}
    conditions = sorted((str(c.get("type")), str(c.get("status"))) for c in status.get("conditions") or [])
    return (
        (node.get("metadata") or {}).get("labels"),
        node.get("spec"),
        status.get("allocatable"),
        status.get("capacity"),
        conditions,
    )
