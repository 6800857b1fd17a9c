"""A syncer's start-up against the manager's concurrent status writes: the manager marks the binding
Ready right after starting the syncer, so the syncer's finalizer patch (optimistic, on the
resourceVersion it just read) can conflict. That race is retried, never a syncer failure (which
cost a restart after backoff and a ``SyncerReady=False`` flap; seen under CI load)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from atoll.api.errors import Conflict, NotFound
from atoll.pooling import constants as c
from atoll.pooling.syncer import CLAIM_ATTEMPTS, Syncer

JSON = dict[str, Any]


class Computing:
    """The binding on the computing cluster; the manager writes its status after each of the first
    ``races`` reads (between the syncer's GET and its PATCH)."""

    def __init__(self, races: int, *, deleting: bool = False) -> None:
        self.races = races
        self.patches = 0
        md: JSON = {"name": "cb", "resourceVersion": "1", "finalizers": [c.FINALIZER_MANAGER]}
        if deleting:
            md["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        self.binding: JSON = {"metadata": md, "spec": {"clusterID": "cls", "mountNamespace": "w1"}}

    def _write(self) -> None:
        md = self.binding["metadata"]
        md["resourceVersion"] = str(int(md["resourceVersion"]) + 1)

    async def get(self, rd: Any, name: str, namespace: str | None = None) -> JSON:
        if name != "cb":
            raise NotFound(name)
        seen = copy.deepcopy(self.binding)
        if self.races:
            self.races -= 1
            self.binding["status"] = {"phase": "Ready"}
            self._write()
        return seen

    async def patch(self, rd: Any, name: str, body: JSON, namespace: str | None = None) -> JSON:
        self.patches += 1
        md = self.binding["metadata"]
        if body["metadata"]["resourceVersion"] != md["resourceVersion"]:
            raise Conflict(f'Operation cannot be fulfilled on clusterbindings "{name}"')
        md["finalizers"] = body["metadata"]["finalizers"]
        self._write()
        return copy.deepcopy(self.binding)


class Worker:
    def __init__(self) -> None:
        self.namespaces: list[str] = []

    async def get_path(self, path: str) -> JSON:
        return {"gitVersion": "v1.32.0"}

    async def create(self, rd: Any, body: JSON, namespace: str | None = None) -> JSON:
        self.namespaces.append(body["metadata"]["name"])
        return body


def syncer(computing: Computing, worker: Worker, name: str = "cb") -> Syncer:
    return Syncer(name, computing, worker)  # type: ignore[arg-type]


async def test_a_status_write_between_read_and_patch_is_retried() -> None:
    computing, worker = Computing(races=2), Worker()
    binding = await syncer(computing, worker)._prepare()
    assert binding is not None
    assert binding["metadata"]["finalizers"] == [c.FINALIZER_MANAGER, c.FINALIZER_SYNCER]
    assert binding["status"] == {"phase": "Ready"}  # the manager's write is kept
    assert computing.patches == 3 and worker.namespaces == ["w1"]


async def test_a_conflict_that_never_ends_still_fails_the_syncer() -> None:
    computing = Computing(races=CLAIM_ATTEMPTS)
    with pytest.raises(Conflict):
        await syncer(computing, Worker())._prepare()
    assert computing.patches == CLAIM_ATTEMPTS


async def test_gone_or_drained_bindings_start_nothing() -> None:
    worker = Worker()
    assert await syncer(Computing(races=0), worker, "other")._prepare() is None
    assert await syncer(Computing(races=0, deleting=True), worker)._prepare() is None
    assert worker.namespaces == []


async def test_a_deleting_binding_we_hold_is_torn_down() -> None:
    computing = Computing(races=0, deleting=True)
    computing.binding["metadata"]["finalizers"].append(c.FINALIZER_SYNCER)
    binding = await syncer(computing, Worker())._prepare()
    assert binding is not None and computing.patches == 0
