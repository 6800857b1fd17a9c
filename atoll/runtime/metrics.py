"""Prometheus metrics in controller-runtime's names, on one module-level registry.

Dashboards and alerts written for Go controllers (``controller_runtime_reconcile_total``,
``workqueue_depth`` …) work unchanged. Every label combination is created at zero when its
controller or queue is built, so ``rate()`` never sees a series appear from nothing. The API server
exposes :data:`REGISTRY` on ``/metrics``; nothing here opens a port.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

RECONCILE_RESULTS = ("success", "error", "requeue_after", "terminal_error")
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_QUEUE_BUCKETS = tuple(10.0**e for e in range(-8, 4))  # client-go: 1e-8 s … 1000 s

reconcile_total = Counter(
    "controller_runtime_reconcile_total",
    "Total number of reconciliations per controller",
    ["controller", "result"],
    registry=REGISTRY,
)
reconcile_errors_total = Counter(
    "controller_runtime_reconcile_errors_total",
    "Total number of reconciliation errors per controller",
    ["controller"],
    registry=REGISTRY,
)
reconcile_time_seconds = Histogram(
    "controller_runtime_reconcile_time_seconds",
    "Length of time per reconciliation per controller",
    ["controller"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
workqueue_depth = Gauge("workqueue_depth", "Current depth of workqueue", ["name"], registry=REGISTRY)
workqueue_adds_total = Counter(
    "workqueue_adds_total", "Total number of adds handled by workqueue", ["name"], registry=REGISTRY
)
workqueue_queue_duration_seconds = Histogram(
    "workqueue_queue_duration_seconds",
    "How long in seconds an item stays in workqueue before being requested",
    ["name"],
    buckets=_QUEUE_BUCKETS,
    registry=REGISTRY,
)
workqueue_work_duration_seconds = Histogram(
    "workqueue_work_duration_seconds",
    "How long in seconds processing an item from workqueue takes",
    ["name"],
    buckets=_QUEUE_BUCKETS,
    registry=REGISTRY,
)
workqueue_retries_total = Counter(
    "workqueue_retries_total", "Total number of retries handled by workqueue", ["name"], registry=REGISTRY
)
controller_writes_total = Counter(
    "controller_writes_total",
    "API writes (create/update/patch/delete) issued by controllers",
    ["controller", "verb"],
    registry=REGISTRY,
)
informer_malformed_objects_total = Counter(
    "informer_malformed_objects_total",
    "Objects an informer received but could not index or hand to its handlers (logged with key, skipped)",
    ["resource"],
    registry=REGISTRY,
)
informer_watch_restarts_total = Counter(
    "informer_watch_restarts_total",
    "Watches that ended abnormally and were restarted (incl. relists)",
    ["resource"],
    registry=REGISTRY,
)


def init_controller(name: str) -> None:
    """Create every series of one controller at zero (controller-runtime's ``initMetrics``)."""
    for result in RECONCILE_RESULTS:
        reconcile_total.labels(name, result)
    reconcile_errors_total.labels(name)
    reconcile_time_seconds.labels(name)


class PrometheusQueueMetrics:
    """The work queue's metric hooks bound to one queue name (see ``workqueue.QueueMetrics``)."""

    def __init__(self, name: str) -> None:
        self._depth = workqueue_depth.labels(name)
        self._adds = workqueue_adds_total.labels(name)
        self._latency = workqueue_queue_duration_seconds.labels(name)
        self._work = workqueue_work_duration_seconds.labels(name)
        self._retries = workqueue_retries_total.labels(name)

    def add(self, depth: int) -> None:
        self._adds.inc()
        self._depth.set(depth)

    def get(self, depth: int, waited: float) -> None:
        self._depth.set(depth)
        self._latency.observe(waited)

    def done(self, worked: float) -> None:
        self._work.observe(worked)

    def retry(self) -> None:
        self._retries.inc()


leader = Gauge(
    "atoll_leader",
    "1 while this process holds the leader-election Lease (namespace/name), else 0",
    ["lease", "identity"],
    registry=REGISTRY,
)
