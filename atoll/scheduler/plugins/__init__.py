"""The default plugins, in kube-scheduler's filter order.

``default_plugins()`` is what the ``default-scheduler`` profile runs; another profile (such as a
later ``kuscia-scheduler`` with co-scheduling) composes these with its own plugins.
"""

from __future__ import annotations

from atoll.scheduler.plugins.domainisolation import DomainIsolation, NamespaceDomain
from atoll.scheduler.plugins.nodeaffinity import NodeAffinity
from atoll.scheduler.plugins.nodeready import NodeReady
from atoll.scheduler.plugins.noderesources import LeastAllocated, NodeResourcesFit
from atoll.scheduler.plugins.nodeunschedulable import NodeUnschedulable
from atoll.scheduler.plugins.tainttoleration import TaintToleration


def default_plugins(namespace_domain: NamespaceDomain | None = None, *extra: object) -> list[object]:
    """Fresh instances of the default plugins (filters run in this order; the first failure wins).

    ``namespace_domain`` maps a namespace to the domain it belongs to (None: not a domain's);
    ``extra`` plugins (``VolumeBinding``, which needs informers) run after the resource fit."""
    return [
        DomainIsolation(namespace_domain),
        NodeUnschedulable(),
        NodeReady(),
        TaintToleration(),
        NodeAffinity(),
        NodeResourcesFit(),
        *extra,
        LeastAllocated(),
    ]


__all__ = [
    "DomainIsolation",
    "LeastAllocated",
    "NamespaceDomain",
    "NodeAffinity",
    "NodeReady",
    "NodeResourcesFit",
    "NodeUnschedulable",
    "TaintToleration",
    "default_plugins",
]
