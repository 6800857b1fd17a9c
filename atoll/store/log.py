"""The dialect-independent log: watch poller and fan-out, list/watch/compact semantics.

``LogStore`` implements the ``Store`` protocol on top of a ``Driver`` (one per database) that
only runs SQL. One poller per process reads the rows after the last revision it has seen,
requires them to be strictly sequential, and fans them out to every watcher's bounded queue.
Local writes wake it at once; PostgreSQL's LISTEN/NOTIFY or a ticker picks up other replicas.

Gaps (an id allocated by a transaction that rolled back, or commits landing out of order) are
retried briefly and then plugged with a "fill" row, as kine does, so watchers never stall and
never skip. A watcher that falls ``queue_size`` batches behind is ended with ``WatchLagged``
(a ``Compacted``: the client re-lists), never silently truncated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from atoll.store.base import Compacted, Event, KeyValue, ListResult, WatchLagged
from atoll.store.rows import Batch, Row, Rows, prefix_end, to_event, to_kv

log = logging.getLogger(__name__)


class Driver(Protocol):
    """What a database must provide. Write methods raise the ``base`` errors."""

    ordered_commits: bool  # rows become visible in id order (no gaps): SQLite's single writer
    # optional ``publishes_commits = True``: ``publish`` receives every local commit (it wakes the
    # poller itself when it cannot broadcast), so local writes need no extra poller read
    poll_interval: float  # seconds between polls when nothing wakes the poller

    async def open(self, wake: Callable[[], None], publish: Callable[[Batch], None]) -> None:
        """``wake`` pokes the poller; ``publish`` hands over rows just committed in id order
        (a single-writer database can skip the poller's re-read)."""

    async def close(self) -> None: ...
    async def create(self, key: str, value: bytes) -> int: ...
    async def update(self, key: str, value: bytes, expected: int) -> int: ...
    async def delete(self, key: str, expected: int) -> Event: ...
    async def latest(self, key: str) -> Row | None: ...
    async def list(self, lo: str, hi: str | None, revision: int, limit: int) -> Rows: ...
    async def after(self, revision: int, limit: int) -> Rows: ...
    async def max_revision(self) -> int: ...
    async def meta(self) -> tuple[int, int]: ...  # (compact_rev, compact_done)
    async def set_compact_rev(self, revision: int) -> None: ...
    async def compact_range(self, lo: int, hi: int) -> None: ...  # rows superseded in (lo, hi]
    async def fill(self, revision: int) -> None: ...  # insert a fill row; no-op if id exists


class _Sub:
    __slots__ = ("closed", "error", "queue")

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[list[Event] | None] = asyncio.Queue(size)
        self.error: BaseException | None = None
        self.closed = False

    def end(self, error: BaseException | None = None) -> None:
        self.error, self.closed = error, True
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)


GAP_RETRY = 0.01
"""Longest wait between re-reads of a hole before ``gap_timeout`` (a wake-up re-reads sooner)."""
MAX_FILL = 1000
"""Ids filled at most per timed-out hole."""

CATCH_UP_ROWS = 100
"""At most this many rows per page when a watch catches up from the database."""
CATCH_UP_BYTES = 8 * 2**20
"""...and about this many bytes: rows may be up to a few MB each (100 rows of a 1 MB ConfigMap's
history are 100 MB), so a page starts at ``CATCH_UP_FIRST`` rows and the next page's row count
follows the average row size seen so far."""
CATCH_UP_FIRST = 8


def _next_page_rows(rows: int, nbytes: int) -> int:
    """Rows for the next catch-up page after one of ``rows`` rows and ``nbytes`` bytes."""
    if rows <= 0 or nbytes <= 0:
        return CATCH_UP_ROWS
    return max(1, min(CATCH_UP_ROWS, CATCH_UP_BYTES * rows // nbytes))


class LogStore:
    """A ``Store`` over any ``Driver``."""

    def __init__(
        self,
        driver: Driver,
        *,
        queue_size: int = 1024,
        poll_batch: int = 1000,
        gap_timeout: float = 0.3,
        compact_batch: int = 1000,
        poll_interval: float | None = None,
    ) -> None:
        self.driver = driver
        self._interval = poll_interval or driver.poll_interval
        self._queue_size, self._poll_batch = queue_size, poll_batch
        self._gap_timeout, self._compact_batch = gap_timeout, compact_batch
        self._subs: set[_Sub] = set()
        self._position = 0
        self._wake = asyncio.Event()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._poller: asyncio.Task[None] | None = None
        self._compact_lock = asyncio.Lock()
        self._gap: tuple[int, float] | None = None
        self.gaps_filled = 0  # ids this replica's poller filled after ``gap_timeout``
        self._state = "new"
        self._compact_rev = 0  # in memory for an exclusive store (see ``_exclusive``)
        # A store whose driver commits in order and publishes every local commit (SQLite) knows its
        # current and compacted revisions without asking the database, as long as this process is
        # its only writer; a row the poller finds that was not published here ends that.
        self._exclusive = bool(driver.ordered_commits and getattr(driver, "publishes_commits", False))
        # local writes only wake the poller when the driver does not publish its commits
        self._wake_on_write = not getattr(driver, "publishes_commits", False)

    # ---- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._state != "new":
            return
        self._state = "running"
        await self.driver.open(self.wake, self.publish)
        self._position = await self.driver.max_revision()
        self._compact_rev = (await self.driver.meta())[0]
        self._poller = asyncio.create_task(self._poll_loop(), name="atoll-store-poller")

    async def close(self) -> None:
        if self._state == "closed":
            return
        was_running, self._state = self._state == "running", "closed"
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        for sub in self._subs:
            sub.end()
        self._subs.clear()
        for _, fut in self._waiters:
            if not fut.done():
                fut.cancel()
        if was_running:
            await self.driver.close()

    async def __aenter__(self) -> LogStore:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def wake(self) -> None:
        """Poke the poller (a local write committed, or another replica notified)."""
        self._wake.set()

    def publish(self, events: Batch) -> None:
        """Rows this process just committed: broadcast them at once if they continue the log,
        else leave them to the poller (someone else wrote in between)."""
        if events and events[0].revision == self._position + 1 and self._state == "running":
            if events[-1].revision - events[0].revision == len(events) - 1:
                self._broadcast(events)
                return
        if events and events[0].revision > self._position + 1 and self._state == "running":
            self._exclusive = False  # someone else committed in between: ask the database from now on
        self._wake.set()

    # ---- writes and reads ---------------------------------------------------------------------

    async def create(self, key: str, value: bytes) -> int:
        rev = await self.driver.create(key, value)
        if self._wake_on_write:
            self._wake.set()
        return rev

    async def update(self, key: str, value: bytes, expected: int) -> int:
        rev = await self.driver.update(key, value, expected)
        if self._wake_on_write:
            self._wake.set()
        return rev

    async def delete(self, key: str, expected: int) -> Event:
        event = await self.driver.delete(key, expected)
        if self._wake_on_write:
            self._wake.set()
        return event

    async def get(self, key: str) -> KeyValue | None:
        row = await self.driver.latest(key)
        return None if row is None or row[3] else to_kv(row)

    async def current_revision(self) -> int:
        if self._exclusive:
            return max(self._position, self._compact_rev)
        rev = await self.driver.max_revision()
        if not self.driver.ordered_commits:
            await self._sync(rev)  # every id <= rev is now committed (or filled)
        return max(rev, (await self.driver.meta())[0])

    @property
    def exclusive(self) -> bool:
        """This process is the store's only writer (SQLite, no other writer seen): what it
        acknowledged is all there is, so a cache miss needs no database read."""
        return self._exclusive

    async def compacted_revision(self) -> int:
        if self._exclusive:
            return self._compact_rev
        return (await self.driver.meta())[0]

    async def list(self, prefix: str, *, revision: int = 0, limit: int = 0, start_key: str = "") -> ListResult:
        if revision <= 0:
            revision = await self.current_revision()
        else:
            compacted = await self.compacted_revision()
            if revision < compacted:
                raise Compacted(revision, compacted)
            if not self.driver.ordered_commits:
                await self._sync(min(revision, await self.driver.max_revision()))
        lo = max(prefix, start_key)
        rows = await self.driver.list(lo, prefix_end(prefix), revision, limit + 1 if limit > 0 else 0)
        more = limit > 0 and len(rows) > limit
        return ListResult([to_kv(r) for r in (rows[:limit] if more else rows)], revision, more)

    # ---- watch --------------------------------------------------------------------------------

    async def watch(self, from_revision: int) -> AsyncIterator[Batch]:
        compacted = await self.compacted_revision()
        if from_revision < compacted:
            raise Compacted(from_revision, compacted)
        if self._state != "running":
            return
        sub = _Sub(self._queue_size)
        self._subs.add(sub)
        try:
            last, target = from_revision, self._position
            page = min(self._poll_batch, CATCH_UP_FIRST)
            while last < target:  # history from the database, up to where the live feed starts
                rows = await self.driver.after(last, page)
                page = min(self._poll_batch, _next_page_rows(len(rows), sum(len(r[6] or b"") for r in rows)))
                compacted = await self.compacted_revision()
                if compacted > last:  # rows we just read past may have been compacted away
                    raise Compacted(from_revision, compacted)
                events = [to_event(r) for r in rows if r[0] <= target]
                del rows  # a catch-up page can be large: hold it no longer than the consumer does
                if not events:
                    break
                last = events[-1].revision
                yield events
                del events
            while True:
                if sub.error is not None:
                    raise sub.error
                batch = await sub.queue.get()
                if sub.error is not None:
                    raise sub.error
                if batch is None or sub.closed:
                    return
                if batch[-1].revision <= last:
                    continue
                if batch[0].revision <= last:
                    batch = [e for e in batch if e.revision > last]
                yield batch
                last = batch[-1].revision
        finally:
            self._subs.discard(sub)

    def _broadcast(self, events: Batch) -> None:
        self._position = events[-1].revision
        for sub in list(self._subs):
            try:
                sub.queue.put_nowait(events)
            except asyncio.QueueFull:
                self._subs.discard(sub)
                sub.end(WatchLagged(events[0].revision))
        if self._waiters:
            keep = []
            for target, fut in self._waiters:
                if target <= self._position:
                    if not fut.done():
                        fut.set_result(None)
                else:
                    keep.append((target, fut))
            self._waiters = keep

    async def _sync(self, revision: int) -> None:
        """Wait until the poller has passed ``revision`` (all lower ids committed or filled)."""
        if revision <= self._position or self._state != "running":
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((revision, fut))
        self.wake()
        await fut

    # ---- poller -------------------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        interval, again = self._interval, False
        while self._state == "running":
            if not again:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(interval):  # not wait_for: it can swallow a cancel
                        await self._wake.wait()
            self._wake.clear()
            try:
                again = await self._poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("store poller failed; retrying")
                again = False
                await asyncio.sleep(interval)

    async def _poll_once(self) -> bool:
        """One read; True if the poller should read again without waiting."""
        rows = await self.driver.after(self._position, self._poll_batch)
        if rows and rows[0][0] <= self._position:  # published while we were reading
            rows = [r for r in rows if r[0] > self._position]
        expect, events = self._position + 1, []
        for row in rows:
            if row[0] != expect:
                break
            events.append(to_event(row))
            expect += 1
        if events:
            if self._exclusive and events[-1].revision > getattr(self.driver, "local_high", 0):
                self._exclusive = False  # a row this process did not commit: another writer exists
            self._broadcast(events)
        if len(events) == len(rows):
            self._gap = None
            return len(rows) == self._poll_batch
        return await self._on_gap(expect, int(rows[len(events)][0]))

    async def _on_gap(self, missing: int, present: int) -> bool:
        now = asyncio.get_running_loop().time()
        if self._gap is None or self._gap[0] != missing:
            self._gap = (missing, now)
        if now - self._gap[1] < self._gap_timeout:
            # most holes are a commit landing out of order: its writer (or its NOTIFY) wakes us
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(GAP_RETRY):
                    await self._wake.wait()
            return True
        compacted = (await self.driver.meta())[0]
        if missing <= compacted:  # compacted away before this replica saw it: watchers must re-list
            for sub in self._subs:
                sub.end(Compacted(missing - 1, compacted))
            self._subs.clear()
            self._position = min(present - 1, compacted)
        else:
            # every id below ``present`` was allocated before it: fill the whole hole (a database
            # restart can skip a sequence's cached ids), not one id per ``gap_timeout``
            end = min(present, missing + MAX_FILL)
            log.info("store: revisions %d-%d stayed missing for %.2f s: filled", missing, end - 1, self._gap_timeout)
            for revision in range(missing, end):
                await self.driver.fill(revision)
                self.gaps_filled += 1
        self._gap = None
        return True

    # ---- compaction ---------------------------------------------------------------------------

    async def compact(self, revision: int) -> int:
        """Compact up to ``revision`` (never past what this replica's watchers have seen)."""
        async with self._compact_lock:
            compact_rev, done = await self.driver.meta()
            await self._sync(min(revision, await self.driver.max_revision()))
            target = min(revision, self._position)
            if target > compact_rev:
                await self.driver.set_compact_rev(target)  # first: history readers see it
                compact_rev = target
                self._compact_rev = max(self._compact_rev, target)
            lo = done
            while lo < compact_rev:
                hi = min(lo + self._compact_batch, compact_rev)
                await self.driver.compact_range(lo, hi)
                lo = hi
            return compact_rev
