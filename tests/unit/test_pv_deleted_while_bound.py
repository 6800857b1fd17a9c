"""A volume deleted right after its claim, before the pv-controller marked it ``Released`` (the
pooling syncer deletes a mirrored claim and its volume in one go): its ``Bound`` phase is brought up
to date and ``pv-protection`` released; it stays protected while its claim is still there."""

from __future__ import annotations

from typing import Any

from atoll.api.errors import NotFound
from atoll.api.storage import PV_PROTECTION
from atoll.controllers.persistentvolume.state import Volumes
from atoll.controllers.persistentvolume.volumes import sync_volume
from atoll.runtime import Cache

JSON = dict[str, Any]


class Client:
    def __init__(self, claim: JSON | None) -> None:
        self.claim = claim
        self.patches: list[JSON] = []

    async def get(self, rd: Any, name: str, namespace: str | None = None) -> JSON:
        if self.claim is None:
            raise NotFound(name)
        return self.claim

    async def patch(self, rd: Any, name: str, body: JSON, namespace: str | None = None, **kwargs: Any) -> JSON:
        self.patches.append(body)
        return body


def volumes(client: Client, claims: Cache) -> Volumes:
    empty = Cache
    return Volumes(client, claims, empty(), empty(), empty(), empty(), empty(), None)  # type: ignore[arg-type]


def deleting_bound_pv(phase: str = "Bound") -> JSON:
    return {
        "metadata": {
            "name": "pv-1",
            "resourceVersion": "7",
            "deletionTimestamp": "2026-01-01T00:00:00Z",
            "finalizers": [PV_PROTECTION],
        },
        "spec": {"claimRef": {"namespace": "w1", "name": "data", "uid": "u-1"}},
        "status": {"phase": phase},
    }


CLAIM = {"metadata": {"name": "data", "namespace": "w1", "uid": "u-1"}, "spec": {"volumeName": "pv-1"}}


async def test_claim_gone_marks_it_released_then_unprotects_it() -> None:
    client = Client(claim=None)
    await sync_volume(volumes(client, Cache()), deleting_bound_pv())
    assert client.patches == [{"status": {"phase": "Released"}}]
    await sync_volume(volumes(client, Cache()), deleting_bound_pv("Released"))  # the status event
    assert client.patches[-1] == {"metadata": {"finalizers": [], "resourceVersion": "7"}}


async def test_still_protected_while_its_claim_is_there() -> None:
    claims = Cache()
    claims.upsert(CLAIM)
    client = Client(claim=CLAIM)
    await sync_volume(volumes(client, claims), deleting_bound_pv())
    assert client.patches == []
    await sync_volume(volumes(client, Cache()), deleting_bound_pv())  # cache lags: the live read decides
    assert client.patches == []
