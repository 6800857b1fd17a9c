"""Object semantics on top of the store: create, update, patch, delete, status and finalizers.

Every write here follows one pattern: read the current object from the watch cache, compute the
new object, run admission, append it to the store with the current revision as a precondition
(retrying on a stale cache when the client did not pin a resourceVersion) and wait until the
cache has applied the new revision, so the caller reads its own write. A write that changes
nothing is not stored (no wasted revisions). A custom resource of several versions is stored at
its storage version; the write's mutation, admission and answer see it at the request's
(``conversion``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from atoll.api import errors, timestamps
from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.registry import ResourceDef
from atoll.apiserver.admission.chain import AdmissionChain, Attributes
from atoll.apiserver.auth.user import UserInfo
from atoll.apiserver.cache.entries import Cached
from atoll.apiserver.cache.watchcache import CacheStopped, WatchCache
from atoll.apiserver.patch import apply as ssa
from atoll.apiserver.registry import conversion, meta
from atoll.apiserver.registry.deletion import check_preconditions, mark_deleted
from atoll.apiserver.registry.strategies import Strategies
from atoll.apiserver.registry.updates import SERVER_MANAGED, drop_empty, merged_update
from atoll.store.base import KeyExists, KeyNotFound, RevisionMismatch, Store

log = logging.getLogger(__name__)

JSON = dict[str, Any]
Mutator = Callable[[JSON], JSON]

MAX_RETRIES = 8
_META_CHECKED = ("name", "generateName", "labels", "annotations", "finalizers", "ownerReferences")


@dataclass(slots=True)
class WriteOptions:
    dry_run: bool = False
    field_manager: str = ""
    field_validation: str = "Warn"
    user: UserInfo | None = None
    warnings: list[str] = field(default_factory=list)  # filled by admission, sent as Warning headers
    record_managed_fields: bool = True  # False: the caller (server-side apply) set managedFields itself
    owned: bool = False  # True: the object is the server's own (a request body), the cache may keep it


def encode_for_store(obj: JSON) -> bytes:
    """Stored form: the object without ``metadata.resourceVersion`` (derived from the revision)."""
    md = obj["metadata"]
    rv = md.pop("resourceVersion", None)
    try:
        return orjson.dumps(obj)
    finally:
        if rv is not None:
            md["resourceVersion"] = rv


def _without_volatile(obj: JSON) -> JSON:
    out = dict(obj)
    md = dict(out.get("metadata") or {})
    md.pop("resourceVersion", None)
    md.pop("managedFields", None)
    out["metadata"] = md
    return out


def _managed(obj: JSON) -> Any:
    return obj["metadata"].get("managedFields")


def _is_noop(new: JSON, current: JSON, recording: bool, same_content: bool) -> bool:
    """Whether storing ``new`` would change nothing (``same_content``: equal but for resourceVersion
    and managedFields). With ``recording``, managedFields the writer did not send (or sent back
    unchanged) stay as stored when no field changed, so they need no check."""
    if not same_content:
        return False
    sent, stored = _managed(new), _managed(current)
    return sent == stored or (recording and not sent)


class ResourceStorage:
    """The write and read paths for all resources."""

    def __init__(
        self,
        store: Store,
        cache: WatchCache,
        admission: AdmissionChain,
        strategies: Strategies,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.strategies = strategies
        self.clock = clock
        self.store = store
        self.cache = cache
        self.admission = admission

    # ---- reads ---------------------------------------------------------------------------

    def get(self, rd: ResourceDef, namespace: str | None, name: str) -> Cached:
        cached = self.cache.get(rd.key(namespace, name))
        if cached is None:
            raise errors.not_found(rd.plural, rd.group, name)
        return cached

    async def _current(self, rd: ResourceDef, namespace: str | None, name: str, pinned: int = 0) -> Cached:
        """The object a write acts on. On a cache miss, or a pinned resourceVersion newer than the
        cache, catch up with the store first: with several masters on one database, an object
        another master just acknowledged may not have reached this cache yet (never 404/409 for it)."""
        if pinned > self.cache.revision:
            with contextlib.suppress(TimeoutError):
                await self.cache.wait_for(pinned)
        cached = self.cache.get(rd.key(namespace, name))
        if cached is None:
            return await self._fresh(rd, namespace, name)
        return cached

    async def current(self, rd: ResourceDef, namespace: str | None, name: str) -> Cached:
        """``get`` for a request that must not answer 404 for an object another master has
        acknowledged (GET, apply): a cache miss is checked against the store."""
        cached = self.cache.get(rd.key(namespace, name))
        if cached is not None:
            return cached
        if self.store.exclusive:  # the only writer: no other master can have acknowledged it
            raise errors.not_found(rd.plural, rd.group, name)
        return await self._fresh(rd, namespace, name)

    async def _fresh(self, rd: ResourceDef, namespace: str | None, name: str) -> Cached:
        """Current object straight from the store (after a precondition failed on a stale cache)."""
        kv = await self.store.get(rd.key(namespace, name))
        if kv is None:
            raise errors.not_found(rd.plural, rd.group, name)
        await self.cache.wait_for(kv.revision)
        return self.get(rd, namespace, name)

    # ---- create ----------------------------------------------------------------------------

    async def create(self, rd: ResourceDef, namespace: str | None, obj: JSON, opts: WriteOptions) -> JSON:
        md = obj.get("metadata")
        if not isinstance(md, dict):
            md = obj["metadata"] = {}
        if md.get("resourceVersion"):
            raise errors.BadRequest("resourceVersion should not be set on objects to be created")
        if rd.namespaced:
            if md.get("namespace") and md["namespace"] != namespace:
                raise errors.BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            md["namespace"] = namespace
        else:
            md.pop("namespace", None)
        if not md.get("name"):
            if md.get("generateName"):
                md["name"] = meta.generate_name(str(md["generateName"]))
            else:
                raise errors.invalid(
                    rd.kind,
                    rd.group,
                    "",
                    [
                        errors.cause(
                            "FieldValueRequired", "metadata.name", "Required value: name or generateName is required"
                        )
                    ],
                )
        for fld in SERVER_MANAGED:
            md.pop(fld, None)
        drop_empty(md)
        md["uid"] = meta.new_uid()
        md["creationTimestamp"] = timestamps.format_time(self.clock.now())
        strategy = self.strategies.for_resource(rd)
        if strategy.tracks_generation:
            md["generation"] = 1
        obj["apiVersion"], obj["kind"] = rd.api_version, rd.kind
        strategy.prepare_create(rd, obj)
        attrs = Attributes(
            "CREATE",
            rd,
            namespace,
            md["name"],
            obj,
            None,
            dry_run=opts.dry_run,
            field_validation=opts.field_validation,
            user=opts.user,
            warnings=opts.warnings,
        )
        value: bytes | None = None
        try:
            await self.admission.admit(attrs)
            self._validate_meta(rd, obj)
            if opts.record_managed_fields:
                ssa.record_update(rd, None, obj, opts.field_manager)
            if opts.dry_run:
                attrs.abort()
                return obj
            if rd.storage_version:
                obj = await conversion.stored(rd, obj)
            key = rd.key(namespace, md["name"])
            value = self._encode(obj, opts.owned)
            try:
                revision = await self.store.create(key, value)
            except KeyExists:
                raise errors.already_exists(rd.plural, rd.group, md["name"]) from None
        except BaseException:
            attrs.abort()
            if value is not None:
                self.cache.forget(value)
            raise
        try:
            created = await self._after_write(key, revision, obj)
            return await conversion.view(rd, created) if rd.storage_version else created
        finally:
            if opts.owned:
                self.cache.forget(value)

    def _encode(self, obj: JSON, owned: bool) -> bytes:
        """The stored form; handed to the cache with ``obj`` when the object is the server's own."""
        value = encode_for_store(obj)
        if owned:
            self.cache.adopt(value, obj)
        return value

    async def _applied(self, revision: int) -> None:
        """Read-your-writes after a committed write: wait for the cache to apply ``revision``. A
        stopped cache (the server is shutting down) ends the wait at once without failing the
        write: it is committed, and its answer is built from what was written (as kube-apiserver's
        always is, from etcd's reply rather than its cache), not a 5 s wait and then a 500."""
        with contextlib.suppress(CacheStopped):
            await self.cache.wait_for(revision)

    async def _after_write(self, key: str, revision: int, obj: JSON) -> JSON:
        await self._applied(revision)
        cached = self.cache.get(key)
        if cached is not None and cached.revision == revision:
            return cached.obj
        obj["metadata"]["resourceVersion"] = str(revision)
        return obj

    def _validate_meta(self, rd: ResourceDef, obj: JSON, old: JSON | None = None) -> None:
        """422 for a bad name or malformed labels, annotations, finalizers or owner references;
        on an update nothing to do when those are as stored (checked when the object was written)."""
        md = obj["metadata"]
        if old is not None:
            before = old["metadata"]
            if all(md.get(f) == before.get(f) for f in _META_CHECKED):
                return
        causes = [
            errors.cause("FieldValueInvalid", "metadata.name", f'Invalid value: "{md["name"]}": {p}')
            for p in self.strategies.for_resource(rd).name_problems(str(md["name"]))
        ]
        causes += meta.metadata_causes(md)
        if causes:
            raise errors.invalid(rd.kind, rd.group, str(md["name"]), causes)

    # ---- update / patch ----------------------------------------------------------------------

    async def update(
        self, rd: ResourceDef, namespace: str | None, name: str, body: JSON, opts: WriteOptions, subresource: str = ""
    ) -> JSON:
        md = body.get("metadata")
        if not isinstance(md, dict):
            raise errors.BadRequest("metadata is required for an update")
        if md.get("name") and md["name"] != name:
            raise errors.BadRequest(
                f"the name of the object ({md['name']}) does not match the name on the URL ({name})"
            )
        if rd.namespaced and md.get("namespace") and md["namespace"] != namespace:
            raise errors.BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        pinned = str(md.get("resourceVersion") or "")
        pinned_rev = int(pinned) if pinned.isdigit() else 0

        def mutate(current: JSON) -> JSON:
            if pinned and pinned != current["metadata"]["resourceVersion"]:
                raise errors.conflict(rd.plural, rd.group, name)
            return body

        return await self.modify(rd, namespace, name, mutate, opts, subresource=subresource, pinned=bool(pinned),
                                 pinned_revision=pinned_rev)

    async def modify(
        self,
        rd: ResourceDef,
        namespace: str | None,
        name: str,
        mutate: Mutator,
        opts: WriteOptions,
        *,
        subresource: str = "",
        pinned: bool = False,
        pinned_revision: int = 0,
    ) -> JSON:
        """Read-modify-write with optimistic concurrency; ``mutate`` returns the desired object
        (it and admission see the current object at ``rd``'s version; so does the caller's answer)."""
        done = await self._modify(rd, namespace, name, mutate, opts, subresource, pinned, pinned_revision)
        return await conversion.view(rd, done) if rd.storage_version else done

    async def _modify(
        self,
        rd: ResourceDef,
        namespace: str | None,
        name: str,
        mutate: Mutator,
        opts: WriteOptions,
        subresource: str,
        pinned: bool,
        pinned_revision: int,
    ) -> JSON:
        current = await self._current(rd, namespace, name, pinned_revision)
        for _ in range(MAX_RETRIES):
            old = await conversion.view(rd, current.obj) if rd.storage_version else current.obj
            try:
                wanted = mutate(old)
            except errors.Conflict:  # a pin newer than this cache (written through another master)?
                fresh = await self._fresh(rd, namespace, name)
                if fresh.revision == current.revision:
                    raise
                current = fresh
                old = await conversion.view(rd, current.obj) if rd.storage_version else current.obj
                wanted = mutate(old)
            new = merged_update(self.strategies.for_resource(rd), rd, old, wanted, subresource)
            attrs = Attributes(
                "UPDATE",
                rd,
                namespace,
                name,
                new,
                old,
                subresource=subresource,
                dry_run=opts.dry_run,
                field_validation=opts.field_validation,
                user=opts.user,
                warnings=opts.warnings,
                old_size=len(current.raw),
            )
            await self.admission.admit(attrs)
            if not subresource:  # after the schema: a field of the wrong type is named first
                self.strategies.for_resource(rd).check_update(rd, old, new)
            if rd.storage_version:
                new = await conversion.stored(rd, dict(new))
            same_content = _without_volatile(new) == _without_volatile(current.obj)  # managedFields aside
            if _is_noop(new, current.obj, opts.record_managed_fields, same_content):
                return current.obj  # checked before the managedFields bookkeeping: no-ops don't pay it
            if opts.record_managed_fields:
                ssa.record_update(rd, current.obj, new, opts.field_manager, subresource)  # managedFields only
            if same_content and _managed(new) == _managed(current.obj):
                return current.obj
            self._validate_meta(rd, new, current.obj)
            if opts.dry_run:
                return new
            try:
                return await self._store_update(rd, namespace, name, new, current, opts.owned)
            except RevisionMismatch:
                if pinned:
                    raise errors.conflict(rd.plural, rd.group, name) from None
                current = await self._fresh(rd, namespace, name)
        raise errors.conflict(rd.plural, rd.group, name)

    async def _store_update(
        self, rd: ResourceDef, namespace: str | None, name: str, new: JSON, current: Cached, owned: bool
    ) -> JSON:
        """Store ``new`` over ``current`` (or remove the object when ``new`` ends its deletion).
        ``owned``: ``new`` is the server's own, never mutated afterwards; the cache keeps it."""
        key = rd.key(namespace, name)
        md = new["metadata"]
        if (
            md.get("deletionTimestamp")
            and not md.get("finalizers")
            and not md.get("deletionGracePeriodSeconds")
            and not self.strategies.for_resource(rd).deletion_held(new)
        ):
            try:
                ev = await self.store.delete(key, current.revision)
            except KeyNotFound:
                raise errors.not_found(rd.plural, rd.group, name) from None
            await self._applied(ev.revision)
            new["metadata"]["resourceVersion"] = str(ev.revision)
            return new
        value = self._encode(new, owned)
        try:
            revision = await self.store.update(key, value, current.revision)
            return await self._after_write(key, revision, new)
        except KeyNotFound:
            raise errors.not_found(rd.plural, rd.group, name) from None
        finally:
            if owned:
                self.cache.forget(value)

    # ---- delete ----------------------------------------------------------------------------

    async def delete(
        self, rd: ResourceDef, namespace: str | None, name: str, options: JSON, opts: WriteOptions
    ) -> tuple[JSON, bool]:
        """Delete or mark for deletion; returns (object at ``rd``'s version, finished)."""
        obj, finished = await self._delete(rd, namespace, name, options, opts)
        return (await conversion.view(rd, obj) if rd.storage_version else obj), finished

    async def _delete(
        self, rd: ResourceDef, namespace: str | None, name: str, options: JSON, opts: WriteOptions
    ) -> tuple[JSON, bool]:
        current = await self._current(rd, namespace, name)
        for _ in range(MAX_RETRIES):
            check_preconditions(rd, name, current.obj, options)
            attrs = Attributes("DELETE", rd, namespace, name, None, current.obj, dry_run=opts.dry_run, user=opts.user)
            await self.admission.admit(attrs)
            marked = mark_deleted(self.strategies.for_resource(rd), current.obj, options, self.clock.now())
            if opts.dry_run:
                return (marked or current.obj), marked is None
            try:
                if marked is not None:
                    if _without_volatile(marked) == _without_volatile(current.obj):
                        return current.obj, False
                    # ``marked`` is new top-level and metadata dicts over the cached object: the server's own
                    return await self._store_update(rd, namespace, name, marked, current, True), False
                ev = await self.store.delete(rd.key(namespace, name), current.revision)
                await self._applied(ev.revision)
                gone = dict(current.obj)
                gone["metadata"] = dict(gone["metadata"], resourceVersion=str(ev.revision))
                return gone, True
            except RevisionMismatch:
                current = await self._fresh(rd, namespace, name)
            except KeyNotFound:
                raise errors.not_found(rd.plural, rd.group, name) from None
        raise errors.conflict(rd.plural, rd.group, name)
