"""A small in-memory Kubernetes API server for client and runtime tests.

It speaks the real wire protocol for a handful of resources (ConfigMaps, Leases and a
cluster-scoped Domain with a status subresource): legacy discovery, list with ``limit``/
``continue``, get/create/update/patch/delete/deletecollection, ``Status`` error bodies, and
newline-delimited chunked watch streams with bookmarks and 410 ``Expired`` for compacted
resourceVersions. Tests steer it: ``compact()``, ``expire_watches()``, ``drop_watches()``,
``resumed.clear()``, ``inject_failure()``. It stands in until Atoll's own API server fixture lands;
the tests using it should keep passing against the real server unchanged.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from atoll.api import errors
from atoll.api.builtins import BUILTINS
from atoll.api.registry import ResourceDef

JSON = dict[str, Any]

CONFIGMAPS = next(rd for rd in BUILTINS if rd.plural == "configmaps")
LEASES = next(rd for rd in BUILTINS if rd.plural == "leases")
DOMAINS = ResourceDef(
    "kuscia.secretflow",
    "v1alpha1",
    "Domain",
    "domains",
    "domain",
    False,
    ("kd",),
    ("all",),
    subresources=("status",),
    builtin=False,
)
DEFAULT_RESOURCES = (CONFIGMAPS, LEASES, DOMAINS)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def json_patch(doc: Any, ops: list[JSON]) -> Any:
    """RFC 6902 add/remove/replace/test (enough for tests)."""
    doc = orjson.loads(orjson.dumps(doc))
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        kind = op["op"]
        if kind == "test":
            current = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if current != op["value"]:
                raise errors.Invalid(f"test operation failed at {op['path']}")
        elif kind == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        elif isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if kind == "add":
                parent.insert(index, op["value"])
            else:
                parent[index] = op["value"]
        else:
            if kind == "replace" and last not in parent:
                raise errors.Invalid(f"replace operation does not apply: {op['path']} is missing")
            parent[last] = op["value"]
    return doc


def _label_match(labels: dict[str, str], selector: str | None) -> bool:
    for term in filter(None, (t.strip() for t in (selector or "").split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _field_match(obj: JSON, selector: str | None) -> bool:
    meta = obj.get("metadata") or {}
    values = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace")}
    for term in filter(None, (selector or "").split(",")):
        negate = "!=" in term
        key, value = term.replace("!=", "=").replace("==", "=").split("=", 1)
        if key not in values:
            raise errors.BadRequest(f'field label not supported: "{key}"')
        if (values[key] == value) == negate:
            return False
    return True


@dataclass(eq=False)
class _Watcher:
    rd: ResourceDef
    namespace: str | None
    labels: str | None
    fields: str | None
    queue: asyncio.Queue[tuple[str, JSON] | str] = field(default_factory=asyncio.Queue)

    def matches(self, rd: ResourceDef, obj: JSON) -> bool:
        meta = obj.get("metadata") or {}
        return (
            rd == self.rd
            and (self.namespace is None or meta.get("namespace") == self.namespace)
            and _label_match(meta.get("labels") or {}, self.labels)
            and _field_match(obj, self.fields)
        )


class FakeKube:
    """The fake server; ``await start()`` returns its URL."""

    def __init__(
        self,
        resources: Iterable[ResourceDef] = DEFAULT_RESOURCES,
        *,
        bookmark_interval: float = 0.5,
        token: str | None = None,
    ) -> None:
        self.resources = {(rd.group, rd.version, rd.plural): rd for rd in resources}
        self.bookmark_interval = bookmark_interval
        self.token = token
        self.rv = 100
        self.compacted = 0
        self.objects: dict[tuple[str, str, str], JSON] = {}  # (group_resource, namespace, name)
        self.history: list[tuple[int, ResourceDef, str, JSON]] = []
        self.watchers: set[_Watcher] = set()
        self.requests: list[tuple[str, str]] = []
        self.resumed = asyncio.Event()
        """Cleared: open watches hold their events (and bookmarks) back, as a frozen connection does."""
        self.resumed.set()
        self._failures: list[list[Any]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- test controls -----------------------------------------------------------------------

    def compact(self) -> None:
        """Forget history: lists/watches from an older resourceVersion get 410 Expired."""
        self.compacted = self.rv
        self.history.clear()

    def expire_watches(self) -> None:
        """Send an ERROR 410 event to every open watch (what a compaction does to slow watchers)."""
        for watcher in self.watchers:
            watcher.queue.put_nowait("EXPIRE")

    def drop_watches(self) -> None:
        """Abruptly close every open watch connection."""
        for watcher in self.watchers:
            watcher.queue.put_nowait("DROP")

    def inject_failure(self, method: str, path_contains: str, code: int = 500, times: int = 1) -> None:
        self._failures.append([method, path_contains, code, times])

    def put(self, rd: ResourceDef, obj: JSON) -> JSON:
        """Create or replace an object directly, as another client would (emits an event)."""
        meta = obj.setdefault("metadata", {})
        key = (rd.group_resource, meta.get("namespace") or "", meta["name"])
        return self._store(rd, key, obj, "MODIFIED" if key in self.objects else "ADDED")

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        for watcher in self.watchers:
            watcher.queue.put_nowait("CLOSE")
        if self._runner is not None:
            await self._runner.cleanup()

    # -- storage -----------------------------------------------------------------------------

    def _next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def _store(self, rd: ResourceDef, key: tuple[str, str, str], obj: JSON, event: str) -> JSON:
        obj["metadata"]["resourceVersion"] = self._next_rv()
        obj["apiVersion"], obj["kind"] = rd.api_version, rd.kind
        if event == "DELETED":
            self.objects.pop(key, None)
        else:
            self.objects[key] = obj
        self.history.append((self.rv, rd, event, obj))
        for watcher in self.watchers:
            if watcher.matches(rd, obj):
                watcher.queue.put_nowait((event, obj))
        return obj

    def _existing(self, rd: ResourceDef, ns: str | None, name: str) -> JSON:
        obj = self.objects.get((rd.group_resource, ns or "", name))
        if obj is None:
            raise errors.not_found(rd.plural, rd.group, name)
        return obj

    # -- HTTP --------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        try:
            for failure in self._failures:
                method, needle, code, times = failure
                if times > 0 and method == request.method and needle in request.path_qs:
                    failure[3] -= 1
                    raise errors.from_status({"code": code, "message": f"injected failure {code}"}, code)
            if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
                raise errors.Unauthorized("Unauthorized")
            return await self._route(request)
        except errors.APIError as exc:
            return web.Response(
                status=exc.code, body=orjson.dumps(exc.status()), content_type="application/json"
            )

    async def _route(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if parts == ["api"]:
            return _json({"kind": "APIVersions", "versions": ["v1"]})
        if parts == ["apis"]:
            return _json(self._groups())
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise errors.NotFound("the server could not find the requested resource")
        if not rest:
            return _json(self._resource_list(group, version))
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        rd = self.resources.get((group, version, rest[0]))
        if rd is None or len(rest) > 3 or (namespace and not rd.namespaced):
            raise errors.NotFound("the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub and sub not in rd.subresources:
            raise errors.NotFound("the server could not find the requested resource")
        body = orjson.loads(await request.read()) if request.can_read_body else None
        return await self._dispatch(request, rd, namespace, name, sub, body)

    async def _dispatch(
        self,
        request: web.Request,
        rd: ResourceDef,
        ns: str | None,
        name: str | None,
        sub: str | None,
        body: Any,
    ) -> web.StreamResponse:
        q, method = request.query, request.method
        if name is None:
            if method == "GET" and q.get("watch") in ("true", "1"):
                return await self._watch(request, rd, ns)
            if method == "GET":
                return _json(self._list(rd, ns, q))
            if method == "POST":
                return _json(self._create(rd, ns, body), 201)
            if method == "DELETE":
                return _json(self._delete_collection(rd, ns, q))
        elif method == "GET":
            return _json(self._existing(rd, ns, name))
        elif method == "PUT":
            return _json(self._update(rd, ns, name, body, sub))
        elif method == "PATCH":
            return _json(self._patch(rd, ns, name, body, sub, request.content_type))
        elif method == "DELETE":
            return _json(self._delete(rd, ns, name, body or {}))
        raise errors.MethodNotAllowed(f"{method} is not supported here")

    def _groups(self) -> JSON:
        groups: dict[str, list[str]] = {}
        for group, version, _ in self.resources:
            if group:
                groups.setdefault(group, []).append(version)
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": g,
                    "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                    "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
                }
                for g, vs in groups.items()
            ],
        }

    def _resource_list(self, group: str, version: str) -> JSON:
        rds = [rd for (g, v, _), rd in self.resources.items() if (g, v) == (group, version)]
        if not rds:
            raise errors.NotFound("the server could not find the requested resource")
        resources: list[JSON] = []
        for rd in rds:
            resources.append(
                {
                    "name": rd.plural,
                    "singularName": rd.singular,
                    "namespaced": rd.namespaced,
                    "kind": rd.kind,
                    "verbs": list(rd.verbs),
                    "shortNames": list(rd.short_names),
                }
            )
            resources += [
                {
                    "name": f"{rd.plural}/{s}",
                    "singularName": "",
                    "namespaced": rd.namespaced,
                    "kind": rd.kind,
                    "verbs": ["get", "patch", "update"],
                }
                for s in rd.subresources
            ]
        gv = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}

    def _matching(
        self, rd: ResourceDef, ns: str | None, labels: str | None, fields: str | None
    ) -> list[JSON]:
        out = []
        for (gr, obj_ns, _), obj in sorted(self.objects.items()):
            if gr == rd.group_resource and (ns is None or obj_ns == ns):
                if _label_match(obj["metadata"].get("labels") or {}, labels) and _field_match(obj, fields):
                    out.append(obj)
        return out

    def _list(self, rd: ResourceDef, ns: str | None, q: Any) -> JSON:
        items = self._matching(rd, ns, q.get("labelSelector"), q.get("fieldSelector"))
        list_rv, start = self.rv, 0
        if q.get("continue"):
            token = orjson.loads(base64.b64decode(q["continue"]))
            if token["rv"] < self.compacted:
                raise errors.Gone(
                    "The provided continue parameter is too old to display a consistent "
                    "list result. You can start a new list without the continue parameter."
                )
            list_rv, start = token["rv"], token["start"]
        elif q.get("resourceVersion") not in (None, "", "0") and int(q["resourceVersion"]) < self.compacted:
            raise errors.Gone(f"too old resource version: {q['resourceVersion']} ({self.compacted})")
        limit = int(q.get("limit") or 0)
        page = items[start : start + limit] if limit else items[start:]
        meta: JSON = {"resourceVersion": str(list_rv)}
        if limit and start + limit < len(items):
            meta["continue"] = base64.b64encode(
                orjson.dumps({"rv": list_rv, "start": start + limit})
            ).decode()
            meta["remainingItemCount"] = len(items) - start - limit
        stripped = [{k: v for k, v in o.items() if k not in ("apiVersion", "kind")} for o in page]
        return {"kind": rd.kind_list(), "apiVersion": rd.api_version, "metadata": meta, "items": stripped}

    def _create(self, rd: ResourceDef, ns: str | None, body: JSON) -> JSON:
        obj = orjson.loads(orjson.dumps(body))
        meta = obj.setdefault("metadata", {})
        if rd.namespaced:
            if meta.get("namespace") not in (None, ns):
                raise errors.BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = ns
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if not meta.get("name"):
            raise errors.invalid(
                rd.kind,
                rd.group,
                "",
                [{"field": "metadata.name", "message": "Required value", "reason": "FieldValueRequired"}],
            )
        key = (rd.group_resource, ns or "", meta["name"])
        if key in self.objects:
            raise errors.already_exists(rd.plural, rd.group, meta["name"])
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1)
        return self._store(rd, key, obj, "ADDED")

    def _update(self, rd: ResourceDef, ns: str | None, name: str, body: JSON, sub: str | None) -> JSON:
        old = self._existing(rd, ns, name)
        rv = (body.get("metadata") or {}).get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(rd.plural, rd.group, name)
        new = orjson.loads(orjson.dumps(old))
        if sub == "status":
            new["status"] = body.get("status")
        else:
            new = orjson.loads(orjson.dumps(body))
            for k in ("uid", "creationTimestamp", "generation", "deletionTimestamp", "namespace", "name"):
                if k in old["metadata"]:
                    new.setdefault("metadata", {})[k] = old["metadata"][k]
            if rd.has_status:
                new["status"] = old.get("status")
            if new.get("spec") != old.get("spec"):
                new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        new = {k: v for k, v in new.items() if v is not None}
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        new["apiVersion"], new["kind"] = rd.api_version, rd.kind
        if new == old:
            return old
        key = (rd.group_resource, ns or "", name)
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            return self._store(rd, key, new, "DELETED")
        return self._store(rd, key, new, "MODIFIED")

    def _patch(
        self, rd: ResourceDef, ns: str | None, name: str, patch: Any, sub: str | None, ctype: str
    ) -> JSON:
        if (
            ctype == "application/apply-patch+yaml"
            and (rd.group_resource, ns or "", name) not in self.objects
        ):
            return self._create(rd, ns, patch)
        old = self._existing(rd, ns, name)
        if ctype == "application/json-patch+json":
            new = json_patch(old, patch)
        elif ctype in (
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/apply-patch+yaml",
        ):
            new = merge_patch(old, patch)
        else:
            raise errors.UnsupportedMediaType(f"the body of the request was in an unknown format: {ctype}")
        patch_rv = (patch.get("metadata") or {}).get("resourceVersion") if isinstance(patch, dict) else None
        if not patch_rv:
            new.setdefault("metadata", {})["resourceVersion"] = old["metadata"]["resourceVersion"]
        return self._update(rd, ns, name, new, sub)

    def _delete(self, rd: ResourceDef, ns: str | None, name: str, options: JSON) -> JSON:
        obj = self._existing(rd, ns, name)
        pre = options.get("preconditions") or {}
        if (pre.get("uid") and pre["uid"] != obj["metadata"]["uid"]) or (
            pre.get("resourceVersion") and pre["resourceVersion"] != obj["metadata"]["resourceVersion"]
        ):
            raise errors.conflict(rd.plural, rd.group, name)
        if options.get("dryRun"):
            return obj
        key = (rd.group_resource, ns or "", name)
        new = orjson.loads(orjson.dumps(obj))
        if obj["metadata"].get("finalizers"):
            if obj["metadata"].get("deletionTimestamp"):
                return obj
            new["metadata"]["deletionTimestamp"] = _now()
            return self._store(rd, key, new, "MODIFIED")
        return self._store(rd, key, new, "DELETED")

    def _delete_collection(self, rd: ResourceDef, ns: str | None, q: Any) -> JSON:
        items = self._matching(rd, ns, q.get("labelSelector"), q.get("fieldSelector"))
        deleted = [self._delete(rd, o["metadata"].get("namespace"), o["metadata"]["name"], {}) for o in items]
        return {
            "kind": rd.kind_list(),
            "apiVersion": rd.api_version,
            "metadata": {"resourceVersion": str(self.rv)},
            "items": deleted,
        }

    async def _watch(self, request: web.Request, rd: ResourceDef, ns: str | None) -> web.StreamResponse:
        q = request.query
        rv = q.get("resourceVersion")
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        if rv not in (None, "", "0") and int(rv) < self.compacted:
            await _send(
                resp, "ERROR", errors.Gone(f"too old resource version: {rv} ({self.compacted})").status()
            )
            return resp
        watcher = _Watcher(rd, ns, q.get("labelSelector"), q.get("fieldSelector"))
        if rv in (None, "", "0"):
            initial = [("ADDED", o) for o in self._matching(rd, ns, watcher.labels, watcher.fields)]
        else:
            initial = [(t, o) for r, d, t, o in self.history if r > int(rv) and watcher.matches(d, o)]
        self.watchers.add(watcher)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(q.get("timeoutSeconds") or 1800)
        bookmarks = q.get("allowWatchBookmarks") == "true"
        try:
            for event, obj in initial:
                await _send(resp, event, obj)
            await self._stream(request, resp, watcher, deadline, bookmarks)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.watchers.discard(watcher)
        return resp

    async def _stream(
        self,
        request: web.Request,
        resp: web.StreamResponse,
        watcher: _Watcher,
        deadline: float,
        bookmarks: bool,
    ) -> None:
        loop = asyncio.get_running_loop()
        while (left := deadline - loop.time()) > 0:
            try:
                item = await asyncio.wait_for(watcher.queue.get(), min(left, self.bookmark_interval))
            except TimeoutError:
                if bookmarks and self.resumed.is_set():
                    meta = {"resourceVersion": str(self.rv)}
                    await _send(
                        resp,
                        "BOOKMARK",
                        {"kind": watcher.rd.kind, "apiVersion": watcher.rd.api_version, "metadata": meta},
                    )
                continue
            if item == "EXPIRE":
                await _send(resp, "ERROR", errors.Gone("too old resource version").status())
                return
            if item == "DROP":
                assert request.transport is not None
                request.transport.abort()
                return
            if item == "CLOSE":
                return
            await self.resumed.wait()
            assert isinstance(item, tuple)
            await _send(resp, *item)


async def _send(resp: web.StreamResponse, event: str, obj: JSON) -> None:
    await resp.write(orjson.dumps({"type": event, "object": obj}) + b"\n")


def _json(body: JSON, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


@asynccontextmanager
async def running_fake(**kwargs: Any) -> AsyncIterator[FakeKube]:
    fake = FakeKube(**kwargs)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


_counter = itertools.count()


def configmap(name: str, namespace: str = "default", **labels: str) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {"n": str(next(_counter))},
    }
