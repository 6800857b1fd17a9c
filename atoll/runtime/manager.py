"""The manager: informers, controllers and leader election of one process, in one TaskGroup.

Start order: informers first (their caches fill even on standby replicas, so a new leader starts
warm), then — only while this replica leads, if leader election is configured — the controllers,
which each wait for their informers to sync before the first reconcile.

Stop order on cancellation: controllers stop taking keys and drain in-flight reconciles, then the
informers are cancelled. The controllers run in the TaskGroup's body, so they see the
cancellation (and finish draining) before the TaskGroup cancels the informer tasks. The first
crash of any part cancels the rest and propagates, so failures are loud.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from atoll.api.registry import ResourceDef
from atoll.client import Client
from atoll.runtime.controller import Controller
from atoll.runtime.informer import Informer, InformerFactory, WatchSettings
from atoll.runtime.leader import LeaderElector

log = logging.getLogger(__name__)


class Manager:
    """Owns shared informers, controllers and (optionally) a leader elector."""

    def __init__(
        self,
        client: Client,
        *,
        leader_election: LeaderElector | None = None,
        resync_period: float | None = None,
        settings: WatchSettings = WatchSettings(),
    ) -> None:
        self.client = client
        self.elector = leader_election
        self.informers = InformerFactory(client, resync_period=resync_period, settings=settings)
        self.controllers: list[Controller[Any]] = []
        self._running = False

    def informer(
        self,
        rd: ResourceDef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Informer:
        """The shared informer for this resource/namespace/selectors (create them before ``run``)."""
        if self._running:
            raise RuntimeError("informers must be created before Manager.run()")
        return self.informers.informer(
            rd, namespace, label_selector=label_selector, field_selector=field_selector
        )

    def add(self, controller: Controller[Any]) -> None:
        if self._running:
            raise RuntimeError("controllers must be added before Manager.run()")
        self.controllers.append(controller)

    async def run(self) -> None:
        """Run until cancelled (or until something crashes)."""
        self._running = True
        try:
            async with asyncio.TaskGroup() as tg:
                for informer in self.informers.informers:
                    tg.create_task(informer.run(), name=f"informer/{informer.rd.group_resource}")
                if self.elector is None:
                    await self._run_controllers()
                else:
                    await self.elector.run(self._run_controllers)
        finally:
            self._running = False

    async def _run_controllers(self) -> None:
        if not self.controllers:
            await asyncio.Event().wait()  # lead (or idle) until cancelled
        async with asyncio.TaskGroup() as tg:
            for controller in self.controllers:
                tg.create_task(controller.run(), name=f"controller/{controller.name}")
