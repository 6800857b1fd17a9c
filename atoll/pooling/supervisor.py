"""Per-binding syncers, supervised and isolated from each other and from the master.

Each binding's syncer is one task of the pool's ``TaskGroup``. Whatever a syncer raises (a worker
cluster that is unreachable, slow, misconfigured or answering nonsense) is caught here, reported
through ``report`` (the manager writes it into the binding's ``SyncerReady`` condition) and the
syncer is restarted after an exponential backoff (1 s doubling to 60 s, on the injected clock);
it never reaches another binding or the node's ``TaskGroup``. A syncer is restarted at once when
its binding's spec or kubeconfig Secret changes (its *fingerprint*).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from atoll.api.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)
Run = Callable[[Callable[[], None]], Awaitable[None]]
"""Runs one syncer until it finishes; calls its argument once the syncer is up."""
Report = Callable[[str, bool, str], Coroutine[Any, Any, None]]
"""(binding, healthy, message)."""


@dataclass(slots=True)
class _Running:
    fingerprint: str
    task: asyncio.Task[None]


class SyncerPool:
    def __init__(self, report: Report, *, clock: Clock = SYSTEM_CLOCK, backoff_initial: float = 1.0,
                 backoff_max: float = 60.0) -> None:
        self.report = report
        self.clock = clock
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._running: dict[str, _Running] = {}
        self._group: asyncio.TaskGroup | None = None
        self.restarts: dict[str, int] = {}
        self._reports: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Host the syncers until cancelled (then every syncer is cancelled too)."""
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                await asyncio.Event().wait()
        finally:
            self._group = None
            self._running.clear()

    def running(self, name: str, fingerprint: str | None = None) -> bool:
        current = self._running.get(name)
        return current is not None and not current.task.done() and (
            fingerprint is None or current.fingerprint == fingerprint)

    def ensure(self, name: str, fingerprint: str, run: Run) -> bool:
        """Start (or restart, if the fingerprint changed) the syncer of ``name``; True if started."""
        if self.running(name, fingerprint):
            return False
        self.stop(name)
        if self._group is None:
            raise RuntimeError("the syncer pool is not running")
        task = self._group.create_task(self._supervise(name, run), name=f"pool/syncer/{name}")
        self._running[name] = _Running(fingerprint, task)
        return True

    def stop(self, name: str) -> None:
        current = self._running.pop(name, None)
        if current is not None:
            current.task.cancel()

    async def _supervise(self, name: str, run: Run) -> None:
        delay = self.backoff_initial
        loop = asyncio.get_running_loop()
        while True:
            def started() -> None:
                task = loop.create_task(self.report(name, True, ""))
                self._reports.add(task)
                task.add_done_callback(self._reports.discard)

            try:
                await run(started)
                log.info("syncer of binding %s finished", name)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # isolation: nothing a worker cluster does escapes this task
                message = f"{type(exc).__name__}: {exc}"[:500]
                self.restarts[name] = self.restarts.get(name, 0) + 1
                log.warning("syncer of binding %s failed (%s); restarting in %.0fs", name, message, delay)
                try:
                    await self.report(name, False, message)
                except Exception:
                    log.exception("could not report the failure of binding %s", name)
            await self.clock.sleep(delay)
            delay = min(delay * 2, self.backoff_max)
