"""Metadata-only responses: ``PartialObjectMetadata`` and ``PartialObjectMetadataList``.

A client that needs only objects' metadata (the garbage collector, namespace deletion, client-go's
metadata informers) asks with ``Accept: application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1``
(lists and watches) or ``as=PartialObjectMetadata`` (a GET, and watches), exactly as with
kube-apiserver. Each item is ``{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1",
"metadata":{...}}``. A list of 2,000 ConfigMaps of 100 KB is then ~1 MB instead of 200 MB, and the
client never decodes (nor holds) the bodies. ``v=v1beta1`` (still served by kube-apiserver 1.27 to 1.33)
is answered with ``meta.k8s.io/v1beta1`` objects and lists (``version``; ``negotiate`` refuses others).

The encoding of a large object's metadata (``entries.LARGE_OBJECT``) is kept on the cached
revision (``Cached.derived``): its body is decoded at most once per revision for this, outside the
shared cache of decoded objects (a metadata list must not evict the objects clients are reading).
Small objects encode their metadata from the dict they hold. The v1beta1 encoding is the kept v1
one under another head.

The kind asked for must fit the answer, as kube-apiserver's ``asPartialObjectMetadata`` and
``asPartialObjectMetadataList`` check it once the answer is there (after the read, or the write:
a 404 comes first, and a refused write's answer was still written): ``as=PartialObjectMetadata``
on a LIST and ``as=PartialObjectMetadataList`` on one object are ``406 NotAcceptable`` naming the
Go type kube-apiserver holds (``*core.PodList``, ``*unstructured.Unstructured`` for a custom
resource); no later ``Accept`` range is tried (negotiation chose already). A watch's events
(bookmarks included) are ``PartialObjectMetadata`` for either kind: Atoll's own clients watch with
the ``...List`` header their lists use (kube-apiserver cannot transform an event into a list and
falls back to the untransformed object there).
"""

from __future__ import annotations

from typing import Any

import orjson

from atoll.api import errors
from atoll.api.registry import ResourceDef
from atoll.apiserver.cache.entries import LARGE_OBJECT, Cached, exact
from atoll.apiserver.http.negotiate import META_VERSIONS, Target
from atoll.apiserver.registry.lists import Page

_KEY = "PartialObjectMetadata"
_HEADS = {v: b'{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/' + v.encode() + b'","metadata":'
          for v in META_VERSIONS}
_V1 = len(_HEADS["v1"])
_PACKAGES = {"": "core", "events.k8s.io": "core", "internal.apiserver.k8s.io": "apiserverinternal"}
"""Groups whose internal Go package is not their first label (events.k8s.io's Event is core's)."""


def encode(metadata: Any, version: str = "v1") -> bytes:
    return _HEADS[version] + orjson.dumps(metadata if isinstance(metadata, dict) else {}) + b"}"


def _at(v1: bytes, version: str) -> bytes:
    """A v1 encoding at ``version``."""
    return v1 if version == "v1" else _HEADS[version] + v1[_V1:]


def partial(cached: Cached, version: str = "v1") -> bytes:
    """The PartialObjectMetadata encoding of one cached revision."""
    derived = cached.derived
    if derived is not None:
        hit = derived.get(_KEY)
        if isinstance(hit, bytes):
            return _at(hit, version)
    if len(cached.raw) <= LARGE_OBJECT:
        return encode(cached.obj.get("metadata"), version)
    raw = exact(encode(cached.peek().get("metadata")))
    if derived is None:
        derived = cached.derived = {}
    derived[_KEY] = raw
    return _at(raw, version)


def list_body(page: Page, version: str = "v1") -> bytes:
    """``PartialObjectMetadataList`` of one page."""
    md: dict[str, Any] = {"resourceVersion": str(page.revision)}
    if page.continue_token:
        md["continue"] = page.continue_token
        if page.remaining is not None:
            md["remainingItemCount"] = page.remaining
    head = orjson.dumps({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/" + version, "metadata": md})
    return head[:-1] + b',"items":[' + b",".join(partial(c, version) for c in page.items) + b"]}"


def watch_line(kind: str, cached: Cached, version: str = "v1") -> bytes:
    return b'{"type":"' + kind.encode() + b'","object":' + partial(cached, version) + b"}\n"


def one(obj: dict[str, Any], version: str = "v1") -> bytes:
    """``PartialObjectMetadata`` of one object (a GET, or the answer to a write)."""
    return encode(obj.get("metadata"), version)


def _go_type(rd: ResourceDef, listed: bool) -> str:
    """The Go type kube-apiserver holds for ``rd``'s object (or list), as its messages print it (``%T``)."""
    suffix = "List" if listed else ""
    if not rd.builtin:
        return "*unstructured.Unstructured" + suffix
    return f"*{_PACKAGES.get(rd.group) or rd.group.split('.')[0]}.{rd.kind}{suffix}"


def check_one(rd: ResourceDef, target: Target) -> None:
    """406 when one object is asked for as ``PartialObjectMetadataList`` (kube's wording)."""
    if target.kind == "PartialObjectMetadataList":
        raise errors.NotAcceptable("you requested PartialObjectMetadataList, but the requested object is not a list "
                                   f"({_go_type(rd, False)})")


def check_list(rd: ResourceDef, target: Target) -> None:
    """406 when a list is asked for as ``PartialObjectMetadata`` (kube's wording)."""
    if target.kind == "PartialObjectMetadata":
        raise errors.NotAcceptable("you requested PartialObjectMetadata, but the requested object is a list "
                                   f"({_go_type(rd, True)})")
