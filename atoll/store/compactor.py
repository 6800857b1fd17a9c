"""When the store forgets history: periodic compaction, a policy the store owns (as kine does).

kube-apiserver's policy with etcd: every ``interval``, compact to the revision that was current
one interval ago, so at least one interval of history stays available to watches and continue
tokens that resume from a recent resourceVersion. A failed compaction is logged and retried at
the next tick; the next tick compacts further anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.store.base import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CompactionSettings:
    interval: float = 300.0
    """Seconds between compactions, and the history at least kept (kube-apiserver's
    ``--etcd-compaction-interval`` default, 5 min)."""


class Compactor:
    """Compacts ``store`` every interval to the revision seen one interval before; tells
    ``on_compacted`` (e.g. the watch cache) each revision it compacted to."""

    def __init__(
        self,
        store: Store,
        settings: CompactionSettings | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        on_compacted: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or CompactionSettings()
        self.clock = clock
        self.on_compacted = on_compacted

    async def compact(self, revision: int) -> None:
        """Compact to ``revision`` now."""
        await self.store.compact(revision)
        if self.on_compacted is not None:
            self.on_compacted(revision)

    async def run(self) -> None:
        """Compact periodically until cancelled."""
        previous = await self.store.current_revision()
        while True:
            await self.clock.sleep(self.settings.interval)
            current = await self.store.current_revision()
            if previous > 0:
                try:
                    await self.compact(previous)
                except Exception:
                    log.exception("compaction to revision %d failed", previous)
            previous = current
