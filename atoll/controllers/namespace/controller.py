"""The namespace controller: empties a terminating namespace, then lets the server remove it.

The API server only marks a deleted Namespace (``deletionTimestamp``, ``status.phase:
Terminating``) and keeps it while ``spec.finalizers`` holds ``kubernetes``. This controller owns
that finalizer, as kube-controller-manager's does:

1. delete the content (:mod:`.content`), one pass per reconcile;
2. report progress in ``status.conditions`` with Kubernetes' condition types and reasons, so
   ``kubectl describe ns`` / ``kubectl get ns -o yaml`` explain why a namespace is stuck;
3. while content remains (usually objects whose finalizers other controllers still have to
   remove), poll again with a growing delay — nothing watches the content, like upstream;
4. when the namespace is empty, ``PUT …/finalize`` without ``kubernetes``; the server removes the
   namespace (or waits for ``metadata.finalizers`` such as ``foregroundDeletion``, which belong to
   the garbage collector).
"""

from __future__ import annotations

import copy
from typing import Any

from atoll.api.errors import Conflict, NotFound
from atoll.api.kinds import NAMESPACES
from atoll.api.timestamps import now_time
from atoll.client import Client
from atoll.controllers.namespace.content import ContentOutcome, delete_content
from atoll.runtime import Informer, ObjectKey, Result, get_logger
from atoll.runtime.ratelimit import ExponentialFailureRateLimiter

JSON = dict[str, Any]
FINALIZER = "kubernetes"
log = get_logger(__name__)

# (type, reason when True, reason when False) — kubernetes/pkg/controller/namespace/deletion
DISCOVERY = ("NamespaceDeletionDiscoveryFailure", "DiscoveryFailed", "ResourcesDiscovered")
PARSING = ("NamespaceDeletionGroupVersionParsingFailure", "GroupVersionParsingFailed", "ParsedGroupVersions")
CONTENT_FAILURE = ("NamespaceDeletionContentFailure", "ContentDeletionFailed", "ContentDeleted")
CONTENT_REMAINING = ("NamespaceContentRemaining", "SomeResourcesRemain", "ContentRemoved")
FINALIZERS_REMAINING = ("NamespaceFinalizersRemaining", "SomeFinalizersRemain", "ContentHasNoFinalizers")
CONDITIONS = (DISCOVERY, PARSING, CONTENT_FAILURE, CONTENT_REMAINING, FINALIZERS_REMAINING)


def conditions_for(outcome: ContentOutcome) -> dict[str, str]:
    """Condition type → message (empty message: the condition is False)."""
    messages = {ctype: "" for ctype, _, _ in CONDITIONS}
    if outcome.discovery_errors:
        failed = ", ".join(f"{gv}: {err}" for gv, err in sorted(outcome.discovery_errors.items()))
        messages[DISCOVERY[0]] = f"Discovery failed for some groups, {len(outcome.discovery_errors)} failing: {failed}"
    if outcome.delete_errors:
        failed = ", ".join(f"{gr}: {err}" for gr, err in sorted(outcome.delete_errors.items()))
        messages[CONTENT_FAILURE[0]] = (
            f"Failed to delete all resource types, {len(outcome.delete_errors)} remaining: {failed}"
        )
    if outcome.remaining:
        left = ", ".join(f"{gr} has {n} resource instances" for gr, n in sorted(outcome.remaining.items()))
        messages[CONTENT_REMAINING[0]] = f"Some resources are remaining: {left}"
    if outcome.finalizers:
        held = ", ".join(f"{f} in {n} resource instances" for f, n in sorted(outcome.finalizers.items()))
        messages[FINALIZERS_REMAINING[0]] = f"Some content in the namespace has finalizers remaining: {held}"
    return messages


def merge_conditions(current: list[JSON], messages: dict[str, str], now: str) -> list[JSON]:
    """The new condition list; ``lastTransitionTime`` only moves when a status flips."""
    by_type = {c.get("type"): c for c in current}
    out = [c for c in current if c.get("type") not in messages]
    for ctype, true_reason, false_reason in CONDITIONS:
        message = messages[ctype]
        status = "True" if message else "False"
        old = by_type.get(ctype) or {}
        out.append(
            {
                "type": ctype,
                "status": status,
                "lastTransitionTime": old.get("lastTransitionTime") if old.get("status") == status else now,
                "reason": true_reason if message else false_reason,
                "message": message or f"All {_what(ctype)}",
            }
        )
    return out


def _what(ctype: str) -> str:
    return {
        DISCOVERY[0]: "resources successfully discovered",
        PARSING[0]: "legacy kube types successfully parsed",
        CONTENT_FAILURE[0]: "content successfully deleted, may be waiting on finalization",
        CONTENT_REMAINING[0]: "content successfully removed",
        FINALIZERS_REMAINING[0]: "content-preserving finalizers finished",
    }[ctype]


class NamespaceReconciler:
    """Reconciles one Namespace key; a no-op unless the namespace is terminating."""

    def __init__(self, client: Client, informer: Informer, *, max_delay: float = 15.0) -> None:
        self.client = client
        self.informer = informer
        self.backoff = ExponentialFailureRateLimiter(base_delay=0.25, max_delay=max_delay)
        """Polling delay while content remains: 0.25 s doubling to ``max_delay`` (upstream waits
        15 s when only finalizers remain)."""

    async def reconcile(self, key: ObjectKey) -> Result:
        ns = self.informer.cache.get_key(key)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            self.backoff.forget(key)
            return Result()
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or ()):
            self.backoff.forget(key)
            return Result()  # already finalized; metadata.finalizers (if any) are someone else's
        outcome = await delete_content(self.client, key.name)
        await self._update_conditions(ns, outcome)
        if not outcome.complete:
            delay = self.backoff.when(key)
            log.info("namespace %s not empty yet; checking again in %.2fs", key.name, delay)
            return Result(requeue_after=delay)
        await self._finalize(ns)
        self.backoff.forget(key)
        return Result()

    async def _update_conditions(self, ns: JSON, outcome: ContentOutcome) -> None:
        status = ns.get("status") or {}
        current = list(status.get("conditions") or ())
        wanted = merge_conditions(current, conditions_for(outcome), now_time())
        if _comparable(wanted) == _comparable(current):
            return
        body = copy.deepcopy(ns)
        body["status"] = dict(status, conditions=wanted)
        try:
            await self.client.update(NAMESPACES, body, subresource="status")
        except (Conflict, NotFound):
            pass  # a newer version exists (we get its event) or the namespace is gone already

    async def _finalize(self, ns: JSON) -> None:
        body = copy.deepcopy(ns)
        spec = body.setdefault("spec", {})
        spec["finalizers"] = [f for f in spec.get("finalizers") or () if f != FINALIZER]
        try:
            await self.client.update(NAMESPACES, body, subresource="finalize")
        except NotFound:
            return
        log.info("namespace %s finalized", ns["metadata"]["name"])


def _comparable(conditions: list[JSON]) -> list[tuple[Any, ...]]:
    return sorted((c.get("type"), c.get("status"), c.get("reason"), c.get("message")) for c in conditions)
