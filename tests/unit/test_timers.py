"""Timers on an injected clock: token expiry, periodic compaction, rate-limit buckets (no sleeping)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from atoll.api.clock import FakeClock
from atoll.apiserver.auth.tokens import LEEWAY, TokenIssuer
from atoll.store.compactor import CompactionSettings, Compactor
from tests.conftest import eventually

SA = {"metadata": {"name": "alice", "namespace": "alice", "uid": "u-1"}}


class _OneServiceAccount:
    """The watch cache as the token issuer reads it: one ServiceAccount."""

    def get(self, key: str) -> Any:
        return SimpleNamespace(obj=SA) if key == "/core/serviceaccounts/alice/alice" else None


def _issuer(tmp_path: Path, clock: FakeClock) -> TokenIssuer:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "sa.key"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return TokenIssuer(path, _OneServiceAccount(), clock=clock)  # type: ignore[arg-type]


def test_a_token_expires_on_the_servers_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    issuer = _issuer(tmp_path, clock)
    token, expires = issuer.issue(SA, [], 600)
    assert expires == int(clock.now()) + 600
    request: Any = None
    user = issuer.authenticate(request, token)
    assert user is not None and user.name == "system:serviceaccount:alice:alice"
    clock.advance(600 + LEEWAY - 1)
    assert issuer.authenticate(request, token) is not None
    clock.advance(2)  # past expiry and leeway: refused, even though the verification was cached
    assert issuer.authenticate(request, token) is None


class _CountingStore:
    def __init__(self) -> None:
        self.revision = 10
        self.compacted: list[int] = []

    async def current_revision(self) -> int:
        return self.revision

    async def compact(self, revision: int) -> int:
        self.compacted.append(revision)
        return revision


async def test_compaction_keeps_one_interval_of_history() -> None:
    clock, store, told = FakeClock(), _CountingStore(), []
    compactor = Compactor(store, CompactionSettings(interval=300), clock=clock, on_compacted=told.append)  # type: ignore[arg-type]
    task = asyncio.create_task(compactor.run())
    try:
        for current, expected in ((25, [10]), (40, [10, 25])):
            async def sleeping() -> None:
                assert clock.sleepers == 1

            await eventually(sleeping)
            assert store.compacted == expected[:-1]
            store.revision = current
            clock.advance(300)

            async def compacted(expected: list[int] = expected) -> None:
                assert store.compacted == expected

            await eventually(compacted)
        assert told == [10, 25]
    finally:
        task.cancel()
