"""What authentication + RBAC and server-side Tables cost: ratios, not absolute numbers.

    .venv/bin/python bench/bench_authz_tables.py [--n 1000] [--clients 16]

Starts three in-process ``APIServer`` instances, each in its own child process on HTTPS with a
fresh SQLite store: ``off`` (``ServerConfig(admin_token=None)``: no authentication, no
authorization), ``admin`` (bearer admin token: authenticated, ``system:masters``) and ``sa`` (a
ServiceAccount JWT bound to the ``edit`` ClusterRole in the namespace: token verification plus RBAC
rule evaluation on every request). The load generator (this process, aiohttp, ``--clients``
concurrent requests) measures ConfigMap creates/s, GETs/s and LISTs/s of ``--n`` ConfigMaps
against each, in interleaved rounds so a busy machine slows every mode alike, plus the server
process's CPU time per request (from /proc: insensitive to the client and to other load). Then
LIST of ``--n`` Pods as JSON vs as a ``meta.k8s.io/v1`` Table (``kubectl get``'s Accept header) on
the ``sa`` server. Prints the ratios (goal: within 15%).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._common import cpu_seconds, free_port  # noqa: E402

NS = "bench"
TABLE = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)


# ---- child: one API server --------------------------------------------------------------------


async def _serve(mode: str, port: int, data: Path) -> None:
    from atoll.apiserver.app import APIServer, ServerConfig
    from atoll.apiserver.auth.authn import ADMIN_USER
    from atoll.apiserver.auth.bootstrap import default_cluster_role_bindings, default_cluster_roles
    from atoll.apiserver.registry.storage import WriteOptions
    from atoll.pki import ensure_pki, server_ssl_context
    from atoll.store.endpoint import open_store

    pki = ensure_pki(data / "pki")
    store = open_store(None, data)
    await store.start()
    token = pki.admin_token.read_text().strip()
    config = ServerConfig("127.0.0.1", port, server_ssl_context(pki),
                          admin_token=None if mode == "off" else token, signing_key=pki.signing_key)
    server = APIServer(store, config)
    task = asyncio.create_task(server.run())
    await server.wait_ready()
    opts = WriteOptions(user=ADMIN_USER)
    reg = server.registry
    for group, plural, objs in (
        ("", "namespaces", [{"metadata": {"name": NS}}]),
        ("rbac.authorization.k8s.io", "clusterroles", default_cluster_roles()),
        ("rbac.authorization.k8s.io", "clusterrolebindings", default_cluster_role_bindings()),
    ):
        rd = reg.get(group, "v1", plural)
        assert rd is not None
        for obj in objs:
            await server.objects.create(rd, None, obj, opts)
    print("ready", flush=True)
    await task


# ---- parent: load generator -------------------------------------------------------------------


class Target:
    def __init__(self, mode: str, root: Path) -> None:
        self.mode = mode
        self.data = root / mode
        self.data.mkdir()
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", mode, str(self.port), str(self.data)],
            stdout=subprocess.PIPE, cwd=REPO,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if line != "ready":
            raise RuntimeError(f"server {mode} did not start: {line!r}")
        self.ssl = ssl.create_default_context(cafile=str(self.data / "pki" / "ca.crt"))
        self.headers: dict[str, str] = {}
        if mode != "off":
            self.headers["Authorization"] = "Bearer " + (self.data / "pki" / "admin.token").read_text().strip()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def _become_service_account(session: Any, t: Target) -> None:
    """Switch ``t`` from the admin token to a ServiceAccount token bound to ``edit`` in NS."""
    base = f"{t.url}/api/v1/namespaces/{NS}"
    async with session.post(f"{base}/serviceaccounts", json={"metadata": {"name": "bench"}},
                            headers=t.headers, ssl=t.ssl) as r:
        assert r.status == 201, await r.text()
    binding = {
        "metadata": {"name": "bench-edit"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"kind": "ServiceAccount", "name": "bench", "namespace": NS}],
    }
    async with session.post(f"{t.url}/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}/rolebindings",
                            json=binding, headers=t.headers, ssl=t.ssl) as r:
        assert r.status == 201, await r.text()
    async with session.post(f"{base}/serviceaccounts/bench/token", json={"spec": {}},
                            headers=t.headers, ssl=t.ssl) as r:
        assert r.status == 201, await r.text()
        token = (await r.json())["status"]["token"]
    t.headers = {"Authorization": f"Bearer {token}"}


async def _run(n_requests: int, clients: int, make: Any) -> float:
    """Requests/s issuing ``make(i)`` coroutines with ``clients`` in flight."""
    counter = iter(range(n_requests))

    async def worker() -> None:
        for i in counter:
            await make(i)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return n_requests / (time.perf_counter() - start)


class Phase:
    """Requests/s (wall) and server CPU microseconds per request, over interleaved rounds."""

    def __init__(self) -> None:
        self.rates: list[float] = []
        self.cpu: list[float] = []
        self.requests = 0

    async def measure(self, t: Target, n: int, clients: int, make: Any) -> None:
        before = cpu_seconds(t.proc.pid)
        self.rates.append(await _run(n, clients, make))
        self.cpu.append(cpu_seconds(t.proc.pid) - before)
        self.requests += n

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)

    @property
    def cpu_us(self) -> float:
        """Total over all rounds (the /proc clock ticks are 10 ms: per-round values are coarse)."""
        return sum(self.cpu) / self.requests * 1e6


ROUNDS = 5


async def _bench(
    n: int, clients: int, targets: list[Target]
) -> tuple[dict[str, dict[str, Phase]], dict[str, float]]:
    import aiohttp

    phases = {t.mode: {k: Phase() for k in ("create", "get", "list")} for t in targets}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:
        for t in targets:
            if t.mode == "sa":
                await _become_service_account(session, t)

        def ops(t: Target, round_: int) -> tuple[Any, Any, Any]:
            cms = f"{t.url}/api/v1/namespaces/{NS}/configmaps"
            per = n // ROUNDS

            async def create(i: int) -> None:
                body = {"metadata": {"name": f"cm-{round_ * per + i}", "labels": {"app": "bench"}},
                        "data": {"k": "v" * 64}}
                async with session.post(cms, json=body, headers=t.headers, ssl=t.ssl) as r:
                    assert r.status == 201, await r.text()
                    await r.read()

            async def get(i: int) -> None:
                async with session.get(f"{cms}/cm-{i % ((round_ + 1) * per)}", headers=t.headers, ssl=t.ssl) as r:
                    assert r.status == 200, await r.text()
                    await r.read()

            async def lst(i: int) -> None:
                async with session.get(cms, headers=t.headers, ssl=t.ssl) as r:
                    assert r.status == 200, await r.text()
                    await r.read()

            return create, get, lst

        for round_ in range(ROUNDS):  # modes interleaved, so a busy machine hurts all of them alike
            for t in targets:
                create, get, lst = ops(t, round_)
                await phases[t.mode]["create"].measure(t, n // ROUNDS, clients, create)
                await phases[t.mode]["get"].measure(t, n, clients, get)
                await phases[t.mode]["list"].measure(t, 40, 2, lst)

        sa = next(t for t in targets if t.mode == "sa")
        pods = f"{sa.url}/api/v1/namespaces/{NS}/pods"

        async def create_pod(i: int) -> None:
            body = {"metadata": {"name": f"pod-{i}", "labels": {"app": "bench"}},
                    "spec": {"containers": [{"name": "main", "image": "busybox:1", "command": ["sleep", "1"]}]}}
            async with session.post(pods, json=body, headers=sa.headers, ssl=sa.ssl) as r:
                assert r.status == 201, await r.text()
                await r.read()

        await _run(n, 8, create_pod)
        times: dict[str, list[float]] = {"json": [], "table": []}
        cpu: dict[str, float] = {"json": 0.0, "table": 0.0}
        for round_ in range(11):  # 10 LISTs of each kind per round, interleaved; round 0 warms up
            for kind, accept in (("json", "application/json"), ("table", TABLE)):
                before = cpu_seconds(sa.proc.pid)
                for _ in range(10):
                    start = time.perf_counter()
                    async with session.get(pods, headers={**sa.headers, "Accept": accept}, ssl=sa.ssl) as r:
                        assert r.status == 200
                        body = await r.read()
                    if round_:
                        times[kind].append(time.perf_counter() - start)
                    assert (b'"kind":"Table"' in body) == (kind == "table") and body.count(b'"pod-') >= n
                if round_:
                    cpu[kind] += cpu_seconds(sa.proc.pid) - before
        tables = {f"{k}_ms": statistics.median(v) * 1000 for k, v in times.items()}
        tables.update({f"{k}_cpu_ms": v / 100 * 1000 for k, v in cpu.items()})
        return phases, tables


async def _main(n: int, clients: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-authz-") as root:
        targets = [Target(mode, Path(root)) for mode in ("off", "admin", "sa")]
        try:
            phases, tables = await _bench(n, clients, targets)
        finally:
            for t in targets:
                t.stop()
    print(f"ConfigMaps: n={n}, {clients} concurrent clients, HTTPS, SQLite, one API server process per mode, "
          f"{ROUNDS} interleaved rounds (medians); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'':8}{'req/s: off':>12}{'admin':>8}{'SA+RBAC':>9}{'admin/off':>11}{'SA/off':>8}"
          f"{'   server CPU us/req: off':>26}{'admin':>7}{'SA':>7}{'admin/off':>11}{'SA/off':>8}")
    for key in ("create", "get", "list"):
        off, adm, sa = (phases[m][key] for m in ("off", "admin", "sa"))
        print(f"{key:8}{off.rate:12.1f}{adm.rate:8.1f}{sa.rate:9.1f}{adm.rate / off.rate:11.2f}"
              f"{sa.rate / off.rate:8.2f}{off.cpu_us:26.0f}{adm.cpu_us:7.0f}{sa.cpu_us:7.0f}"
              f"{adm.cpu_us / off.cpu_us:11.2f}{sa.cpu_us / off.cpu_us:8.2f}")
    print(f"LIST of {n} pods as SA, median of 100: JSON {tables['json_ms']:.1f} ms, Table {tables['table_ms']:.1f} ms "
          f"(Table/JSON {tables['table_ms'] / tables['json_ms']:.2f}); server CPU per LIST: JSON "
          f"{tables['json_cpu_ms']:.1f} ms, Table {tables['table_cpu_ms']:.1f} ms "
          f"(Table/JSON {tables['table_cpu_ms'] / tables['json_cpu_ms']:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--serve", nargs=3, metavar=("MODE", "PORT", "DIR"))
    args = parser.parse_args()
    if args.serve:
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        mode, port, data = args.serve
        asyncio.run(_serve(mode, int(port), Path(data)))
        return
    asyncio.run(_main(args.n, args.clients))


if __name__ == "__main__":
    main()
