"""The hostile-tenant suite: one real ``atoll start`` master per module, Domains ``alice`` and
``bob`` created through the API and their own ServiceAccount tokens (what a lite node holds).

Every test acts as a tenant (``alice``) against the other (``bob``) with nothing but that token.
The memory tests' helpers (RSS and CPU of a process from ``/proc``, ``settled_rss``) live here too."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.conftest import RunningServer, eventually, running_master

JSON = dict[str, Any]
DOMAINS = ("alice", "bob")


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]

    def cause_fields(self) -> list[str]:
        return [c.get("field", "") for c in (self.body.get("details") or {}).get("causes") or []]


@dataclass
class Network:
    server: RunningServer
    tokens: dict[str, str]

    async def call(
        self,
        method: str,
        path: str,
        *,
        as_: str | None = None,
        body: Any = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """One request as the admin (``as_=None``) or as a domain's own ServiceAccount."""
        token = self.server.token if as_ is None else self.tokens[as_]
        hdrs = {"Authorization": f"Bearer {token}", "Content-Type": content_type, **(headers or {})}
        data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.server.url + path, data=data, headers=hdrs,
                            ssl=self.server.ssl_context()) as resp,
        ):
            text = await resp.read()
            try:
                parsed = orjson.loads(text) if text else None
            except orjson.JSONDecodeError:
                parsed = text.decode(errors="replace")
            return Reply(resp.status, parsed, dict(resp.headers))


def _domain(name: str) -> JSON:
    return {"apiVersion": "kuscia.secretflow/v1alpha1", "kind": "Domain", "metadata": {"name": name},
            "spec": {"role": "", "resourceQuota": {"podMaxCount": 100}}}


async def _setup(server: RunningServer) -> dict[str, str]:
    net = Network(server, {})
    for name in DOMAINS:
        reply = await net.call("POST", "/apis/kuscia.secretflow/v1alpha1/domains", body=_domain(name))
        assert reply.status in (201, 409), reply.body
    tokens: dict[str, str] = {}
    deadline = time.monotonic() + 30
    for name in DOMAINS:
        while True:  # the Domain controller creates the namespace, ServiceAccount and RoleBinding
            binding = await net.call("GET", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{name}/rolebindings/{name}")
            ns = await net.call("GET", f"/api/v1/namespaces/{name}")
            labelled = ns.status == 200 and (ns.body["metadata"].get("labels") or {}).get(
                "kuscia.secretflow/domain-name") == name
            if binding.status == 200 and labelled:
                break
            assert time.monotonic() < deadline, f"domain {name} never got its identity"
            await asyncio.sleep(0.1)
        reply = await net.call("POST", f"/api/v1/namespaces/{name}/serviceaccounts/{name}/token",
                               body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                     "spec": {"expirationSeconds": 3600}})
        assert reply.status == 201, reply.body
        tokens[name] = reply.body["status"]["token"]
    return tokens


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    """A real master process with Domains alice and bob; their own SA tokens in ``tokens``."""
    with running_master(tmp_path_factory.mktemp("security") / "master") as server:
        tokens = asyncio.run(_setup(server))
        yield Network(server, tokens)


def node(name: str, domain: str | None) -> JSON:
    labels = {"kuscia.secretflow/namespace": domain} if domain else {}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}}


def pod(name: str, namespace: str, **spec: Any) -> JSON:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"containers": [{"name": "main", "image": "app:v1", "command": ["cat", "/etc/passwd"]}], **spec}}


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def settled_rss(pid: int) -> float:
    """Wait until the process is idle (under 5% CPU over half a second) and return its peak RSS
    seen meanwhile: informers list at start, so the peak is what a restart costs."""
    peak, last = [rss_mb(pid)], [cpu_seconds(pid)]

    async def quiet() -> bool:
        await asyncio.sleep(0.5)
        cpu = cpu_seconds(pid)
        busy, last[0] = cpu - last[0], cpu
        peak[0] = max(peak[0], rss_mb(pid))
        return busy < 0.025

    for _ in range(3):  # three quiet half-seconds in a row
        await eventually(quiet, within=60, every=0)
    return peak[0]
