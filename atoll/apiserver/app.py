"""The API server: one aiohttp application over HTTPS in front of the watch cache and the store.

Every request goes to one handler (aiohttp's low-level server: no router or middleware chain)
that counts it, authenticates it, turns every refusal into a ``Status`` (never a traceback) and
routes it to health, version, discovery, OpenAPI or the resource endpoints. ``APIServer`` owns
the watch cache task and the HTTP listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import orjson
from aiohttp import web

from atoll.api import errors
from atoll.api.builtins import BUILTINS
from atoll.api.registry import Registry
from atoll.apiserver import codec
from atoll.apiserver.admission import AdmissionChain, NamespaceLifecycle
from atoll.apiserver.auth import (
    ADMIN_USER,
    PUBLIC_PATHS,
    AuthenticatorChain,
    ClientCertAuthenticator,
    StaticTokenAuthenticator,
)
from atoll.apiserver.builtin_schema import BuiltinSchemaAdmission
from atoll.apiserver.crds import CRD_PREFIX, CRDManager
from atoll.apiserver.discovery import AGGREGATED_V2, AGGREGATED_V2BETA1, Discovery
from atoll.apiserver.domain_isolation import DomainIsolation
from atoll.apiserver.handlers import ResourceHandlers
from atoll.apiserver.impersonation import impersonate, wants_impersonation
from atoll.apiserver.kuscia_admission import KusciaAdmission
from atoll.apiserver.metrics import count_requests, serve_metrics
from atoll.apiserver.noderestriction import NodeGrants, NodeRestriction
from atoll.apiserver.objects import Objects
from atoll.apiserver.openapi import OpenAPI
from atoll.apiserver.podlogs import PodLogs
from atoll.apiserver.quota import QuotaAdmission
from atoll.apiserver.rbac import RBACAuthorizer, forbidden_message, verb_for
from atoll.apiserver.rbac import Request as AuthzRequest
from atoll.apiserver.rbac_escalation import RBACEscalation
from atoll.apiserver.reviews import VIRTUAL, Reviews
from atoll.apiserver.routing import Route, parse_resource_path
from atoll.apiserver.tokens import TokenIssuer
from atoll.apiserver.watchcache import WatchCache
from atoll.store.base import Store

log = logging.getLogger(__name__)

JSON = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

COMPACTION_INTERVAL = 300.0
VERSION_INFO = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0+atoll",
    "gitCommit": "atoll",
    "gitTreeState": "clean",
    "buildDate": "2026-11-22T00:00:00Z",
    "goVersion": "go1.23.4",
    "compiler": "gc",
    "platform": "linux/amd64",
}


@dataclass(slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 6443
    ssl_context: ssl.SSLContext | None = None
    admin_token: str | None = None  # None: no authentication at all (in-process tests only)
    signing_key: Path | None = None  # ServiceAccount token signing key
    ca_file: Path | None = None  # cluster CA: verifies node agents (pod logs)
    kubelet_client_cert: tuple[Path, Path] | None = None  # (cert, key) presented to node agents
    # loopback listener for in-process clients (the controller manager): plain HTTP on a Unix
    # socket in a 0700 directory, like kube-apiserver's loopback client; authentication unchanged
    unix_socket: Path | None = None


class APIServer:
    """Composes registry, cache, objects, admission and HTTP; ``run()`` serves until cancelled."""

    def __init__(self, store: Store, config: ServerConfig) -> None:
        self.store = store
        self.config = config
        self.registry = Registry()
        for rd in (*BUILTINS, *VIRTUAL):
            self.registry.register(rd)
        self._virtual = {(rd.group, rd.plural) for rd in VIRTUAL}
        self.cache = WatchCache(store)
        self.authorizer = RBACAuthorizer(self.cache)
        self.node_grants = NodeGrants(self.cache)
        self.authn: AuthenticatorChain | None = None
        self.reviews: Reviews | None = None
        if config.admin_token is not None:
            authenticators: list[Any] = [StaticTokenAuthenticator({config.admin_token: ADMIN_USER})]
            if config.signing_key is not None:
                issuer = TokenIssuer(config.signing_key, self.cache)
                authenticators.append(issuer)
                self.reviews = Reviews(self.authorizer, issuer, self.cache)
            authenticators.append(ClientCertAuthenticator())
            self.authn = AuthenticatorChain(authenticators)
        self.crds = CRDManager(self.registry)
        self.cache.add_listener(CRD_PREFIX, self.crds.on_event)
        self.admission = AdmissionChain()
        self.admission.add(BuiltinSchemaAdmission())
        self.admission.add(NamespaceLifecycle(self._namespace))
        self.admission.add(self.crds)
        self.admission.add(KusciaAdmission())
        self.admission.add(DomainIsolation(self.cache))
        self.admission.add(NodeRestriction(self.node_grants, self.cache))
        self.admission.add(RBACEscalation(self.authorizer, self.cache))
        self.admission.add(QuotaAdmission(self.cache))
        self.objects = Objects(store, self.cache, self.admission)
        self.resources = ResourceHandlers(self.objects, PodLogs(self.cache, config.ca_file, config.kubelet_client_cert))
        self.discovery = Discovery(self.registry)
        self.openapi = OpenAPI(self.registry)
        self.bound_port = 0
        self.loopback_socket: Path | None = None  # set once the Unix-socket listener is bound
        self._ready = asyncio.Event()
        # post-start work (e.g. the master's CRD and namespace bootstrap) that /readyz and /healthz
        # wait for, like kube-apiserver's poststarthooks; /livez only needs the listener
        self.readiness_gates: list[asyncio.Event] = []
        self.started_at = time.time()

    def _namespace(self, name: str) -> JSON | None:
        cached = self.cache.get(f"/core/namespaces/{name}")
        return cached.obj if cached else None

    # ---- HTTP ----------------------------------------------------------------------------

    def make_server(self) -> web.Server:
        """aiohttp's low-level server with one handler: no router resolution or middleware chain per
        request (every path goes to ``_route`` anyway)."""
        return web.Server(self._handle, request_factory=_make_request, access_log=None)

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        return await count_requests(cast(web.Request, request), self._serve)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        """Authenticate and route; every refusal is a ``Status``, never a traceback."""
        try:
            if request.headers.get("Expect") and not await _expect_continue(request):
                return web.Response(status=417, text="Unknown Expect: " + request.headers["Expect"])
            if self.authn is not None:
                user = self.authn.authenticate(request)
                if user is None and request.path not in PUBLIC_PATHS:
                    raise errors.Unauthorized("Unauthorized")
                if user is not None and wants_impersonation(request):
                    user = impersonate(request, user, self.authorizer.authorize)
                request[codec.USER_KEY] = user
            return await self._route(request)
        except errors.APIError as err:
            return codec.status_response(err)
        except web.HTTPException as exc:
            if exc.status == 413:
                return codec.status_response(errors.RequestEntityTooLarge("Request entity too large"))
            return codec.status_response(_status_for_http(exc))
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception:
            log.exception("internal error serving %s %s", request.method, request.path)
            return codec.status_response(errors.InternalError("an internal error occurred; see the server log"))

    async def _route(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        parts = [p for p in path.split("/") if p]
        if not parts:
            return codec.json_response(
                {
                    "paths": sorted(
                        ["/api", "/apis", "/healthz", "/livez", "/readyz", "/version", "/openapi/v3", "/metrics"]
                    )
                }
            )
        head = parts[0]
        if head in ("healthz", "livez", "readyz"):
            ready = self._ready.is_set() and (head == "livez" or all(g.is_set() for g in self.readiness_gates))
            return web.Response(text="ok" if ready else "not ready", status=200 if ready else 503)
        if head == "version":
            return codec.json_response(VERSION_INFO)
        if head == "api":
            if len(parts) == 1:
                return self._discovery(request, core=True)
            if len(parts) == 2:
                return _doc_or_404(self.discovery.resource_list("", parts[1]))
            return await self._resource(request, parse_resource_path(self.registry, True, parts[1:]))
        if head == "apis":
            if len(parts) == 1:
                return self._discovery(request, core=False)
            if len(parts) == 2:
                return _doc_or_404(self.discovery.api_group(parts[1]))
            if len(parts) == 3:
                return _doc_or_404(self.discovery.resource_list(parts[1], parts[2]))
            return await self._resource(request, parse_resource_path(self.registry, False, parts[1:]))
        if head == "openapi":
            if parts[1:] == ["v3"]:
                return codec.json_response(self.openapi.index())
            if len(parts) > 2 and parts[1] == "v3":
                return _doc_or_404(self.openapi.document("/".join(parts[2:])))
            if parts[1:] == ["v2"]:
                return _openapi_v2(request)
        if head == "metrics" and len(parts) == 1:
            self._authorize_path(request)
            return await serve_metrics(request)
        raise errors.NotFound("the server could not find the requested resource")

    async def _resource(self, request: web.Request, route: Route) -> web.StreamResponse:
        rd = route.rd
        self._authorize(request, route)
        if (rd.group, rd.plural) in self._virtual or (rd.kind == "ServiceAccount" and route.subresource == "token"):
            if self.reviews is None:
                raise errors.NotImplementedYet("authentication is disabled on this server")
            if route.subresource == "token":
                assert route.name is not None and route.namespace is not None
                return await self.reviews.token(request, route.namespace, route.name)
            return await self.reviews.handle(request, rd)
        return await self.resources.dispatch(request, route)

    def _authorize(self, request: web.Request, route: Route) -> None:
        user = request.get(codec.USER_KEY)
        if self.authn is None or user is None:
            return
        watch = request.query.get("watch", "").lower() in ("true", "1")
        name = route.name or _field_name(request.query.get("fieldSelector", ""))
        req = AuthzRequest(
            user.name,
            user.groups,
            verb_for(request.method, route.name is not None, watch),
            route.rd.group,
            route.rd.plural,
            route.subresource,
            route.namespace or "",
            name or "",
        )
        if not (
            self.authorizer.authorize(user, req)
            or self.node_grants.authorize(user, req, request.query.get("fieldSelector", ""))
        ):
            raise errors.Forbidden(
                forbidden_message(req), details={"name": req.name, "group": req.api_group, "kind": req.resource}
            )

    def _authorize_path(self, request: web.Request) -> None:
        """Non-resource URLs beyond discovery and health (``/metrics``) need an RBAC grant."""
        user = request.get(codec.USER_KEY)
        if self.authn is None or user is None:
            return
        req = AuthzRequest(user.name, user.groups, request.method.lower(), path=request.path)
        if not self.authorizer.authorize(user, req):
            raise errors.Forbidden(forbidden_message(req))

    def _discovery(self, request: web.Request, *, core: bool) -> web.Response:
        version = _aggregated_version(request.headers.get("Accept", ""))
        if version is not None:
            body = self.discovery.aggregated(core, version)
            ctype = AGGREGATED_V2 if version == "v2" else AGGREGATED_V2BETA1
            return web.Response(body=body, headers={"Content-Type": ctype})
        if core:
            return codec.json_response(self.discovery.api_versions(f"{self.config.host}:{self.bound_port}"))
        return codec.json_response(self.discovery.api_group_list())

    # ---- life cycle ------------------------------------------------------------------------

    async def run(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve until cancelled: watch cache first, then the HTTP listener."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.cache.run(), name="apiserver/watch-cache")
            await self.cache.wait_ready()
            tg.create_task(self._compact_periodically(), name="apiserver/compactor")
            runner = web.ServerRunner(self.make_server(), shutdown_timeout=1.0)
            await runner.setup()
            site = web.TCPSite(
                runner,
                self.config.host,
                self.config.port,
                ssl_context=self.config.ssl_context,
                backlog=1024,
                reuse_address=True,
            )
            await site.start()
            server = site._server
            sockets = getattr(server, "sockets", None) or []
            self.bound_port = sockets[0].getsockname()[1] if sockets else self.config.port
            if self.config.unix_socket is not None:
                self.loopback_socket = await _start_loopback(runner, self.config.unix_socket)
            self._ready.set()
            log.info("API server listening on https://%s:%d", self.config.host, self.bound_port)
            if on_ready is not None:
                on_ready()
            try:
                await asyncio.Event().wait()
            finally:
                await runner.cleanup()
                if self.loopback_socket is not None:
                    with contextlib.suppress(OSError):
                        os.unlink(self.loopback_socket)

    async def _compact_periodically(self) -> None:
        """Like kube-apiserver with etcd: every interval, compact to the revision seen one interval
        ago, so at least one interval of history stays available to watches and continue tokens."""
        previous = await self.store.current_revision()
        while True:
            await asyncio.sleep(COMPACTION_INTERVAL)
            current = await self.store.current_revision()
            if previous > 0:
                try:
                    await self.store.compact(previous)
                except Exception:
                    log.exception("compaction to revision %d failed", previous)
            previous = current

    async def wait_ready(self) -> None:
        await self._ready.wait()


MAX_UNIX_PATH = 100  # sun_path holds 108 bytes


async def _start_loopback(runner: web.BaseRunner, path: Path) -> Path | None:
    """Serve the app on a Unix socket only its owner can reach; None (HTTPS only) when the path is
    too long for a socket address or cannot be bound."""
    if len(os.fsencode(path)) > MAX_UNIX_PATH:
        log.info("loopback socket path %s is too long; in-process clients use HTTPS", path)
        return None
    try:
        _prepare_socket_dir(path)
        await web.UnixSite(runner, str(path)).start()
        os.chmod(path, 0o600)
    except OSError as exc:
        log.warning("loopback socket %s: %s; in-process clients use HTTPS", path, exc)
        return None
    return path


def _prepare_socket_dir(path: Path) -> None:
    """A 0700 directory for the socket, without a socket left behind by an unclean exit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    path.unlink(missing_ok=True)


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


def _field_name(field_selector: str) -> str:
    """The object name a ``metadata.name=X`` field selector pins (RBAC resourceNames on list/watch)."""
    if field_selector.startswith("metadata.name=") and "," not in field_selector:
        return field_selector.split("=", 1)[1].lstrip("=")
    return ""


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


# A minimal OpenAPI v2 document (swagger "2.0", info, no paths or definitions). kubectl <= 1.28
# downloads /openapi/v2 (gnostic protobuf) before every apply/create -f and fails hard on a 404;
# an empty schema set makes it skip client-side validation of unknown kinds and compute strategic
# merge patches from its compiled-in types, while newer kubectl uses /openapi/v3.
_OPENAPI_V2_PB = b"\x0a\x032.0\x12\x15\x0a\x0aKubernetes\x12\x07v1.32.0"
_OPENAPI_V2_JSON = {"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.32.0"}, "paths": {},
                    "definitions": {}}


def _openapi_v2(request: web.Request) -> web.Response:
    if "protobuf" in request.headers.get("Accept", ""):
        return web.Response(body=_OPENAPI_V2_PB,
                            headers={"Content-Type": "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"})
    return codec.json_response(_OPENAPI_V2_JSON)


def _doc_or_404(doc: bytes | None) -> web.Response:
    if doc is None:
        raise errors.NotFound("the server could not find the requested resource")
    return codec.json_response(doc)


def _status_for_http(exc: web.HTTPException) -> errors.APIError:
    cls = {
        400: errors.BadRequest,
        404: errors.NotFound,
        405: errors.MethodNotAllowed,
        415: errors.UnsupportedMediaType,
    }.get(exc.status, errors.InternalError)
    return cls(exc.reason or "request refused")


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)
