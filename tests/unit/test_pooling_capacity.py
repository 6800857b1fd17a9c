"""Virtual node capacity: Kubeocean's formula with the max-of-init rule and pod overhead."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from atoll.pooling.capacity import apply_limits, node_usage, pod_requests, vnode_capacity

JSON = dict[str, Any]


def pod(cpu: str = "0", memory: str = "0", *, inits: tuple[str, ...] = (), phase: str = "Running",
        managed: bool = False, overhead: JSON | None = None) -> JSON:
    spec: JSON = {"containers": [{"name": "a", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}
    if inits:
        spec["initContainers"] = [{"name": f"i{i}", "resources": {"requests": {"cpu": c}}} for i, c in enumerate(inits)]
    if overhead:
        spec["overhead"] = overhead
    labels = {"kubeocean.io/managed-by": "kubeocean"} if managed else {}
    return {"metadata": {"name": "p", "labels": labels}, "spec": spec, "status": {"phase": phase}}


NODE = {"status": {"allocatable": {"cpu": "8", "memory": "16Gi", "pods": "110"},
                   "capacity": {"cpu": "10", "memory": "20Gi", "pods": "110"}}}


def test_init_containers_count_as_the_max_not_the_sum() -> None:
    # Kubeocean would count 1 + 2 + 3 = 6 cores; the scheduler's rule is max(1, 3) = 3
    assert pod_requests(pod("1", inits=("2", "3")))["cpu"] == 3
    assert pod_requests(pod("4", inits=("2", "3")))["cpu"] == 4


def test_pod_overhead_is_counted() -> None:
    assert pod_requests(pod("1", overhead={"cpu": "250m"}))["cpu"] == Fraction(5, 4)


def test_only_pending_and_running_non_managed_pods_are_subtracted() -> None:
    pods = [pod("1", "1Gi"), pod("2", phase="Succeeded"), pod("3", managed=True), pod("500m", phase="Pending")]
    usage = node_usage(pods)
    assert usage.physical == {"cpu": Fraction(3, 2), "memory": Fraction(2**30), "pods": 2}
    assert usage.pooled["cpu"] == 3
    avail, _ = vnode_capacity(NODE, pods, [])
    assert avail == {"cpu": Fraction(13, 2), "memory": Fraction(15 * 2**30), "pods": 108}


def test_allocatable_falls_back_to_capacity_and_never_goes_negative() -> None:
    node = {"status": {"capacity": {"cpu": "1"}}}
    avail, _ = vnode_capacity(node, [pod("3")], [])
    assert avail["cpu"] == 0


def test_limits_take_the_smaller_of_quantity_and_percent() -> None:
    avail = {"cpu": Fraction(8), "memory": Fraction(16 * 2**30), "nvidia.com/gpu": Fraction(4)}
    capped = apply_limits(avail, [
        {"resource": "cpu", "quantity": 96, "percent": 90},      # 90 % of 8 = 7.2 < 96
        {"resource": "memory", "quantity": "4Gi", "percent": 50},  # 4Gi < 8Gi
        {"resource": "ephemeral-storage", "percent": 10},          # not on the node: ignored
    ])
    assert capped["cpu"] == Fraction(36, 5)
    assert capped["memory"] == 4 * 2**30
    assert capped["nvidia.com/gpu"] == 4  # no entry: uncapped


def test_limits_never_raise_capacity() -> None:
    assert apply_limits({"cpu": Fraction(2)}, [{"resource": "cpu", "quantity": "5"}]) == {"cpu": 2}
