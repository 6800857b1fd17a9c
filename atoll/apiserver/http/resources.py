"""HTTP handlers for resource endpoints: get, list, watch, create, update, patch, delete, and
every subresource (dispatched here, in one place, to the handler the kind's strategy registers).

The router hands each request a parsed ``Route``; handlers translate query parameters and bodies
into calls on ``ResourceStorage`` and render the result as JSON, a Table (with the printer the
kind's strategy names) or metadata only, as the ``negotiate.Target`` the router put on the request
asks (in its ``meta.k8s.io`` version; 406 when its kind does not fit the answer, see ``partial``).
Nothing here knows a kind by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from atoll.api import errors
from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.registry import ResourceDef
from atoll.apiserver.auth.user import UserInfo
from atoll.apiserver.cache.entries import Cached
from atoll.apiserver.http import codec, partial
from atoll.apiserver.http.authorize import field_selector_name
from atoll.apiserver.http.metrics_api import MetricsAPI, is_metrics
from atoll.apiserver.http.negotiate import TARGET_KEY, Target
from atoll.apiserver.http.podlogs import PodLogs
from atoll.apiserver.http.proxy import Relay
from atoll.apiserver.http.routing import Route
from atoll.apiserver.http.watch import WatchStreamSettings, serve_watch
from atoll.apiserver.http.watchstart import WatchStart, watch_start
from atoll.apiserver.patch import apply as ssa
from atoll.apiserver.patch.dispatch import PATCH_TYPES, apply_patch
from atoll.apiserver.patch.managed_fields import manager_from_user_agent
from atoll.apiserver.registry import conversion, lists, params
from atoll.apiserver.registry.storage import ResourceStorage, WriteOptions
from atoll.apiserver.registry.strategies import Strategies
from atoll.apiserver.registry.subresources import (
    NOT_SERVED,
    RelayReply,
    StatusReply,
    StreamReply,
    Subresource,
    SubresourceCall,
    UpgradeReply,
)
from atoll.apiserver.tables.render import check_include, render_table, render_table_bytes

JSON = dict[str, Any]


def _options(request: web.Request, body: JSON | None = None) -> WriteOptions:
    query = request.query
    body_dry_run = body.get("dryRun") if body else None
    dry_run = params.dry_run(query.getall("dryRun", [])) or params.dry_run(
        body_dry_run if isinstance(body_dry_run, list) else [])
    validation = query.get("fieldValidation") or "Warn"
    if validation not in ("Strict", "Warn", "Ignore"):
        raise errors.BadRequest(f'invalid fieldValidation "{validation}": must be one of Strict, Warn, Ignore')
    user = request.get(codec.USER_KEY)
    return WriteOptions(
        dry_run=dry_run,
        field_manager=params.field_manager(query.get("fieldManager", ""))
        or manager_from_user_agent(request.headers.get("User-Agent", "")),
        field_validation=validation,
        user=user if isinstance(user, UserInfo) else None,
        owned=True,  # the body was decoded for this request: the watch cache may keep it as is
    )


def _metadata(request: web.Request) -> bool:
    """The negotiated answer is metadata only (``PartialObjectMetadata``)."""
    target = request.get(TARGET_KEY)
    return target is not None and target.metadata


def _include_object(request: web.Request) -> str:
    return request.query.get("includeObject", "Metadata") or "Metadata"


def _warnings(opts: WriteOptions | None) -> dict[str, str] | None:
    if opts is None or not opts.warnings:
        return None
    return {"Warning": ", ".join('299 - "' + w.replace('"', '\\"') + '"' for w in opts.warnings)}


class ResourceHandlers:
    def __init__(
        self,
        objects: ResourceStorage,
        logs: PodLogs,
        strategies: Strategies,
        *,
        watch: WatchStreamSettings | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.objects = objects
        self.logs = logs
        self.relay = Relay()
        self.metrics = MetricsAPI(objects.cache, logs)
        self.strategies = strategies
        self.watch_settings = watch or WatchStreamSettings()
        self.clock = clock

    def _one(
        self,
        request: web.Request,
        rd: ResourceDef,
        obj: JSON,
        status: int = 200,
        opts: WriteOptions | None = None,
        raw: bytes | None = None,
    ) -> web.Response:
        """``obj`` as JSON (or a one-row Table); ``raw`` is its encoding when already known (cached)."""
        headers = _warnings(opts)
        if rd.storage_version and obj.get("apiVersion") != rd.api_version:
            obj, raw = conversion.to_version(rd, obj), None
        target = request.get(TARGET_KEY)
        if target is None:  # neither metadata only nor a Table: the object
            return codec.json_response(obj if raw is None else raw, status=status, headers=headers)
        if target.metadata:
            partial.check_one(rd, target)
            return codec.json_response(partial.one(obj, target.version), status=status, headers=headers)
        table = render_table(
            rd,
            [obj],
            printer=self.strategies.for_resource(rd).printer,
            include_object=_include_object(request),
            resource_version=obj["metadata"].get("resourceVersion", ""),
            api_version=target.api_version,
        )
        return codec.json_response(table, status=status, headers=headers)

    def _read_one(self, request: web.Request, rd: ResourceDef, cached: Cached) -> web.Response:
        """A GET's answer from the cached object, as ``_one`` answers it. The object's own bytes
        and its metadata (``partial``: an encoding kept per revision) need no dict, so a large
        object is decoded only for a Table, which reads its fields."""
        target = request.get(TARGET_KEY)
        if target is not None:
            if target.metadata:
                partial.check_one(rd, target)
                return codec.json_response(partial.partial(cached, target.version))
            if rd.storage_version:
                return self._one(request, rd, conversion.obj(rd, cached))
            return self._one(request, rd, cached.obj, raw=cached.raw)
        return codec.json_response(conversion.raw(rd, cached) if rd.storage_version else cached.raw)

    def _cached_raw(self, rd: ResourceDef, obj: JSON) -> bytes | None:
        """The cache's encoding of ``obj`` when a write returned the cached object itself (no re-encode)."""
        md = obj["metadata"]
        cached = self.objects.cache.get(rd.key(md.get("namespace"), md["name"]))
        return cached.raw if cached is not None and cached.obj is obj else None

    async def dispatch(self, request: web.Request, route: Route) -> web.StreamResponse:
        if is_metrics(route.rd):
            return await self.metrics.serve(request, route)
        method = request.method
        if route.subresource:
            found = self.strategies.for_resource(route.rd).subresource(route.subresource)
            if found is None and route.subresource not in route.rd.subresources:
                raise errors.NotFound("the server could not find the requested resource")
            handler = found or NOT_SERVED
            if method not in handler.generic_methods:
                return await self._subresource(request, route, handler)
        if route.name is None:
            if method == "GET":
                return await self.list_or_watch(request, route)
            if method == "POST":
                return await self.create(request, route)
            if method == "DELETE":
                return await self.delete_collection(request, route)
            raise errors.MethodNotAllowed(f"{method} is not supported on a collection")
        if method == "GET":
            if request.query_string:
                await self._get_not_older_than(request.query)
            cached = self.objects.cache.get(route.rd.key(route.namespace, route.name))
            if cached is None:  # acknowledged through another master but not here yet?
                cached = await self.objects.current(route.rd, route.namespace, route.name)
            if route.rd.storage_version and not _metadata(request):
                await conversion.prepare(route.rd, [cached])
            return self._read_one(request, route.rd, cached)
        if method == "PUT":
            return await self.update(request, route)
        if method == "PATCH":
            return await self.patch(request, route)
        if method == "DELETE" and not route.subresource:
            return await self.delete(request, route)
        raise errors.MethodNotAllowed(f"{method} is not supported on {route.rd.plural}/{route.subresource or 'name'}")

    async def _subresource(self, request: web.Request, route: Route, handler: Subresource) -> web.StreamResponse:
        """Every subresource request the generic object endpoints do not serve."""
        assert route.name is not None
        relays = getattr(handler, "relays_body", False)  # the body goes upstream undecoded
        raw = b"" if relays else await codec.read_body(request)
        body = codec.decode_dict(raw, codec.media_type(request)) if raw.strip() else None
        opts = _options(request)
        call = SubresourceCall(request.method, route.rd, route.namespace, route.name, route.subresource, body,
                               request.query, opts, request.headers)
        reply = await handler.serve(self.objects, call)
        if isinstance(reply, RelayReply):
            return await self.relay.relay(request, reply, route.tail)
        if isinstance(reply, StreamReply):
            return await self.logs.relay(request, reply)
        if isinstance(reply, UpgradeReply):
            return await self.logs.relay_websocket(request, reply)
        if isinstance(reply, StatusReply):
            return codec.json_response(reply.body, status=reply.status)
        obj = await conversion.view(route.rd, reply.obj) if route.rd.storage_version else reply.obj
        return self._one(request, route.rd, obj, status=reply.status, opts=opts)

    async def list_or_watch(self, request: web.Request, route: Route) -> web.StreamResponse:
        query = request.query
        rd = route.rd
        matcher = lists.make_matcher(rd, query.get("labelSelector", ""), query.get("fieldSelector", ""))
        target = request.get(TARGET_KEY)
        if params.flag(query.get("watch")):
            start = await self.watch_start(query)
            renderer = None
            if target is not None and target.table:
                include, printer = _include_object(request), self.strategies.for_resource(rd).printer
                check_include(include)  # before the stream starts: a 400, not a broken stream
                api_version = target.api_version

                def renderer(obj: JSON, with_columns: bool) -> JSON:
                    """One event's Table: its ``resourceVersion`` the object's, as kube's printers set it."""
                    return render_table(rd, [obj], printer=printer, include_object=include, with_columns=with_columns,
                                        resource_version=(obj.get("metadata") or {}).get("resourceVersion", ""),
                                        api_version=api_version)

            return await serve_watch(
                request,
                self.objects.cache,
                rd,
                route.namespace,
                matcher,
                table_renderer=renderer,
                metadata_only=target is not None and target.metadata,
                meta_version=target.version if target is not None else "v1",
                settings=self.watch_settings,
                clock=self.clock,
                start=start,
            )
        page = await self.list_page(rd, route.namespace, query, matcher)
        return await self._list_response(request, rd, page, target)

    async def _list_response(
        self, request: web.Request, rd: ResourceDef, page: lists.Page, target: Target | None
    ) -> web.Response:
        """A LIST's page as the object list, metadata only or a Table (``target``)."""
        if target is None:
            if rd.storage_version:
                await conversion.prepare(rd, page.items)
            return codec.json_response(lists.list_body(rd, page))
        if target.metadata:  # (metadata only needs no conversion)
            partial.check_list(rd, target)
            return codec.json_response(partial.list_body(page, target.version))
        include = _include_object(request)
        if rd.storage_version:
            await conversion.prepare(rd, page.items)
            if include == "Object" or rd.conversion_webhook is not None:
                return codec.json_response(self._converted_table(rd, page, include, target.api_version))
        return codec.json_response(render_table_bytes(
            rd,
            page.items,
            printer=self.strategies.for_resource(rd).printer,
            include_object=include,
            resource_version=str(page.revision),
            continue_token=page.continue_token,
            remaining=page.remaining,
            api_version=target.api_version,
        ))

    def _converted_table(self, rd: ResourceDef, page: lists.Page, include: str, api_version: str) -> JSON:
        """A LIST's Table of a resource that converts its objects, when its rows depend on the
        conversion (they hold the objects, or a webhook's conversion changes their cells)."""
        return render_table(
            rd,
            [conversion.obj(rd, c) for c in page.items],
            printer=self.strategies.for_resource(rd).printer,
            include_object=include,
            resource_version=str(page.revision),
            continue_token=page.continue_token,
            remaining=page.remaining,
            api_version=api_version,
        )

    async def list_page(
        self, rd: ResourceDef, namespace: str | None, query: Mapping[str, str], matcher: lists.Matcher | None
    ) -> lists.Page:
        """The page a LIST with ``query`` answers (also the in-process reads' list,
        :mod:`atoll.apiserver.http.local`): ``resourceVersion`` "" waits for the store's current
        revision, a future one up to 3 s; ``limit``/``continue`` paginate."""
        rv = params.resource_version(query)
        params.resource_version_match(query, rv)
        if rv or not query.get("continue"):
            await self.catch_up(rv)
        limit = params.integer("limit", query.get("limit") or "0", minimum=0)
        return await lists.list_page(
            self.objects.store,
            self.objects.cache,
            rd,
            namespace,
            matcher=matcher,
            limit=max(limit, 0),
            continue_token=query.get("continue", ""),
            exact_name=field_selector_name(query.get("fieldSelector", "")),
        )

    async def watch_start(self, query: Mapping[str, Any]) -> WatchStart:
        """What a watch with ``query`` asks for (also the in-process watch's); one that sends its
        initial events (``sendInitialEvents=true``) first waits for the cache to catch up with its
        resourceVersion, as a LIST does, so its state is not older than that."""
        start = watch_start(query, self.watch_settings)
        if start.send_initial:
            await self.catch_up(start.resource_version)
        return start

    async def catch_up(self, rv: str) -> None:
        """Wait until the cache holds ``rv``: "" the store's current revision (a consistent read), a
        future one up to 3 s (then 504); an older one at once."""
        if rv == "":
            await self.objects.cache.wait_for(await self.objects.store.current_revision())
        elif int(rv) > self.objects.cache.revision:
            await self._wait_for_future(int(rv))

    async def _get_not_older_than(self, query: Mapping[str, str]) -> None:
        """A GET's ``resourceVersion`` N (not "0"): the answer is not older than N, so a cache behind
        N waits for it up to 3 s (then 504), as kube-apiserver's cacher; "" and "0" read the cache."""
        rv = params.resource_version(query)
        if rv:
            await self.catch_up(rv)

    async def _wait_for_future(self, rv: int) -> None:
        """A LIST at a resourceVersion not reached yet: wait up to 3 s, then 504 as kube-apiserver."""
        try:
            await self.objects.cache.wait_for(rv, within=3.0)
        except TimeoutError:
            raise errors.ServerTimeout(
                f"Too large resource version: {rv}, current: {self.objects.cache.revision}",
                details={"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                         "retryAfterSeconds": 1},
            ) from None

    async def create(self, request: web.Request, route: Route) -> web.Response:
        body = codec.decode_dict(await codec.read_body(request), codec.media_type(request))
        check_kind(route.rd, body)
        opts = _options(request)
        obj = await self.objects.create(route.rd, route.namespace, body, opts)
        return self._one(request, route.rd, obj, status=201, opts=opts, raw=self._cached_raw(route.rd, obj))

    async def update(self, request: web.Request, route: Route) -> web.Response:
        assert route.name is not None
        body = codec.decode_dict(await codec.read_body(request), codec.media_type(request))
        check_kind(route.rd, body)
        opts = _options(request)
        obj = await self.objects.update(route.rd, route.namespace, route.name, body, opts, route.subresource)
        return self._one(request, route.rd, obj, opts=opts, raw=self._cached_raw(route.rd, obj))

    async def patch(self, request: web.Request, route: Route) -> web.Response:
        assert route.name is not None
        ptype = PATCH_TYPES.get(codec.media_type(request))
        if ptype is None or ptype == "unsupported":
            raise errors.UnsupportedMediaType(
                f"the body of the request was in an unknown format - accepted media types include: "
                f"{', '.join(t for t, v in PATCH_TYPES.items() if v != 'unsupported')}"
            )
        raw = await codec.read_body(request)
        document = codec.decode_object(raw, "application/json" if ptype != "apply" else "application/apply-patch+yaml")
        opts = _options(request)
        rd, name = route.rd, route.name
        if ptype == "apply":
            return await self._apply(request, route, document, opts)
        obj = await self.objects.modify(rd, route.namespace, name, patch_mutator(rd, name, ptype, document), opts,
                                        subresource=route.subresource, pinned=patch_pins_rv(document))
        return self._one(request, rd, obj, opts=opts)

    async def _apply(self, request: web.Request, route: Route, document: Any, opts: WriteOptions) -> web.Response:
        """Server-side apply (``ssa``): create when missing (201), else merge with field ownership."""
        assert route.name is not None
        ssa.validate_apply_query(request.query.get("fieldManager", ""), request.query.get("force"))
        if not isinstance(document, dict):
            raise errors.BadRequest("an apply patch must be an object")
        md = document.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise errors.BadRequest("metadata must be an object")
        if md.get("name") and md["name"] != route.name:
            raise errors.BadRequest(
                f"the name of the object ({md['name']}) does not match the name on the URL ({route.name})")
        check_kind(route.rd, document)
        rd, name, force = route.rd, route.name, codec.bool_param(request, "force")
        manager, pinned = opts.field_manager, str(md.get("resourceVersion") or "")
        opts.record_managed_fields = False
        for _ in range(3):
            try:
                await self.objects.current(rd, route.namespace, name)
            except errors.NotFound:
                if route.subresource:
                    raise
                body = ssa.apply(rd, None, {**document, "metadata": {**md, "name": name}}, manager, force=force)
                try:
                    obj = await self.objects.create(rd, route.namespace, body, opts)
                except errors.AlreadyExists:
                    continue
                return self._one(request, rd, obj, status=201, opts=opts)

            def mutate(current: JSON) -> JSON:
                if pinned and pinned != current["metadata"]["resourceVersion"]:
                    raise errors.conflict(rd.plural, rd.group, name)
                return ssa.apply(rd, current, document, manager, force=force, subresource=route.subresource)

            obj = await self.objects.modify(rd, route.namespace, name, mutate, opts,
                                            subresource=route.subresource, pinned=bool(pinned))
            return self._one(request, rd, obj, opts=opts)
        raise errors.conflict(rd.plural, rd.group, name)

    async def delete(self, request: web.Request, route: Route) -> web.Response:
        assert route.name is not None
        raw = await codec.read_body(request)
        options = codec.decode_dict(raw, codec.media_type(request)) if raw.strip() else {}
        options = params.delete_options(options, request.query)
        opts = _options(request, options)
        rd = route.rd
        obj, finished = await self.objects.delete(rd, route.namespace, route.name, options, opts)
        if finished and not self.strategies.for_resource(rd).returns_deleted_object:
            return codec.json_response(
                codec.success_status(rd.plural, rd.group, route.name, obj["metadata"].get("uid", ""))
            )
        return self._one(request, rd, obj, status=200)

    async def delete_collection(self, request: web.Request, route: Route) -> web.Response:
        rd = route.rd
        if "deletecollection" not in rd.verbs:
            raise errors.MethodNotAllowed(f"deletecollection is not supported on {rd.group_resource}")
        raw = await codec.read_body(request)
        options = codec.decode_dict(raw, codec.media_type(request)) if raw.strip() else {}
        opts = _options(request, options)
        matcher = lists.make_matcher(rd, request.query.get("labelSelector", ""), request.query.get("fieldSelector", ""))
        victims = [
            c.obj for c in self.objects.cache.list(rd.key_prefix(route.namespace)) if matcher is None or matcher(c.obj)
        ]
        deleted = []
        for obj in victims:
            md = obj["metadata"]
            try:
                gone, _ = await self.objects.delete(rd, md.get("namespace"), md["name"], options, opts)
                deleted.append(gone)
            except errors.NotFound:
                continue
        return codec.json_response(
            {
                "kind": rd.kind_list(),
                "apiVersion": rd.api_version,
                "metadata": {"resourceVersion": str(self.objects.cache.revision)},
                "items": deleted,
            }
        )


def check_kind(rd: ResourceDef, body: JSON) -> None:
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if kind and kind != rd.kind:
        raise errors.BadRequest(f"the kind of the body ({kind}) does not match the resource ({rd.kind})")
    if api_version and api_version != rd.api_version:
        raise errors.BadRequest(
            f"the API version in the data ({api_version}) does not match the expected API version ({rd.api_version})"
        )


def patch_mutator(rd: ResourceDef, name: str, ptype: str, document: Any) -> Callable[[JSON], JSON]:
    """The mutation a ``merge``/``json``/``strategic`` PATCH of ``name`` applies to the current object."""

    def mutate(current: JSON) -> JSON:
        new = apply_patch(ptype, current, document, rd.kind if rd.builtin else "")
        if not isinstance(new, dict):
            raise errors.BadRequest("the patch did not produce an object")
        if not isinstance(new.get("metadata") or {}, dict):
            raise errors.BadRequest("metadata must be an object")
        pinned = (new.get("metadata") or {}).get("resourceVersion")
        if pinned and pinned != current["metadata"]["resourceVersion"]:
            raise errors.conflict(rd.plural, rd.group, name)
        return new

    return mutate


def patch_pins_rv(document: Any) -> bool:
    md = document.get("metadata") if isinstance(document, dict) else None
    return isinstance(md, dict) and bool(md.get("resourceVersion"))
