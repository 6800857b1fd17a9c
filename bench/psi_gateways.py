"""For ``bench_psi.py --gateways``: alice's and bob's Envoy gateways between the two PSI parties.

Per party: an ingress Service ``psi-<party>`` (Endpoints: 127.0.0.1:<party port>) that its gateway
serves as ``psi-<party>.<party>.svc``, and in the peer's namespace an egress Service (contract C2)
whose port the peer's gateway opens on 127.0.0.1 and tunnels to it. Token routes both ways with the
real RSA-GEN handshake. Returns, per party, the egress port its process should call.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from atoll.api import errors, kinds
from atoll.client import Client
from atoll.gateway import crypto
from atoll.gateway.model import ListenerOptions
from atoll.gateway.module import GatewayModule, GatewayOptions

JSON = dict[str, Any]
CDRS = kinds.kind("kuscia.secretflow", "clusterdomainroutes")


def domain_with_cert(name: str, key: rsa.RSAPrivateKey) -> JSON:
    cert = base64.b64encode(crypto.self_signed_cert(key, name)).decode()
    return {"apiVersion": "kuscia.secretflow/v1alpha1", "kind": "Domain", "metadata": {"name": name},
            "spec": {"role": "", "cert": cert}}


async def _apply(client: Client, rd: Any, obj: JSON) -> None:
    with contextlib.suppress(errors.AlreadyExists):
        await client.create(rd, obj, (obj.get("metadata") or {}).get("namespace"))


async def _wait_ready(client: Client, name: str, within: float = 60) -> None:
    for _ in range(int(within * 10)):
        obj = await client.get(CDRS, name)
        ready = {c.get("type"): c.get("status") for c in (obj.get("status") or {}).get("conditions") or []}
        if ready.get("Ready") == "True":
            return
        await asyncio.sleep(0.1)
    raise SystemExit(f"route {name} not Ready in {within} s: {obj.get('status')}")


@contextlib.asynccontextmanager
async def gateways(client: Client, base: Path, keys: dict[str, rsa.RSAPrivateKey], party_ports: dict[str, int],
                   free_port: Any) -> AsyncIterator[dict[str, int]]:
    parties = list(party_ports)
    egress = {p: free_port() for p in parties}
    external = {p: free_port() for p in parties}
    for me in parties:
        peer = next(p for p in parties if p != me)
        await _apply(client, kinds.SERVICES, {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": f"psi-{me}", "namespace": me},
            "spec": {"ports": [{"name": "psi", "port": party_ports[me], "protocol": "TCP"}]}})
        await _apply(client, kinds.ENDPOINTS, {
            "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": f"psi-{me}", "namespace": me},
            "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "psi", "port": party_ports[me]}]}]})
        await _apply(client, kinds.SERVICES, {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": f"psi-{peer}-egress", "namespace": me, "labels": {"atoll.io/egress": "true"},
                         "annotations": {"atoll.io/egress-host": f"psi-{peer}.{peer}.svc",
                                         "atoll.io/egress-port": str(party_ports[peer]),
                                         "atoll.io/egress-domain": peer}},
            "spec": {"ports": [{"name": "psi", "port": egress[me], "protocol": "TCP"}]}})
    tasks = []
    try:
        for party in parties:
            listeners = ListenerOptions("127.0.0.1", external[party], "127.0.0.1", free_port())
            options = GatewayOptions(domain=party, domain_key=keys[party], run_dir=base / f"gw-{party}",
                                     instance=f"{party}-gw", listeners=listeners)
            module = GatewayModule(client, options)
            tasks.append(asyncio.create_task(module.run()))
            await asyncio.wait_for(module.ready.wait(), 30)
        for me in parties:
            peer = next(p for p in parties if p != me)
            await _apply(client, CDRS, {
                "apiVersion": "kuscia.secretflow/v1alpha1", "kind": "ClusterDomainRoute",
                "metadata": {"name": f"{me}-{peer}"},
                "spec": {"source": me, "destination": peer, "authenticationType": "Token",
                         "endpoint": {"host": "127.0.0.1",
                                      "ports": [{"name": "http", "port": external[peer], "protocol": "HTTP"}]},
                         "tokenConfig": {"tokenGenMethod": "RSA-GEN", "rollingUpdatePeriod": 0}}})
        for me in parties:
            peer = next(p for p in parties if p != me)
            await _wait_ready(client, f"{me}-{peer}")
        yield egress
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
