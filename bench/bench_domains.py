"""Domain controller benchmark: N Domains applied at once against a real ``atoll start`` master.

    .venv/bin/python bench/bench_domains.py [--domains 1000] [--concurrency 100] [--keep DIR]

All Domains are created concurrently (``--concurrency`` requests in flight); the clock stops when
every one has reached its full desired state: namespace labelled ``kuscia.secretflow/domain-name``,
ResourceQuota ``resource-limitation`` with ``status.hard`` filled in by the quota controller,
ServiceAccount and RoleBinding, the Domain labelled ``domain-auth=completed`` with a deploy token.
Progress is measured with label-selected LISTs (served from the watch cache). Counters come from
the master's own ``/metrics``: reconciles (``controller_runtime_reconcile_total``) and API writes
issued by the controllers (``controller_writes_total``). Prints seconds, reconciles/s and the
reconcile : write ratio, and the writes per Domain against the minimum the spec needs.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from atoll.api import kinds  # noqa: E402
from atoll.client import Client  # noqa: E402
from bench._common import run_in_data_dir, start_master  # noqa: E402

MIN_WRITES_PER_DOMAIN = 9
"""namespace, service account, role binding, config map, default data source, quota (creates); domain-auth label
(patch); Domain status (deploy token); quota status (the quota controller)."""


def domain(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "kuscia.secretflow/v1alpha1",
        "kind": "Domain",
        "metadata": {"name": name},
        "spec": {"role": "", "resourceQuota": {"podMaxCount": 100}},
    }


async def metric(client: Client, name: str, controller: str) -> float:
    text = str(await client.request("GET", "/metrics"))
    pattern = rf'^{name}\{{controller="{controller}",[a-z]+="[a-z_]+"\}} ([0-9.e+]+)$'
    return sum(float(v) for v in re.findall(pattern, text, re.M))


async def progress(client: Client, names: set[str]) -> dict[str, int]:
    """How many of ``names`` have each part of their desired state."""
    sel = "kuscia.secretflow/domain-name"
    namespaces, _ = await client.list_all(kinds.NAMESPACES, label_selector=sel, page_size=None)
    quotas, _ = await client.list_all(kinds.RESOURCEQUOTAS, label_selector=sel, page_size=None)
    accounts, _ = await client.list_all(kinds.SERVICEACCOUNTS, label_selector=sel, page_size=None)
    bindings, _ = await client.list_all(kinds.ROLEBINDINGS, label_selector=sel, page_size=None)
    domains, _ = await client.list_all(
        kinds.DOMAINS, label_selector="kuscia.secretflow/domain-auth=completed", page_size=None
    )

    def count(objs: list[dict[str, Any]], ok: Any = lambda o: True) -> int:
        return len(
            {
                o["metadata"]["name"] if not o["metadata"].get("namespace") else o["metadata"]["namespace"]
                for o in objs
                if ok(o)
            }
            & names
        )

    return {
        "namespace": count(namespaces),
        "quota": count(quotas, lambda q: (q.get("status") or {}).get("hard") == {"pods": "100"}),
        "serviceaccount": count(accounts),
        "rolebinding": count(bindings),
        "domain": count(domains, lambda d: bool((d.get("status") or {}).get("deployTokenStatuses"))),
    }


async def run(args: argparse.Namespace, data_dir: Path) -> None:
    proc, url = start_master(data_dir)
    try:
        ctx = ssl.create_default_context(cafile=str(data_dir / "pki" / "ca.crt"))
        token = (data_dir / "pki" / "admin.token").read_text().strip()
        async with Client(url, ssl_context=ctx, token=token, pool_size=args.concurrency) as client:
            await asyncio.sleep(2)  # let the controller manager win its lease and sync its informers
            base = {
                "reconciles": await metric(client, "controller_runtime_reconcile_total", "domain"),
                "writes": await metric(client, "controller_writes_total", "domain"),
                "quota_writes": await metric(client, "controller_writes_total", "resourcequota"),
            }
            names = {f"bench-{i:05d}" for i in range(args.domains)}
            limit = asyncio.Semaphore(args.concurrency)

            async def create(name: str) -> None:
                async with limit:
                    await client.create(kinds.DOMAINS, domain(name))

            started = time.monotonic()
            await asyncio.gather(*(create(n) for n in sorted(names)))
            created = time.monotonic() - started
            while True:
                state = await progress(client, names)
                if all(v == len(names) for v in state.values()):
                    break
                if time.monotonic() - started > args.timeout:
                    raise SystemExit(f"not converged after {args.timeout:.0f}s: {state}")
                await asyncio.sleep(0.25)
            elapsed = time.monotonic() - started
            reconciles = await metric(client, "controller_runtime_reconcile_total", "domain") - base["reconciles"]
            writes = await metric(client, "controller_writes_total", "domain") - base["writes"]
            quota_writes = await metric(client, "controller_writes_total", "resourcequota") - base["quota_writes"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    n = len(names)
    total_writes = writes + quota_writes
    print(f"domains                       {n}")
    print(f"creates sent (client)         {created:8.2f} s  ({n / created:7.1f} creates/s)")
    print(f"all converged after           {elapsed:8.2f} s  ({n / elapsed:7.1f} domains/s)")
    print(
        f"domain reconciles             {reconciles:8.0f}    ({reconciles / elapsed:7.1f} reconciles/s, "
        f"{reconciles / n:.2f} per domain)"
    )
    print(
        f"controller writes             {total_writes:8.0f}    (domain {writes:.0f} + quota status {quota_writes:.0f}; "
        f"{total_writes / n:.2f} per domain, minimum {MIN_WRITES_PER_DOMAIN})"
    )
    print(f"reconciles : writes           {reconciles / max(writes, 1):8.2f}    (domain controller only)")
    print(f"writes / minimum              {total_writes / (MIN_WRITES_PER_DOMAIN * n):8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--keep", type=Path, help="keep the master's data dir here")
    args = parser.parse_args()
    run_in_data_dir(args.keep, "atoll-bench-domains-", lambda data_dir: run(args, data_dir))


if __name__ == "__main__":
    main()
