"""What is removed when a KusciaTask ends or is deleted (reference §2.5 "finish handlers").

* finished, succeeded — its pods, Services, egress Services and ConfigMaps;
* finished, failed — its Services and egress Services, and the pods that did not fail
  themselves: failed pods stay, with their logs, until the task (its job) is deleted;
* deleted — everything carrying its ``task-id`` annotation.

Objects are found in the informer caches (index ``task`` on the ``task-id`` annotation), so a
finished task that is reconciled again costs no API call once its objects are gone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from atoll.api import kinds
from atoll.api.errors import NotFound
from atoll.api.kuscia_tasks import ANNOTATION_TASK_ID, LABEL_TASK_UID
from atoll.api.registry import ResourceDef
from atoll.client import Client
from atoll.runtime import Cache

JSON = dict[str, Any]
log = logging.getLogger(__name__)
TASK_INDEX = "task"


def by_task(obj: JSON) -> Iterable[str]:
    task = ((obj.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_TASK_ID)
    return (str(task),) if task else ()


def ensure_task_index(cache: Cache) -> None:
    try:
        cache.add_index(TASK_INDEX, by_task)
    except ValueError:
        pass  # a shared cache already has it


class Cleanup:
    def __init__(self, client: Client, pods: Cache, services: Cache, configmaps: Cache) -> None:
        self.client = client
        self.pods, self.services, self.configmaps = pods, services, configmaps
        for cache in (pods, services, configmaps):
            ensure_task_index(cache)

    async def finished(self, task: JSON, *, succeeded: bool) -> None:
        name = str(task["metadata"]["name"])
        uid = str(task["metadata"].get("uid") or "")
        await self._delete(kinds.SERVICES, self._of(self.services, name, uid))
        pods = self._of(self.pods, name, uid)
        if not succeeded:
            pods = [p for p in pods if (p.get("status") or {}).get("phase") != "Failed"]
        else:
            await self._delete(kinds.CONFIGMAPS, self._of(self.configmaps, name, uid))
        await self._delete(kinds.PODS, pods)

    async def deleted(self, name: str) -> None:
        pairs = ((kinds.SERVICES, self.services), (kinds.PODS, self.pods), (kinds.CONFIGMAPS, self.configmaps))
        for rd, cache in pairs:
            await self._delete(rd, cache.by_index(TASK_INDEX, name))

    @staticmethod
    def _of(cache: Cache, name: str, uid: str) -> list[JSON]:
        """Objects of this incarnation of the task (a re-created task of the same name keeps its own)."""
        return [
            o for o in cache.by_index(TASK_INDEX, name)
            if ((o["metadata"].get("labels") or {}).get(LABEL_TASK_UID) or uid) == uid
            and not o["metadata"].get("deletionTimestamp")
        ]

    async def _delete(self, rd: ResourceDef, objects: list[JSON]) -> None:
        for obj in objects:
            meta = obj["metadata"]
            if meta.get("deletionTimestamp"):
                continue
            try:
                await self.client.delete(rd, str(meta["name"]), meta.get("namespace"), propagation_policy="Background")
            except NotFound:
                pass
