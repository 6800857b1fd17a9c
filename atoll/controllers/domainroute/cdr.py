"""ClusterDomainRoute reconciler (Kuscia §2.2): public keys, one DomainRoute per own side, status.

Steps, each returning after a write: labels; ``tokenConfig`` public keys from the Domains'
``spec.cert``; a DomainRoute ``<src>-<dst>`` (owned by the CDR) in every side that is not a
partner — re-created when its endpoint or keys change (which resets its tokens), its spec
replaced otherwise; finally ``status`` (copies of both sides' tokens, the ``Ready`` condition).
Re-evaluated every ``monitor_period`` seconds, so heartbeat timeouts show without an event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from atoll.api import errors, kinds
from atoll.api.clock import Clock
from atoll.api.timestamps import format_time
from atoll.client import Client
from atoll.controllers.domainroute.ready import ready_condition
from atoll.gateway.crypto import TokenCryptoError, public_key_of_cert
from atoll.gateway.drstatus import CLUSTERDOMAINROUTES, DOMAINROUTES, auth_type, tokens
from atoll.gateway.instance import is_live
from atoll.runtime import Cache, ObjectKey, Result, get_logger

JSON = dict[str, Any]
log = get_logger(__name__)
LABEL_SOURCE = "kuscia.secretflow/clusterdomainroute-source"
LABEL_DESTINATION = "kuscia.secretflow/clusterdomainroute-destination"
LABEL_PARTNER = "kuscia.secertflow/domainroute-partner"  # sic: Kuscia's spelling


@dataclass(slots=True)
class Caches:
    cdrs: Cache
    domains: Cache
    domainroutes: Cache
    gateways: Cache


def _is_partner(domain: JSON | None) -> bool:
    return ((domain or {}).get("spec") or {}).get("role") == "partner"


class ClusterDomainRouteReconciler:
    def __init__(self, client: Client, caches: Caches, clock: Clock, *, monitor_period: float = 5.0) -> None:
        self.client, self.c, self.clock, self.monitor_period = client, caches, clock, monitor_period

    async def reconcile(self, key: ObjectKey) -> Result:
        cdr = self.c.cdrs.get(key.name)
        if cdr is None or (cdr.get("metadata") or {}).get("deletionTimestamp"):
            return Result()
        spec = cdr.get("spec") or {}
        src, dst = str(spec.get("source") or ""), str(spec.get("destination") or "")
        if await self._labels(cdr, src, dst):
            return Result()
        problem = self._key_problem(src, dst) if auth_type(cdr) == "Token" else None
        if problem is None and await self._keys(cdr, src, dst):
            return Result()
        if problem is None:
            for side in (src, dst):
                if not _is_partner(self.c.domains.get(side)):
                    await self._ensure_route(cdr, side)
        await self._status(cdr, src, dst, problem)
        return Result(requeue_after=self.monitor_period)

    async def _labels(self, cdr: JSON, src: str, dst: str) -> bool:
        wanted = {LABEL_SOURCE: src, LABEL_DESTINATION: dst}
        for side in (src, dst):
            if _is_partner(self.c.domains.get(side)):
                wanted[LABEL_PARTNER] = side
        labels = (cdr.get("metadata") or {}).get("labels") or {}
        patch = {k: v for k, v in wanted.items() if labels.get(k) != v}
        if patch:
            await self.client.patch(CLUSTERDOMAINROUTES, cdr["metadata"]["name"], {"metadata": {"labels": patch}})
        return bool(patch)

    def _key_problem(self, src: str, dst: str) -> tuple[str, str] | None:
        for side in (src, dst):
            domain = self.c.domains.get(side)
            if domain is None:
                return "DomainNotFound", f"Domain {side} does not exist: create Domain {side} (with spec.cert) first"
            cert = (domain.get("spec") or {}).get("cert")
            if not cert:
                return "DomainCertMissing", (
                    f"Domain {side} has no spec.cert: its public key is needed for the token handshake "
                    f"(a lite gets it at registration; a partner's must be set by hand)"
                )  # fmt: skip
            try:
                public_key_of_cert(str(cert))
            except TokenCryptoError as exc:
                return "DomainCertInvalid", f"Domain {side} spec.cert: {exc}"
        return None

    async def _keys(self, cdr: JSON, src: str, dst: str) -> bool:
        if auth_type(cdr) != "Token":
            return False
        config = dict((cdr.get("spec") or {}).get("tokenConfig") or {})
        wanted = {
            "sourcePublicKey": public_key_of_cert(str(self.c.domains.get(src, None)["spec"]["cert"])),  # type: ignore[index]
            "destinationPublicKey": public_key_of_cert(str(self.c.domains.get(dst, None)["spec"]["cert"])),  # type: ignore[index]
        }
        config.setdefault("tokenGenMethod", "RSA-GEN")
        if all(config.get(k) == v for k, v in wanted.items()) and (cdr["spec"].get("tokenConfig") or {}) == config:
            return False
        await self.client.patch(
            CLUSTERDOMAINROUTES, cdr["metadata"]["name"], {"spec": {"tokenConfig": {**config, **wanted}}}
        )
        return True

    async def _ensure_route(self, cdr: JSON, namespace: str) -> None:
        meta = cdr["metadata"]
        name = str(meta["name"])
        owner = {"apiVersion": "kuscia.secretflow/v1alpha1", "kind": "ClusterDomainRoute", "name": name,
                 "uid": meta.get("uid"), "controller": True, "blockOwnerDeletion": True}  # fmt: skip
        desired: JSON = {
            "apiVersion": "kuscia.secretflow/v1alpha1",
            "kind": "DomainRoute",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(meta.get("labels") or {}),
                         "ownerReferences": [owner]},
            "spec": cdr.get("spec") or {},
        }  # fmt: skip
        current = self.c.domainroutes.get(name, namespace)
        try:
            if current is None:
                await self.client.create(DOMAINROUTES, desired, namespace)
                return
            have: JSON = current.get("spec") or {}
            want: JSON = desired["spec"]
            keys = ("sourcePublicKey", "destinationPublicKey")
            if have.get("endpoint") != want.get("endpoint") or any(
                (have.get("tokenConfig") or {}).get(k) != (want.get("tokenConfig") or {}).get(k) for k in keys
            ):
                log.info("domainroute %s/%s: endpoint or keys changed; re-creating it", namespace, name)
                await self.client.delete(DOMAINROUTES, name, namespace)
            elif have != want:
                await self.client.update(DOMAINROUTES, {**current, "spec": want})
        except (errors.AlreadyExists, errors.Conflict, errors.NotFound):
            pass  # the cache was behind; the next event converges

    async def _status(self, cdr: JSON, src: str, dst: str, problem: tuple[str, str] | None) -> None:
        name = str(cdr["metadata"]["name"])
        source_dr = self.c.domainroutes.get(name, src)
        destination_dr = self.c.domainroutes.get(name, dst)
        now = self.clock.now()
        if problem is not None:
            condition = ("False", *problem)
        else:
            live = sum(1 for g in self.c.gateways.list(src) if is_live(g, now))
            condition = ready_condition(cdr, source_dr, destination_dr, now=now, live_source_gateways=live,
                                        destination_is_partner=_is_partner(self.c.domains.get(dst)))  # fmt: skip
        status = dict(cdr.get("status") or {})
        src_tokens, dst_tokens = tokens(source_dr or {}), tokens(destination_dr or {})
        token_status: JSON = {"sourceTokens": src_tokens, "destinationTokens": dst_tokens}
        if src_tokens:
            token_status["revision"] = src_tokens[-1].get("revision")
            token_status["revisionTime"] = src_tokens[-1].get("revisionTime")
        status["tokenStatus"] = token_status
        endpoints = self._endpoint_statuses(cdr, src, dst, now)
        if endpoints:
            status["endpointStatuses"] = endpoints
        status["conditions"] = _conditions(status.get("conditions") or [], condition, format_time(now))
        if status == (cdr.get("status") or {}):
            return
        try:
            await self.client.update(CLUSTERDOMAINROUTES, {**cdr, "status": status}, subresource="status")
        except (errors.Conflict, errors.NotFound):
            pass

    def _endpoint_statuses(self, cdr: JSON, src: str, dst: str, now: float) -> JSON:
        """Kuscia's monitor: per live source gateway and port, whether its Envoy health-checks
        the destination's endpoint as healthy (from the Gateway's ``networkStatus``)."""
        ports = ((cdr.get("spec") or {}).get("endpoint") or {}).get("ports") or [{}]
        port = str(ports[0].get("name") or "default")
        out: JSON = {}
        for gateway in self.c.gateways.list(src):
            if not is_live(gateway, now):
                continue
            for entry in (gateway.get("status") or {}).get("networkStatus") or []:
                if entry.get("name") == f"{src}-to-{dst}-{port}" and entry.get("type") == "DomainRoute":
                    healthy = int(entry.get("healthyEndpointsCount") or 0) > 0
                    out[f"{gateway['metadata']['name']}-{port}"] = {"endpointHealthy": healthy}
        return out


def _conditions(current: list[JSON], condition: tuple[str, str, str], now: str) -> list[JSON]:
    status, reason, message = condition
    old = next((c for c in current if c.get("type") == "Ready"), None)
    if old is not None and (old.get("status"), old.get("reason"), old.get("message")) == condition:
        return current
    changed = old is None or old.get("status") != status
    ready = {
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": now,
        "lastTransitionTime": now if changed else old.get("lastTransitionTime", now),  # type: ignore[union-attr]
    }
    return [c for c in current if c.get("type") != "Ready"] + [ready]


__all__ = ["Caches", "ClusterDomainRouteReconciler", "kinds"]
