"""Kubeocean's metrics (``docs/metrics/metrics.md``), on the runtime registry served at ``/metrics``.

Manager: sync duration/total/errors per binding and bindings by status. Syncer: pod creation
counters, virtual/physical pods by phase, vnode count, and per-vnode and per-cluster resource
gauges (cpu in millicores, memory and ephemeral-storage in MiB, other resources as counts).
"""

from __future__ import annotations

from fractions import Fraction

from prometheus_client import Counter, Gauge, Histogram

from atoll.runtime.metrics import REGISTRY

manager_sync_duration = Histogram(
    "kubeocean_manager_sync_duration_seconds", "ClusterBinding reconcile duration", registry=REGISTRY
)
manager_sync_total = Counter(
    "kubeocean_manager_sync_total", "ClusterBinding reconciles", ["clusterbinding"], registry=REGISTRY
)
manager_sync_errors = Counter(
    "kubeocean_manager_sync_errors_total", "ClusterBinding reconcile errors", ["clusterbinding"], registry=REGISTRY
)
clusterbindings_total = Gauge(
    "kubeocean_clusterbindings_total", "ClusterBindings by status", ["status"], registry=REGISTRY
)
create_pod_total = Counter(
    "kubeocean_syncer_create_pod_total", "Physical pod creations attempted", ["clusterbinding"], registry=REGISTRY
)
create_pod_errors = Counter(
    "kubeocean_syncer_create_pod_errors_total", "Physical pod creations failed", ["clusterbinding"], registry=REGISTRY
)
pod_created_total = Counter(
    "kubeocean_syncer_pod_created_total", "Physical pods created", ["clusterbinding"], registry=REGISTRY
)
pod_created_failed = Counter(
    "kubeocean_syncer_pod_created_failed_total", "Physical pods lost after creation", ["clusterbinding"],
    registry=REGISTRY,
)
virtual_pods = Gauge(
    "kubeocean_syncer_virtual_pod_total", "Pods on virtual nodes by phase", ["clusterbinding", "phase"],
    registry=REGISTRY,
)
physical_pods = Gauge(
    "kubeocean_syncer_physical_pod_total", "Physical pods by phase", ["clusterbinding", "phase"], registry=REGISTRY
)
vnode_total = Gauge("kubeocean_syncer_vnode_total", "Virtual nodes", ["clusterbinding"], registry=REGISTRY)
_NODE_LABELS = ["clusterbinding", "node", "resource"]
_CLUSTER_LABELS = ["clusterbinding", "resource"]
vnode_origin = Gauge("kubeocean_syncer_vnode_origin_resource", "Physical allocatable", _NODE_LABELS, registry=REGISTRY)
vnode_available = Gauge(
    "kubeocean_syncer_vnode_available_resource", "Virtual node capacity", _NODE_LABELS, registry=REGISTRY
)
vnode_physical_usage = Gauge(
    "kubeocean_syncer_vnode_physical_usage", "Requests of non-pooled pods", _NODE_LABELS, registry=REGISTRY
)
vnode_virtual_usage = Gauge(
    "kubeocean_syncer_vnode_virtual_usage", "Requests of pooled pods", _NODE_LABELS, registry=REGISTRY
)
cluster_origin = Gauge(
    "kubeocean_syncer_cluster_origin_resource", "Σ physical allocatable", _CLUSTER_LABELS, registry=REGISTRY
)
cluster_available = Gauge(
    "kubeocean_syncer_cluster_available_resource", "Σ virtual node capacity", _CLUSTER_LABELS, registry=REGISTRY
)
cluster_physical_usage = Gauge(
    "kubeocean_syncer_cluster_physical_usage", "Σ non-pooled requests", _CLUSTER_LABELS, registry=REGISTRY
)
cluster_virtual_usage = Gauge(
    "kubeocean_syncer_cluster_virtual_usage", "Σ pooled requests", _CLUSTER_LABELS, registry=REGISTRY
)


def unit_value(resource: str, value: Fraction) -> float:
    """cpu in millicores, memory/ephemeral-storage in MiB, anything else as is."""
    if resource == "cpu":
        return float(value * 1000)
    if resource in ("memory", "ephemeral-storage"):
        return float(value / 2**20)
    return float(value)
