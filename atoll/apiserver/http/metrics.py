"""API server request metrics (kube-apiserver's names) and the ``/metrics`` endpoint.

Counted in the server's outermost layer, after the response is known: ``apiserver_request_total``
by verb, resource and code, and ``apiserver_request_duration_seconds`` by verb and resource
(watches are counted when they end, and their duration is excluded from the histogram, as in
Kubernetes). Exposed together with the controller runtime's metrics from one registry.

With ``ATOLL_REQUEST_CLIENTS=1`` in the server's environment (benchmarks: ``bench/bench_pods.py
--count``) requests are also counted by client, ``atoll_apiserver_client_request_total`` by the
User-Agent's product (up to its first ``/``; at most ``MAX_CLIENTS`` distinct, then ``other``),
verb, resource and code: which component causes which requests. Off by default (one more series
lookup per request).
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from atoll.runtime.metrics import REGISTRY

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

request_total = Counter(
    "apiserver_request_total",
    "Counter of apiserver requests broken out by verb, resource and HTTP response code",
    ["verb", "resource", "code"],
    registry=REGISTRY,
)
request_duration = Histogram(
    "apiserver_request_duration_seconds",
    "Response latency distribution in seconds for each verb and resource",
    ["verb", "resource"],
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
client_request_total = Counter(
    "atoll_apiserver_client_request_total",
    "Counter of apiserver requests by client (User-Agent product), verb, resource and HTTP response code",
    ["client", "verb", "resource", "code"],
    registry=REGISTRY,
)
MAX_CLIENTS = 32
BY_CLIENT = os.environ.get("ATOLL_REQUEST_CLIENTS", "") == "1"
watchers = Gauge("apiserver_registered_watchers", "Number of currently open watches", registry=REGISTRY)


def _classify(request: web.Request) -> tuple[str, str]:
    parts = [p for p in request.path.split("/") if p]
    if not parts or parts[0] not in ("api", "apis"):
        return request.method.lower(), parts[0] if parts else ""
    rest = parts[2:] if parts[0] == "api" else parts[3:]
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        rest = rest[2:]
    resource = rest[0] if rest else ""
    if len(rest) > 2:
        resource += "/" + rest[2]
    has_name = len(rest) > 1
    method = request.method
    if method == "GET":
        verb = "WATCH" if request.query.get("watch") in ("true", "1") else ("GET" if has_name else "LIST")
    elif method == "DELETE" and not has_name:
        verb = "DELETECOLLECTION"
    else:
        verb = {"POST": "POST", "PUT": "PUT", "PATCH": "PATCH", "DELETE": "DELETE"}.get(method, method)
    return verb, resource


async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Serve ``request`` with ``handler`` and count it (the server's outermost layer)."""
    started = time.perf_counter()
    verb, resource = _classify(request)
    if verb == "WATCH":
        watchers.inc()
    try:
        response = await handler(request)
    finally:
        if verb == "WATCH":
            watchers.dec()
    key = (verb, resource, response.status)
    series = _series.get(key)
    if series is None:  # labels() takes a lock and validates: once per series, not per request
        series = _series[key] = (request_total.labels(verb, resource, str(response.status)),
                                 request_duration.labels(verb, resource))
    series[0].inc()
    if verb != "WATCH":
        series[1].observe(time.perf_counter() - started)
    if BY_CLIENT:
        _count_client(request.headers.get("User-Agent", ""), key)
    return response


def _count_client(user_agent: str, key: tuple[str, str, int]) -> None:
    client = user_agent.split("/", 1)[0][:64] or "unknown"
    if client not in _clients:
        client = "other" if len(_clients) >= MAX_CLIENTS else _clients.setdefault(client, client)
    series = _client_series.get((client, *key))
    if series is None:
        series = _client_series[(client, *key)] = client_request_total.labels(client, key[0], key[1], str(key[2]))
    series.inc()


_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
_clients: dict[str, str] = {}
_client_series: dict[tuple[str, str, str, int], Counter] = {}


async def serve_metrics(_request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})
