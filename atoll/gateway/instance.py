"""This gateway's ``Gateway`` object (Kuscia §1.4): one per instance, heartbeat every 15 s.

A Gateway is *live* while its ``heartbeatTime`` is younger than 3 minutes; the control plane
picks handshake initiators among live gateways and marks a token ready only when every live
gateway of the destination has loaded it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from atoll.api import errors
from atoll.api.clock import Clock
from atoll.api.timestamps import format_time, try_parse_time
from atoll.client import Client, ClientError
from atoll.gateway.drstatus import GATEWAYS
from atoll.gateway.model import PeerRoute

log = logging.getLogger(__name__)
JSON = dict[str, Any]
HEARTBEAT_PERIOD = 15.0
LIVE_TIMEOUT = 180.0


def is_live(gateway: JSON, now: float, live_timeout: float = LIVE_TIMEOUT) -> bool:
    beat = try_parse_time((gateway.get("status") or {}).get("heartbeatTime"))
    return beat is not None and now - beat < live_timeout


def network_status(stats: str, source: str, peers: Iterable[PeerRoute]) -> list[JSON]:
    """``status.networkStatus``: per route cluster (Kuscia's name ``<src>-to-<dst>-<port>``) the
    endpoints Envoy knows and how many pass its 15 s health check (admin ``/stats`` text)."""
    values: dict[str, int] = {}
    for line in stats.splitlines():
        name, _, value = line.partition(": ")
        if name.startswith("cluster.to-") and value.strip().isdigit():
            values[name] = int(value)
    out = []
    for peer in sorted(peers, key=lambda p: p.destination):
        prefix = f"cluster.{peer.cluster}."
        out.append({
            "name": f"{source}-to-{peer.destination}-{peer.port_name or 'default'}",
            "type": "DomainRoute",
            "totalEndpointsCount": values.get(prefix + "membership_total", 0),
            "healthyEndpointsCount": values.get(prefix + "membership_healthy", 0),
        })  # fmt: skip
    return out


async def beat_once(client: Client, namespace: str, name: str, status: JSON) -> None:
    try:
        current = await client.get(GATEWAYS, name, namespace)
    except errors.NotFound:
        body = {"apiVersion": "kuscia.secretflow/v1alpha1", "kind": "Gateway",
                "metadata": {"name": name, "namespace": namespace}}  # fmt: skip
        current = await client.create(GATEWAYS, body, namespace)
    await client.update(GATEWAYS, {**current, "status": status}, subresource="status")


async def heartbeat(
    client: Client,
    namespace: str,
    name: str,
    clock: Clock,
    *,
    address: str,
    public_key: str,
    version: str,
    period: float = HEARTBEAT_PERIOD,
    network: Callable[[], Awaitable[list[JSON]]] | None = None,
) -> None:
    """Create/refresh the Gateway every ``period`` seconds of ``clock`` until cancelled."""
    uptime = format_time(clock.now())
    while True:
        status: JSON = {"address": address, "uptime": uptime, "heartbeatTime": format_time(clock.now()),
                  "publicKey": public_key, "version": version}  # fmt: skip
        if network is not None:
            status["networkStatus"] = await network()
        try:
            await beat_once(client, namespace, name, status)
        except (errors.APIError, ClientError) as exc:  # the master restarting, say: beat again next period
            log.warning("gateway %s/%s heartbeat: %s", namespace, name, exc)
        await clock.sleep(period)
