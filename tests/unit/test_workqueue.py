"""Work queue contract (client-go semantics) and the default controller rate limiter.

Aspects: dedup while queued; a key is never handed to two workers at once; a key re-added while
being processed is delivered again after ``done``; FIFO; ``add_after`` delivers after the delay;
per-key backoff doubles and caps, the global bucket throttles bursts; shutdown drains.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from atoll.api.clock import FakeClock
from atoll.runtime import metrics
from atoll.runtime.ratelimit import (
    BucketRateLimiter,
    ExponentialFailureRateLimiter,
    default_controller_rate_limiter,
)
from atoll.runtime.workqueue import WorkQueue

KEYS = st.sampled_from(["a", "b", "c", "d"])


class QueueMachine(RuleBasedStateMachine):
    """Model: an ordered queue of distinct keys plus a processing set and a dirty set."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.q: WorkQueue[str] = WorkQueue()
        self.queued: deque[str] = deque()
        self.processing: set[str] = set()
        self.dirty_while_processing: set[str] = set()
        self.added_after_get: set[str] = set()
        self.delivered: set[str] = set()

    @rule(key=KEYS)
    def add(self, key: str) -> None:
        self.q.add(key)
        self.added_after_get.add(key)
        if key in self.processing:
            self.dirty_while_processing.add(key)
        elif key not in self.queued:
            self.queued.append(key)

    @precondition(lambda self: len(self.queued) > 0)
    @rule()
    def get(self) -> None:
        key = self.loop.run_until_complete(asyncio.wait_for(self.q.get(), 10))
        assert key is not None
        assert key not in self.processing, "two concurrent gets of one key"
        assert key == self.queued.popleft(), "not FIFO"
        self.processing.add(key)
        self.added_after_get.discard(key)
        self.delivered.add(key)

    @precondition(lambda self: len(self.processing) > 0)
    @rule(data=st.data())
    def done(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.processing)))
        self.q.done(key)
        self.processing.discard(key)
        if key in self.dirty_while_processing:
            self.dirty_while_processing.discard(key)
            self.queued.append(key)

    @invariant()
    def dedup(self) -> None:
        assert len(self.q) == len(self.queued)
        assert self.q.processing == len(self.processing)

    def teardown(self) -> None:
        # Every key added after its last get is eventually delivered once everything is done.
        for key in list(self.processing):
            self.q.done(key)
        pending = set(self.added_after_get)
        while len(self.q):
            key = self.loop.run_until_complete(self.q.get())
            assert key is not None
            pending.discard(key)
            self.q.done(key)
        assert not pending, f"never delivered: {pending}"
        self.loop.close()


TestQueueMachine = QueueMachine.TestCase
TestQueueMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


async def test_readd_while_processing_is_delivered_after_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("x")
    assert await q.get() == "x"
    q.add("x")
    q.add("x")
    assert len(q) == 0  # not handed to a second worker while processing
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0.01)
    assert not getter.done()
    q.done("x")
    assert await asyncio.wait_for(getter, 10) == "x"


async def test_concurrent_workers_never_share_a_key() -> None:
    q: WorkQueue[int] = WorkQueue()
    active: set[int] = set()
    handled = 0

    async def worker() -> None:
        nonlocal handled
        while (key := await q.get()) is not None:
            assert key not in active
            active.add(key)
            await asyncio.sleep(0.001)
            active.discard(key)
            handled += 1
            q.done(key)

    async with asyncio.TaskGroup() as tg:
        for _ in range(8):
            tg.create_task(worker())
        for i in range(300):
            q.add(i % 5)
            if i % 7 == 0:
                await asyncio.sleep(0)
        await asyncio.sleep(0.05)
        await q.shutdown(drain=True)
    assert 5 <= handled <= 300


async def test_add_after_delivers_after_the_delay_and_keeps_earliest() -> None:
    q: WorkQueue[str] = WorkQueue()
    loop = asyncio.get_running_loop()
    start = loop.time()
    q.add_after("late", 0.5)
    q.add_after("soon", 1.0)
    q.add_after("soon", 0.05)  # earlier time wins
    q.add_after("soon", 2.0)  # later time ignored
    assert len(q) == 0 and q.waiting == 2
    # the order shows which times were kept (timers fire in time order even when a loaded machine
    # wakes the loop late, where an upper bound on the wait would fail)
    assert await q.get() == "soon"
    assert loop.time() - start >= 0.04
    assert await q.get() == "late"
    assert loop.time() - start >= 0.49
    q.add_after("now", 0)
    assert await q.get() == "now"


def test_per_key_backoff_grows_and_caps() -> None:
    limiter = ExponentialFailureRateLimiter(0.005, 1000.0)
    delays = [limiter.when("k") for _ in range(20)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert delays[-1] == 1000.0 and limiter.num_requeues("k") == 20
    assert limiter.when("other") == 0.005
    limiter.forget("k")
    assert limiter.num_requeues("k") == 0 and limiter.when("k") == 0.005
    for _ in range(200):
        assert limiter.when("huge") <= 1000.0


def test_global_bucket_throttles_bursts() -> None:
    clock = FakeClock()
    bucket = BucketRateLimiter(10.0, 100, clock=clock)
    assert all(bucket.when(i) == 0.0 for i in range(100))
    assert bucket.when("x") == pytest.approx(0.1)
    assert bucket.when("y") == pytest.approx(0.2)
    clock.advance(10.0)
    assert bucket.when("z") == 0.0
    combined = default_controller_rate_limiter(clock=clock)
    assert combined.when("k") == 0.005 and combined.when("k") == 0.01


async def test_add_rate_limited_backs_off_and_forget_resets() -> None:
    q: WorkQueue[str] = WorkQueue(rate_limiter=ExponentialFailureRateLimiter(0.02, 1.0))
    loop = asyncio.get_running_loop()
    gaps = []
    q.add("k")
    for _ in range(3):
        key = await q.get()
        assert key == "k"
        t = loop.time()
        q.add_rate_limited("k")
        q.done("k")
        await q.get()
        gaps.append(loop.time() - t)
        q.done("k")
        q.add("k")
    assert gaps[0] >= 0.018 and gaps[1] >= 0.038 and gaps[2] >= 0.078
    assert q.num_requeues("k") == 3
    q.forget("k")
    assert q.num_requeues("k") == 0


async def test_shutdown_drains_in_flight_and_releases_getters() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("busy")
    assert await q.get() == "busy"
    idle_getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add_after("parked", 10)
    finished: list[str] = []

    async def finish_later() -> None:
        await asyncio.sleep(0.05)
        finished.append("busy")
        q.done("busy")

    task = asyncio.create_task(finish_later())
    await q.shutdown(drain=True)
    await task
    assert finished == ["busy"]  # shutdown waited for the in-flight key
    assert await asyncio.wait_for(idle_getter, 10) is None
    q.add("ignored")
    assert await q.get() is None and q.waiting == 0


async def test_keys_queued_before_shutdown_are_still_handed_out() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.add("b")
    await q.shutdown(drain=False)
    assert [await q.get(), await q.get(), await q.get()] == ["a", "b", None]


async def test_cancelled_getter_passes_its_wakeup_on() -> None:
    q: WorkQueue[str] = WorkQueue()
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add("k")
    first.cancel()
    assert await asyncio.wait_for(second, 10) == "k"


async def test_metrics_are_recorded_per_queue_name() -> None:
    q: WorkQueue[str] = WorkQueue("metrics-test")
    q.add("a")
    q.add("b")
    assert metrics.REGISTRY.get_sample_value("workqueue_depth", {"name": "metrics-test"}) == 2
    key = await q.get()
    assert key is not None
    q.add_rate_limited(key)
    q.done(key)
    assert metrics.REGISTRY.get_sample_value("workqueue_adds_total", {"name": "metrics-test"}) == 2
    assert metrics.REGISTRY.get_sample_value("workqueue_retries_total", {"name": "metrics-test"}) == 1
    assert (
        metrics.REGISTRY.get_sample_value("workqueue_queue_duration_seconds_count", {"name": "metrics-test"})
        == 1
    )
    assert (
        metrics.REGISTRY.get_sample_value("workqueue_work_duration_seconds_count", {"name": "metrics-test"})
        == 1
    )
    await q.shutdown()
