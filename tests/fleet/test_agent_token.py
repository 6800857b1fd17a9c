"""The Pull agent renews its own ServiceAccount token at 80 % of its life (injected clock)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import orjson

from atoll.api.clock import FakeClock
from atoll.client import Client
from atoll.fleet.karmada.agent import PullAgent, token_expiry
from tests.conftest import eventually


def jwt(issued: float, expires: float) -> str:
    def part(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(doc)).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part({'iat': int(issued), 'exp': int(expires)})}.c2ln"


class Instance(Client):
    """A client whose TokenRequests are answered locally (no server)."""

    def __init__(self, token: str, clock: FakeClock) -> None:
        super().__init__("https://127.0.0.1:1", token=token)
        self.clock = clock
        self.requests: list[tuple[str, str, Any]] = []

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:  # type: ignore[override]
        self.requests.append((method, path, kwargs.get("body")))
        now = self.clock.now()
        return {"status": {"token": jwt(now, now + 1000)}}


async def test_agent_renews_its_token_before_expiry() -> None:
    clock = FakeClock(start=1_000_000.0)
    first = jwt(clock.now(), clock.now() + 1000)
    instance = Instance(first, clock)
    member = Client("https://127.0.0.1:2")
    agent = PullAgent(instance, member, "edge", clock=clock, renew_token=True)
    loop = asyncio.create_task(agent._token_loop())
    try:
        await eventually(lambda: clock.sleepers == 1, 5)
        clock.advance(799)
        await asyncio.sleep(0)
        assert instance.requests == [], "not before 80 % of its life"
        clock.advance(1)

        def renewed() -> None:
            assert instance.token != first and len(instance.requests) == 1

        await eventually(renewed, 5)
        method, path, body = instance.requests[0]
        assert (method, path) == ("POST", "/api/v1/namespaces/karmada-cluster/serviceaccounts/karmada-agent-edge/token")
        assert body["spec"]["expirationSeconds"] == 48 * 3600
        assert token_expiry(instance.token or "") == clock.now() + 1000
        # and again 800 s after the renewal
        await eventually(lambda: clock.sleepers == 1, 5)
        clock.advance(800)
        await eventually(lambda: len(instance.requests) == 2, 5)
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        await instance.close()
        await member.close()


async def test_a_static_token_is_not_renewed() -> None:
    clock = FakeClock()
    instance = Instance("not-a-jwt", clock)
    member = Client("https://127.0.0.1:2")
    agent = PullAgent(instance, member, "edge", clock=clock, renew_token=True)
    await asyncio.wait_for(agent._token_loop(), 5)  # returns at once
    assert instance.requests == []
    await instance.close()
    await member.close()

