"""Reading and writing DomainRoute status from a gateway (optimistic, retried on conflict).

Several writers share a DomainRoute's status: the control-plane DomainRoute controller (rolling),
the gateways of both sides (tokens, effective instances, heartbeats). Each write is a
read-modify-write of ``/status`` guarded by ``resourceVersion``; a conflict re-reads and retries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from atoll.api import errors, kinds
from atoll.client import Client

JSON = dict[str, Any]
DOMAINROUTES = kinds.kind("kuscia.secretflow", "domainroutes")
GATEWAYS = kinds.kind("kuscia.secretflow", "gateways")
CLUSTERDOMAINROUTES = kinds.kind("kuscia.secretflow", "clusterdomainroutes")
PROBLEM_ANNOTATION = "atoll.io/route-problem"
"""Set by the source gateway on its DomainRoute when a handshake fails: ``<Reason>: <message>``."""


def spec(dr: JSON) -> JSON:
    value = dr.get("spec")
    return value if isinstance(value, dict) else {}


def token_status(dr: JSON) -> JSON:
    value = (dr.get("status") or {}).get("tokenStatus")
    return value if isinstance(value, dict) else {}


def tokens(dr: JSON) -> list[JSON]:
    return [t for t in token_status(dr).get("tokens") or [] if isinstance(t, dict)]


def auth_type(dr: JSON) -> str:
    return str(spec(dr).get("authenticationType") or "Token")


def base_status(dr: JSON) -> JSON:
    status = dict(dr.get("status") or {})
    status.setdefault("isDestinationAuthorized", False)
    status.setdefault("isDestinationUnreachable", False)
    return status


async def mutate_status(
    client: Client, namespace: str, name: str, change: Callable[[JSON], JSON | None], attempts: int = 8
) -> JSON | None:
    """Apply ``change(dr) -> new status | None (nothing to do)`` to the live object; None if gone."""
    for _ in range(attempts):
        try:
            dr = await client.get(DOMAINROUTES, name, namespace)
        except errors.NotFound:
            return None
        status = change(dr)
        if status is None:
            return dr
        try:
            return await client.update(DOMAINROUTES, {**dr, "status": status}, subresource="status")
        except errors.Conflict:
            continue
        except errors.NotFound:
            return None
    raise errors.Conflict(f"domainroute {namespace}/{name}: status kept changing; gave up after {attempts} tries")


async def set_problem(client: Client, namespace: str, name: str, problem: str | None) -> None:
    """Record (or clear) why the last handshake failed, for the ClusterDomainRoute's Ready message."""
    try:
        dr = await client.get(DOMAINROUTES, name, namespace)
    except errors.NotFound:
        return
    current = ((dr.get("metadata") or {}).get("annotations") or {}).get(PROBLEM_ANNOTATION)
    if current == problem:
        return
    patch = {"metadata": {"annotations": {PROBLEM_ANNOTATION: problem}}}
    try:
        await client.patch(DOMAINROUTES, name, patch, namespace)
    except errors.NotFound:
        pass
