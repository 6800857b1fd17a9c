"""Controller leader election across two ``atoll start`` masters on one PostgreSQL database.

Both replicas serve the API; only the holder of Lease ``kuscia-system/kuscia-controller-manager``
runs the controllers. Each replica's ``/metrics`` shows its own reconcile and write counters, which
is how the test tells the leader from the standby. After ``kill -9`` of the leader (no lease
release), the standby must take over within 20 s, reconcile a Domain created after the kill, and
finish every Domain created before it — none may be left half-done.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from pathlib import Path
from typing import Any, TypeVar

import pytest

from atoll.api import kinds
from atoll.client import Client
from tests.conftest import eventually, start_master_process
from tests.integration.servers import fresh_datastore, reaped

pytestmark = [pytest.mark.slow, pytest.mark.backend]
T = TypeVar("T")
TAKEOVER_BUDGET = 20.0
LEASE = "kuscia-controller-manager"
LEASES = kinds.LEASES


async def domain_reconciles(client: Client) -> float:
    """Reconciles of the domain controller in that replica's own process (its /metrics)."""
    text = str(await client.request("GET", "/metrics"))
    pattern = r'^controller_runtime_reconcile_total\{controller="domain",result="[a-z_]+"\} ([0-9.e+]+)$'
    return sum(float(v) for v in re.findall(pattern, text, re.M))


def domain(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "kuscia.secretflow/v1alpha1",
        "kind": "Domain",
        "metadata": {"name": name},
        "spec": {"resourceQuota": {"podMaxCount": 10}},
    }


async def assert_complete(client: Client, name: str) -> None:
    """Everything the domain controller owes one Domain."""
    ns = await client.get(kinds.NAMESPACES, name)
    assert ns["metadata"]["labels"].get("kuscia.secretflow/domain-name") == name, ns
    quota = await client.get(kinds.RESOURCEQUOTAS, "resource-limitation", name)
    assert quota.get("status", {}).get("hard") == {"pods": "10"}, quota
    await client.get(kinds.CONFIGMAPS, "domain-config", name)
    await client.get(kinds.SERVICEACCOUNTS, name, name)
    await client.get(kinds.ROLEBINDINGS, name, name)
    dom = await client.get(kinds.DOMAINS, name)
    assert dom["metadata"].get("labels", {}).get("kuscia.secretflow/domain-auth") == "completed", dom
    assert dom.get("status", {}).get("deployTokenStatuses"), dom


async def test_standby_takes_over_after_kill_9(tmp_path: Path) -> None:
    async with fresh_datastore("postgresql") as endpoint:
        with reaped([]) as procs:
            proc_a, server_a = await asyncio.to_thread(start_master_process, tmp_path / "a", datastore=endpoint)
            procs.append(proc_a)
            proc_b, server_b = await asyncio.to_thread(start_master_process, tmp_path / "b", datastore=endpoint)
            procs.append(proc_b)
            async with server_a.client() as a, server_b.client() as b:

                async def held() -> str:
                    holder = (await a.get(LEASES, LEASE, "kuscia-system"))["spec"].get("holderIdentity")
                    assert holder
                    return str(holder)

                holder = await eventually(held, 30)
                before = [f"pre-{i}" for i in range(10)]
                await asyncio.gather(*(a.create(kinds.DOMAINS, domain(n)) for n in before))
                for name in before:
                    await eventually(lambda name=name: assert_complete(b, name), 15)  # type: ignore[misc]

                # exactly one replica reconciles: the one whose process counts domain reconciles
                counts = {"a": await domain_reconciles(a), "b": await domain_reconciles(b)}
                leaders = [k for k, v in counts.items() if v > 0]
                assert len(leaders) == 1, counts
                leader_proc, survivor = (proc_a, b) if leaders == ["a"] else (proc_b, a)
                standby_count = counts["b" if leaders == ["a"] else "a"]
                assert standby_count == 0

                # a burst the leader is in the middle of when it dies
                during = [f"mid-{i}" for i in range(20)]
                await asyncio.gather(*(survivor.create(kinds.DOMAINS, domain(n)) for n in during))
                leader_proc.send_signal(signal.SIGKILL)
                leader_proc.wait()
                killed = time.monotonic()
                await survivor.create(kinds.DOMAINS, domain("after-kill"))

                async def new_holder() -> str:
                    spec = (await survivor.get(LEASES, LEASE, "kuscia-system"))["spec"]
                    assert spec.get("holderIdentity") not in (None, "", holder), spec
                    return str(spec["holderIdentity"])

                await eventually(new_holder, TAKEOVER_BUDGET + 5)
                took = time.monotonic() - killed
                assert took <= TAKEOVER_BUDGET, f"takeover took {took:.1f}s"
                await eventually(lambda: assert_complete(survivor, "after-kill"), TAKEOVER_BUDGET - took + 5)
                for name in [*before, *during]:
                    await eventually(lambda name=name: assert_complete(survivor, name), 15)  # type: ignore[misc]
                assert await domain_reconciles(survivor) > 0
                done = time.monotonic() - killed
                print(f"takeover after kill -9: {took:.1f}s; after-kill domain reconciled at {done:.1f}s")
