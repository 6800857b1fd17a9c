"""Version conversion of custom resources whose CRD has several versions (strategy ``None``).

As with kube-apiserver, a write at any served version is stored at the CRD's storage version, and
every read (GET, LIST items, WATCH events, Table rows with the object, in-process reads, a write's
answer) shows the object at the version of the request. With ``spec.conversion.strategy: None``
converting changes ``apiVersion`` and nothing else. A stored object's ``apiVersion`` is not
assumed to be the storage version: objects written before the storage version changed stay at
the old one until rewritten, and are converted like any other.

Only a ``ResourceDef`` with ``storage_version`` set (a CRD with more than one version) converts;
callers test that field first, so every other resource pays one attribute read. An object already
at the requested version is served as cached (same dict, same bytes); another is copied shallowly
with its ``apiVersion`` replaced, and its encoding is kept on the cached revision
(``Cached.derived``), so readers of one version share one encoding per revision, as they share
the stored one.
"""

from __future__ import annotations

from typing import Any

import orjson

from atoll.api.registry import ResourceDef
from atoll.apiserver.cache.entries import LARGE_OBJECT, Cached, exact

JSON = dict[str, Any]

_STORED = "conversion:stored"  # Cached.derived key: a large object's stored apiVersion


def to_version(rd: ResourceDef, obj: JSON) -> JSON:
    """``obj`` at ``rd``'s version: ``obj`` itself when it is at it, else a shallow copy."""
    api_version = rd.api_version
    if obj.get("apiVersion") == api_version:
        return obj
    return {**obj, "apiVersion": api_version}


def to_storage(rd: ResourceDef, obj: JSON) -> None:
    """Stamp the storage version on an object about to be stored (the writer's own dict)."""
    obj["apiVersion"] = rd.storage_api_version


def _stored_version(cached: Cached) -> Any:
    """The cached object's ``apiVersion``, without decoding a large object more than once."""
    if len(cached.raw) <= LARGE_OBJECT:
        return cached.obj.get("apiVersion")
    derived = cached.derived
    if derived is not None and _STORED in derived:
        return derived[_STORED]
    stored = cached.peek().get("apiVersion")
    if derived is None:
        derived = cached.derived = {}
    derived[_STORED] = stored
    return stored


def raw(rd: ResourceDef, cached: Cached) -> bytes:
    """The encoding of ``cached`` at ``rd``'s version (its own bytes when it is at it)."""
    api_version = rd.api_version
    if _stored_version(cached) == api_version:
        return cached.raw
    derived = cached.derived
    key = ("apiVersion", api_version)
    if derived is not None:
        hit = derived.get(key)
        if isinstance(hit, bytes):
            return hit
    else:
        derived = cached.derived = {}
    encoded = exact(orjson.dumps({**cached.peek(), "apiVersion": api_version}))
    derived[key] = encoded
    return encoded
