"""This gateway's ``Gateway`` object (Kuscia §1.4): one per instance, heartbeat every 15 s.

A Gateway is *live* while its ``heartbeatTime`` is younger than 3 minutes; the control plane
picks handshake initiators among live gateways and marks a token ready only when every live
gateway of the destination has loaded it.
"""

from __future__ import annotations

import logging
from typing import Any

from atoll.api import errors
from atoll.client import Client
from atoll.gateway.drstatus import GATEWAYS
from atoll.runtime.clock import Clock, parse_rfc3339, rfc3339

log = logging.getLogger(__name__)
JSON = dict[str, Any]
HEARTBEAT_PERIOD = 15.0
LIVE_TIMEOUT = 180.0


def is_live(gateway: JSON, now: float, live_timeout: float = LIVE_TIMEOUT) -> bool:
    beat = parse_rfc3339((gateway.get("status") or {}).get("heartbeatTime"))
    return beat is not None and now - beat < live_timeout


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
) -> None:
    """Create/refresh the Gateway every ``period`` seconds of ``clock`` until cancelled."""
    uptime = rfc3339(clock.now())
    while True:
        status = {"address": address, "uptime": uptime, "heartbeatTime": rfc3339(clock.now()),
                  "publicKey": public_key, "version": version}  # fmt: skip
        try:
            await beat_once(client, namespace, name, status)
        except errors.APIError as exc:
            log.warning("gateway %s/%s heartbeat: %s", namespace, name, exc)
        await clock.sleep(period)
