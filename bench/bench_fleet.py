"""Fleet (Kairship) benchmarks against real ``atoll start`` processes.

    .venv/bin/python bench/bench_fleet.py [--templates 500] [--idle-instances 4] [--idle-seconds 10]

One management master (the fleet manager only) and three member masters. Measures:

1. **Idle instances**: the management process's RSS and CPU before and after ``--idle-instances``
   extra instances are created and left idle for ``--idle-seconds``: RSS and CPU per instance.
2. **Propagation**: instance A (members 1+2) and B (member 3); a Duplicated PropagationPolicy; then
   ``--templates`` ConfigMaps created in A through the management proxy, ``--parallel`` at a time.
   Latency template created → present in every target member (watches on the members), p50/p99,
   and the management process's CPU seconds per propagated object.
3. **Status round trip**: member status change → template status (Deployment-shaped custom resource,
   as in tests/fleet), p50/p99 over ``--status-rounds``.
4. **Read path**: the search API listing every propagated object of every source vs the sum of
   direct LISTs on each source (ratio), and the management RSS growth per cached object (an
   upper bound: it includes the instances' own stores and watch caches).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from atoll.api import kinds  # noqa: E402
from atoll.api.registry import ResourceDef  # noqa: E402
from atoll.client import Client  # noqa: E402
from atoll.fleet.join import join_cluster  # noqa: E402
from atoll.fleet.karmada.members import flatten_kubeconfig  # noqa: E402
from atoll.fleet.kinds import (  # noqa: E402
    INSTANCES,
    PROPAGATION_POLICIES,
    RESOURCE_BINDINGS,
    RESOURCE_INTERPRETER_CUSTOMIZATIONS,
    WORKS,
)
from atoll.fleet.kubeconfigs import proxy_path  # noqa: E402
from atoll.node.kubeconfig import admin_kubeconfig, dump  # noqa: E402
from atoll.pki import ensure_pki  # noqa: E402
from bench._common import cpu_seconds, rss_mb, start_master  # noqa: E402

JSON = dict[str, Any]
SEARCH = "/apis/search.kairship.io/v1alpha1/resources"
APPS = "apps.fleet.bench"
DEPLOYMENTS = ResourceDef(APPS, "v1", "Deployment", "deployments", "deployment", True, subresources=("status",))
CRDS = kinds.kind("apiextensions.k8s.io", "customresourcedefinitions")


def start(data_dir: Path, controllers: str, extra: str = "") -> tuple[subprocess.Popen[bytes], Client, Path]:
    data_dir.mkdir(parents=True)
    proc, url = start_master(data_dir, controllers=controllers, extra=extra, seconds=60)
    ctx = ssl.create_default_context(cafile=str(data_dir / "pki" / "ca.crt"))
    token = (data_dir / "pki" / "admin.token").read_text().strip()
    kubeconfig = data_dir / "admin.kubeconfig"
    kubeconfig.write_text(dump(admin_kubeconfig(ensure_pki(data_dir / "pki"), url)))
    return proc, Client(url, ssl_context=ctx, token=token, pool_size=64, timeout=60), kubeconfig


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def instance(client: Client, name: str) -> None:
    await client.create(
        INSTANCES, {"apiVersion": "kairship.io/v1alpha1", "kind": "Instance", "metadata": {"name": name}, "spec": {}}
    )
    while True:  # polling: this measures nothing
        if ((await client.get(INSTANCES, name)).get("status") or {}).get("controlPlaneReady"):
            return
        await asyncio.sleep(0.1)


async def wait_ready_cluster(inst: Client, name: str) -> None:
    from atoll.fleet.kinds import CLUSTERS

    while True:
        conds = ((await inst.get(CLUSTERS, name)).get("status") or {}).get("conditions") or ()
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
            return
        await asyncio.sleep(0.2)


async def seen_in(member: Client, label: str, seen: dict[str, float], ready: asyncio.Event) -> None:
    key, value = label.split("=")
    listed = await member.list(kinds.CONFIGMAPS, "default")
    ready.set()
    async for kind, obj in member.watch(
        kinds.CONFIGMAPS, "default", resource_version=listed["metadata"]["resourceVersion"]
    ):
        if kind == "ADDED" and (obj["metadata"].get("labels") or {}).get(key) == value:
            seen.setdefault(obj["metadata"]["name"], time.monotonic())


async def seen_stage(inst: Client, rd: ResourceDef, suffix: str, seen: dict[str, float], ready: asyncio.Event) -> None:
    """When each template's binding (name ``<template><suffix>``) or last Work (``<template>-<hash>``)
    appeared in the instance."""
    listed = await inst.list(rd)
    ready.set()
    async for kind, obj in inst.watch(rd, resource_version=listed["metadata"]["resourceVersion"]):
        name = str(obj["metadata"]["name"])
        if kind != "ADDED" or not name.startswith("cm-"):
            continue
        template = name[: -len(suffix)] if suffix else name.rsplit("-", 1)[0]
        seen[template] = time.monotonic()  # the last one wins: every Work of the template


async def idle(mgmt: Client, pid: int, count: int, seconds: float) -> None:
    await asyncio.sleep(3)
    rss0, cpu0 = rss_mb(pid), cpu_seconds(pid)
    for i in range(count):
        await instance(mgmt, f"idle-{i}")
    await asyncio.sleep(2)
    rss1, cpu1 = rss_mb(pid), cpu_seconds(pid)
    await asyncio.sleep(seconds)
    cpu2 = cpu_seconds(pid)
    print(
        f"idle instances: {count}; RSS {rss0:.1f} -> {rss1:.1f} MB = {(rss1 - rss0) / count:.1f} MB/instance "
        f"(aim <= 40); idle CPU {100 * (cpu2 - cpu1) / seconds / count:.2f}%/instance over {seconds:g}s "
        f"(creation cost {(cpu1 - cpu0) / count:.2f} CPU-s/instance)"
    )


async def propagation(
    a: Client,
    members: list[Client],
    pid: int,
    templates: int,
    parallel: int,
    closed_loop: bool,
    stages_wanted: bool = False,
) -> float:
    await a.create(
        PROPAGATION_POLICIES,
        {
            "apiVersion": "policy.karmada.io/v1alpha1",
            "kind": "PropagationPolicy",
            "metadata": {"name": "bench", "namespace": "default"},
            "spec": {
                "resourceSelectors": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "labelSelector": {"matchLabels": {"bench": "yes"}}}
                ],
                "placement": {
                    "clusterAffinity": {"clusterNames": ["member1", "member2"]},
                    "replicaScheduling": {"replicaSchedulingType": "Duplicated"},
                },
            },
        },
    )
    seen: list[dict[str, float]] = [{} for _ in members]
    readies = [asyncio.Event() for _ in members]
    watchers = [
        asyncio.create_task(seen_in(m, "bench=yes", s, r)) for m, s, r in zip(members, seen, readies, strict=True)
    ]
    # the pipeline's stages as the instance shows them: binding created, each Work created
    stage_seen: dict[str, dict[str, float]] = {"binding": {}, "works": {}}
    stage_ready = [asyncio.Event(), asyncio.Event()]
    if stages_wanted:  # two more watches through the management proxy: they cost it CPU
        watchers += [
            asyncio.create_task(seen_stage(a, RESOURCE_BINDINGS, "-configmap", stage_seen["binding"], stage_ready[0])),
            asyncio.create_task(seen_stage(a, WORKS, "", stage_seen["works"], stage_ready[1])),
        ]
    else:
        for r in stage_ready:
            r.set()
    for r in (*readies, *stage_ready):
        await r.wait()
    created: dict[str, float] = {}
    sem = asyncio.Semaphore(parallel)
    cpu0 = cpu_seconds(pid)

    async def one(i: int) -> None:
        name = f"cm-{i:05d}"
        async with sem:
            created[name] = time.monotonic()
            await a.create(
                kinds.CONFIGMAPS,
                {"metadata": {"name": name, "labels": {"bench": "yes"}}, "data": {"i": str(i)}},
                "default",
            )
            while closed_loop:  # the next one only once this one arrived everywhere (5 ms polls)
                if all(name in s for s in seen):
                    break
                await asyncio.sleep(0.005)

    started = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(templates)))
    while any(len(s) < templates for s in seen):
        await asyncio.sleep(0.05)
        if time.monotonic() - started > 600:
            raise SystemExit(f"propagation incomplete: {[len(s) for s in seen]}")
    elapsed = time.monotonic() - started
    cpu = cpu_seconds(pid) - cpu0
    lat = [max(s[n] for s in seen) - t for n, t in created.items()]
    if os.environ.get("BENCH_FLEET_DEBUG"):
        for n, t in sorted(created.items()):
            print(n, " ".join(f"{1000 * (s[n] - t):.0f}" for s in seen))
    for w in watchers:
        w.cancel()
    stages = [
        (n, stage_seen["binding"].get(n), stage_seen["works"].get(n), max(s[n] for s in seen))
        for n in created
        if n in stage_seen["binding"] and n in stage_seen["works"]
    ]
    if stages:
        parts = {
            "template -> binding (detector+scheduler)": [b - created[n] for n, b, _w, _m in stages if b],
            "binding -> last Work (binding controller)": [w - b for _n, b, w, _m in stages if b and w],
            "last Work -> in every member (execution)": [m - w for _n, _b, w, m in stages if w],
        }
        for label, values in parts.items():
            print(f"  stage {label}: p50 {1000 * pct(values, 0.5):.0f} ms, p99 {1000 * pct(values, 0.99):.0f} ms")
    mode = f"closed loop, {parallel} writers" if closed_loop else f"open loop, {parallel} in flight"
    print(
        f"propagation ({mode}): {templates} templates x {len(members)} members in {elapsed:.1f}s "
        f"({templates / elapsed:.0f}/s); created -> in every member p50 {1000 * pct(lat, 0.5):.0f} ms, "
        f"p99 {1000 * pct(lat, 0.99):.0f} ms (Karmada v1.3 push p99 1298 ms on 64 cores; aim <= 500 ms); "
        f"management CPU {1000 * cpu / (templates * len(members)):.1f} ms per propagated object"
    )
    return elapsed


async def status_round_trip(a: Client, members: list[Client], rounds: int) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"deployments.{APPS}"},
        "spec": {
            "group": APPS,
            "scope": "Namespaced",
            "names": {
                "kind": "Deployment",
                "plural": "deployments",
                "singular": "deployment",
                "listKind": "DeploymentList",
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
    }
    for c in (a, *members):
        await c.create(CRDS, crd)
    # a custom kind gets its template status from a ResourceInterpreterCustomization (as in Karmada)
    await a.create(
        RESOURCE_INTERPRETER_CUSTOMIZATIONS,
        {
            "apiVersion": "config.karmada.io/v1alpha1",
            "kind": "ResourceInterpreterCustomization",
            "metadata": {"name": "bench-deployments"},
            "spec": {
                "target": {"apiVersion": f"{APPS}/v1", "kind": "Deployment"},
                "customizations": {
                    "statusAggregation": {
                        "luaScript": (
                            "function AggregateStatus(desired, items)\n"
                            "  local s = {replicas = 0, readyReplicas = 0, availableReplicas = 0}\n"
                            "  for i = 1, #items do\n"
                            "    for k, _ in pairs(s) do s[k] = s[k] + (items[i].status[k] or 0) end\n"
                            "  end\n"
                            "  desired.status = s\n"
                            "  return desired\n"
                            "end"
                        )
                    }
                },
            },
        },
    )
    await asyncio.sleep(2)
    for c in (a, *members):
        c.invalidate_discovery()
    await a.create(
        PROPAGATION_POLICIES,
        {
            "apiVersion": "policy.karmada.io/v1alpha1",
            "kind": "PropagationPolicy",
            "metadata": {"name": "apps", "namespace": "default"},
            "spec": {
                "resourceSelectors": [{"apiVersion": f"{APPS}/v1", "kind": "Deployment"}],
                "placement": {
                    "clusterAffinity": {"clusterNames": ["member1"]},
                    "replicaScheduling": {"replicaSchedulingType": "Duplicated"},
                },
            },
        },
    )
    await a.create(
        DEPLOYMENTS,
        {
            "apiVersion": f"{APPS}/v1",
            "kind": "Deployment",
            "metadata": {"name": "rt", "namespace": "default"},
            "spec": {"replicas": 1},
        },
        "default",
    )
    member = members[0]
    deadline = time.monotonic() + 60
    while True:
        try:
            await member.get(DEPLOYMENTS, "rt", "default")
            break
        except Exception:
            if time.monotonic() > deadline:
                print("status round trip: skipped, the template never reached member1 within 60 s")
                return
            await asyncio.sleep(0.1)
    times = []
    for i in range(1, rounds + 1):
        started = time.monotonic()
        await member.patch(
            DEPLOYMENTS,
            "rt",
            {"status": {"replicas": 1, "readyReplicas": i % 2, "availableReplicas": i}},
            "default",
            subresource="status",
        )
        deadline = time.monotonic() + 30
        while True:  # 10 ms polls of the template: within the measured p50's resolution
            status = (await a.get(DEPLOYMENTS, "rt", "default")).get("status") or {}
            if status.get("availableReplicas") == i:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"status round trip: the template did not show round {i} within 30 s")
            await asyncio.sleep(0.01)
        times.append(time.monotonic() - started)
    print(
        f"status round trip (member status -> template status): p50 {1000 * pct(times, 0.5):.0f} ms, "
        f"p99 {1000 * pct(times, 0.99):.0f} ms over {rounds}"
    )


async def read_path(mgmt: Client, sources: list[tuple[str, Client, str | None]], pid: int, rss_before: float) -> None:
    direct_total, started = 0, time.monotonic()
    for _name, client, label in sources:
        listed = await client.list(kinds.CONFIGMAPS, label_selector=label)
        direct_total += len(listed["items"])
    direct = time.monotonic() - started
    started = time.monotonic()
    found = await mgmt.request("GET", SEARCH, params={"kind": "ConfigMap", "labelSelector": "bench=yes"})
    searched = time.monotonic() - started
    objects = len(found["items"])
    rss = rss_mb(pid)
    print(
        f"read path: search API {objects} objects in {1000 * searched:.0f} ms vs sum of direct LISTs "
        f"({direct_total} objects over {len(sources)} sources) {1000 * direct:.0f} ms: ratio {searched / direct:.2f}; "
        f"management RSS growth {1024 * (rss - rss_before) / max(1, objects):.1f} KB per cached object (upper bound)"
    )


async def run(args: argparse.Namespace, root: Path) -> None:
    extra = "fleet:\n  clusterStatusPeriod: 5\n  statisticsPeriod: 5\n"
    procs = []
    try:
        mproc, mgmt, _ = start(root / "management", "fleet", extra)
        procs.append(mproc)
        members, kubeconfigs = [], []
        for i in (1, 2, 3):
            proc, client, kubeconfig = start(root / f"member{i}", "namespace")
            procs.append(proc)
            members.append(client)
            kubeconfigs.append(kubeconfig)
        rss_before = rss_mb(mproc.pid)
        await idle(mgmt, mproc.pid, args.idle_instances, args.idle_seconds)
        await instance(mgmt, "a")
        await instance(mgmt, "b")
        a, b = mgmt.under_path(proxy_path("a")), mgmt.under_path(proxy_path("b"))
        for inst, i in ((a, 0), (a, 1), (b, 2)):
            await join_cluster(inst, f"member{i + 1}", flatten_kubeconfig(kubeconfigs[i]))
        for inst, i in ((a, 0), (a, 1), (b, 2)):
            await wait_ready_cluster(inst, f"member{i + 1}")
        rss_before = rss_mb(mproc.pid)
        await propagation(a, members[:2], mproc.pid, args.templates, args.parallel, args.closed_loop, args.stages)
        await status_round_trip(a, members[:1], args.status_rounds)
        await read_path(
            mgmt,
            [
                ("a", a, "bench=yes"),
                ("member1", members[0], "bench=yes"),
                ("member2", members[1], "bench=yes"),
                ("b", b, "bench=yes"),
                ("member3", members[2], "bench=yes"),
            ],
            mproc.pid,
            rss_before,
        )
        for c in (a, b, mgmt, *members):
            await c.close()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--templates", type=int, default=500)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument(
        "--closed-loop",
        action="store_true",
        help="Each of --parallel writers waits for its template to arrive before the next.",
    )
    parser.add_argument(
        "--stages",
        action="store_true",
        help="Also time the pipeline's stages (binding, Works) by watching the instance (perturbs the run).",
    )
    parser.add_argument("--idle-instances", type=int, default=4)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--status-rounds", type=int, default=20)
    parser.add_argument(
        "--keep", type=Path, default=None, help="Keep the data (and server logs) in this new directory."
    )
    args = parser.parse_args()
    if args.keep is not None:
        asyncio.run(run(args, args.keep))
        return
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
