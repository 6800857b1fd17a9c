"""DomainRoute reconciler (control-plane side of Kuscia §2.3): who negotiates, when to roll,
when a token is ready.

Source copy: picks a live Gateway of the source as ``revisionInitializer`` and, when the ready
token is older than ``rollingUpdatePeriod`` (or past its expiration, or a negotiation is stuck
for 2 min), resets ``revisionToken`` so the initializer negotiates a new one; a negotiated token
is appended to ``tokens`` (the newest two are kept: the old one stays valid while the source
switches). Destination copy: appends the handshake's ``revisionToken`` to ``tokens`` and marks
the newest token ready once every live destination gateway lists itself in
``effectiveInstances`` (i.e. its Envoy ACKed a config with that token).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from atoll.api import errors
from atoll.api.clock import Clock
from atoll.api.timestamps import format_time, try_parse_time
from atoll.client import Client
from atoll.gateway.drstatus import DOMAINROUTES, auth_type, base_status, spec, token_status, tokens
from atoll.gateway.instance import is_live
from atoll.runtime import Cache, ObjectKey, Result, get_logger

JSON = dict[str, Any]
log = get_logger(__name__)
STUCK_SECONDS = 120.0
EXPIRED_GRACE = 120.0


@dataclass(slots=True)
class Caches:
    domainroutes: Cache
    gateways: Cache


class DomainRouteReconciler:
    def __init__(self, client: Client, caches: Caches, clock: Clock, *, monitor_period: float = 5.0) -> None:
        self.client, self.c, self.clock, self.monitor_period = client, caches, clock, monitor_period

    def _live(self, namespace: str) -> list[str]:
        now = self.clock.now()
        return sorted(str(g["metadata"]["name"]) for g in self.c.gateways.list(namespace) if is_live(g, now))

    async def reconcile(self, key: ObjectKey) -> Result:
        dr = self.c.domainroutes.get(key.name, key.namespace)
        if dr is None or auth_type(dr) != "Token":
            return Result()
        keys = spec(dr).get("tokenConfig") or {}
        if not keys.get("sourcePublicKey") or not keys.get("destinationPublicKey"):
            return Result()  # the ClusterDomainRoute controller fills them in
        if key.namespace == spec(dr).get("source"):
            status, wait = self._source(dr)
        elif key.namespace == spec(dr).get("destination"):
            status, wait = self._destination(dr), self.monitor_period
        else:
            return Result()
        if status is not None:
            try:
                await self.client.update(DOMAINROUTES, {**dr, "status": status}, subresource="status")
            except (errors.Conflict, errors.NotFound):
                pass  # a newer version arrives as an event
        return Result(requeue_after=max(0.2, min(wait, self.monitor_period)))

    def _source(self, dr: JSON) -> tuple[JSON | None, float]:
        ts = dict(token_status(dr))
        rt = ts.get("revisionToken") or None
        now = self.clock.now()
        live = self._live(str(spec(dr)["source"]))
        if not live:
            return None, self.monitor_period
        period = int((spec(dr).get("tokenConfig") or {}).get("rollingUpdatePeriod") or 0)
        initializer = ts.get("revisionInitializer") if ts.get("revisionInitializer") in live else live[0]
        started = try_parse_time((rt or {}).get("revisionTime")) or 0.0
        expires = try_parse_time((rt or {}).get("expirationTime"))
        due = started + period if period > 0 else float("inf")
        if expires is not None:
            due = min(due, expires)
        if (
            rt is None
            or (not rt.get("isReady") and now - started > STUCK_SECONDS)
            or (rt.get("isReady") and now >= due)
        ):
            revision = int((rt or {}).get("revision") or 0)
            fresh = {"revision": revision, "revisionTime": format_time(now), "isReady": False, "token": ""}
            ts.update(revisionInitializer=initializer, revisionToken=fresh)
            log.info("route %s: new token negotiation by %s", dr["metadata"]["name"], initializer)
            return {**base_status(dr), "tokenStatus": ts}, self.monitor_period
        if initializer != ts.get("revisionInitializer"):
            ts["revisionInitializer"] = initializer
            return {**base_status(dr), "tokenStatus": ts}, self.monitor_period
        listed = tokens(dr)
        if rt.get("isReady") and rt.get("token") and rt.get("revision") not in {t.get("revision") for t in listed}:
            ts["tokens"] = [*listed, dict(rt)][-2:]
            return {**base_status(dr), "tokenStatus": ts}, self.monitor_period
        return None, due - now if rt.get("isReady") else self.monitor_period

    def _destination(self, dr: JSON) -> JSON | None:
        ts = dict(token_status(dr))
        rt = ts.get("revisionToken") or {}
        listed = tokens(dr)
        now = self.clock.now()
        changed = False
        if len(listed) == 2 and (try_parse_time(listed[0].get("expirationTime")) or now) + EXPIRED_GRACE < now:
            listed = listed[1:]
            changed = True
        revisions = {t.get("revision") for t in listed}
        expires = try_parse_time(rt.get("expirationTime"))
        if rt.get("token") and rt.get("revision") not in revisions and (expires is None or expires > now):
            listed = [*listed, {**rt, "effectiveInstances": []}][-2:]
            changed = True
        live = set(self._live(str(spec(dr)["destination"])))
        if (
            listed
            and not listed[-1].get("isReady")
            and live
            and live <= set(listed[-1].get("effectiveInstances") or [])
        ):
            listed[-1] = {**listed[-1], "isReady": True}
            if rt.get("revision") == listed[-1].get("revision"):
                ts["revisionToken"] = {**rt, "isReady": True}
            changed = True
        if not changed:
            return None
        ts["tokens"] = listed
        return {**base_status(dr), "tokenStatus": ts}
