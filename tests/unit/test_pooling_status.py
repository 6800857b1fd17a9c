"""The pooling manager's ClusterBinding status writes (``BindingReconciler._status``): a Conflict is
retried on the binding read afresh, a bounded number of times; a client that always conflicts
gets ``STATUS_ATTEMPTS`` writes, then a warning (the next reconcile retries), never a recursion
without end."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

import pytest

from atoll.api.clock import FakeClock
from atoll.api.errors import Conflict, NotFound
from atoll.client import Client
from atoll.pooling import constants as c
from atoll.pooling.manager import STATUS_ATTEMPTS, BindingReconciler, ManagerSettings
from atoll.pooling.supervisor import SyncerPool
from atoll.runtime import Cache

JSON = dict[str, Any]


def binding(rv: str) -> JSON:
    return {"apiVersion": "cloud.tencent.com/v1beta1", "kind": "ClusterBinding",
            "metadata": {"name": "b", "resourceVersion": rv, "generation": 1}, "spec": {},
            "status": {"phase": c.PHASE_READY, "conditions": []}}


class Conflicting:
    """A client whose status updates conflict the first ``conflicts`` times; reads give a newer
    binding each time."""

    def __init__(self, conflicts: int, fresh: Callable[[int], JSON] | None = None) -> None:
        self.conflicts = conflicts
        self.updates: list[JSON] = []
        self.gets = 0
        self.fresh = fresh or (lambda n: binding(str(100 + n)))

    async def update(self, rd: Any, obj: JSON, *, subresource: str | None = None) -> JSON:
        assert subresource == "status"
        self.updates.append(obj)
        if len(self.updates) <= self.conflicts:
            raise Conflict("the object has been modified")
        return obj

    async def get(self, rd: Any, name: str) -> JSON:
        self.gets += 1
        return self.fresh(self.gets)


async def report(client: Conflicting) -> None:
    cache = Cache()
    cache.upsert(binding("1"))
    pool = SyncerPool(lambda *_: None, clock=FakeClock())  # type: ignore[arg-type,return-value]
    reconciler = BindingReconciler(cast(Client, client), cache, pool, ManagerSettings(), clock=FakeClock())
    await reconciler.report("b", False, "worker unreachable")


async def test_a_conflict_is_retried_on_a_fresh_read() -> None:
    client = Conflicting(conflicts=2)
    await report(client)
    assert client.gets == 2 and len(client.updates) == 3
    assert [u["metadata"]["resourceVersion"] for u in client.updates] == ["1", "101", "102"]
    (cond,) = client.updates[-1]["status"]["conditions"]
    assert (cond["type"], cond["status"], cond["message"]) == (c.COND_SYNCER_READY, "False", "worker unreachable")


async def test_a_client_that_always_conflicts_gets_a_bounded_number_of_writes(caplog: pytest.LogCaptureFixture) -> None:
    client = Conflicting(conflicts=10**6)
    with caplog.at_level(logging.WARNING, "atoll.pooling.manager"):
        await report(client)
    assert len(client.updates) == STATUS_ATTEMPTS and client.gets == STATUS_ATTEMPTS - 1
    assert f"{STATUS_ATTEMPTS} conflicts in a row" in caplog.text


def failed(rv: str, generation: int = 1) -> JSON:
    """The binding as another writer left it: Failed, unreachable."""
    doc = binding(rv)
    doc["metadata"]["generation"] = generation
    doc["status"]["phase"] = c.PHASE_FAILED
    return doc


async def test_a_syncer_report_keeps_the_phase_another_writer_set_meanwhile() -> None:
    """The report's phase came from the cached binding (Ready); the write that conflicted set Failed:
    the retry writes the SyncerReady condition and keeps Failed."""
    client = Conflicting(conflicts=1, fresh=lambda n: failed(str(100 + n)))
    await report(client)
    assert len(client.updates) == 2
    assert client.updates[-1]["status"]["phase"] == c.PHASE_FAILED


async def test_a_newer_generation_is_not_stamped_with_conditions_of_the_older_one() -> None:
    """A spec edit caused the conflict: its own reconcile writes the status; the retry does not claim
    conditions worked out for generation 1 hold for generation 2."""
    client = Conflicting(conflicts=1, fresh=lambda n: failed(str(100 + n), generation=2))
    await report(client)
    assert len(client.updates) == 1 and client.gets == 1


async def test_a_binding_deleted_after_a_conflict_ends_the_retries_quietly() -> None:
    def gone(_n: int) -> JSON:
        raise NotFound("clusterbindings.cloud.tencent.com \"b\" not found")

    client = Conflicting(conflicts=1, fresh=gone)
    await report(client)
    assert len(client.updates) == 1 and client.gets == 1
