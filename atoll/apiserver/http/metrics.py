"""API server request metrics (kube-apiserver's names) and the ``/metrics`` endpoint.

Counted in the server's outermost layer, after the response is known: ``apiserver_request_total``
by verb, resource and code, and ``apiserver_request_duration_seconds`` by verb and resource
(watches are counted when they end, and their duration is excluded from the histogram, as in
Kubernetes). Exposed together with the controller runtime's metrics from one registry. Reads served
in-process to the master's own controllers (no HTTP) are counted apart, in
``atoll_apiserver_local_request_total`` (``count_local``); their watches are in
``apiserver_registered_watchers`` too.

Every request passes here, so the hot path is plain arithmetic on one ``_Series`` per (verb,
resource, code) — no lock, no label validation (everything runs on the event loop); a collector
turns the series into the Prometheus families when ``/metrics`` is scraped. A request's (verb,
resource) is memoised by method, path and watch flag (bounded).

With ``ATOLL_REQUEST_CLIENTS=1`` in the server's environment (benchmarks: ``bench/bench_pods.py
--count``) requests are also counted by client, ``atoll_apiserver_client_request_total`` by the
User-Agent's product (up to its first ``/``; at most ``MAX_CLIENTS`` distinct, then ``other``),
verb, resource and code: which component causes which requests. Off by default (one more series
lookup per request).

SQLite's group commit is exposed too: ``atoll_sqlite_commits_total`` and
``atoll_sqlite_committed_writes_total`` (:mod:`atoll.store.commits`).
"""

from __future__ import annotations

import bisect
import os
import time
from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from atoll.apiserver.registry import params
from atoll.runtime.metrics import REGISTRY
from atoll.store.commits import COMMITS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_LE = (*(repr(b) for b in BUCKETS), "+Inf")  # the bucket labels as prometheus_client writes them
_MAX_CLASSIFIED = 4096

client_request_total = Counter(
    "atoll_apiserver_client_request_total",
    "Counter of apiserver requests by client (User-Agent product), verb, resource and HTTP response code",
    ["client", "verb", "resource", "code"],
    registry=REGISTRY,
)
MAX_CLIENTS = 32
BY_CLIENT = os.environ.get("ATOLL_REQUEST_CLIENTS", "") == "1"
watchers = Gauge("apiserver_registered_watchers", "Number of currently open watches", registry=REGISTRY)
local_request_total = Counter(
    "atoll_apiserver_local_request_total",
    "Counter of in-process reads and writes (the master's own controllers, without HTTP) by verb, resource and "
    "code; "
    "apiserver_request_total counts the HTTP requests",
    ["verb", "resource", "code"],
    registry=REGISTRY,
)


class _Series:
    """One (verb, resource, code): a count, and the latency histogram's buckets and sum (none
    observed for watches; their histogram series exists with zero counts, as before)."""

    __slots__ = ("buckets", "count", "created", "sum")

    def __init__(self) -> None:
        self.count = 0
        self.buckets = [0] * (len(BUCKETS) + 1)  # the last one: above every bound (+Inf only)
        self.sum = 0.0
        self.created = time.time()

    def observe(self, seconds: float) -> None:
        self.buckets[bisect.bisect_left(BUCKETS, seconds)] += 1  # bucket ``le`` counts seconds <= le
        self.sum += seconds


_series: dict[tuple[str, str, int], _Series] = {}


class _RequestCollector:
    """``apiserver_request_total`` and ``apiserver_request_duration_seconds`` from ``_series``."""

    def collect(self) -> Iterator[Metric]:
        total = CounterMetricFamily(
            "apiserver_request_total",
            "Counter of apiserver requests broken out by verb, resource and HTTP response code",
            labels=["verb", "resource", "code"],
        )
        duration = HistogramMetricFamily(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb and resource",
            labels=["verb", "resource"],
        )
        merged: dict[tuple[str, str], tuple[list[int], float]] = {}
        for (verb, resource, code), series in list(_series.items()):
            total.add_metric([verb, resource, str(code)], series.count, created=series.created)
            counts, seconds = merged.get((verb, resource), ([0] * len(series.buckets), 0.0))
            merged[(verb, resource)] = (
                [a + b for a, b in zip(counts, series.buckets, strict=True)],
                seconds + series.sum,
            )
        for (verb, resource), (counts, seconds) in merged.items():
            cumulative, running = [], 0
            for le, count in zip(_LE, counts, strict=True):
                running += count
                cumulative.append((le, float(running)))
            duration.add_metric([verb, resource], cumulative, seconds)
        yield total
        yield duration

    def describe(self) -> Iterator[Metric]:
        return iter(())  # not described up front: the registry calls ``collect`` on every scrape


class _CommitCollector:
    """SQLite's group commit (``atoll.store.commits``): transactions and the writes they carried."""

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily("atoll_sqlite_commits", "SQLite write transactions committed",
                                  value=COMMITS.commits)
        yield CounterMetricFamily("atoll_sqlite_committed_writes",
                                  "Writes carried by the committed SQLite transactions", value=COMMITS.writes)


REGISTRY.register(_RequestCollector())
REGISTRY.register(_CommitCollector())


def _split(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


def _classify(method: str, path: str, watch: bool) -> tuple[str, str]:
    parts = _split(path)
    if not parts or parts[0] not in ("api", "apis"):
        return method.lower(), parts[0] if parts else ""
    rest = parts[2:] if parts[0] == "api" else parts[3:]
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        rest = rest[2:]
    resource = rest[0] if rest else ""
    if len(rest) > 2:
        resource += "/" + rest[2]
    has_name = len(rest) > 1
    if method == "GET":
        verb = "GET" if has_name else ("WATCH" if watch else "LIST")
    elif method == "DELETE" and not has_name:
        verb = "DELETECOLLECTION"
    else:
        verb = {"POST": "POST", "PUT": "PUT", "PATCH": "PATCH", "DELETE": "DELETE"}.get(method, method)
    return verb, resource


_classified: dict[tuple[str, str, bool], tuple[str, str]] = {}


def classify(request: web.Request) -> tuple[str, str]:
    """(verb, resource) of ``request`` as kube-apiserver labels it."""
    method = request.method
    watch = method == "GET" and bool(request.query_string) and params.flag(request.query.get("watch")) is True
    key = (method, request.path, watch)
    found = _classified.get(key)
    if found is None:
        if len(_classified) >= _MAX_CLASSIFIED:
            _classified.clear()
        found = _classified[key] = _classify(method, request.path, watch)
    return found


async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Serve ``request`` with ``handler`` and count it (the server's outermost layer)."""
    started = time.perf_counter()
    verb, resource = classify(request)
    if verb == "WATCH":
        watchers.inc()
    try:
        response = await handler(request)
    finally:
        if verb == "WATCH":
            watchers.dec()
    key = (verb, resource, response.status)
    series = _series.get(key)
    if series is None:
        series = _series[key] = _Series()
    series.count += 1
    if verb != "WATCH":
        series.observe(time.perf_counter() - started)
    if BY_CLIENT:
        _count_client(request.headers.get("User-Agent", ""), key)
    return response


def observe(key: tuple[str, str, int], seconds: float) -> None:
    """Count one request of the (verb, resource, code) ``key`` that took ``seconds`` (not a watch),
    as ``count_requests`` does: for a request answered without it (``fastget``), never when
    ``BY_CLIENT`` (the caller checks)."""
    series = _series.get(key)
    if series is None:
        series = _series[key] = _Series()
    series.count += 1
    series.observe(seconds)


def _count_client(user_agent: str, key: tuple[str, str, int]) -> None:
    client = user_agent.split("/", 1)[0][:64] or "unknown"
    if client not in _clients:
        client = "other" if len(_clients) >= MAX_CLIENTS else _clients.setdefault(client, client)
    series = _client_series.get((client, *key))
    if series is None:
        series = _client_series[(client, *key)] = client_request_total.labels(client, key[0], key[1], str(key[2]))
    series.inc()


_clients: dict[str, str] = {}
_client_series: dict[tuple[str, str, str, int], Counter] = {}


def count_local(verb: str, resource: str, code: int) -> None:
    """Count one in-process read or write (:mod:`atoll.apiserver.http.local`, ``localwrites``) in
    ``local_request_total``."""
    key = (verb, resource, code)
    series = _local_series.get(key)
    if series is None:
        series = _local_series[key] = local_request_total.labels(verb, resource, str(code))
    series.inc()


_local_series: dict[tuple[str, str, int], Counter] = {}


async def serve_metrics(_request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})
