"""The source side of a DomainRoute: the RSA-GEN handshake and the 15 s heartbeat.

Only the gateway named ``revisionInitializer`` negotiates, through its own Envoy (internal
listener, Host ``kuscia-handshake.<dst>.svc``), so the request takes the real route to the
destination. A failure is classified into a reason a user can act on (endpoint refused,
TLS/plaintext mismatch, 401 from something that is not the destination's gateway, destination
gateways not loading the token) and recorded on the DomainRoute for the ClusterDomainRoute's
``Ready`` condition; the handshake is retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
from cryptography.hazmat.primitives.asymmetric import rsa

from atoll.api import errors
from atoll.api.clock import Clock
from atoll.api.timestamps import format_time
from atoll.client import ClientError
from atoll.gateway import crypto
from atoll.gateway.drstatus import base_status, mutate_status, set_problem, spec, token_status, tokens

log = logging.getLogger(__name__)
JSON = dict[str, Any]
HEARTBEAT_PERIOD = 15.0
TOKEN_READY, TOKEN_NOT_FOUND, NO_AUTHENTICATION = 0, 4, 5


class HandshakeFailed(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason, self.message = reason, message


def classify(status: int, body: str, error_header: str, endpoint: str, tls: bool) -> HandshakeFailed:
    """Why a handshake answer is not a token, in words a user can act on."""
    details = f"{body} {error_header}"
    if status == 401:
        return HandshakeFailed(
            "HandshakeUnauthorized",
            f"{endpoint} answered 401 unauthorized. ({error_header or 'no Kuscia-Error-Message'}): it is not the "
            "destination's gateway or does not serve its handshake; check the route's endpoint host and port",
        )
    if "TLS" in details or "SSL" in details or "WRONG_VERSION_NUMBER" in details:
        return HandshakeFailed(
            "TLSMismatch",
            f"TLS handshake with {endpoint} failed ({body.strip()}): the endpoint speaks plaintext; "
            "set isTLS: false on the route's endpoint port (or enable TLS on the destination gateway)",
        )
    if "connection_refused" in details or "remote_connection_failure" in details or "delayed_connect_error" in details:
        return HandshakeFailed(
            "EndpointRefused",
            f"nothing accepts connections at {endpoint}: is the destination gateway running and the port right?",
        )
    if not tls and ("connection_termination" in details or "protocol_error" in details or status == 400):
        return HandshakeFailed(
            "TLSMismatch",
            f"{endpoint} closed the plaintext connection: it probably expects TLS; set isTLS: true on the "
            "route's endpoint port",
        )
    return HandshakeFailed("DestinationUnreachable", f"{endpoint} answered HTTP {status}: {body.strip()[:200]}")


class Initiator:
    """Handshakes and heartbeats for the DomainRoutes this gateway initiates."""

    def __init__(
        self,
        client: Any,
        domain: str,
        instance: str,
        key: rsa.RSAPrivateKey,
        clock: Clock,
        internal_url: Callable[[], str],
        *,
        heartbeat_period: float = HEARTBEAT_PERIOD,
    ) -> None:
        self.client, self.domain, self.instance, self.key, self.clock = client, domain, instance, key, clock
        self.public = crypto.public_key_b64(key.public_key())
        self.internal_url = internal_url
        self.heartbeat_period = heartbeat_period
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.routes: dict[str, JSON] = {}  # name -> latest source DomainRoute seen
        self._session: aiohttp.ClientSession | None = None

    # -- called by the gateway's reconciler ------------------------------------------------

    def update(self, routes: list[JSON]) -> None:
        self.routes = {str(dr["metadata"]["name"]): dr for dr in routes}
        for name, dr in self.routes.items():
            ts = token_status(dr)
            wanted = (
                ts.get("revisionInitializer") == self.instance
                and not (ts.get("revisionToken") or {}).get("token")
                and "revisionToken" in ts
            )
            task = self._tasks.get(name)
            if wanted and (task is None or task.done()):
                self._tasks[name] = asyncio.create_task(self._negotiate(name), name=f"handshake/{name}")
        for name in [n for n in self._tasks if n not in self.routes]:
            self._tasks.pop(name).cancel()

    async def run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=45)) as session:
            self._session = session
            try:
                while True:
                    await self.clock.sleep(self.heartbeat_period)
                    await asyncio.gather(*(self._heartbeat(dr) for dr in list(self.routes.values())))
            finally:
                for task in self._tasks.values():
                    task.cancel()
                self._session = None

    # -- handshake -------------------------------------------------------------------------

    async def _negotiate(self, name: str) -> None:
        delay = 0.5
        while True:
            dr = self.routes.get(name)
            ts = token_status(dr or {})
            if (
                dr is None
                or ts.get("revisionInitializer") != self.instance
                or (ts.get("revisionToken") or {}).get("token")
            ):
                return
            try:
                await self._handshake(dr)
                await set_problem(self.client, self.domain, name, None)
                return
            except HandshakeFailed as exc:
                log.warning("handshake %s: %s", name, exc)
                with contextlib.suppress(Exception):
                    await set_problem(self.client, self.domain, name, str(exc))
            except (errors.APIError, ClientError) as exc:  # the control plane is away (restarting): retry
                log.warning("handshake %s: %s", name, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _handshake(self, dr: JSON) -> None:
        s = spec(dr)
        destination = str(s["destination"])
        keys = s.get("tokenConfig") or {}
        if keys.get("sourcePublicKey") != self.public:
            raise HandshakeFailed(
                "KeyMismatch",
                f"the route's sourcePublicKey is not this gateway's domain key: Domain {self.domain} spec.cert "
                "does not match domainKeyData",
            )
        half_s = os.urandom(crypto.HALF)
        revision = int((token_status(dr).get("revisionToken") or {}).get("revision") or 0)
        payload = {
            "domain_id": self.domain,
            "type": "RSA",
            "request_time": time.time_ns(),
            "token_config": {
                "token": crypto.encrypt(str(keys.get("destinationPublicKey")), half_s),
                "revision": revision,
                "pubhash": crypto.pubhash(self.public),
            },
        }
        answer = await self._post(dr, destination, payload)
        token = answer.get("token") or {}
        half_d = crypto.decrypt(self.key, str(token.get("token") or ""))
        raw = half_s + half_d
        now = self.clock.now()
        expiration = int(token.get("expiration_time") or 0) / 1e9
        stored = {
            "token": crypto.encrypt(self.public, raw),
            "revision": int(token.get("revision") or revision),
            "revisionTime": format_time(now),
            "expirationTime": format_time(expiration or now + 100 * 365 * 86400),
            "isReady": True,
            "effectiveInstances": [],
        }

        def put(current: JSON) -> JSON:
            status = base_status(current)
            status.update(isDestinationAuthorized=True, isDestinationUnreachable=False)
            status["tokenStatus"] = {**token_status(current), "revisionToken": stored}
            return status

        await mutate_status(self.client, self.domain, str(dr["metadata"]["name"]), put)
        log.info("route %s: token revision %s negotiated", dr["metadata"]["name"], stored["revision"])

    async def _post(self, dr: JSON, destination: str, payload: JSON) -> JSON:
        endpoint = _endpoint(dr)
        tls = bool(((spec(dr).get("endpoint") or {}).get("ports") or [{}])[0].get("isTLS"))
        headers = {"Host": f"kuscia-handshake.{destination}.svc", "Kuscia-Source": self.domain}
        assert self._session is not None, "Initiator.run() is not running"
        try:
            async with self._session.post(
                f"{self.internal_url()}/handshake", data=orjson.dumps(payload), headers=headers
            ) as response:
                body = await response.text()
                if response.status == 200:
                    answer = orjson.loads(body)
                    status = answer.get("status") or {}
                    if status.get("code", 0) == 0:
                        return dict(answer)
                    message = str(status.get("message") or "")
                    reason, _, rest = message.partition(": ")
                    if reason == "DestinationGatewayNotLoaded":
                        raise HandshakeFailed(reason, rest)
                    raise HandshakeFailed("HandshakeRefused", f"{destination} refused the handshake: {message}")
                raise classify(response.status, body, response.headers.get("Kuscia-Error-Message", ""), endpoint, tls)
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
            raise HandshakeFailed("LocalGatewayUnavailable", f"this domain's gateway did not answer: {exc}") from None

    # -- heartbeat -------------------------------------------------------------------------

    async def _heartbeat(self, dr: JSON) -> None:
        ts = token_status(dr)
        listed = tokens(dr)
        if ts.get("revisionInitializer") != self.instance or not listed or self._session is None:
            return
        destination = str(spec(dr)["destination"])
        headers = {
            "Host": f"kuscia-handshake.{destination}.svc",
            "Kuscia-Source": self.domain,
            "Kuscia-Token-Revision": str(listed[-1].get("revision")),
        }
        state: int | None = None
        try:
            async with self._session.get(
                f"{self.internal_url()}/handshake", headers=headers, timeout=aiohttp.ClientTimeout(total=5)
            ) as response:
                if response.status == 200:
                    state = int(orjson.loads(await response.read()).get("state", -1))
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError, ValueError):
            state = None
        name = str(dr["metadata"]["name"])
        try:
            await mutate_status(self.client, self.domain, name, lambda cur: _after_beat(cur, state))
        except (errors.APIError, ClientError) as exc:  # the control plane is away (restarting): next beat
            log.warning("route %s heartbeat: %s", name, exc)


def _after_beat(dr: JSON, state: int | None) -> JSON | None:
    status = base_status(dr)
    unreachable = state is None
    if state == TOKEN_NOT_FOUND:
        status["tokenStatus"] = {}
    elif state == NO_AUTHENTICATION:
        status["tokenStatus"] = {}
        status["isDestinationAuthorized"] = False
    elif status.get("isDestinationUnreachable") == unreachable:
        return None
    status["isDestinationUnreachable"] = unreachable
    return status


def _endpoint(dr: JSON) -> str:
    endpoint = spec(dr).get("endpoint") or {}
    port = ((endpoint.get("ports") or [{}])[0]).get("port")
    return f"{endpoint.get('host') or '(master endpoint)'}:{port or ''}".rstrip(":")
