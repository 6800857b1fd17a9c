"""Pod lifecycle benchmark: 200 pods across two RunP agents (real ``atoll start`` processes).

    .venv/bin/python bench/bench_pods.py [--pods N] [--warmup N] [--keep DIR] [--count] [--schedule]

A master and two lite agents (alice, bob) run as processes. An agent runs only its own domain's
pods, so the Domains alice and bob are created first and each pod goes to its agent's domain
namespace. Pods are created already bound (``spec.nodeName``; with ``--schedule`` unbound, and the
master's scheduler binds each to its domain's node), alternating between the agents,
20 creates in flight; each runs
``sh -c 'sleep 1; date +%s.%N > FILE'``. A watch records when each pod is seen ``Running`` and
``Succeeded``; then every pod is deleted and its ``DELETED`` event awaited. Reported:

* bind → Running: create acknowledged → Running observed (p50/p99), against a bare
  ``asyncio`` spawn → exit of ``sh -c true`` from this process (the physical floor of starting a
  process) as a ratio;
* the burst floor: N spawns of the agent's shim running the same command from one process, back to
  back as an agent spawns (``process.spawn``), until every shim wrote its pid file, for N = the pods
  of one agent and all pods; bind → Running p99 ÷ each floor is printed as a ratio;
* bind → Running p50 of each tenth of the pods in creation order, and when the first and the last
  pod were seen Running (the shape of the burst: in arrival order, or all together at the end);
* exit → Succeeded: the timestamp the command wrote just before exiting → Succeeded observed;
* CPU of the master and of the agents per pod lifecycle (create -> Running -> Succeeded -> delete),
  and per pod start (from the first create until the watch has seen every pod Running);
* the agents' idle CPU (% of one core over 10 s) and RSS after the run.

``--warmup N`` first runs N pods (alternating agents, ``true`` as the command) through their whole
lifecycle on the same master and agents, unmeasured: the measured burst then meets open connection
pools and warm code paths, as on a master that has been running, and the CPU per pod excludes the
one-time costs of fresh processes (TLS handshakes of the growing pools, first-use compilation and
allocation). Without it (the default) the numbers are those of a freshly started network.

``--count`` starts the master with ``ATOLL_REQUEST_CLIENTS=1`` and prints the API requests of the
run (creates to deletes; watches are counted when they end) per pod, by client (User-Agent
product: ``atoll`` is this benchmark, ``atoll-agent`` the agents, ``atoll-controller-manager``
the master's in-process controllers and scheduler), verb, resource and code, from the master's
``atoll_apiserver_client_request_total`` scraped before and after; the writes of the master's own
client, which go in-process, are listed as ``(in-process)`` (``atoll_apiserver_local_request_total``).

``ATOLL_CPROFILE=PREFIX`` runs the master and the agents under cProfile (``PREFIX-<name>.prof``);
``ATOLL_PYSPY=PREFIX`` samples them with ``py-spy record --gil`` (``ATOLL_PYSPY_RATE`` Hz, 200 by
default) from the first create to the last delete (collapsed stacks, ``PREFIX-<name>.txt``;
py-spy must be on ``PATH`` or beside Python). ``--gil`` keeps only samples of the thread holding
the GIL: close to Python CPU time, except that C calls holding the GIL while they wait (the
blocking ``posix_spawn`` of the agents) count their wall time; ``ATOLL_PYSPY_GIL=0`` samples
threads running on a CPU instead (py-spy's default: a thread blocked in a system call is idle).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource as rlimits
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from atoll.agent.runp import process  # noqa: E402
from atoll.api import kinds  # noqa: E402
from atoll.client import Client  # noqa: E402
from bench._common import ATOLL, cpu_seconds, free_port, machine_cpu, percentile, rss_mb  # noqa: E402

DOMAIN_KIND = kinds.kind("kuscia.secretflow", "domains")


def atoll_cmd(name: str) -> list[str]:
    """``atoll``, under cProfile (``$ATOLL_CPROFILE-<name>.prof``) when ATOLL_CPROFILE is set."""
    prof = os.environ.get("ATOLL_CPROFILE")
    return [sys.executable, "-m", "cProfile", "-o", f"{prof}-{name}.prof", "-m", "atoll.cli.main"] if prof else ATOLL


def start_master(base: Path, *, count: bool = False) -> tuple[subprocess.Popen[bytes], Path]:
    port = free_port()
    config = base / "master" / "atoll.yaml"
    subprocess.run([*ATOLL, "init", "--mode", "master", "--domain", "kuscia-system", "--data-dir",
                    str(base / "master"), "--api-port", str(port), "--no-gateway", "-o", str(config)],
                   check=True, capture_output=True)
    log = open(base / "master.log", "wb")
    env = {**os.environ, "ATOLL_REQUEST_CLIENTS": "1"} if count else None
    proc = subprocess.Popen([*atoll_cmd("master"), "start", "-c", str(config)], stdout=log, stderr=log, env=env)
    for _ in range(300):
        try:
            ctx = ssl.create_default_context(cafile=str(base / "master" / "pki" / "ca.crt"))
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/readyz", context=ctx, timeout=1):
                break
        except OSError:
            time.sleep(0.1)
    kubeconfig = base / "admin.kubeconfig"
    kubeconfig.write_text(subprocess.run([*ATOLL, "kubeconfig", "-c", str(config)], check=True,
                                         capture_output=True, text=True).stdout)
    return proc, kubeconfig


def start_samplers(pids: dict[str, int]) -> list[subprocess.Popen[bytes]]:
    """``py-spy record`` of each process when ``ATOLL_PYSPY`` is set (stopped by :func:`stop_samplers`)."""
    prefix = os.environ.get("ATOLL_PYSPY")
    if not prefix:
        return []
    spy = Path(sys.executable).with_name("py-spy")
    exe = str(spy) if spy.exists() else "py-spy"
    rate = os.environ.get("ATOLL_PYSPY_RATE", "200")
    gil = [] if os.environ.get("ATOLL_PYSPY_GIL") == "0" else ["--gil"]
    return [subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", rate, "--format", "raw", "--threads", *gil,
                              "--nonblocking", "-o", f"{prefix}-{name}.txt"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL) for name, pid in pids.items()]


def stop_samplers(samplers: list[subprocess.Popen[bytes]]) -> None:
    for proc in samplers:
        proc.send_signal(signal.SIGINT)
    for proc in samplers:
        proc.wait(timeout=30)


def start_agent(base: Path, kubeconfig: Path, domain: str) -> subprocess.Popen[bytes]:
    data = base / domain
    config = data / "atoll.yaml"
    subprocess.run([*ATOLL, "init", "--mode", "lite", "--domain", domain, "--data-dir", str(data), "--kubeconfig",
                    str(kubeconfig), "--master-data-dir", str(base / "master"), "-o", str(config)],
                   check=True, capture_output=True)
    doc = yaml.safe_load(config.read_text())
    doc["agent"] = {"nodeName": f"{domain}-node", "stopPodsOnExit": True}
    config.write_text(yaml.safe_dump(doc))
    (base / "image").mkdir(exist_ok=True)
    subprocess.run([*ATOLL, "image", "load", "-c", str(config), str(base / "image"), "--name", "bench:v1"],
                   check=True, capture_output=True)
    log = open(base / f"{domain}.log", "wb")
    return subprocess.Popen([*atoll_cmd(domain), "start", "-c", str(config)], stdout=log, stderr=log)


async def create_domains(client: Client, domains: list[str]) -> None:
    """Create the Domains and wait until the domain controller has made their namespaces."""
    for domain in domains:
        await client.create(DOMAIN_KIND, {"metadata": {"name": domain}, "spec": {"role": ""}})
    for domain in domains:
        for _ in range(300):
            try:
                await client.get(kinds.NAMESPACES, domain)
                break
            except Exception:
                await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"namespace {domain} was not created by the domain controller")


def burst_floor(base: Path, n: int, command: str) -> float:
    """Seconds for ``n`` spawns of the agent's shim running ``command`` (``{mark}`` = a file), back to back
    from this one process the way an agent spawns (:func:`atoll.agent.runp.process.spawn`), until every
    shim has written its pid file: the floor of a burst of ``n`` pods on one agent. Waits for their exits."""
    work = Path(tempfile.mkdtemp(prefix="floor-", dir=base))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    t0 = time.perf_counter()
    pids = [process.spawn(["sh", "-c", command.format(mark=work / f"m{i}")], env=env, cwd=str(work),
                          state=work / f"s{i}", log_file=work / f"l{i}").pid for i in range(n)]
    pending = {work / f"s{i}.pid" for i in range(n)}
    while pending:
        pending = {f for f in pending if not f.exists()}
        if pending:
            time.sleep(0.0005)
    elapsed = time.perf_counter() - t0
    for pid in pids:
        os.waitpid(pid, 0)
    return elapsed


def children_cpu() -> float:
    """CPU seconds of this process's reaped children so far."""
    usage = rlimits.getrusage(rlimits.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def bare_spawns(n: int) -> list[float]:
    """Wall seconds of ``n`` runs of ``sh -c true`` one after the other (``BARE_CPU`` gets their CPU)."""
    out = []
    cpu0 = children_cpu()
    for _ in range(n):
        t0 = time.perf_counter()
        proc = await asyncio.create_subprocess_exec("sh", "-c", "true")
        await proc.wait()
        out.append(time.perf_counter() - t0)
    BARE_CPU.append((children_cpu() - cpu0) / n)
    return out


BARE_CPU: list[float] = []
"""CPU seconds per ``sh -c true`` of the last :func:`bare_spawns` (exec, dynamic loading, exit)."""


Requests = dict[tuple[str, ...], float]


async def client_requests(client: Client) -> Requests:
    """The master's ``atoll_apiserver_client_request_total`` by (client, verb, resource, code), and
    its in-process writes (``atoll_apiserver_local_request_total``) as client ``(in-process)``."""
    text = await client.request("GET", "/metrics")
    out: Requests = {}
    for family in text_string_to_metric_families(text):
        if family.name == "apiserver_registered_watchers":
            out[("open watches",)] = family.samples[0].value
        if family.name == "atoll_apiserver_client_request":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    labels = sample.labels
                    out[(labels["client"], labels["verb"], labels["resource"], labels["code"])] = sample.value
        if family.name == "atoll_apiserver_local_request":  # the master's own client, without HTTP
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels["verb"] not in ("LIST", "WATCH", "GET"):
                    labels = sample.labels
                    out[("(in-process)", labels["verb"], labels["resource"], labels["code"])] = sample.value
    return out


async def commit_counts(client: Client) -> tuple[float, float]:
    """The master's SQLite (commits, writes they carried) so far."""
    text = await client.request("GET", "/metrics")
    values = {f.name: f.samples[0].value for f in text_string_to_metric_families(text)
              if f.name in ("atoll_sqlite_commits", "atoll_sqlite_committed_writes")}
    return values.get("atoll_sqlite_commits", 0.0), values.get("atoll_sqlite_committed_writes", 0.0)


def print_requests(before: Requests, after: Requests, count: int) -> None:
    print(f"open watches on the master (all resources): {after.pop(('open watches',), 0):.0f}")
    rows = sorted(((k, v - before.get(k, 0.0)) for k, v in after.items()), key=lambda kv: (kv[0][0], -kv[1]))
    print(f"API requests per pod ({count} pods), by client, verb, resource, code:")
    writes = 0.0
    for (client, verb, resource, code), n in rows:
        if n:
            print(f"  {client:<26}{verb:<10}{resource:<24}{code:>5}{n / count:>8.2f}")
            writes += n if verb not in ("GET", "LIST", "WATCH") else 0.0
    print(f"  writes per pod: {writes / count:.2f}")


async def warm_up(client: Client, count: int, marks: Path) -> None:
    """``count`` pods through their whole lifecycle before the measured run (``--warmup``): the
    connection pools of this client and of the agents are open and the master's code paths are
    warm, as in a master that has been running; the measured run then shows the cost per pod
    without the one-time costs of a fresh process."""
    gate = asyncio.Semaphore(20)
    names = [(f"warm-{i}", "alice" if i % 2 == 0 else "bob") for i in range(count)]

    async def create(name: str, domain: str) -> None:
        body = {"metadata": {"name": name, "namespace": domain},
                "spec": {"nodeName": f"{domain}-node", "restartPolicy": "Never", "containers": [{
                    "name": "main", "image": "bench:v1", "command": ["sh", "-c", f"true > {marks / name}"]}]}}
        async with gate:
            await client.create(kinds.PODS, body)

    await asyncio.gather(*(create(n, d) for n, d in names))
    for _ in range(600):
        pods = [p for d in ("alice", "bob") for p in (await client.list(kinds.PODS, d))["items"]]
        if all((p.get("status") or {}).get("phase") == "Succeeded" for p in pods) and len(pods) == count:
            break
        await asyncio.sleep(0.1)

    async def delete(name: str, domain: str) -> None:
        async with gate:
            await client.delete(kinds.PODS, name, domain)

    await asyncio.gather(*(delete(n, d) for n, d in names))
    for _ in range(600):
        if not [p for d in ("alice", "bob") for p in (await client.list(kinds.PODS, d))["items"]]:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1)


async def run(base: Path, count: int, count_requests: bool = False, schedule: bool = False,
              warmup: int = 0) -> None:
    master, kubeconfig = start_master(base, count=count_requests)
    agents: dict[str, subprocess.Popen[bytes]] = {}
    marks = base / "marks"
    marks.mkdir()
    try:
        agents.update({d: start_agent(base, kubeconfig, d) for d in ("alice", "bob")})
        async with Client.from_kubeconfig(kubeconfig) as client:
            for domain in agents:
                for _ in range(300):
                    try:
                        await client.get(kinds.NODES, f"{domain}-node")
                        break
                    except Exception:
                        await asyncio.sleep(0.1)
            await create_domains(client, list(agents))
            await asyncio.sleep(1)
            created: dict[str, float] = {}
            running: dict[str, float] = {}
            succeeded: dict[str, float] = {}
            all_done = asyncio.Event()

            deleted: set[str] = set()
            at_running: dict[str, float] = {}
            machine_at_running: list[float] = []
            all_deleted = asyncio.Event()

            async def watch(namespace: str, rv: str) -> None:
                async for kind, obj in client.watch(kinds.PODS, namespace, resource_version=rv):
                    name, phase = obj["metadata"]["name"], (obj.get("status") or {}).get("phase")
                    now = time.time()
                    if kind == "DELETED":
                        deleted.add(name)
                        if len(deleted) == count:
                            all_deleted.set()
                        continue
                    if phase in ("Running", "Succeeded") and name not in running:
                        running[name] = now
                        if len(running) == count:  # CPU of starting the pods (creates to all Running)
                            at_running.update({"master": cpu_seconds(master.pid),
                                               **{d: cpu_seconds(p.pid) for d, p in agents.items()},
                                               "bench": time.process_time(), "at": now})
                            machine_at_running.extend(machine_cpu())
                    if phase == "Succeeded" and name not in succeeded:
                        succeeded[name] = now
                    if len(succeeded) == count:
                        all_done.set()

            if warmup:
                await warm_up(client, warmup, marks)
            rvs = {d: (await client.list(kinds.PODS, d))["metadata"]["resourceVersion"] for d in agents}
            watchers = [asyncio.create_task(watch(d, rv)) for d, rv in rvs.items()]
            gate = asyncio.Semaphore(20)

            async def create(i: int) -> None:
                name = f"bench-{i}"
                domain = "alice" if i % 2 == 0 else "bob"
                body = {"metadata": {"name": name, "namespace": domain},
                        "spec": {**({} if schedule else {"nodeName": f"{domain}-node"}),
                                 "restartPolicy": "Never", "containers": [{
                            "name": "main", "image": "bench:v1",
                            "command": ["sh", "-c", f"sleep 1; date +%s.%N > {marks / name}"]}]}}
                async with gate:
                    await client.create(kinds.PODS, body)
                    created[name] = time.time()

            requests0 = await client_requests(client) if count_requests else {}
            samplers = start_samplers({"master": master.pid, **{d: p.pid for d, p in agents.items()}})
            busy0 = {"master": cpu_seconds(master.pid), **{d: cpu_seconds(p.pid) for d, p in agents.items()},
                     "bench": time.process_time()}
            commits0 = await commit_counts(client)
            machine0 = machine_cpu()
            t0 = time.time()
            await asyncio.gather(*(create(i) for i in range(count)))
            create_seconds = time.time() - t0
            try:
                await asyncio.wait_for(all_done.wait(), 120 + count)  # generous: a slow machine is not a failure
                total = time.time() - t0

                async def delete(i: int) -> None:
                    async with gate:
                        await client.delete(kinds.PODS, f"bench-{i}", "alice" if i % 2 == 0 else "bob")

                await asyncio.gather(*(delete(i) for i in range(count)))
                await asyncio.wait_for(all_deleted.wait(), 60 + count)
            finally:
                for task in watchers:
                    task.cancel()
            busy = {"master": cpu_seconds(master.pid) - busy0["master"],
                    **{d: cpu_seconds(p.pid) - busy0[d] for d, p in agents.items()}}
            window = time.time() - t0
            commits1 = await commit_counts(client)
            stop_samplers(samplers)
            if count_requests:
                await asyncio.sleep(2)  # trailing events and status writes of the last deletions
                print_requests(requests0, await client_requests(client), count)
            to_running_by = {n: running[n] - created[n] for n in created}
            to_running = list(to_running_by.values())
            exits = {n: float((marks / n).read_text()) for n in created}
            to_succeeded = [succeeded[n] - exits[n] for n in created]
            bare = await bare_spawns(200)
            command = "sleep 1; date +%s.%N > {mark}"
            floors = {n: burst_floor(base, n, command) for n in (count // 2, count)}
            await asyncio.sleep(5)
            procs = {"master": master, **agents}
            cpu0 = {d: cpu_seconds(p.pid) for d, p in procs.items()}
            await asyncio.sleep(10)
            idle_cpu = {d: (cpu_seconds(p.pid) - cpu0[d]) / 10 * 100 for d, p in procs.items()}
            rss = {d: rss_mb(p.pid) for d, p in agents.items()}
    finally:
        for proc in (*agents.values(), master):
            proc.terminate()
            proc.wait(timeout=20)
    ms = 1000.0
    b50, b99 = statistics.median(bare) * ms, percentile(bare, 0.99) * ms
    r50, r99 = statistics.median(to_running) * ms, percentile(to_running, 0.99) * ms
    s50, s99 = statistics.median(to_succeeded) * ms, percentile(to_succeeded, 0.99) * ms
    print(f"{count} pods over 2 agents: created in {create_seconds:.1f}s, all Succeeded in {total:.1f}s "
          "(each sleeps 1 s)")
    print(f"{'metric':<34}{'p50 ms':>10}{'p99 ms':>10}{'ratio p50':>12}")
    print(f"{'bare spawn+exit (sh -c true)':<34}{b50:>10.1f}{b99:>10.1f}{1.0:>12.1f}"
          f"   CPU {BARE_CPU[-1] * ms:.2f} ms each")
    print(f"{'bind -> Running':<34}{r50:>10.1f}{r99:>10.1f}{r50 / b50:>12.1f}")
    print(f"{'exit -> Succeeded':<34}{s50:>10.1f}{s99:>10.1f}{s50 / b50:>12.1f}")
    per_agent, full = floors[count // 2], floors[count]
    print(f"burst floor (shim spawns from one process until all wrote their pid): {count // 2} "
          f"{per_agent * ms:.1f} ms, {count} {full * ms:.1f} ms")
    print(f"bind -> Running p99 / floor: {r99 / (per_agent * ms):.2f} ({count // 2} per agent), "
          f"{r99 / (full * ms):.2f} ({count})")
    order = sorted(created, key=created.__getitem__)
    tenth = max(len(order) // 10, 1)
    deciles = [statistics.median(to_running_by[n] for n in order[i:i + tenth]) * ms
               for i in range(0, len(order), tenth)]
    print("bind -> Running p50 by tenth of the creation order (all Running together at the end: falling; "
          "in arrival order: flat, rising when the agents fall behind): "
          + " ".join(f"{d:.0f}" for d in deciles))
    first, last = min(running.values()) - t0, max(running.values()) - t0
    print(f"Running observed from {first * ms:.0f} ms to {last * ms:.0f} ms after the first create")
    print(f"CPU seconds during the run ({window:.1f} s): " + ", ".join(f"{k} {v:.2f}" for k, v in busy.items()))
    agent_ms = sum(v for k, v in busy.items() if k != "master") / count * ms
    master_ms = busy["master"] / count * ms
    print(f"CPU per pod lifecycle (create -> Running -> Succeeded -> delete): master {master_ms:.2f} ms "
          f"(target <= 2 ms), agents {agent_ms:.2f} ms")
    if at_running:
        start_cpu = {k: (at_running[k] - busy0[k]) / count * ms for k in busy0}
        agents_start = sum(v for k, v in start_cpu.items() if k in agents)
        print(f"CPU per pod start (first create -> all Running): master {start_cpu['master']:.2f} ms, agents "
              f"{agents_start:.2f} ms")
        busy_s, idle_s = machine_at_running[0] - machine0[0], machine_at_running[1] - machine0[1]
        other = busy_s / count * ms - sum(start_cpu.values())
        print(f"machine during the start window ({(at_running['at'] - t0) * ms:.0f} ms): busy "
              f"{busy_s / (busy_s + idle_s) * 100:.0f}% of {os.cpu_count()} cores; per pod start "
              f"{busy_s / count * ms:.2f} CPU-ms = master {start_cpu['master']:.2f} + agents {agents_start:.2f} "
              f"+ this benchmark {start_cpu['bench']:.2f} + the rest {other:.2f} "
              "(the pods' shims and commands: 3 execs each; kernel; anything else running)")
    commits, committed = commits1[0] - commits0[0], commits1[1] - commits0[1]
    print(f"master's SQLite commits during the run: {commits:.0f} carrying {committed:.0f} writes "
          f"({committed / max(commits, 1):.2f} per commit)")
    print(f"master: idle CPU {idle_cpu['master']:.2f}% of a core")
    for domain in agents:
        print(f"agent {domain}: idle CPU {idle_cpu[domain]:.2f}% of a core, RSS {rss[domain]:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=200)
    parser.add_argument("--keep", type=Path, default=None)
    parser.add_argument("--count", action="store_true", help="print the API requests per pod by client")
    parser.add_argument("--schedule", action="store_true", help="create pods unbound: the scheduler binds them")
    parser.add_argument("--warmup", type=int, default=0, help="pods run through their lifecycle before measuring")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        asyncio.run(run(args.keep, args.pods, args.count, args.schedule, args.warmup))
        return
    with tempfile.TemporaryDirectory(prefix="atoll-bench-pods-") as tmp:
        asyncio.run(run(Path(tmp), args.pods, args.count, args.schedule, args.warmup))


if __name__ == "__main__":
    main()

