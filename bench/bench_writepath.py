"""In-process write-path benchmark: CPU per create / update / status update / no-op update, and the
writes of a pod lifecycle as an agent makes them.

    .venv/bin/python bench/bench_writepath.py [--n 2000] [--profile PHASE|all] [--only basic|lifecycle]

Drives ``ResourceStorage`` of a real ``APIServer`` (SQLite store, watch cache, full admission chain)
with 32 concurrent writers, no HTTP and no TLS, and reports process CPU per operation (the SQLite
writer thread included; "(loop)": the event loop thread alone, "(gc)": collector pauses). This
isolates what the API server itself spends per write from the transport (``bench_apiserver.py``
measures end to end over HTTPS). ``--profile`` prints the top of a cProfile of the chosen phase
(cumulative and own time).

Objects: ConfigMaps like ``bench_apiserver.py``'s (256-byte payload) and Pods with one container
(``status`` updates write a Pod's ``status`` subresource, as a kubelet does). The lifecycle phases
write what ``bench_pods.py`` makes the master do per pod: a pre-bound pod create (``lc_create``), the
agent's two ``PUT …/status`` (``agent_running``, ``agent_succeeded``: the body the agent sends —
name, namespace, uid and a status built by the agent's own ``pod_status``), its ``Started`` Event
(``event_create``) and the delete (``pod_delete``).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import pstats
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from atoll.agent.runp.sandbox import ContainerRecord, SandboxState  # noqa: E402
from atoll.agent.runp.status import pod_status  # noqa: E402
from atoll.api.builtins import BUILTINS  # noqa: E402
from atoll.apiserver.app import APIServer, ServerConfig  # noqa: E402
from atoll.apiserver.cache import gcpolicy  # noqa: E402
from atoll.apiserver.registry.storage import WriteOptions  # noqa: E402
from atoll.store.sqlite import SQLiteStore  # noqa: E402

JSON = dict[str, Any]
CONCURRENCY = 32
TARGETS_US = {"create": 250.0, "update": 200.0, "status": 200.0, "noop": 50.0}


def _rd(plural: str) -> Any:
    return next(r for r in BUILTINS if r.plural == plural and r.group == "")


CM, NS, PODS, EVENTS = _rd("configmaps"), _rd("namespaces"), _rd("pods"), _rd("events")


OWNED = [True]
"""Bodies are the server's own, as an HTTP request's decoded body (``--not-owned``: as an
in-process caller's, which the watch cache must decode from the stored row)."""


def _opts(manager: str = "bench") -> WriteOptions:
    return WriteOptions(field_manager=manager, field_validation="Strict", owned=OWNED[0])


def _cm(i: int, value: str = "x") -> JSON:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c-{i}", "labels": {"app": "bench"}},
            "data": {"payload": value * 256}}


def _pod(i: int) -> JSON:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p-{i}", "labels": {"app": "bench"}},
            "spec": {"containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"],
                                     "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                                     "ports": [{"containerPort": 8080, "protocol": "TCP"}]}],
                     "restartPolicy": "Never"}}


def _pod_status(i: int, phase: str) -> JSON:
    return {"phase": phase, "podIP": f"10.0.{i // 250}.{i % 250 + 1}", "hostIP": "10.1.0.1",
            "startTime": "2026-01-01T00:00:00Z",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:01Z"}],
            "containerStatuses": [{"name": "main", "ready": True, "restartCount": 0, "image": "busybox:1.36",
                                   "imageID": "", "containerID": f"runk://{i}",
                                   "state": {"running": {"startedAt": "2026-01-01T00:00:01Z"}}}]}


def _bound_pod(i: int) -> JSON:
    """The pod ``bench_pods.py`` creates: bound to a node, one container."""
    return {"metadata": {"name": f"lc-{i}", "namespace": "ns"},
            "spec": {"nodeName": "bench-node", "restartPolicy": "Never", "containers": [{
                "name": "main", "image": "bench:v1", "command": ["sh", "-c", f"sleep 1; date > /tmp/{i}"]}]}}


def _agent_body(pod: JSON, phase: str) -> JSON:
    """The ``PUT …/status`` body an agent sends for ``pod`` in ``phase`` (Running or Succeeded)."""
    md = pod["metadata"]
    rec = ContainerRecord(name="main", image="bench:v1", attempt=0, state="running",
                          started_at="2026-01-01T00:00:01Z", ready=True, started=True)
    if phase == "Succeeded":
        rec.state, rec.ready, rec.done = "terminated", False, True
        rec.terminated = {"exitCode": 0, "reason": "Completed", "startedAt": "2026-01-01T00:00:01Z",
                          "finishedAt": "2026-01-01T00:00:02Z", "containerID": rec.container_id(md["uid"])}
    state = SandboxState(uid=md["uid"], namespace=md["namespace"], name=md["name"],
                         start_time="2026-01-01T00:00:00Z", containers={"main": rec})
    status = pod_status(pod, state, "10.1.0.1")
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": md["name"], "namespace": md["namespace"], "uid": md["uid"]}, "status": status}


def _event(pod: JSON, i: int) -> JSON:
    """The ``Started`` Event an agent records (``atoll.agent.events``)."""
    md = pod["metadata"]
    now = "2026-01-01T00:00:01Z"
    return {"metadata": {"name": f"{md['name']}.{i:016x}", "namespace": md["namespace"]},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": md["namespace"], "name": md["name"],
                               "uid": md["uid"], "fieldPath": "spec.containers{main}"},
            "reason": "Started", "message": "Started container main", "type": "Normal",
            "source": {"component": "kubelet", "host": "bench-node"}, "firstTimestamp": now,
            "lastTimestamp": now, "count": 1, "reportingComponent": "kubelet", "reportingInstance": "bench-node"}


async def _run(n: int, op: Callable[[int], Awaitable[Any]]) -> float:
    """CPU seconds of ``op(0..n-1)`` run by ``CONCURRENCY`` workers."""
    next_i = 0

    async def worker() -> None:
        nonlocal next_i
        while next_i < n:
            i = next_i
            next_i += 1
            await op(i)

    cpu, loop_cpu, gc_before = time.process_time(), time.thread_time(), _gc_seconds[0]
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    _gc_seconds[1] = _gc_seconds[0] - gc_before
    _loop_seconds[0] = time.thread_time() - loop_cpu
    return time.process_time() - cpu


_gc_seconds = [0.0, 0.0]  # total, last phase
_loop_seconds = [0.0]  # the event loop thread's CPU in the last phase (the rest: the SQLite threads)
_gc_started = [0.0]
_gc_pauses: list[tuple[float, int]] = []


def _gc_timer(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _gc_started[0] = time.perf_counter()
    else:
        pause = time.perf_counter() - _gc_started[0]
        _gc_seconds[0] += pause
        _gc_pauses.append((pause, info["generation"]))


GROUPS = {"basic": ("create", "update", "noop", "pod_create", "status"),
          "lifecycle": ("lc_create", "agent_running", "event_create", "agent_succeeded", "pod_delete")}
"""Phases that run together (each depends on the objects the previous ones wrote)."""


async def bench(directory: Path, n: int, profile: str, gc_policy: bool, only: str = "") -> dict[str, float]:
    store = SQLiteStore(directory / "state.db")
    await store.start()
    srv = APIServer(store, ServerConfig())
    task = asyncio.create_task(srv.cache.run())
    await srv.cache.wait_ready()
    policy = asyncio.create_task(gcpolicy.run()) if gc_policy else None  # as APIServer.run does
    objs = srv.objects
    await objs.create(NS, None, {"metadata": {"name": "ns"}}, _opts())

    async def create(i: int) -> None:
        await objs.create(CM, "ns", _cm(i), _opts())

    async def update(i: int) -> None:
        await objs.update(CM, "ns", f"c-{i}", _cm(i, "y"), _opts())

    async def noop(i: int) -> None:
        await objs.update(CM, "ns", f"c-{i}", _cm(i, "y"), _opts())

    async def pod_create(i: int) -> None:
        await objs.create(PODS, "ns", _pod(i), _opts())

    async def status(i: int) -> None:
        body = {**objs.get(PODS, "ns", f"p-{i}").obj, "status": _pod_status(i, "Running")}
        await objs.update(PODS, "ns", f"p-{i}", body, _opts("kubelet"), subresource="status")

    async def lc_create(i: int) -> None:
        await objs.create(PODS, "ns", _bound_pod(i), _opts())

    bodies: list[JSON] = []  # built before a phase's clock starts (the agent's work, not the server's)

    async def agent_status(i: int) -> None:
        await objs.update(PODS, "ns", f"lc-{i}", bodies[i], _opts("atoll-agent"), subresource="status")

    async def event_create(i: int) -> None:
        await objs.create(EVENTS, "ns", bodies[i], _opts("atoll-agent"))

    setups: dict[str, Callable[[int], JSON]] = {
        "agent_running": lambda i: _agent_body(objs.get(PODS, "ns", f"lc-{i}").obj, "Running"),
        "agent_succeeded": lambda i: _agent_body(objs.get(PODS, "ns", f"lc-{i}").obj, "Succeeded"),
        "event_create": lambda i: _event(objs.get(PODS, "ns", f"lc-{i}").obj, i),
    }

    async def pod_delete(i: int) -> None:
        await objs.delete(PODS, "ns", f"lc-{i}", {"gracePeriodSeconds": 0}, _opts())

    phases: list[tuple[str, Callable[[int], Awaitable[Any]]]] = [
        ("create", create), ("update", update), ("noop", noop), ("pod_create", pod_create), ("status", status),
        ("lc_create", lc_create), ("agent_running", agent_status), ("event_create", event_create),
        ("agent_succeeded", agent_status), ("pod_delete", pod_delete)]
    if only:
        phases = [p for p in phases if p[0] in GROUPS[only]]
    out: dict[str, float] = {}
    try:
        for name, op in phases:
            setup = setups.get(name)
            bodies[:] = [setup(i) for i in range(n)] if setup else []
            prof = cProfile.Profile() if profile in (name, "all") else None
            if prof:
                prof.enable()
            used = await _run(n, op)
            if prof:
                prof.disable()
                _print_profile(name, prof)
            out[name] = used / n * 1e6
            out[name + " (gc)"] = _gc_seconds[1] / n * 1e6
            out[name + " (loop)"] = _loop_seconds[0] / n * 1e6
        if all(p in out for p in GROUPS["lifecycle"]):
            out["lifecycle (sum)"] = sum(out[p] for p in GROUPS["lifecycle"])
    finally:
        for t in (task, policy):
            if t is not None:
                t.cancel()
                await asyncio.gather(t, return_exceptions=True)
        await store.close()
    return out


def _print_profile(name: str, prof: cProfile.Profile) -> None:
    for key in ("cumulative", "tottime"):
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats(key).print_stats(35)
        print(f"---- profile of {name} by {key}\n" + buf.getvalue().split("\n", 6)[-1], file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="operations per phase")
    parser.add_argument("--profile", default="",
                        help="phase to profile (" + ", ".join(p for g in GROUPS.values() for p in g) + ") or all")
    parser.add_argument("--only", choices=sorted(GROUPS), default="", help="run one group of phases")
    parser.add_argument("--not-owned", action="store_true", help="the cache decodes every row (no hand-over)")
    parser.add_argument("--no-gc-policy", action="store_true", help="CPython's default collector settings")
    args = parser.parse_args()
    OWNED[0] = not args.not_owned
    gc.callbacks.append(_gc_timer)
    with tempfile.TemporaryDirectory(prefix="atoll-writepath-") as tmp:
        res = asyncio.run(bench(Path(tmp), args.n, args.profile, not args.no_gc_policy, args.only))
    load = open("/proc/loadavg").read().split()[:3]
    print(f"In-process write path, {args.n} ops per phase, {CONCURRENCY} writers (load average {' '.join(load)})")
    for name, us in res.items():
        target = TARGETS_US.get(name)
        note = f"target <= {target:.0f} us: {'ok' if us <= target else 'MISS'}" if target else ""
        print(f"  {name:<16} {us:8.0f} us CPU/op  {note}")
    for gen in (0, 1, 2):
        pauses = sorted(p for p, g in _gc_pauses if g == gen) or [0.0]
        print(f"  collector pauses, generation {gen}: {len(pauses)}, longest {pauses[-1] * 1e3:.1f} ms, "
              f"median {pauses[len(pauses) // 2] * 1e3:.1f} ms, total {sum(pauses):.2f} s")


if __name__ == "__main__":
    main()
