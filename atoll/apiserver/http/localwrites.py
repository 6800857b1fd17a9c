"""In-process writes for the master's own admin client: create, update, patch, delete and bind
without HTTP.

The controller manager and the scheduler write through the master's admin :class:`atoll.client.Client`.
Over the loopback socket each write was encoded, framed, parsed, authenticated, counted, decoded,
stored, encoded again as the answer and decoded by the client, all in one process. Given this
backend (its ``local_writes``, :mod:`atoll.client.local`) the client's ``create``/``update``/
``patch``/``delete`` (objects, ``status`` and ``binding``) go straight to ``ResourceStorage`` with
what the HTTP handlers would have passed: the same admission chain, the user the admin token
authenticates as (``ADMIN_USER``, ``system:masters``), the field manager derived from
``fieldManager`` or the client's User-Agent, subresources dispatched as ``ResourceHandlers.dispatch``
does, and the same answers (the object, or a ``Status`` for a bind or a finished delete of a kind
that does not return it). Errors are the storage's :class:`~atoll.api.errors.APIError` s, the ones
the HTTP client would have parsed back; anything else becomes ``InternalError`` as the server turns
it into a 500.

**Bodies are copied both ways**: the registry may modify its input, so it gets its own copy (an
``orjson`` round trip, which also gives it exactly what an HTTP body decodes to), and the caller gets
its own copy of the answer (from the cache's encoding when the write stored the object as given).

Like the in-process reads, nothing is authorized here (``system:masters`` may do everything), writes
are counted in ``atoll_apiserver_local_request_total``, and calls must come from the server's own
event loop. Server-side apply keeps going over HTTP. When the server stops (:meth:`InProcessWrites.close`)
writes in flight are given a moment to finish and new ones fail at once with
``ClientConnectionError``, as they would on the closed listener (not after a read-your-writes
timeout of a stopped watch cache).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from atoll.api import errors
from atoll.api.registry import ResourceDef
from atoll.apiserver.auth.authn import ADMIN_USER
from atoll.apiserver.http import codec
from atoll.apiserver.http.local import InProcessReads
from atoll.apiserver.http.metrics import count_local
from atoll.apiserver.http.resources import ResourceHandlers, check_kind, patch_mutator, patch_pins_rv
from atoll.apiserver.patch.managed_fields import manager_from_user_agent
from atoll.apiserver.registry import params
from atoll.apiserver.registry.storage import WriteOptions
from atoll.apiserver.registry.subresources import NOT_SERVED, ObjectReply, StatusReply, SubresourceCall
from atoll.client.errors import ClientConnectionError

JSON = dict[str, Any]
log = logging.getLogger(__name__)
_PATCH_TYPES = frozenset({"merge", "json", "strategic"})


def _private(body: Any) -> Any:
    """What the server would decode from ``body`` sent over HTTP: a deep copy of JSON values."""
    return orjson.loads(orjson.dumps(body))


def _private_object(body: Any) -> JSON:
    """``_private(body)``, which must be an object (400 otherwise, as over HTTP)."""
    out = _private(body)
    if not isinstance(out, dict):
        raise errors.BadRequest("the body must be an object")
    return out


def _options(user_agent: str, field_manager: str | None, *, dry_run: bool = False) -> WriteOptions:
    return WriteOptions(
        dry_run=dry_run,
        field_manager=params.field_manager(field_manager or "") or manager_from_user_agent(user_agent),
        user=ADMIN_USER,
        owned=True,  # the body is our private copy: the watch cache may keep it as is
    )


class InProcessWrites:
    """The :class:`atoll.client.local.LocalWrites` of one API server."""

    def __init__(self, handlers: ResourceHandlers, reads: InProcessReads) -> None:
        self._handlers = handlers
        self._objects = handlers.objects
        self._reads = reads
        self._inflight = 0
        self._closed = False
        self._idle: asyncio.Event | None = None

    async def close(self, within: float = 1.0) -> None:
        """Refuse new writes; wait up to ``within`` seconds for those in flight (the server stops)."""
        self._closed = True
        if self._inflight:
            self._idle = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(within):
                    await self._idle.wait()

    def serves(self, rd: ResourceDef) -> bool:
        return self._reads.serves(rd)

    def _target(self, rd: ResourceDef, namespace: str | None, name: str | None) -> tuple[ResourceDef, str | None]:
        own = self._reads.own(rd)
        if own.namespaced and not namespace and name is not None:
            raise ValueError(f"{own.group_resource} {name!r}: a namespace is required")
        return own, namespace if own.namespaced else None

    def _answer(self, rd: ResourceDef, obj: JSON) -> JSON:
        """A private copy of a written object (the cache's encoding when ``obj`` is the cached one)."""
        md = obj.get("metadata") or {}
        cached = self._objects.cache.get(rd.key(md.get("namespace"), str(md.get("name", ""))))
        out: JSON = orjson.loads(cached.raw if cached is not None and cached.obj is obj else orjson.dumps(obj))
        return out

    async def _counted(self, verb: str, rd: ResourceDef, subresource: str | None, code: int,
                       write: Callable[[], Awaitable[JSON]]) -> JSON:
        resource = f"{rd.plural}/{subresource}" if subresource else rd.plural
        if self._closed:
            raise ClientConnectionError(f"{verb} {resource}: the API server has stopped")
        self._inflight += 1
        try:
            out = await write()
        except errors.APIError as err:
            count_local(verb, resource, err.code)
            raise
        except Exception as exc:
            log.exception("internal error serving an in-process %s of %s", verb, resource)
            count_local(verb, resource, 500)
            raise errors.InternalError("an internal error occurred; see the server log") from exc
        finally:
            self._inflight -= 1
            if not self._inflight and self._idle is not None:
                self._idle.set()
        count_local(verb, resource, code)
        return out

    async def _routed(self, method: str, rd: ResourceDef, namespace: str | None, name: str | None,
                      subresource: str | None, body: Any, opts: WriteOptions, code: int,
                      generic: Callable[[], Awaitable[JSON]]) -> JSON:
        """``method`` of a subresource the generic object endpoints do not serve (``binding``), as
        ``ResourceHandlers.dispatch`` routes it; otherwise ``generic`` (the object's write, or its
        ``status``'s). Counted (``_counted``)."""

        async def write() -> JSON:
            if subresource and name is not None:
                out = await self._subresource(method, rd, namespace, name, subresource, body, opts)
                if out is not None:
                    return out
            return await generic()

        return await self._counted(method, rd, subresource, code, write)

    async def _subresource(self, method: str, rd: ResourceDef, namespace: str | None, name: str, subresource: str,
                           body: JSON | None, opts: WriteOptions) -> JSON | None:
        """A subresource write the generic object endpoints do not serve (``binding``), as
        ``ResourceHandlers.dispatch`` routes it; None when they do serve it."""
        found = self._handlers.strategies.for_resource(rd).subresource(subresource)
        if found is None and subresource not in rd.subresources:
            raise errors.NotFound("the server could not find the requested resource")
        handler = found or NOT_SERVED
        if method in handler.generic_methods:
            return None
        call = SubresourceCall(method, rd, namespace, name, subresource, body, {}, opts, {})
        reply = await handler.serve(self._objects, call)
        if isinstance(reply, StatusReply):
            return _private(reply.body)  # type: ignore[no-any-return]
        if isinstance(reply, ObjectReply):
            return self._answer(rd, reply.obj)
        raise errors.InternalError(f"{rd.plural}/{subresource} cannot be served in-process")

    async def create(
        self, rd: ResourceDef, namespace: str | None, body: JSON, *, name: str | None, subresource: str | None,
        dry_run: bool, field_manager: str | None, user_agent: str,
    ) -> JSON:
        own, namespace = self._target(rd, namespace, name)
        body = _private_object(body)
        opts = _options(user_agent, field_manager, dry_run=dry_run)

        async def write() -> JSON:
            if subresource and name is not None:  # the generic endpoints do not create subresources
                raise errors.MethodNotAllowed(f"POST is not supported on {own.plural}/{subresource}")
            check_kind(own, body)
            return self._answer(own, await self._objects.create(own, namespace, body, opts))

        return await self._routed("POST", own, namespace, name, subresource, body, opts, 201, write)

    async def update(
        self, rd: ResourceDef, namespace: str | None, name: str, body: JSON, *, subresource: str | None,
        field_manager: str | None, user_agent: str,
    ) -> JSON:
        own, namespace = self._target(rd, namespace, name)
        body = _private_object(body)
        opts = _options(user_agent, field_manager)

        async def write() -> JSON:
            check_kind(own, body)
            return self._answer(own, await self._objects.update(own, namespace, name, body, opts, subresource or ""))

        return await self._routed("PUT", own, namespace, name, subresource, body, opts, 200, write)

    async def patch(
        self, rd: ResourceDef, namespace: str | None, name: str, patch: Any, *, patch_type: str,
        subresource: str | None, field_manager: str | None, user_agent: str,
    ) -> JSON:
        if patch_type not in _PATCH_TYPES:
            raise ValueError(f"patch type {patch_type!r} is not served in-process")
        own, namespace = self._target(rd, namespace, name)
        document = _private(patch)
        opts = _options(user_agent, field_manager)

        async def write() -> JSON:
            obj = await self._objects.modify(own, namespace, name, patch_mutator(own, name, patch_type, document),
                                             opts, subresource=subresource or "", pinned=patch_pins_rv(document))
            return self._answer(own, obj)

        return await self._routed("PATCH", own, namespace, name, subresource, document, opts, 200, write)

    async def delete(self, rd: ResourceDef, namespace: str | None, name: str, options: JSON | None, *,
                     user_agent: str) -> JSON:
        own, namespace = self._target(rd, namespace, name)

        async def write() -> JSON:
            body = params.delete_options(_private(options or {}), {})
            dry_run = body.get("dryRun")
            opts = _options(user_agent, None, dry_run=params.dry_run(dry_run if isinstance(dry_run, list) else []))
            obj, finished = await self._objects.delete(own, namespace, name, body, opts)
            if finished and not self._handlers.strategies.for_resource(own).returns_deleted_object:
                return codec.success_status(own.plural, own.group, name, obj["metadata"].get("uid", ""))
            return self._answer(own, obj)

        return await self._counted("DELETE", own, None, 200, write)
