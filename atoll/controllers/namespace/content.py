"""Deleting everything inside one namespace, across every namespaced resource the server serves.

Why discovery and not a fixed list: a namespace holds built-ins *and* custom resources (Kuscia's
DomainRoutes, KusciaJobs, any CRD installed later). kube-controller-manager's
``NamespacedResourcesDeleter`` asks discovery for the preferred version of every group on each
pass, so a CRD created a second ago is covered; this module does the same.

One pass (``delete_content``) per resource:

1. list the namespace's objects (cheap when empty, which most resources are);
2. if any exist, delete them — one ``deletecollection`` call when the resource supports it,
   otherwise one ``DELETE`` per object — with ``propagationPolicy: Background``, as Kubernetes
   does, so owners never wait on their dependents here;
3. list again and count what is left, and which finalizers hold it.

Objects with finalizers are not forced: their controllers remove the finalizers, the namespace
controller only polls. The outcome feeds the namespace's status conditions.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from atoll.api.errors import MethodNotAllowed, NotFound
from atoll.api.registry import ResourceDef
from atoll.client import Client
from atoll.client.paths import METADATA_ONLY

JSON = dict[str, Any]
PARALLEL_RESOURCES = 8
"""Resources handled at once: enough to finish a pass over ~40 resources quickly, few enough not
to flood the API server when many namespaces terminate together."""


@dataclass(slots=True)
class ContentOutcome:
    """What one pass over a namespace found; empty collections mean "done"."""

    discovery_errors: dict[str, str] = field(default_factory=dict)
    """group-version → error: their resources could not be enumerated, so they may hold content."""
    delete_errors: dict[str, str] = field(default_factory=dict)
    """group-resource → error of the list/delete calls."""
    remaining: Counter[str] = field(default_factory=Counter)
    """group-resource → objects still present after deleting."""
    finalizers: Counter[str] = field(default_factory=Counter)
    """finalizer → objects it still holds."""

    @property
    def complete(self) -> bool:
        return not (self.discovery_errors or self.delete_errors or self.remaining)


def deletable(rd: ResourceDef) -> bool:
    """Namespaced, listable and deletable one way or another."""
    verbs = set(rd.verbs)
    return rd.namespaced and "list" in verbs and bool(verbs & {"delete", "deletecollection"})


async def delete_content(client: Client, namespace: str) -> ContentOutcome:
    """One deletion pass over ``namespace``; never raises for per-resource failures."""
    outcome = ContentOutcome()
    resources, failed = await client.preferred_resources()
    outcome.discovery_errors = {gv: str(exc) for gv, exc in failed.items()}
    limit = asyncio.Semaphore(PARALLEL_RESOURCES)

    async def one(rd: ResourceDef) -> None:
        async with limit:
            try:
                left = await _delete_resource(client, rd, namespace)
            except NotFound:
                return  # the resource went away (CRD deleted) while we worked: nothing to delete
            except Exception as exc:  # recorded in the namespace's conditions, retried next pass
                outcome.delete_errors[rd.group_resource] = str(exc)
                return
        if left:
            outcome.remaining[rd.group_resource] += len(left)
            for obj in left:
                for finalizer in (obj.get("metadata") or {}).get("finalizers") or ():
                    outcome.finalizers[str(finalizer)] += 1

    await asyncio.gather(*(one(rd) for rd in resources if deletable(rd)))
    return outcome


async def _delete_resource(client: Client, rd: ResourceDef, namespace: str) -> list[JSON]:
    """Delete every object of ``rd`` in ``namespace``; returns what is still there afterwards.
    Lists are metadata-only (as upstream's metadata client): the bodies are never needed here."""
    items, _ = await client.list_all(rd, namespace, headers=METADATA_ONLY)
    if not items:
        return []
    pending = [obj for obj in items if not (obj.get("metadata") or {}).get("deletionTimestamp")]
    if pending:
        if "deletecollection" in rd.verbs:
            try:
                await client.delete_collection(rd, namespace, propagation_policy="Background")
            except MethodNotAllowed:
                await _delete_each(client, rd, namespace, pending)
        else:
            await _delete_each(client, rd, namespace, pending)
    items, _ = await client.list_all(rd, namespace, headers=METADATA_ONLY)
    return items


async def _delete_each(client: Client, rd: ResourceDef, namespace: str, items: list[JSON]) -> None:
    for obj in items:
        meta = obj.get("metadata") or {}
        try:
            await client.delete(
                rd,
                str(meta["name"]),
                namespace,
                propagation_policy="Background",
                preconditions={"uid": meta["uid"]} if meta.get("uid") else None,
            )
        except NotFound:
            continue
