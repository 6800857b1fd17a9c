"""The ``gateway`` check's reasons, the lite's ``/readyz`` on its metrics port, and the
``gateway:`` line of ``atoll status`` (the real-Envoy case: tests/gateway/test_gateway_readiness.py)."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
import pytest

from atoll.apiserver.http.health import HealthChecks
from atoll.cli.status import gateway_line
from atoll.gateway.readiness import gateway_problem
from atoll.gateway.xds import LISTENER, ConfigRejected
from atoll.node.lite_metrics import metrics_endpoint
from tests.conftest import free_port

MESSAGE = "Error adding/updating listener(s) external: cannot bind '127.0.0.1:1080': Address already in use\n"


@dataclass
class Supervisor:
    pid: int | None = 1
    running: bool = True


@dataclass
class Reconciler:
    first_applied: bool = True
    rejected: ConfigRejected | None = None


def test_reasons() -> None:
    rejected = ConfigRejected(LISTENER, "7", MESSAGE + "egress-x: cannot bind '127.0.0.1:9000': Address already in use")
    assert gateway_problem(Supervisor(pid=None), Reconciler()) == "envoy is not running"
    assert "starting" in str(gateway_problem(Supervisor(running=False), Reconciler()))
    assert "first configuration" in str(gateway_problem(Supervisor(), None))
    assert "first configuration" in str(gateway_problem(Supervisor(), Reconciler(first_applied=False)))
    assert gateway_problem(Supervisor(), Reconciler()) is None
    for reason in (gateway_problem(Supervisor(), Reconciler(rejected=rejected)),
                   gateway_problem(Supervisor(), Reconciler(), rejected)):  # fmt: skip
        assert reason == (
            "envoy rejected Listener version 7: Error adding/updating listener(s) external: cannot "
            "bind '127.0.0.1:1080': Address already in use; egress-x: cannot bind '127.0.0.1:9000': "
            "Address already in use"
        )


@pytest.mark.asyncio
async def test_lite_readyz_on_the_metrics_port() -> None:
    problem: list[str | None] = ["cannot bind '127.0.0.1:1080'"]
    health = HealthChecks()
    health.add(lambda: [("gateway", problem[0])])
    port = free_port()
    async with metrics_endpoint(port, "alice", health), aiohttp.ClientSession() as session:

        async def get(path: str) -> tuple[int, str]:
            async with session.get(f"http://127.0.0.1:{port}{path}") as response:
                return response.status, await response.text()

        assert await get("/readyz/gateway") == (500, "internal server error: cannot bind '127.0.0.1:1080'\n")
        status, verbose = await get("/readyz?verbose")
        assert status == 500 and "[-]gateway failed: reason withheld\n" in verbose
        assert (await get("/readyz?exclude=gateway")) == (200, "ok")
        assert (await get("/livez")) == (200, "ok")
        problem[0] = None
        assert await get("/readyz") == (200, "ok")
        assert await get("/readyz/gateway") == (200, "ok")
        assert (await get("/readyz/nothing"))[0] == 404


def test_status_gateway_line() -> None:
    assert gateway_line(404, "no such health check: gateway\n") is None
    assert gateway_line(200, "ok") == "gateway:   serving"
    assert gateway_line(500, "internal server error: envoy is not running\n") == (
        "gateway:   NOT serving: envoy is not running"
    )
