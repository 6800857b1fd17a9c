"""The ClusterDomainRoute ``Ready`` condition (Kuscia §2.2 reasons, plus actionable ones).

Kuscia's reasons are kept (``Success``, ``DestinationIsNotAuthrized`` — sic —,
``TokenNotGenerate``, ``DestinationUnreachable``, ``TokenRevisionNotMatch``,
``HeartBeatTimeout``). Kuscia users stay stuck on an empty READY; Atoll adds a reason per cause
they can fix: ``DomainNotFound``, ``DomainCertMissing``, ``NoLiveGateway`` and what the source
gateway learnt from the handshake (``EndpointRefused``, ``TLSMismatch``,
``HandshakeUnauthorized``, ``DestinationGatewayNotLoaded`` ...).
"""

from __future__ import annotations

from typing import Any

from atoll.api.timestamps import try_parse_time
from atoll.gateway.drstatus import PROBLEM_ANNOTATION, auth_type, base_status, tokens

JSON = dict[str, Any]
HEARTBEAT_TIMEOUT = 30.0
"""Twice the 15 s heartbeat."""
Condition = tuple[str, str, str]  # status, reason, message


def _problem(dr: JSON | None) -> Condition | None:
    text = ((dr or {}).get("metadata") or {}).get("annotations", {}).get(PROBLEM_ANNOTATION)
    if not text:
        return None
    reason, _, message = str(text).partition(": ")
    return "False", reason, message


def _last_beat(token: JSON) -> float:
    return try_parse_time(token.get("heartBeatTime")) or try_parse_time(token.get("revisionTime")) or 0.0


def ready_condition(
    cdr: JSON, source_dr: JSON | None, destination_dr: JSON | None, *, now: float, live_source_gateways: int,
    destination_is_partner: bool = False,
) -> Condition:  # fmt: skip
    spec = cdr.get("spec") or {}
    src, dst = spec.get("source"), spec.get("destination")
    if source_dr is None:
        return "False", "DomainRouteNotCreated", f"waiting for DomainRoute {src}/{src}-{dst}"
    if auth_type(cdr) != "Token":
        return "True", "Success", f"{auth_type(cdr)} route; no token needed"
    src_tokens = tokens(source_dr)
    if not src_tokens:
        problem = _problem(source_dr)
        if problem is not None:
            return problem
        if live_source_gateways == 0:
            return "False", "NoLiveGateway", f"no live Gateway in namespace {src}: is the gateway of {src} running?"
        if not base_status(source_dr).get("isDestinationAuthorized"):
            return "False", "DestinationIsNotAuthrized", f"handshake from {src} to {dst} in progress"
        return "False", "TokenNotGenerate", f"{src} has no token for {dst} yet"
    dst_tokens = tokens(destination_dr) if destination_dr is not None else []
    if destination_is_partner:
        return "True", "Success", ""
    if not dst_tokens:
        return "False", "TokenNotGenerate", f"{dst} has no token from {src} yet"
    ready = [t for t in dst_tokens if t.get("isReady")]
    if ready and all(now - _last_beat(t) > HEARTBEAT_TIMEOUT for t in ready):
        unreachable = (
            " (the source reports it unreachable)" if base_status(source_dr).get("isDestinationUnreachable") else ""
        )
        return "False", "HeartBeatTimeout", (
            f"no heartbeat from {src} reached {dst} for more than {HEARTBEAT_TIMEOUT:.0f} s{unreachable}: "
            f"is the gateway of {dst} running and reachable at the route's endpoint?"
        )  # fmt: skip
    if base_status(source_dr).get("isDestinationUnreachable"):
        return "False", "DestinationUnreachable", f"{src}'s gateway cannot reach {dst}'s gateway"
    if src_tokens[-1].get("revision") != dst_tokens[-1].get("revision"):
        return "False", "TokenRevisionNotMatch", (
            f"{src} uses token revision {src_tokens[-1].get('revision')}, {dst} has {dst_tokens[-1].get('revision')}"
        )  # fmt: skip
    return "True", "Success", ""
