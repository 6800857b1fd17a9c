"""Per-vnode resource gauges and their per-cluster sums (Kubeocean's units: cpu in millicores, MiB)."""

from __future__ import annotations

from fractions import Fraction

from atoll.client import Client
from atoll.pooling.bottomup import NodeReconciler
from atoll.pooling.context import SyncContext
from atoll.runtime import REGISTRY, ObjectKey, WorkQueue


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_cluster_gauges_sum_the_vnodes() -> None:
    ctx = SyncContext("metrics-b", Client("http://127.0.0.1:9"), Client("http://127.0.0.1:9"))
    nodes = NodeReconciler(ctx, WorkQueue[ObjectKey]("metrics-test"))
    gib = Fraction(2**30)
    nodes._record("vnode-a", {"cpu": Fraction(4), "memory": 8 * gib}, {"cpu": Fraction(2), "memory": 4 * gib},
                  {"cpu": Fraction(1, 2)}, {"cpu": Fraction(1)})
    nodes._record("vnode-b", {"cpu": Fraction(2), "memory": 2 * gib}, {"cpu": Fraction(1), "memory": gib}, {}, {})
    nodes.record_cluster()
    assert sample("kubeocean_syncer_vnode_available_resource", clusterbinding="metrics-b", node="vnode-a",
                  resource="cpu") == 2000.0
    assert sample("kubeocean_syncer_cluster_origin_resource", clusterbinding="metrics-b", resource="cpu") == 6000.0
    assert sample("kubeocean_syncer_cluster_available_resource", clusterbinding="metrics-b",
                  resource="memory") == 5 * 1024
    assert sample("kubeocean_syncer_cluster_physical_usage", clusterbinding="metrics-b", resource="cpu") == 500.0
    assert sample("kubeocean_syncer_cluster_virtual_usage", clusterbinding="metrics-b", resource="cpu") == 1000.0
    nodes._forget("vnode-b")
    nodes.record_cluster()
    assert sample("kubeocean_syncer_cluster_origin_resource", clusterbinding="metrics-b", resource="cpu") == 4000.0
