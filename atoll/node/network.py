"""A centralised network on one machine: a master and lites as separate ``atoll`` processes.

Used by ``atoll quickstart`` and the end-to-end tests. Each node is ``atoll init`` (free 127.0.0.1
ports) + ``atoll start`` in a **new session**, so stopping it signals its whole process group;
lites run with ``stopPodsOnExit`` so their task processes end with them, and :meth:`stop` sweeps
any pod process left behind by a node that was killed. Everything lives under one directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import yaml

from atoll.api import errors, kinds
from atoll.api.constants import LABEL_NODE_NAMESPACE
from atoll.client import Client, ClientError
from atoll.gateway.supervisor import kill_stale_envoy
from atoll.node.admin_ops import CDRS, add_lite, create_route, parse_endpoint
from atoll.node.kubeconfig import admin_kubeconfig, dump
from atoll.node.leftovers import sweep_pods
from atoll.pki import PKI

ATOLL = [sys.executable, "-m", "atoll.cli.main"]
MASTER_DOMAIN = "kuscia-system"
STOP_SECONDS = 10.0
PORT_ATTEMPTS = 3
NODE_PORTS = range(10000, 20000)
"""Nodes' ports: below Kuscia's task ports (20000-32767) and Linux's ephemeral ports (32768-60999)."""
NODE_PORT_ATTEMPTS = 200


class NetworkError(RuntimeError):
    """A node failed to start or come up; the message names it and the reason."""


def free_port() -> int:
    """A port free on 127.0.0.1 now, for a node that keeps it across restarts: picked at random from
    ``NODE_PORTS``, not by the kernel. ``bind(0)`` hands out the ephemeral range, which every other
    ``bind(0)`` and outgoing connection on the machine draws from too, so while a node is down (a
    kill -9 and restart, a quickstart run again) any program could take its ports; none draws here."""
    for _ in range(NODE_PORT_ATTEMPTS):
        port = random.randrange(NODE_PORTS.start, NODE_PORTS.stop)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # the node range is full: any free port
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class NodeProcess:
    domain: str
    config: Path
    external_port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.config.parent

    @property
    def log(self) -> Path:
        return self.data_dir / "node.log"

    def start(self) -> None:
        out = open(self.log, "ab")
        self.proc = subprocess.Popen([*ATOLL, "start", "-c", str(self.config)], stdout=out, stderr=out,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def last_error(self) -> str:
        """The node's last error line (``atoll start`` ends with one ``error: …`` line on failure)."""
        try:
            lines = [ln.strip() for ln in self.log.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return "no log"
        for marks in (("error:",), (" ERROR ", "Error:")):
            found = [ln for ln in lines if any(m in ln for m in marks)]
            if found:
                return found[-1]
        return lines[-1] if lines else "no log"

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        if self.proc is None:
            return
        self.kill(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            self.proc.wait()
        with contextlib.suppress(ProcessLookupError):  # anything left in the group
            os.killpg(self.proc.pid, signal.SIGKILL)


def _init(*args: str) -> None:
    result = subprocess.run([*ATOLL, "init", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise NetworkError(result.stderr.strip() or f"atoll init {' '.join(args)} failed")


def _port_taken(exc: Exception | str) -> bool:
    """Free ports are picked before the node binds them: on a busy machine another process may win."""
    return "address already in use" in str(exc).lower()


def _new_ports(config: Path, *fields: tuple[str, str]) -> None:
    doc = yaml.safe_load(config.read_text())
    for block, name in fields:
        doc.setdefault(block, {})[name] = free_port()
    _tune(config, **doc)


def _tune(config: Path, **fields: object) -> None:
    doc = yaml.safe_load(config.read_text())
    doc.update(fields)
    tmp = config.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(config)


@dataclass
class LocalNetwork:
    base: Path
    domains: tuple[str, ...] = ("alice", "bob")
    agent_timers: dict[str, float] = field(default_factory=dict)
    lite_fields: dict[str, dict[str, object]] = field(default_factory=dict)
    """Per-domain config fields set after ``atoll init`` (e.g. ``runtime: runk`` and its ``runk`` block)."""
    master: NodeProcess | None = None
    lites: dict[str, NodeProcess] = field(default_factory=dict)

    @property
    def kubeconfig(self) -> Path:
        return self.base / "admin.kubeconfig"

    @property
    def master_endpoint(self) -> str:
        assert self.master is not None
        return f"http://127.0.0.1:{self.master.external_port}"

    def client(self) -> Client:
        return Client.from_kubeconfig(str(self.kubeconfig))

    # -- master ----------------------------------------------------------------------------------

    async def start_master(self) -> None:
        data = (self.base / "master").resolve()
        config = data / "kuscia.yaml"
        if not config.exists():
            _init("--mode", "master", "-d", MASTER_DOMAIN, "--data-dir", str(data), "--api-port", str(free_port()),
                  "--external-port", str(free_port()), "--internal-port", str(free_port()))
            _tune(config, probeTaskPorts=True)  # every lite runs on this host: skip task ports busy here
        for attempt in range(PORT_ATTEMPTS):
            doc = yaml.safe_load(config.read_text())
            self.master = NodeProcess(MASTER_DOMAIN, config, int(doc["gateway"]["externalPort"]))
            self.master.start()
            url = f"https://127.0.0.1:{doc['apiserver']['port']}"
            self.kubeconfig.write_text(dump(admin_kubeconfig(PKI(data / "pki"), url)))
            self.kubeconfig.chmod(0o600)
            try:
                await self._until(self.master, self._master_ready, 60, "API server ready")
                if str(doc.get("protocol") or "NOTLS").upper() == "NOTLS":  # TLS ports need the domain's certs
                    await self._until(self.master, self._gateway_answers, 30, "gateway answering")
                else:
                    await self._until(self.master, self._gateway_serving, 30, "gateway serving")
                return
            except NetworkError as exc:
                if not _port_taken(exc) or attempt == PORT_ATTEMPTS - 1:
                    raise
                self._ensure_no_lites(exc)
            self.master.stop()
            _new_ports(config, ("apiserver", "port"), ("gateway", "externalPort"), ("gateway", "internalPort"))

    async def _master_ready(self) -> bool:
        async with self.client() as client:
            try:
                # the API server; the gateway's check is _gateway_answers's (a taken port is told apart)
                return bool(await client.request("GET", "/readyz", params={"exclude": "gateway"}))
            except (ClientError, errors.APIError):
                return False

    async def _gateway_answers(self) -> bool:
        """The master's external port answers as its gateway does (401 ``unauthorized.``). Another
        program answering there took the port between ``atoll init`` and Envoy's bind (Envoy then
        rejects that listener and keeps running): report it as a taken port, so new ones are picked.
        A refused or dropped connection is no answer: wait (after a kill -9 the master replaces the
        stale Envoy, which drops the connections it holds)."""
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
                async with session.get(self.master_endpoint) as response:
                    body = await response.text()
        except (aiohttp.ClientConnectionError, TimeoutError):
            # nothing listens yet (Envoy is starting), or the connection dropped without an answer: a
            # killed master's stale Envoy being replaced by the new one does that — not another program
            return False
        except aiohttp.ClientError as exc:  # an answer, but not HTTP as Envoy speaks it
            raise NetworkError(f"gateway port {self.master_endpoint}: address already in use ({exc})") from None
        if response.status == 401 and "unauthorized" in body:
            return True
        raise NetworkError(f"gateway port {self.master_endpoint}: address already in use "
                           f"(another program answers {response.status})")

    async def _gateway_serving(self) -> bool:
        """A TLS master's gateway, through its ``/readyz/gateway`` check (its external port cannot be
        probed without the domain's certificates). A listener Envoy could not bind (another program
        took the port between ``atoll init`` and Envoy's start; a client would reach that program) is
        a taken port, so new ones are picked; no check (``gateway.enabled: false``) is no wait."""
        async with self.client() as client:
            try:
                await client.request("GET", "/readyz/gateway")
            except errors.NotFound:
                return True
            except errors.APIError as exc:
                if _port_taken(exc.message):
                    raise NetworkError(f"gateway port {self.master_endpoint}: address already in use "
                                       f"({exc.message})") from None
                return False
            except ClientError:
                return False
        return True

    def _ensure_no_lites(self, exc: NetworkError) -> None:
        """The master may move to new ports after ``exc`` (one was taken) only while no lite was
        initialised with them (not on a restart, nor a network started again on its directory):
        lites keep its endpoint and, from registration, its API address, so moving would leave every
        lite talking to ports nobody serves (their pods Pending). Say so instead."""
        if self.lites or any((self.base / domain / "kuscia.yaml").exists() for domain in self.domains):
            raise NetworkError(f"{exc}; lites use this master's ports, so it cannot move to others") from None

    # -- lites -----------------------------------------------------------------------------------

    async def add_lite(self, domain: str) -> NodeProcess:
        data = (self.base / domain).resolve()
        config = data / "kuscia.yaml"
        if not config.exists():
            async with self.client() as client:
                token = await add_lite(client, domain, MASTER_DOMAIN)
            _init("--mode", "lite", "-d", domain, "--data-dir", str(data), "-m", self.master_endpoint, "-t", token,
                  "--external-port", str(free_port()), "--internal-port", str(free_port()),
                  "--datamesh-http-port", str(free_port()),
                  "--datamesh-grpc-port", str(free_port()))
            agent = {"nodeName": f"{domain}-node", "stopPodsOnExit": True}
            if self.agent_timers:
                agent["timers"] = dict(self.agent_timers)
            # metrics.port: the lite's own /readyz, which start_lite waits on
            _tune(config, agent=agent, metrics={"port": free_port()}, **self.lite_fields.get(domain, {}))
        doc = yaml.safe_load(config.read_text())
        lite = NodeProcess(domain, config, int(doc["gateway"]["externalPort"]))
        self.lites[domain] = lite
        return lite

    async def start_lite(self, domain: str) -> None:
        lite = self.lites[domain]
        for attempt in range(PORT_ATTEMPTS):
            lite.start()
            try:
                await self._until(lite, lambda: self._lite_ready(lite), 60, "ready")
                await self._until(lite, lambda: self.node_ready(domain), 60, "node Ready")
                return
            except NetworkError as exc:
                lite.stop()  # a lite that failed to start is not left half running
                if not _port_taken(exc) or attempt == PORT_ATTEMPTS - 1:
                    raise
                await self._ensure_no_routes_to(domain, exc)
            _new_ports(lite.config, ("gateway", "externalPort"), ("gateway", "internalPort"),
                       ("datamesh", "httpPort"), ("datamesh", "grpcPort"), ("metrics", "port"))
            lite.external_port = int(yaml.safe_load(lite.config.read_text())["gateway"]["externalPort"])

    async def _ensure_no_routes_to(self, domain: str, exc: NetworkError) -> None:
        """A lite may move to new ports after ``exc`` (one was taken) only while no
        ClusterDomainRoute points at it (its first start): on a restart, or a network started again
        on its directory, routes carry its external port, so moving would cut every peer off it."""
        async with self.client() as client:
            routes, _ = await client.list_all(CDRS)
        if any((route.get("spec") or {}).get("destination") == domain for route in routes):
            raise NetworkError(f"{exc}; routes to {domain} use its ports, so it cannot move to others") from None

    async def _lite_ready(self, lite: NodeProcess) -> bool:
        """This lite process's own ``/readyz`` (its agent ready, its gateway serving) on its
        ``metrics.port`` — not its Node, which a killed predecessor leaves Ready until its lease
        expires. A port the gateway cannot bind is reported as taken. Configs without a metrics
        port (networks made by an older version) have only the Node to go by."""
        port = int((yaml.safe_load(lite.config.read_text()).get("metrics") or {}).get("port") or 0)
        if not port:
            return True
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
                async with session.get(f"http://127.0.0.1:{port}/readyz?verbose") as response:
                    body = await response.text()
        except (aiohttp.ClientError, TimeoutError):
            return False  # not listening yet
        if "address already in use" in body.lower():
            reason = next(line for line in body.splitlines() if "address already in use" in line.lower())
            raise NetworkError(f"lite {lite.domain}: {reason.strip()}")
        return response.status == 200

    async def node_ready(self, domain: str) -> bool:
        async with self.client() as client:
            try:
                nodes, _ = await client.list_all(kinds.NODES, label_selector=f"{LABEL_NODE_NAMESPACE}={domain}")
            except (ClientError, errors.APIError):
                return False
        for node in nodes:
            conditions = {c.get("type"): c.get("status") for c in (node.get("status") or {}).get("conditions") or []}
            if conditions.get("Ready") == "True":
                return True
        return False

    async def create_routes(self) -> list[str]:
        done: list[str] = []
        async with self.client() as client:
            for src in self.domains:
                for dst in self.domains:
                    if src != dst:
                        url = f"http://127.0.0.1:{self.lites[dst].external_port}"
                        done.append(await create_route(client, src, dst, parse_endpoint(url)))
        return done

    async def wait_routes_ready(self, within: float = 90.0) -> None:
        """Every ClusterDomainRoute between this network's nodes Ready (token handshakes done)."""
        deadline = time.monotonic() + within
        ours = {*self.domains, MASTER_DOMAIN}
        while True:
            async with self.client() as client:
                listed, _ = await client.list_all(CDRS)
            routes = [r for r in listed if {(r.get("spec") or {}).get("source"),
                                            (r.get("spec") or {}).get("destination")} <= ours]
            waiting = [r["metadata"]["name"] for r in routes if not _ready(r)]
            if routes and not waiting:
                return
            for node in self.nodes():
                if not node.alive():
                    raise NetworkError(f"node {node.domain} exited: {node.last_error()}")
            if time.monotonic() > deadline:
                reasons = "; ".join(f"{r['metadata']['name']}: {_not_ready_reason(r)}" for r in routes if not _ready(r))
                raise NetworkError(f"routes not Ready within {within:.0f} s ({reasons})")
            await asyncio.sleep(0.2)

    # -- whole network ---------------------------------------------------------------------------

    async def up(self) -> None:
        await self.start_master()
        for domain in self.domains:
            await self.add_lite(domain)
        await asyncio.gather(*(self.start_lite(d) for d in self.domains))
        await self.create_routes()

    def nodes(self) -> list[NodeProcess]:
        return [*self.lites.values(), *([self.master] if self.master else [])]

    def stop(self) -> None:
        """Stop lites first (their pods end with them), then the master; sweep leftover pod processes
        and the Envoy of a node that was killed and not started again (it runs in its own session)."""
        for node in self.nodes():
            node.stop()
        for node in self.nodes():
            envoy = node.data_dir / "run" / "envoy"
            kill_stale_envoy(envoy / "envoy.pid", envoy / "envoy-bootstrap.json")
        for lite in self.lites.values():
            sweep_pods(lite.data_dir)

    async def _until(self, node: NodeProcess, check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
        deadline = time.monotonic() + within
        while True:
            if not node.alive():
                raise NetworkError(f"node {node.domain} exited: {node.last_error()}")
            if await check():
                return
            if time.monotonic() > deadline:
                raise NetworkError(f"node {node.domain}: not {what} within {within:.0f} s ({node.last_error()})")
            await asyncio.sleep(0.1)


def _ready_condition(route: dict[str, object]) -> dict[str, object]:
    status = route.get("status")
    conditions = status.get("conditions") if isinstance(status, dict) else None
    for cond in conditions if isinstance(conditions, list) else []:
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return cond
    return {}


def _ready(route: dict[str, object]) -> bool:
    return _ready_condition(route).get("status") == "True"


def _not_ready_reason(route: dict[str, object]) -> str:
    cond = _ready_condition(route)
    return str(cond.get("message") or cond.get("reason") or "no Ready condition yet")
