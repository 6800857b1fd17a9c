"""The pooling manager's ClusterBinding status writes (``BindingReconciler._status``): a Conflict is
retried on the binding read afresh, a bounded number of times; a client that always conflicts
gets ``STATUS_ATTEMPTS`` writes, then a warning (the next reconcile retries), never a recursion
without end."""

from __future__ import annotations

import logging
from typing import Any, cast

import pytest

from atoll.api.clock import FakeClock
from atoll.api.errors import Conflict
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

    def __init__(self, conflicts: int) -> None:
        self.conflicts = conflicts
        self.updates: list[JSON] = []
        self.gets = 0

    async def update(self, rd: Any, obj: JSON, *, subresource: str | None = None) -> JSON:
        assert subresource == "status"
        self.updates.append(obj)
        if len(self.updates) <= self.conflicts:
            raise Conflict("the object has been modified")
        return obj

    async def get(self, rd: Any, name: str) -> JSON:
        self.gets += 1
        return binding(str(100 + self.gets))


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
