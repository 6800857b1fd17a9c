"""ControllerRevisions of a StatefulSet or DaemonSet (kube-controller-manager's ``controller/history``).

Each pod template an owner has had is one ControllerRevision ``<owner>-<hash>`` (the hash the
pods carry as ``controller-revision-hash``), owned by it as controller, labelled with the
template's labels plus that hash (``kubectl rollout history`` lists them by the owner's selector),
holding ``data: {"spec": {"template": {…, "$patch": "replace"}}}`` (what ``kubectl rollout undo``
applies as a strategic merge patch) and a ``revision`` number. A template that comes back — an
undo — gets its revision renumbered to the newest + 1, as upstream does, so the history reads in
order. Revisions beyond ``revisionHistoryLimit`` that no live pod uses are deleted, oldest first.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from atoll.api.errors import AlreadyExists, Conflict, NotFound
from atoll.api.kinds import CONTROLLERREVISIONS
from atoll.api.podtemplates import controller_of, controller_ref
from atoll.client import Client
from atoll.runtime.cache import Cache

JSON = dict[str, Any]
HASH_LABEL = "controller-revision-hash"
CHANGE_CAUSE = "kubernetes.io/change-cause"


def owned(revisions: Cache, owner: JSON) -> list[JSON]:
    uid = owner["metadata"]["uid"]
    return [r for r in revisions.list(owner["metadata"]["namespace"]) if (controller_of(r) or {}).get("uid") == uid]


def revision_body(owner: JSON, name: str, hash_: str, number: int) -> JSON:
    template = (owner.get("spec") or {}).get("template") or {}
    labels = {**((template.get("metadata") or {}).get("labels") or {}), HASH_LABEL: hash_}
    md: JSON = {"name": name, "labels": labels, "ownerReferences": [controller_ref(owner)]}
    cause = (owner["metadata"].get("annotations") or {}).get(CHANGE_CAUSE)
    if cause:
        md["annotations"] = {CHANGE_CAUSE: cause}
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": md,
            "data": {"spec": {"template": {**template, "$patch": "replace"}}}, "revision": number}


async def ensure_revision(client: Client, revisions: Cache, owner: JSON, name: str, hash_: str) -> None:
    """The owner's current template as revision ``name``: created, or renumbered newest + 1."""
    mine = owned(revisions, owner)
    newest = max((int(r.get("revision") or 0) for r in mine), default=0)
    namespace = owner["metadata"]["namespace"]
    existing = next((r for r in mine if r["metadata"]["name"] == name), None)
    if existing is None:
        if revisions.get(name, namespace) is not None:
            return  # a revision of that name owned by someone else: leave it (collision)
        try:
            await client.create(CONTROLLERREVISIONS, revision_body(owner, name, hash_, newest + 1), namespace)
        except AlreadyExists:
            pass
        return
    if int(existing.get("revision") or 0) < newest:
        patch = {"metadata": {"resourceVersion": existing["metadata"].get("resourceVersion")},
                 "revision": newest + 1}
        try:
            await client.patch(CONTROLLERREVISIONS, name, patch, namespace)
        except (Conflict, NotFound):
            pass


async def truncate(client: Client, revisions: Cache, owner: JSON, live: Collection[str], limit: int) -> None:
    """Delete the oldest revisions beyond ``limit`` that are not ``live`` (current or in use)."""
    spare = sorted((r for r in owned(revisions, owner) if r["metadata"]["name"] not in live),
                   key=lambda r: int(r.get("revision") or 0))
    for revision in spare[:max(0, len(spare) - limit)]:
        try:
            await client.delete(CONTROLLERREVISIONS, revision["metadata"]["name"], owner["metadata"]["namespace"])
        except NotFound:
            pass
