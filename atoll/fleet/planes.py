"""The running instances: one control plane (plus its Karmada controllers) per Instance.

``PlaneSet.ensure(name)`` starts the instance's control plane from its data directory (a fresh one
or the one a previous management process left: nothing is lost across restarts), waits until it
serves, then starts ``workers(name, client)`` (the instance's Karmada controllers) next to it.
Each instance runs in its own task, so one failing instance never stops the others; a failed
instance is restarted by the next ``ensure``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atoll.client import Client
from atoll.fleet.plane import ControlPlane, PlaneFactory, Upstream, admin_client

log = logging.getLogger(__name__)
Workers = Callable[[str, Client], Coroutine[Any, Any, None]]


class PlaneError(Exception):
    """An instance's control plane failed to start (the message says why)."""


@dataclass(slots=True)
class RunningPlane:
    plane: ControlPlane
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    client: Client | None = None


class PlaneSet:
    def __init__(
        self, factory: PlaneFactory, root: Path, *, workers: Workers | None = None, start_timeout: float = 30.0
    ) -> None:
        self.factory = factory
        self.root = root
        self.workers = workers
        self.start_timeout = start_timeout
        self._planes: dict[str, RunningPlane] = {}

    def data_dir(self, name: str) -> Path:
        return self.root / name

    def names(self) -> list[str]:
        return sorted(self._planes)

    def upstream(self, name: str) -> Upstream | None:
        running = self._planes.get(name)
        if running is None or not running.ready.is_set() or running.task is None or running.task.done():
            return None
        return running.plane.upstream()

    def client(self, name: str) -> Client | None:
        running = self._planes.get(name)
        return running.client if running is not None and running.ready.is_set() else None

    async def ensure(self, name: str) -> Upstream:
        """The instance's control plane, started (or restarted after a failure) if needed."""
        running = self._planes.get(name)
        if running is None or running.task is None or running.task.done():
            if running is not None:
                await self._close_client(running)
            running = RunningPlane(self.factory(name, self.data_dir(name)))
            self._planes[name] = running
            running.task = asyncio.create_task(self._serve(name, running), name=f"fleet/instance/{name}")
        await self._wait_ready(name, running)
        return running.plane.upstream()

    async def _wait_ready(self, name: str, running: RunningPlane) -> None:
        assert running.task is not None
        waiter = asyncio.ensure_future(running.ready.wait())
        try:
            await asyncio.wait({waiter, running.task}, timeout=self.start_timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if running.ready.is_set() and not running.task.done():
            return
        if running.task.done() and not running.task.cancelled() and running.task.exception() is not None:
            raise PlaneError(f"control plane of instance {name!r} failed: {_root(running.task.exception())}")
        raise PlaneError(f"control plane of instance {name!r} not ready within {self.start_timeout:g}s")

    async def _serve(self, name: str, running: RunningPlane) -> None:
        self.data_dir(name).mkdir(parents=True, exist_ok=True, mode=0o700)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(running.plane.run(running.ready), name=f"fleet/{name}/apiserver")
            await running.ready.wait()
            running.client = admin_client(running.plane.upstream())
            log.info("instance %s serving at %s", name, running.plane.upstream().url)
            if self.workers is not None:
                tg.create_task(self.workers(name, running.client), name=f"fleet/{name}/controllers")

    async def stop(self, name: str, *, purge: bool = False) -> None:
        """Stop the instance (``purge``: and delete its data directory)."""
        running = self._planes.pop(name, None)
        if running is not None:
            if running.task is not None:
                running.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await running.task
            await self._close_client(running)
        if purge:
            shutil.rmtree(self.data_dir(name), ignore_errors=True)

    async def close(self) -> None:
        for name in list(self._planes):
            await self.stop(name)

    @staticmethod
    async def _close_client(running: RunningPlane) -> None:
        if running.client is not None:
            await running.client.close()
            running.client = None


def _root(exc: BaseException | None) -> BaseException | None:
    """The first leaf of a TaskGroup's exception group (the error worth reporting)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
