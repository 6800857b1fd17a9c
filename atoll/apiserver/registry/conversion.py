"""Version conversion of custom resources whose CRD has several versions.

As with kube-apiserver, a write at any served version is stored at the CRD's storage version, and
every read (GET, LIST items, WATCH events, Table rows with the object, in-process reads, a write's
answer) shows the object at the version of the request. A stored object's ``apiVersion`` is not
assumed to be the storage version: objects written before the storage version changed stay at
the old one until rewritten, and are converted like any other.

Only a ``ResourceDef`` with ``storage_version`` set (a CRD with more than one version) converts;
callers test that field first, so every other resource pays one attribute read. An object already
at the requested version is served as cached (same dict, same bytes). Otherwise:

* strategy ``None``: a shallow copy with its ``apiVersion`` replaced (``to_version``), synchronous;
* strategy ``Webhook`` (``rd.conversion_webhook``): the CRD's webhook converts it, called by
  ``rd.webhook_clients`` (the API server's ``apiextensions.webhook.WebhookClients``), so the async
  ``view``/``stored`` and ``prepare`` are awaited before a read's synchronous part; ``prepare``
  sends one ConversionReview for every object of a page or watch chunk not converted yet. Labels
  and annotations the webhook changed must be valid ones (kube's converter checks them too): if
  not, the conversion fails with a 500 naming the webhook, the object's index and the problem.

Either way a cached revision's converted form (its encoding, and with a webhook its dict) is kept
on it (``Cached.derived``), so readers of one version share one conversion per revision, as they
share the stored encoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from atoll.api import errors
from atoll.api.registry import ResourceDef
from atoll.apiserver.cache.entries import LARGE_OBJECT, Cached, exact
from atoll.apiserver.registry.meta import metadata_causes

JSON = dict[str, Any]

_STORED = "conversion:stored"  # Cached.derived key: a large object's stored apiVersion


def to_version(rd: ResourceDef, obj: JSON) -> JSON:
    """``obj`` at ``rd``'s version with strategy ``None``: ``obj`` itself when it is at it, else a
    shallow copy (a webhook's conversion must have been awaited: ``view``)."""
    api_version = rd.api_version
    if obj.get("apiVersion") == api_version:
        return obj
    if rd.conversion_webhook is not None:
        raise errors.InternalError(f"{rd.group_resource}: an object was not converted to {api_version}")
    return {**obj, "apiVersion": api_version}


async def _webhook(rd: ResourceDef, objs: list[JSON], desired: str) -> list[JSON]:
    config, clients = rd.conversion_webhook, rd.webhook_clients
    if config is None or clients is None:  # a CRD's resource not served by this API server
        raise errors.InternalError(f"{rd.group_resource}: no client for its conversion webhook")
    converted = await clients.convert(config, rd.group_resource, objs, desired)
    for index, (original, new) in enumerate(zip(objs, converted, strict=True)):
        problem = _metadata_problem(original.get("metadata") or {}, new.get("metadata") or {})
        if problem:
            raise errors.InternalError(f"conversion webhook for {rd.group_resource} returned invalid metadata in "
                                       f"object at index {index}: {problem}")
    return converted


def _metadata_problem(original: JSON, new: JSON) -> str | None:
    """What is wrong with the labels or annotations a webhook changed (kube validates them only when
    they changed); None when nothing is."""
    changed: JSON = {k: new[k] for k in ("labels", "annotations") if k in new and new[k] != original.get(k)}
    for found in metadata_causes(changed):
        return f"{found['field']}: {found['message']}"
    return None


async def view(rd: ResourceDef, obj: JSON) -> JSON:
    """``obj`` at ``rd``'s version (``obj`` itself when it is at it)."""
    if rd.conversion_webhook is None or obj.get("apiVersion") == rd.api_version:
        return to_version(rd, obj)
    (converted,) = await _webhook(rd, [obj], rd.api_version)
    return converted


async def stored(rd: ResourceDef, obj: JSON) -> JSON:
    """An object about to be stored, at the storage version (with strategy ``None`` the writer's own
    dict, stamped; with a webhook its conversion)."""
    storage = rd.storage_api_version
    if rd.conversion_webhook is None:
        obj["apiVersion"] = storage
        return obj
    if obj.get("apiVersion") == storage:
        return obj
    (converted,) = await _webhook(rd, [obj], storage)
    return converted


def _stored_version(cached: Cached) -> Any:
    """The cached object's ``apiVersion``, without decoding a large object more than once."""
    if len(cached.raw) <= LARGE_OBJECT:
        return cached.obj.get("apiVersion")
    derived = cached.derived
    if derived is not None and _STORED in derived:
        return derived[_STORED]
    stored_as = cached.peek().get("apiVersion")
    if derived is None:
        derived = cached.derived = {}
    derived[_STORED] = stored_as
    return stored_as


async def prepare(rd: ResourceDef, items: Sequence[Cached]) -> None:
    """Convert, with the CRD's webhook, the cached objects ``raw``/``obj`` will be asked for at
    ``rd``'s version and do not have yet (one ConversionReview); nothing to do without a webhook."""
    if rd.conversion_webhook is None:
        return
    key = ("object", rd.api_version)
    todo = [c for c in items if _stored_version(c) != rd.api_version and (c.derived is None or key not in c.derived)]
    if not todo:
        return
    converted = await _webhook(rd, [c.peek() for c in todo], rd.api_version)
    for cached, obj in zip(todo, converted, strict=True):
        derived = cached.derived
        if derived is None:
            derived = cached.derived = {}
        derived[key] = obj


def obj(rd: ResourceDef, cached: Cached) -> JSON:
    """The dict of ``cached`` at ``rd``'s version (``prepare`` first with a webhook)."""
    if _stored_version(cached) == rd.api_version:
        return cached.peek()
    if rd.conversion_webhook is None:
        return to_version(rd, cached.peek())
    hit = None if cached.derived is None else cached.derived.get(("object", rd.api_version))
    if hit is None:
        raise errors.InternalError(f"{rd.group_resource}: an object was not converted to {rd.api_version}")
    converted: JSON = hit
    return converted


def raw(rd: ResourceDef, cached: Cached) -> bytes:
    """The encoding of ``cached`` at ``rd``'s version (its own bytes when it is at it; ``prepare``
    first with a webhook)."""
    api_version = rd.api_version
    if _stored_version(cached) == api_version:
        return cached.raw
    derived = cached.derived
    key = ("apiVersion", api_version)
    if derived is not None:
        hit = derived.get(key)
        if isinstance(hit, bytes):
            return hit
    encoded = exact(orjson.dumps(obj(rd, cached)))
    derived = cached.derived
    if derived is None:
        derived = cached.derived = {}
    derived[key] = encoded
    return encoded
