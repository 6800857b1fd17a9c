"""Informers started while running, one per resource kind discovered on demand (the resource
detector's templates, the members' applied objects). Each informer's events call ``on_event``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from typing import Any

from atoll.api.registry import ResourceDef
from atoll.client import Client
from atoll.runtime import Informer

JSON = dict[str, Any]
log = logging.getLogger(__name__)


class DynamicInformers:
    def __init__(self) -> None:
        self._informers: dict[Hashable, tuple[Informer, asyncio.Task[None]]] = {}

    def get(self, key: Hashable) -> Informer | None:
        found = self._informers.get(key)
        return found[0] if found is not None else None

    def ensure(
        self,
        key: Hashable,
        client: Client,
        rd: ResourceDef,
        on_event: Callable[[JSON], None],
        *,
        label_selector: str | None = None,
    ) -> Informer:
        found = self._informers.get(key)
        if found is not None and not found[1].done():
            return found[0]
        informer = Informer(client, rd, label_selector=label_selector)
        informer.add_handler(on_add=on_event, on_update=lambda _old, new: on_event(new), on_delete=on_event)
        task = asyncio.create_task(informer.run(), name=f"dynamic-informer/{key}")
        self._informers[key] = (informer, task)
        return informer

    async def stop(self, key: Hashable) -> None:
        found = self._informers.pop(key, None)
        if found is not None:
            found[1].cancel()
            await asyncio.gather(found[1], return_exceptions=True)

    def keys(self) -> list[Hashable]:
        return list(self._informers)

    def items(self) -> list[tuple[Hashable, Informer]]:
        return [(key, found[0]) for key, found in self._informers.items()]

    async def close(self) -> None:
        for key in list(self._informers):
            await self.stop(key)
