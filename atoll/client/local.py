"""In-process reads and writes: :class:`LocalReads` lets a client LIST, WATCH and GET without HTTP,
:class:`LocalWrites` lets it create, update, patch and delete (and bind) without HTTP.

The master's own controllers, scheduler, gateway and pooling/fleet managers run inside the API
server's process. Over the loopback socket every event the watch cache already holds decoded was
encoded, written, read back, chunk-parsed and decoded again in the same process. A client given a
``local`` backend (only the master's own admin client is: see :mod:`atoll.apiserver.http.local`)
serves ``list``/``watch``/``get`` from it with the HTTP semantics (resourceVersion handling, 410
Gone raised as :class:`~atoll.api.errors.Gone`, selectors, bookmarks, ``timeoutSeconds``,
pagination, metadata-only items). A client given ``local_writes`` too sends its creates,
updates, patches (but server-side apply) and deletes, of objects and of their ``status`` and
``binding`` subresources (:data:`LOCAL_SUBRESOURCES`), to it: the same storage, admission and
errors as over HTTP, with the bodies copied both ways (the caller keeps its dicts, the answer is
its own).

**Objects from ``list`` and ``watch`` are the server's cached dicts, shared, never copied: treat
them as read-only** (as informer caches already are). ``get`` returns a private copy (callers
commonly modify what they read and ``update`` it).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any, Protocol

from atoll.api.registry import ResourceDef

JSON = dict[str, Any]


class LocalReads(Protocol):
    """Reads served in-process by the API server the client talks to."""

    def serves(self, rd: ResourceDef) -> bool:
        """Whether reads of ``rd`` can be served locally (else the client uses HTTP)."""
        ...

    async def get(self, rd: ResourceDef, namespace: str | None, name: str) -> JSON:
        """The object (a private copy); ``NotFound`` as over HTTP."""
        ...

    async def list(
        self, rd: ResourceDef, namespace: str | None, params: Mapping[str, str], *, metadata_only: bool
    ) -> JSON:
        """One page, like ``GET`` of the collection with the query ``params`` (``labelSelector``,
        ``fieldSelector``, ``limit``, ``continue``, ``resourceVersion``...)."""
        ...

    def watch(
        self, rd: ResourceDef, namespace: str | None, params: Mapping[str, Any], *, metadata_only: bool
    ) -> AsyncGenerator[tuple[str, JSON], None]:
        """``(type, object)`` events until the stream ends, like ``GET …?watch=true`` with the query
        ``params`` (``resourceVersion``, ``labelSelector``, ``fieldSelector``, ``timeoutSeconds``,
        ``allowWatchBookmarks``, ``sendInitialEvents``; None values are absent); errors (``Gone``...)
        are raised."""
        ...


def with_type(obj: JSON, rd: ResourceDef) -> JSON:
    """``obj`` with ``apiVersion`` and ``kind`` (``rd``'s where missing, as a list's items may lack
    them): ``obj`` itself when it has both, else a new dict — never ``obj`` changed, which may be
    the API server's cached object."""
    if "apiVersion" in obj and "kind" in obj:
        return obj
    return {"apiVersion": rd.api_version, "kind": rd.kind, **obj}


LOCAL_SUBRESOURCES = frozenset({"status", "binding"})
"""Subresources whose writes go in-process (the rest, e.g. proxies and tokens, over HTTP)."""


class LocalWrites(Protocol):
    """Writes served in-process by the API server the client talks to. Every method takes the
    client's ``User-Agent`` (the default field manager, as over HTTP); bodies are copied."""

    def serves(self, rd: ResourceDef) -> bool:
        """Whether writes of ``rd`` can be served locally (else the client uses HTTP)."""
        ...

    async def create(
        self, rd: ResourceDef, namespace: str | None, body: JSON, *, name: str | None, subresource: str | None,
        dry_run: bool, field_manager: str | None, user_agent: str,
    ) -> JSON:
        """``POST`` of the collection, or of ``name``'s ``subresource`` (``binding``)."""
        ...

    async def update(
        self, rd: ResourceDef, namespace: str | None, name: str, body: JSON, *, subresource: str | None,
        field_manager: str | None, user_agent: str,
    ) -> JSON:
        """``PUT`` of the object or its subresource."""
        ...

    async def patch(
        self, rd: ResourceDef, namespace: str | None, name: str, patch: Any, *, patch_type: str,
        subresource: str | None, field_manager: str | None, user_agent: str,
    ) -> JSON:
        """``PATCH`` (``merge``, ``json`` or ``strategic``; not ``apply``)."""
        ...

    async def delete(self, rd: ResourceDef, namespace: str | None, name: str, options: JSON | None, *,
                     user_agent: str) -> JSON:
        """``DELETE`` with these ``DeleteOptions``: the object, or a ``Status``."""
        ...


def local_mode(headers: Mapping[str, str] | None) -> bool | None:
    """How a read with these extra ``headers`` can go local: False (full objects), True (metadata
    only, ``METADATA_ONLY``), or None (anything else, e.g. a Table: over HTTP)."""
    if not headers:
        return False
    if len(headers) != 1:
        return None
    accept = headers.get("Accept")
    if accept is None:
        return None
    first = accept.split(",", 1)[0]
    if "as=PartialObjectMetadata" in first and "g=meta.k8s.io" in first:
        return True
    return False if first.strip() == "application/json" else None
