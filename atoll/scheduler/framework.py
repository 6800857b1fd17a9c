"""The scheduling framework: extension points as Protocols, plugin statuses and profiles.

Modelled on kube-scheduler's framework so that behaviour (and later plugins, such as Kuscia's
co-scheduling ``KusciaScheduling``) map one to one:

* **scheduling cycle** (synchronous, one pod at a time, never awaits between reading the cache
  and assuming the pod, so two pods cannot both take a node's last slot): ``PreFilter`` →
  ``Filter`` per node → (on failure) ``PostFilter`` → ``Score`` per feasible node → ``Reserve``;
* **binding cycle** (asynchronous, one task per pod, so a ``Permit`` that waits for a gang does
  not hold up other pods): ``Permit`` → ``PreBind`` → bind → ``PostBind``; any failure runs
  ``Unreserve`` in reverse order.

A plugin is any object with a ``name`` that implements one or more of the Protocols below; a
:class:`Profile` sorts plugins into extension points by the methods they have, as
kube-scheduler does with its plugin registry.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from atoll.scheduler.nodeinfo import NodeInfo

JSON = dict[str, Any]
MAX_NODE_SCORE = 100.0


class Code(enum.Enum):
    """A plugin's verdict (kube-scheduler's ``framework.Code``)."""

    SUCCESS = "Success"
    UNSCHEDULABLE = "Unschedulable"
    """Does not fit now; preempting lower-priority pods might help."""
    UNRESOLVABLE = "UnschedulableAndUnresolvable"
    """Does not fit, and preemption cannot change that (taints, affinity, unschedulable node)."""
    ERROR = "Error"
    """The plugin failed; the pod is retried with backoff."""
    PENDING = "Pending"
    """Waiting for an event outside the cluster's resources (e.g. its TaskResource being created):
    retried when the pod changes, not reported as a scheduling failure (kube's ``Pending``)."""


@dataclass(frozen=True, slots=True)
class Status:
    """A plugin's result; ``reasons`` are the texts aggregated into the FailedScheduling message."""

    code: Code = Code.SUCCESS
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @property
    def ok(self) -> bool:
        return self.code is Code.SUCCESS

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)

    @classmethod
    def unschedulable(cls, *reasons: str, resolvable: bool = True) -> Status:
        return cls(Code.UNSCHEDULABLE if resolvable else Code.UNRESOLVABLE, reasons)

    @classmethod
    def error(cls, reason: str) -> Status:
        return cls(Code.ERROR, (reason,))


SUCCESS = Status()


class CycleState(dict[str, Any]):
    """Scratch space shared by the plugins for one pod's scheduling and binding cycle."""


# -- extension points --------------------------------------------------------------------------


@runtime_checkable
class Plugin(Protocol):
    name: str


@runtime_checkable
class PreFilterPlugin(Plugin, Protocol):
    def pre_filter(self, state: CycleState, pod: JSON) -> Status:
        """Check the pod once per cycle (or precompute for ``filter``); a failure rejects all nodes."""


@runtime_checkable
class FilterPlugin(Plugin, Protocol):
    def filter(self, state: CycleState, pod: JSON, node: NodeInfo) -> Status:
        """Whether ``pod`` may run on ``node``."""


@runtime_checkable
class PostFilterPlugin(Plugin, Protocol):
    def post_filter(self, state: CycleState, pod: JSON, statuses: Mapping[str, Status]) -> None:
        """Called when no node fits (kube-scheduler uses it for preemption; gangs reject siblings)."""


@runtime_checkable
class ScorePlugin(Plugin, Protocol):
    weight: int

    def score(self, state: CycleState, pod: JSON, node: NodeInfo) -> float:
        """A raw score for a feasible node; :meth:`normalize` maps them to ``0..MAX_NODE_SCORE``."""

    def normalize(self, scores: dict[str, float]) -> None:
        """Rescale the raw scores of all feasible nodes in place."""


@runtime_checkable
class ReservePlugin(Plugin, Protocol):
    def reserve(self, state: CycleState, pod: JSON, node_name: str) -> Status:
        """Claim plugin-held state for the chosen node (the scheduler cache is assumed separately)."""

    def unreserve(self, state: CycleState, pod: JSON, node_name: str) -> None:
        """Undo :meth:`reserve`; must be idempotent."""


@runtime_checkable
class PermitPlugin(Plugin, Protocol):
    async def permit(self, state: CycleState, pod: JSON, node_name: str) -> Status:
        """Allow, reject or (by awaiting) delay the binding, e.g. until a whole gang is reserved."""


@runtime_checkable
class PreBindPlugin(Plugin, Protocol):
    async def pre_bind(self, state: CycleState, pod: JSON, node_name: str) -> Status:
        """Last chance before the Binding is posted (e.g. wait for a TaskResource to be Schedulable)."""


@runtime_checkable
class PostBindPlugin(Plugin, Protocol):
    def post_bind(self, state: CycleState, pod: JSON, node_name: str) -> None:
        """Informational: the pod is bound (forget per-pod bookkeeping)."""


def normalize_to_max(scores: dict[str, float], *, reverse: bool = False) -> None:
    """kube-scheduler's ``DefaultNormalizeScore``: scale so the best node gets ``MAX_NODE_SCORE``."""
    top = max(scores.values(), default=0.0)
    for name, value in scores.items():
        if top <= 0:
            scores[name] = MAX_NODE_SCORE if reverse else 0.0
        else:
            scaled = MAX_NODE_SCORE * value / top
            scores[name] = MAX_NODE_SCORE - scaled if reverse else scaled


@dataclass(slots=True)
class Profile:
    """The plugins serving one ``spec.schedulerName``, sorted into extension points in order."""

    scheduler_name: str
    pre_filter: list[PreFilterPlugin] = field(default_factory=list)
    filter: list[FilterPlugin] = field(default_factory=list)
    post_filter: list[PostFilterPlugin] = field(default_factory=list)
    score: list[ScorePlugin] = field(default_factory=list)
    reserve: list[ReservePlugin] = field(default_factory=list)
    permit: list[PermitPlugin] = field(default_factory=list)
    pre_bind: list[PreBindPlugin] = field(default_factory=list)
    post_bind: list[PostBindPlugin] = field(default_factory=list)

    @classmethod
    def from_plugins(cls, scheduler_name: str, plugins: Sequence[object]) -> Profile:
        """Each plugin joins every extension point whose method it has (kube's registry)."""
        profile = cls(scheduler_name)
        for plugin in plugins:
            if not isinstance(plugin, Plugin):
                raise TypeError(f"{plugin!r} has no plugin name")
            matched = False
            for point, proto in _POINTS:
                if isinstance(plugin, proto):
                    getattr(profile, point).append(plugin)
                    matched = True
            if not matched:
                raise TypeError(f"plugin {plugin.name!r} implements no extension point")
        return profile

    @property
    def plugin_names(self) -> list[str]:
        seen: dict[str, None] = {}
        for point, _ in _POINTS:
            for plugin in getattr(self, point):
                seen.setdefault(plugin.name, None)
        return list(seen)


_POINTS: tuple[tuple[str, type], ...] = (
    ("pre_filter", PreFilterPlugin),
    ("filter", FilterPlugin),
    ("post_filter", PostFilterPlugin),
    ("score", ScorePlugin),
    ("reserve", ReservePlugin),
    ("permit", PermitPlugin),
    ("pre_bind", PreBindPlugin),
    ("post_bind", PostBindPlugin),
)
