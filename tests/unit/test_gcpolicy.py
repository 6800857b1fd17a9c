"""The API server's collector policy: freeze after the initial load and after each full collection,
hand everything back to the collector once per reclaim interval."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from atoll.apiserver.cache.gcpolicy import GCPolicy


@pytest.fixture
def policy() -> Iterator[GCPolicy]:
    p = GCPolicy(reclaim_interval=600.0)
    try:
        yield p
    finally:
        p.stop()


def test_freezes_after_start_and_after_each_full_collection_and_reclaims_on_schedule(policy: GCPolicy) -> None:
    policy.start(now=0.0)
    assert gc.get_freeze_count() > 0
    assert policy.step(now=1.0) is False  # before the reclaim time: nothing to do
    gc.unfreeze()
    young = [[i] for i in range(1000)]  # containers the collector tracks
    gc.collect(1)  # a young collection: no freeze
    assert gc.get_freeze_count() == 0
    gc.collect()  # a full collection, as the interpreter runs them automatically
    assert gc.get_freeze_count() >= len(young)
    assert policy.freezes == 1
    assert policy.step(now=600.0) is True
    assert gc.get_freeze_count() == 0  # the next full collection walks (and can free) everything again
    assert policy.step(now=601.0) is False
    policy.stop()
    gc.collect()
    assert gc.get_freeze_count() == 0  # stopped: no callback any more


def test_a_cycle_that_dies_while_frozen_is_freed_after_the_reclaim(policy: GCPolicy) -> None:
    class Node:
        def __init__(self) -> None:
            self.other: Node | None = None

    a, b = Node(), Node()
    a.other, b.other = b, a
    probe = weakref.ref(a)
    policy.start(now=0.0)  # the cycle is alive: frozen with everything else
    del a, b
    gc.collect()
    assert probe() is not None  # frozen: the collector does not look at it
    assert policy.step(now=600.0) is True
    gc.collect()
    assert probe() is None
