"""The one request handler: count, authenticate, route, and turn every refusal into a ``Status``
(in YAML when the request's ``Accept`` prefers YAML, as kube-apiserver's ``ErrorNegotiated``).

aiohttp's low-level server calls ``RequestHandler.handle`` for every request (no router or
middleware chain). A plain GET of an object on a path routed before is answered by ``fastget``
when it can be (same answer, checks and metrics; it learns the paths from ``_resource``); the
rest goes the general way. Health, version, discovery, OpenAPI and ``/metrics`` are answered here;
resource paths are parsed into a ``Route``, authorized with RBAC and handed to the resource
endpoints (or to the access reviews, which are never stored).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from aiohttp import web

from atoll.api import errors
from atoll.api.registry import Registry
from atoll.apiserver.auth.authn import PUBLIC_PATHS, AuthenticatorChain
from atoll.apiserver.auth.impersonation import impersonate, wants_impersonation
from atoll.apiserver.auth.rbac import RBACAuthorizer
from atoll.apiserver.auth.reviews import VIRTUAL, Reviews
from atoll.apiserver.auth.user import UserInfo
from atoll.apiserver.discovery.groups import AGGREGATED_V2, AGGREGATED_V2BETA1, Discovery
from atoll.apiserver.discovery.openapi import OpenAPI
from atoll.apiserver.discovery.version import OPENAPI_V2_PROTOBUF_TYPE, VERSION_INFO
from atoll.apiserver.http import codec
from atoll.apiserver.http.authorize import authorize_path, authorize_resource
from atoll.apiserver.http.fastget import FastGets
from atoll.apiserver.http.health import HealthChecks
from atoll.apiserver.http.limits import ConnectionLimits, InflightLimiter
from atoll.apiserver.http.metrics import BY_CLIENT, count_requests, serve_metrics
from atoll.apiserver.http.metrics_api import is_metrics
from atoll.apiserver.http.negotiate import TARGET_KEY, as_yaml, negotiate
from atoll.apiserver.http.protocol import StatusServer, mark_authenticated
from atoll.apiserver.http.resources import ResourceHandlers
from atoll.apiserver.http.routing import Route, parse_resource_path
from atoll.apiserver.registry import params

log = logging.getLogger(__name__)

RouteHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ROOT_PATHS = sorted(["/api", "/apis", "/healthz", "/livez", "/readyz", "/version", "/openapi/v2", "/openapi/v3",
                     "/metrics"])
_VIRTUAL = frozenset((rd.group, rd.plural) for rd in VIRTUAL)
_MAX_PARSED = 4096
_STREAMS = frozenset(("log", "exec", "attach", "portforward", "proxy"))
"""Subresources answering in their own media (text, streams): no output negotiation."""


@dataclass(slots=True)
class Frontends:
    """The parts the request handler dispatches to, and what it asks the server."""

    registry: Registry
    discovery: Discovery
    openapi: OpenAPI
    resources: ResourceHandlers
    authorizer: RBACAuthorizer
    authn: AuthenticatorChain | None  # None: no authentication at all (in-process tests only)
    reviews: Reviews | None  # None: no ServiceAccount signing key, so no reviews or tokens
    ready: Callable[[bool], bool]  # ready(live_only): /livez (True) or /readyz and /healthz (False)
    server_address: Callable[[], str]  # host:port for legacy discovery's serverAddressByClientCIDRs
    routes: dict[str, RouteHandler] = field(default_factory=dict)
    """Extra non-resource APIs by path prefix (the fleet's search API), authorized as paths."""
    health: HealthChecks = field(default_factory=HealthChecks)
    """Named checks of ``/healthz`` and ``/readyz`` added by the node's modules (pooling)."""


class RequestHandler:
    def __init__(self, parts: Frontends, limits: ConnectionLimits | None = None) -> None:
        self._p = parts
        self.limits = limits or ConnectionLimits()
        self.inflight = InflightLimiter(self.limits)
        # resource paths already parsed: path -> (registry generation, extra routes, Route); a
        # registered or removed resource (CRDs) or an added route makes every entry stale
        self._parsed: dict[str, tuple[int, int, Route]] = {}
        self._fast: FastGets | None = None  # plain GETs of cached objects (not without authentication)
        if parts.authn is not None and not BY_CLIENT:
            self._fast = FastGets(parts.registry, parts.routes, parts.authn, parts.authorizer, self.inflight,
                                  parts.resources.objects.cache)

    def make_server(self) -> web.Server:
        """aiohttp's low-level server with this one handler."""
        return StatusServer(self.handle, request_factory=_make_request, access_log=None, limits=self.limits)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method == "GET" and self._fast is not None:
            response = self._fast.serve(cast(web.Request, request))
            if response is not None:
                return response
        return await count_requests(cast(web.Request, request), self._serve)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        """Authenticate and route; every refusal is a ``Status``, never a traceback."""
        try:
            if request.headers.get("Expect") and not await _expect_continue(request):
                return web.Response(status=417, text="Unknown Expect: " + request.headers["Expect"])
            authn = self._p.authn
            if authn is not None:
                user = authn.authenticate(request)
                if user is None and request.path not in PUBLIC_PATHS:
                    raise errors.Unauthorized("Unauthorized")
                if user is not None:
                    mark_authenticated(request)
                if user is not None and wants_impersonation(request):
                    user = impersonate(request, user, self._p.authorizer.authorize)
                request[codec.USER_KEY] = user
            else:
                mark_authenticated(request)
            caller = request.get(codec.USER_KEY)
            taken = self.inflight.enter(request, caller.groups if isinstance(caller, UserInfo) else ())
            try:
                return await self._route(request)
            finally:
                self.inflight.leave(taken)
        except errors.TooManyRequests as err:
            return _refusal(request, err, {"Retry-After": "1"})
        except errors.APIError as err:
            return _refusal(request, err)
        except web.HTTPException as exc:
            if exc.status == 413:
                return _refusal(request, errors.RequestEntityTooLarge("Request entity too large"))
            return _refusal(request, _status_for_http(exc))
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception:
            log.exception("internal error serving %s %s", request.method, request.path)
            return _refusal(request, errors.InternalError("an internal error occurred; see the server log"))

    async def _route(self, request: web.Request) -> web.StreamResponse:
        parsed = self._parsed.get(request.path)
        if parsed is not None and parsed[0] == self._p.registry.generation and parsed[1] == len(self._p.routes):
            return await self._resource(request, parsed[2])
        parts = [p for p in request.path.split("/") if p]
        if not parts:
            return codec.json_response({"paths": ROOT_PATHS})
        for prefix, handler in self._p.routes.items():
            if request.path == prefix or request.path.startswith(prefix + "/"):
                authorize_path(self._p.authorizer, request)
                return await handler(request)
        head = parts[0]
        if head in ("healthz", "livez", "readyz"):
            if len(parts) > 1:  # one check, with its reason: not public
                authorize_path(self._p.authorizer, request)
            return self._p.health.respond(request, parts, self._p.ready(head == "livez"))
        if head == "version":
            return codec.json_response(VERSION_INFO)
        if head == "api":
            return await self._core(request, parts)
        if head == "apis":
            return await self._groups(request, parts)
        if head == "openapi":
            return _openapi(self._p.openapi, request, parts)
        if head == "metrics" and len(parts) == 1:
            authorize_path(self._p.authorizer, request)
            return await serve_metrics(request)
        raise _not_found()

    async def _core(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        if len(parts) == 1:
            return self._discovery(request, core=True)
        if len(parts) == 2:
            return _doc_or_404(self._p.discovery.resource_list("", parts[1]))
        return await self._resource(request, self._parse(request.path, True, parts[1:]))

    async def _groups(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        if len(parts) == 1:
            return self._discovery(request, core=False)
        if len(parts) == 2:
            return _doc_or_404(self._p.discovery.api_group(parts[1]))
        if len(parts) == 3:
            return _doc_or_404(self._p.discovery.resource_list(parts[1], parts[2]))
        return await self._resource(request, self._parse(request.path, False, parts[1:]))

    def _parse(self, path: str, core: bool, parts: list[str]) -> Route:
        """``parse_resource_path``, remembered for this path (bounded) while nothing it read changed."""
        route = parse_resource_path(self._p.registry, core, parts)
        if len(self._parsed) >= _MAX_PARSED:
            self._parsed.clear()
        self._parsed[path] = (self._p.registry.generation, len(self._p.routes), route)
        return route

    def _resource(self, request: web.Request, route: Route) -> Awaitable[web.StreamResponse]:
        """Authorize (a refusal raises here, in the caller's ``await``) and the request's coroutine."""
        authorize_resource(self._p.authorizer, request, route)
        rd = route.rd
        if (rd.group, rd.plural) in _VIRTUAL or (rd.kind == "ServiceAccount" and route.subresource == "token"):
            return self._review(request, route)
        if request.method == "GET" and route.name is not None and not route.subresource and self._fast is not None \
                and not is_metrics(rd):
            self._fast.learn(request, route)
        if route.subresource in _STREAMS or is_metrics(rd):
            return self._p.resources.dispatch(request, route)
        watch = request.method == "GET" and route.name is None and params.flag(request.query.get("watch")) is True
        media, target = negotiate(request.headers.get("Accept", ""), watch=watch)
        if target is not None:
            request[TARGET_KEY] = target
        if media == "yaml":
            return self._yaml(request, route)
        return self._p.resources.dispatch(request, route)

    async def _yaml(self, request: web.Request, route: Route) -> web.StreamResponse:
        return as_yaml(await self._p.resources.dispatch(request, route))

    async def _review(self, request: web.Request, route: Route) -> web.Response:
        """Access reviews and TokenRequests: answered, never stored (201 like the real server)."""
        reviews = self._p.reviews
        if reviews is None:
            raise errors.NotImplementedYet("authentication is disabled on this server")
        if request.method != "POST":
            target = "serviceaccounts/token" if route.subresource == "token" else route.rd.group_resource
            raise errors.MethodNotAllowed(f"only create is supported on {target}")
        raw = await codec.read_body(request)
        if route.subresource == "token":
            assert route.name is not None and route.namespace is not None
            body = codec.decode_dict(raw, codec.media_type(request)) if raw.strip() else {}
            return codec.json_response(reviews.token_request(route.namespace, route.name, body), 201)
        body = codec.decode_dict(raw, codec.media_type(request))
        user = request.get(codec.USER_KEY)
        if not isinstance(user, UserInfo):
            raise errors.Unauthorized("Unauthorized")
        return codec.json_response(reviews.review(route.rd, user, body), 201)

    def _discovery(self, request: web.Request, *, core: bool) -> web.Response:
        version = _aggregated_version(request.headers.get("Accept", ""))
        discovery = self._p.discovery
        if version is not None:
            body = discovery.aggregated(core, version)
            ctype = AGGREGATED_V2 if version == "v2" else AGGREGATED_V2BETA1
            return web.Response(body=body, headers={"Content-Type": ctype})
        if core:
            return codec.json_response(discovery.api_versions(self._p.server_address()))
        return codec.json_response(discovery.api_group_list())


def _openapi(openapi: OpenAPI, request: web.Request, parts: list[str]) -> web.Response:
    if parts[1:] == ["v3"]:
        return codec.json_response(openapi.index())
    if len(parts) > 2 and parts[1] == "v3":
        return _doc_or_404(openapi.document("/".join(parts[2:])))
    if parts[1:] == ["v2"]:
        return _openapi_v2(openapi, request)
    raise _not_found()


def _openapi_v2(openapi: OpenAPI, request: web.Request) -> web.Response:
    """JSON, or gnostic protobuf when accepted (kube-openapi answers both protobuf media types with
    the ``.v2.v1.0`` one); an ``If-None-Match`` naming the current ETag gets a 304."""
    protobuf = "com.github.proto-openapi.spec.v2" in request.headers.get("Accept", "")
    body, etag = openapi.v2(protobuf=protobuf)
    headers = {"Content-Type": OPENAPI_V2_PROTOBUF_TYPE if protobuf else "application/json", "ETag": etag,
               "Vary": "Accept"}
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers=headers)


def _make_request(message: Any, payload: Any, protocol: Any, writer: Any, task: asyncio.Task[None]) -> web.BaseRequest:
    """A ``web.Request`` (handlers' type) without a router's match info."""
    loop = asyncio.get_running_loop()
    return web.Request(message, payload, protocol, writer, task, loop, client_max_size=codec.MAX_BODY + 1024)


async def _expect_continue(request: web.Request) -> bool:
    """``Expect: 100-continue`` (curl with a large body) as aiohttp's router answers it; False for
    an expectation the server cannot meet (417)."""
    if request.version != (1, 1):
        return True
    if request.headers.get("Expect", "").lower() != "100-continue":
        return False
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    return True


def _aggregated_version(accept: str) -> str | None:
    """``v2``/``v2beta1`` when the client accepts aggregated discovery (preferring v2), else None."""
    offered = set()
    for entry in accept.split(","):
        params = {p.split("=", 1)[0].strip(): p.split("=", 1)[1].strip() for p in entry.split(";") if "=" in p}
        if params.get("as") == "APIGroupDiscoveryList" and params.get("g") == "apidiscovery.k8s.io":
            offered.add(params.get("v", ""))
    if "v2" in offered:
        return "v2"
    return "v2beta1" if "v2beta1" in offered else None


def _refusal(request: web.Request, err: errors.APIError, headers: dict[str, str] | None = None) -> web.Response:
    """``err``'s ``Status``, in the media type the request negotiates for errors (YAML or JSON)."""
    return codec.status_response(err, headers, request.headers.get("Accept", ""))


def _not_found() -> errors.NotFound:
    return errors.NotFound("the server could not find the requested resource")


def _doc_or_404(doc: bytes | None) -> web.Response:
    if doc is None:
        raise _not_found()
    return codec.json_response(doc)


def _status_for_http(exc: web.HTTPException) -> errors.APIError:
    cls = {
        400: errors.BadRequest,
        404: errors.NotFound,
        405: errors.MethodNotAllowed,
        415: errors.UnsupportedMediaType,
    }.get(exc.status, errors.InternalError)
    return cls(exc.reason or "request refused")
