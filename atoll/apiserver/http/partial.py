"""Metadata-only responses: ``PartialObjectMetadata`` and ``PartialObjectMetadataList``.

A client that needs only objects' metadata (the garbage collector, namespace deletion, client-go's
metadata informers) asks with ``Accept: application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1``
(lists and watches) or ``as=PartialObjectMetadata`` (a GET, and watches), exactly as with
kube-apiserver. Each item is ``{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1",
"metadata":{...}}``. A list of 2,000 ConfigMaps of 100 KB is then ~1 MB instead of 200 MB, and the
client never decodes (nor holds) the bodies.

The encoding of a large object's metadata (``entries.LARGE_OBJECT``) is kept on the cached
revision (``Cached.derived``): its body is decoded at most once per revision for this, outside the
shared cache of decoded objects (a metadata list must not evict the objects clients are reading).
Small objects encode their metadata from the dict they hold. Unlike kube-apiserver, a list asked
``as=PartialObjectMetadata`` (not ``...List``) is served the same list rather than 406.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from atoll.apiserver.cache.entries import LARGE_OBJECT, Cached, exact
from atoll.apiserver.registry.lists import Page

_KEY = "PartialObjectMetadata"
_HEAD = b'{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":'


def wants_metadata(request: web.BaseRequest) -> bool:
    """The client's preferred (first) JSON media type asks for metadata only."""
    for part in request.headers.get("Accept", "").split(","):
        if "json" in part or "protobuf" in part:
            return "as=PartialObjectMetadata" in part and "g=meta.k8s.io" in part
    return False


def encode(metadata: Any) -> bytes:
    return _HEAD + orjson.dumps(metadata if isinstance(metadata, dict) else {}) + b"}"


def partial(cached: Cached) -> bytes:
    """The PartialObjectMetadata encoding of one cached revision."""
    derived = cached.derived
    if derived is not None:
        hit = derived.get(_KEY)
        if isinstance(hit, bytes):
            return hit
    if len(cached.raw) <= LARGE_OBJECT:
        return encode(cached.obj.get("metadata"))
    raw = exact(encode(cached.peek().get("metadata")))
    if derived is None:
        derived = cached.derived = {}
    derived[_KEY] = raw
    return raw


def list_body(page: Page) -> bytes:
    """``PartialObjectMetadataList`` of one page."""
    md: dict[str, Any] = {"resourceVersion": str(page.revision)}
    if page.continue_token:
        md["continue"] = page.continue_token
        if page.remaining is not None:
            md["remainingItemCount"] = page.remaining
    head = orjson.dumps({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": md})
    return head[:-1] + b',"items":[' + b",".join(partial(c) for c in page.items) + b"]}"


def watch_line(kind: str, cached: Cached) -> bytes:
    return b'{"type":"' + kind.encode() + b'","object":' + partial(cached) + b"}\n"


def one(obj: dict[str, Any]) -> bytes:
    """``PartialObjectMetadata`` of one object (a GET, or the answer to a write)."""
    return encode(obj.get("metadata"))
