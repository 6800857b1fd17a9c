"""Controller runtime: work queue, informers, reconcile loop, leader election, manager, metrics.

It talks to the API server only through :mod:`atoll.client`, so controllers behave identically
against Atoll's own API server and any Kubernetes API server.
"""

from atoll.api.clock import SYSTEM_CLOCK, Clock, FakeClock, SystemClock
from atoll.runtime.cache import Cache, IndexFunc
from atoll.runtime.controller import (
    Controller,
    Reconciler,
    Result,
    TerminalError,
    generation_changed,
    get_logger,
    reconcile_context,
)
from atoll.runtime.informer import EventHandler, Informer, InformerFactory, WatchSettings
from atoll.runtime.keys import Mapper, ObjectKey, key_of, own_key, owner_mapper
from atoll.runtime.leader import LeaderElector
from atoll.runtime.manager import Manager
from atoll.runtime.metrics import REGISTRY
from atoll.runtime.ratelimit import (
    BucketRateLimiter,
    ExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    default_controller_rate_limiter,
)
from atoll.runtime.workqueue import QueueMetrics, WorkQueue

__all__ = [
    "REGISTRY",
    "SYSTEM_CLOCK",
    "BucketRateLimiter",
    "Cache",
    "Clock",
    "Controller",
    "EventHandler",
    "ExponentialFailureRateLimiter",
    "FakeClock",
    "IndexFunc",
    "Informer",
    "InformerFactory",
    "LeaderElector",
    "Manager",
    "Mapper",
    "MaxOfRateLimiter",
    "ObjectKey",
    "QueueMetrics",
    "RateLimiter",
    "Reconciler",
    "Result",
    "SystemClock",
    "TerminalError",
    "WatchSettings",
    "WorkQueue",
    "default_controller_rate_limiter",
    "generation_changed",
    "get_logger",
    "key_of",
    "own_key",
    "owner_mapper",
    "reconcile_context",
]
