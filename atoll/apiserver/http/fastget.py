"""The plain GET of one object, answered from the watch cache in one synchronous step.

``GET …/{plural}/{name}`` with no query string is the most frequent request (controllers' and
kubectl's reads). The general chain (``server.RequestHandler``) answers it with the cache's
encoded bytes too, but through the metrics layer, authentication, the in-flight limiter, routing,
RBAC and the resource endpoints: about 10 µs of Python per request, as much again as aiohttp's own
parsing and response writing. Here a path the general chain has routed once is remembered with
what follows from it (the ``Route``, the cache key, the metrics series); the next plain GET of it
does only what its answer depends on:

* authentication by the same authenticators (the connection is marked authenticated);
* for callers outside ``system:masters``: the in-flight cap and the same RBAC authorizer (its
  decisions are memoised until any RBAC object changes, so a changed grant applies at once); the
  attributes it decides on are built once per caller and path;
* the cached object's encoded bytes, as ``ResourceHandlers._one`` returns them (an ``Accept``
  that names JSON or ``*/*`` and no YAML; others go the general way, which negotiates), converted to
  the path's version for a CRD with several versions (``registry.conversion``; one converted by a
  webhook goes the general way, which awaits it);
* ``apiserver_request_total`` / ``apiserver_request_duration_seconds`` counted as the metrics layer
  counts them.

Whatever else happens goes the general way, which answers it with its ``Status``: an ``Expect``
or ``Impersonate-*`` header, an ``Accept`` asking for a Table or metadata only, no credentials or
unknown ones (401), a refusal (403, 429), an object not in the cache (404, or read from the store
when another master acknowledged it), a registry or route table that changed since the path was
learnt. ``serve`` returns None for all of those.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from atoll.api.registry import Registry
from atoll.apiserver.auth.authn import AuthenticatorChain
from atoll.apiserver.auth.impersonation import wants_impersonation
from atoll.apiserver.auth.rbac import MASTERS, RBACAuthorizer, Request
from atoll.apiserver.auth.user import UserInfo
from atoll.apiserver.cache.watchcache import WatchCache
from atoll.apiserver.http import metrics
from atoll.apiserver.http.authorize import resource_request
from atoll.apiserver.http.limits import InflightLimiter
from atoll.apiserver.http.protocol import mark_authenticated
from atoll.apiserver.http.routing import Route
from atoll.apiserver.registry import conversion

MAX_PATHS = 4096
"""Paths remembered (all are forgotten when full, like the general chain's parsed paths)."""
MAX_CALLERS = 64
"""RBAC attributes remembered per path (callers outside ``system:masters``)."""


@dataclass(slots=True)
class _Path:
    generation: int  # the registry's generation when learnt
    routes: int  # the number of extra (non-resource) routes when learnt
    route: Route
    key: str  # the object's watch-cache key
    series: tuple[str, str, int]  # the metrics series of a 200 answer
    callers: dict[tuple[str, tuple[str, ...]], Request] = field(default_factory=dict)


class FastGets:
    """Learns plain GET paths from the general chain and serves them again (see the module)."""

    def __init__(
        self,
        registry: Registry,
        routes: Mapping[str, Any],
        authn: AuthenticatorChain,
        authorizer: RBACAuthorizer,
        inflight: InflightLimiter,
        cache: WatchCache,
    ) -> None:
        self._registry = registry
        self._routes = routes
        self._authn = authn
        self._authorizer = authorizer
        self._inflight = inflight
        self._cache = cache
        self._paths: dict[str, _Path] = {}

    def learn(self, request: web.Request, route: Route) -> None:
        """Remember ``request``'s path when the general chain routed a plain GET of an object there
        (the caller checked: GET, a name, no subresource, a kind the resource endpoints serve)."""
        path = request.raw_path
        if path in self._paths or request.query_string or path != request.path:
            return  # (a percent-encoded or dot-segment path is left to the general chain)
        if len(self._paths) >= MAX_PATHS:
            self._paths.clear()
        assert route.name is not None
        verb, resource = metrics.classify(request)
        self._paths[path] = _Path(self._registry.generation, len(self._routes), route,
                                  route.rd.key(route.namespace, route.name), (verb, resource, 200))

    def serve(self, request: web.Request) -> web.Response | None:
        """The answer to a plain GET of a learnt path, or None: the general chain serves it."""
        started = time.perf_counter()
        known = self._paths.get(request.raw_path)
        if known is None or known.generation != self._registry.generation or known.routes != len(self._routes):
            return None
        headers = request.headers
        accept = headers.get("Accept", "")
        if "Expect" in headers or ";" in accept or "yaml" in accept or (
            accept and "json" not in accept and "*/*" not in accept
        ):
            return None  # media-type parameters (a conversion?), YAML or a type not served: the general chain
        user = self._authn.authenticate(request)
        if user is None or wants_impersonation(request):
            return None
        if MASTERS not in user.groups and not self._allowed(request, user, known):
            return None
        cached = self._cache.get(known.key)
        if cached is None:
            return None
        rd = known.route.rd
        if rd.storage_version and rd.conversion_webhook is not None:
            return None  # the general chain awaits the CRD's conversion webhook
        mark_authenticated(request)
        body = conversion.raw(rd, cached) if rd.storage_version else cached.raw
        response = web.Response(body=body, content_type="application/json")
        metrics.observe(known.series, time.perf_counter() - started)
        return response

    def _allowed(self, request: web.Request, user: UserInfo, known: _Path) -> bool:
        """Room under the in-flight cap (the request is served synchronously: it takes and frees
        its place at once) and an RBAC grant; False: the general chain answers 429 or 403."""
        if self._inflight.readonly >= self._inflight.limits.max_requests_inflight:
            return False
        caller = (user.name, user.groups)
        attributes = known.callers.get(caller)
        if attributes is None:
            if len(known.callers) >= MAX_CALLERS:
                known.callers.clear()
            attributes = known.callers[caller] = resource_request(user, request, known.route)
        return self._authorizer.authorize(user, attributes)
