"""A node as the filters see it: the Node object, its allocatable resources and what pods take.

``requested`` sums the requests of every pod counted on the node (bound pods that have not
finished, plus pods the scheduler assumed but the API has not confirmed yet). ``non_zero`` is
the same with kube-scheduler's defaults for pods that request nothing (100m CPU, 200Mi memory),
used only for scoring, so best-effort pods still spread.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from atoll.api.podusage import pod_usage
from atoll.api.quantity import parse_quantity

JSON = dict[str, Any]
Resources = dict[str, Fraction]

DEFAULT_MILLI_CPU_REQUEST = Fraction(1, 10)
DEFAULT_MEMORY_REQUEST = Fraction(200 * 2**20)
DEFAULT_MAX_PODS = 110
"""Used when a Node does not report ``allocatable.pods`` (the kubelet's default ``maxPods``)."""
REQUEST_PREFIX = "requests."


def pod_requests(pod: JSON) -> Resources:
    """What a pod requests: containers summed, init containers as a maximum, plus overhead."""
    requests = {
        key[len(REQUEST_PREFIX) :]: value for key, value in pod_usage(pod).items() if key.startswith(REQUEST_PREFIX)
    }
    for res, value in ((pod.get("spec") or {}).get("overhead") or {}).items():
        try:
            requests[res] = requests.get(res, Fraction(0)) + parse_quantity(value)
        except ValueError:
            continue
    return requests


def non_zero(requests: Resources) -> Resources:
    """CPU and memory requests with kube-scheduler's scoring defaults for zero values."""
    return {
        "cpu": requests.get("cpu") or DEFAULT_MILLI_CPU_REQUEST,
        "memory": requests.get("memory") or DEFAULT_MEMORY_REQUEST,
    }


def _add(total: Resources, more: Resources) -> None:
    for res, value in more.items():
        total[res] = total.get(res, Fraction(0)) + value


def _subtract(total: Resources, less: Resources) -> None:
    for res, value in less.items():
        left = total.get(res, Fraction(0)) - value
        if left:
            total[res] = left
        else:
            total.pop(res, None)


@dataclass(slots=True)
class NodeInfo:
    """One node and the pods counted on it, for one scheduling cycle."""

    node: JSON
    pods: list[JSON] = field(default_factory=list)
    requested: Resources = field(default_factory=dict)
    non_zero_requested: Resources = field(default_factory=dict)
    allocatable: Resources = field(default_factory=dict)
    _free: Resources = field(default_factory=dict, repr=False, compare=False)
    _floats: dict[str, float] = field(default_factory=dict, repr=False, compare=False)
    _name: str = field(default="", init=False, repr=False, compare=False)
    _labels: Mapping[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)
    _taints: tuple[JSON, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # read once: the filters ask a cached NodeInfo for these in every cycle
        meta = self.node.get("metadata") or {}
        self._name = str(meta.get("name", ""))
        self._labels = MappingProxyType(dict(meta.get("labels") or {}))
        self._taints = tuple((self.node.get("spec") or {}).get("taints") or ())

    def free(self, resource: str) -> Fraction:
        """Allocatable minus requested (memoised: a cached NodeInfo serves many cycles)."""
        value = self._free.get(resource)
        if value is None:
            value = self._free[resource] = self.allocatable.get(resource, Fraction(0)) - self.requested.get(
                resource, Fraction(0)
            )
        return value

    def as_float(self, kind: str, resource: str) -> float:
        """``allocatable`` or ``non_zero_requested`` of ``resource`` as a float (memoised, for scores)."""
        key = f"{kind}/{resource}"
        value = self._floats.get(key)
        if value is None:
            source = self.allocatable if kind == "allocatable" else self.non_zero_requested
            value = self._floats[key] = float(source.get(resource, Fraction(0)))
        return value

    @classmethod
    def build(cls, node: JSON, pods: Iterable[tuple[JSON, Resources]]) -> NodeInfo:
        info = cls(node, allocatable=_allocatable(node))
        for pod, requests in pods:
            info.add_pod(pod, requests)
        return info

    def updated(self, removed: Iterable[Resources], added: Iterable[tuple[JSON, Resources]],
                pods: list[JSON]) -> NodeInfo:
        """A new NodeInfo for the same Node: ``removed`` requests taken off, ``added`` pods put on
        (exact: quantities are fractions), counting ``pods``. A node whose pods changed by one
        bind costs a few additions instead of summing every pod on it again."""
        info = NodeInfo(self.node, pods=pods, requested=dict(self.requested),
                        non_zero_requested=dict(self.non_zero_requested), allocatable=self.allocatable)
        for requests in removed:
            _subtract(info.requested, requests)
            _subtract(info.non_zero_requested, non_zero(requests))
        for _pod, requests in added:
            _add(info.requested, requests)
            _add(info.non_zero_requested, non_zero(requests))
        return info

    def add_pod(self, pod: JSON, requests: Resources) -> None:
        self._free.clear()
        self._floats.clear()
        self.pods.append(pod)
        _add(self.requested, requests)
        _add(self.non_zero_requested, non_zero(requests))

    @property
    def name(self) -> str:
        return self._name

    @property
    def labels(self) -> Mapping[str, str]:
        return self._labels

    @property
    def taints(self) -> tuple[JSON, ...]:
        return self._taints

    @property
    def max_pods(self) -> int:
        allocatable = self.allocatable
        return int(allocatable["pods"]) if "pods" in allocatable else DEFAULT_MAX_PODS


def _allocatable(node: JSON) -> Resources:
    status = node.get("status") or {}
    raw = status.get("allocatable") or status.get("capacity") or {}
    out: Resources = {}
    for res, value in raw.items():
        try:
            out[res] = parse_quantity(value)
        except ValueError:
            continue
    return out
