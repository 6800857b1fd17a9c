"""The gateway's handshake server (Kuscia's port 1054): token handshakes and heartbeats.

Reached only through Envoy: the external listener sends ``Kuscia-Host:
kuscia-handshake.<domain>.svc`` here without a token check, the internal listener sends the
same host name here for the domain's own callers. Routes:

* ``POST /handshake`` — RSA-GEN: the source sends ``"kuscia"‖S`` encrypted with our public key;
  we add ``D``, store ``T = S‖D`` (encrypted with our own key) as the destination DomainRoute's
  ``revisionToken``, wait until every live gateway of ours has loaded it (the control plane flips
  it ready) and answer ``"kuscia"‖D`` encrypted with the source's key.
* ``GET /handshake`` with ``Kuscia-Token-Revision`` — the source's heartbeat; answers
  ``{namespace, state}`` and records ``heartBeatTime`` on that token.
* whatever ``extra_routes`` the node adds (contract C3: ``/register`` ... on the master).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from typing import Any

import orjson
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from atoll.api import errors
from atoll.api.clock import Clock
from atoll.api.timestamps import format_time
from atoll.client import Client, ClientError
from atoll.gateway import crypto
from atoll.gateway.drstatus import DOMAINROUTES, base_status, mutate_status, spec, token_status, tokens

log = logging.getLogger(__name__)
JSON = dict[str, Any]
FOREVER = 100 * 365 * 86400
# heartbeat states (Kuscia's enum)
TOKEN_READY, DOMAIN_ID_INVALID, REVISION_INVALID, TOKEN_NOT_READY, TOKEN_NOT_FOUND, NO_AUTHENTICATION = range(6)
INTERNAL_ERROR = 6


class HandshakeServer:
    def __init__(
        self,
        client: Client,
        domain: str,
        key: rsa.RSAPrivateKey,
        clock: Clock,
        *,
        extra_routes: Sequence[web.RouteDef] = (),
        ready_wait: float = 30.0,
    ) -> None:
        self.client, self.domain, self.key, self.clock = client, domain, key, clock
        self.public = crypto.public_key_b64(key.public_key())
        self.ready_wait = ready_wait
        self.app = web.Application()
        self.app.add_routes([web.post("/handshake", self.handshake), web.get("/handshake", self.heartbeat)])
        self.app.add_routes(list(extra_routes))
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.port = int(self._runner.addresses[0][1])
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- POST /handshake ------------------------------------------------------------------

    async def handshake(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
            source = str(body.get("domain_id") or request.headers.get("Kuscia-Source") or "")
            config = body.get("token_config") or {}
            return _ok(await self._negotiate(source, config))
        except _Refused as exc:
            log.warning("handshake from %s refused: %s", request.headers.get("Kuscia-Source", "?"), exc)
            return _failed(str(exc))
        except (orjson.JSONDecodeError, AttributeError, crypto.TokenCryptoError) as exc:
            return _failed(f"bad handshake request: {exc}")

    async def _negotiate(self, source: str, config: JSON) -> JSON:
        name = f"{source}-{self.domain}"
        try:
            dr = await self.client.get(DOMAINROUTES, name, self.domain)
        except errors.NotFound:
            raise _Refused(f"no DomainRoute {name} in namespace {self.domain} (no route from {source})") from None
        token_config = spec(dr).get("tokenConfig") or {}
        source_key = str(token_config.get("sourcePublicKey") or "")
        if not source_key or crypto.pubhash(source_key) != config.get("pubhash"):
            raise _Refused(f"the public key of {source} does not match DomainRoute {name} (Domain {source} spec.cert)")
        half_s = crypto.decrypt(self.key, str(config.get("token") or ""))
        if len(half_s) != crypto.HALF:
            raise _Refused("token half has the wrong length")
        half_d = os.urandom(crypto.HALF)
        period = int(token_config.get("rollingUpdatePeriod") or 0)
        now = self.clock.now()
        expiration = now + (2 * period if period > 0 else FOREVER)
        wanted = (
            max(int(config.get("revision") or 0), int(token_status(dr).get("revisionToken", {}).get("revision") or 0))
            + 1
        )
        stored = {
            "token": crypto.encrypt(self.public, half_s + half_d),
            "revision": wanted,
            "revisionTime": format_time(now),
            "expirationTime": format_time(expiration),
            "isReady": False,
            "effectiveInstances": [],
        }

        def put(current: JSON) -> JSON:
            status = base_status(current)
            status["tokenStatus"] = {**token_status(current), "revisionToken": stored}
            return status

        await mutate_status(self.client, self.domain, name, put)
        await self._wait_ready(name, wanted)
        return {
            "token": crypto.encrypt(source_key, half_d),
            "expiration_time": int(expiration * 1e9),
            "revision": wanted,
        }

    async def _wait_ready(self, name: str, revision: int) -> None:
        deadline = asyncio.get_running_loop().time() + self.ready_wait
        while asyncio.get_running_loop().time() < deadline:
            dr = await self.client.get(DOMAINROUTES, name, self.domain)
            if any(t.get("revision") == revision and t.get("isReady") for t in tokens(dr)):
                return
            await asyncio.sleep(0.05)
        raise _Refused(
            f"DestinationGatewayNotLoaded: the gateways of {self.domain} did not load token revision {revision} "
            f"within {self.ready_wait:.0f} s (is every live Gateway of {self.domain} running?)"
        )

    # -- GET /handshake (heartbeat) -------------------------------------------------------

    async def heartbeat(self, request: web.Request) -> web.Response:
        source = request.headers.get("Kuscia-Source") or request.headers.get("Kuscia-Origin-Source") or ""
        if not source:
            return _state(self.domain, DOMAIN_ID_INVALID)
        try:
            revision = int(request.headers.get("Kuscia-Token-Revision", ""))
        except ValueError:
            return _state(self.domain, REVISION_INVALID)
        name = f"{source}-{self.domain}"
        state = NO_AUTHENTICATION

        def beat(dr: JSON) -> JSON | None:
            nonlocal state
            listed = tokens(dr)
            match = next((t for t in listed if t.get("revision") == revision), None)
            if match is None:
                state = TOKEN_NOT_FOUND
                return None
            if not match.get("isReady"):
                state = TOKEN_NOT_READY
                return None
            state = TOKEN_READY
            match["heartBeatTime"] = format_time(self.clock.now())
            status = base_status(dr)
            status["tokenStatus"] = {**token_status(dr), "tokens": listed}
            return status

        try:
            if await mutate_status(self.client, self.domain, name, beat) is None:
                state = NO_AUTHENTICATION
        except (errors.APIError, ClientError) as exc:
            log.warning("heartbeat from %s: %s", source, exc)
            state = INTERNAL_ERROR
        return _state(self.domain, state)


class _Refused(Exception):
    pass


def _json(body: JSON) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def _ok(token: JSON) -> web.Response:
    return _json({"status": {"code": 0}, "token": token})


def _failed(message: str) -> web.Response:
    return _json({"status": {"code": 500, "message": message}})


def _state(namespace: str, state: int) -> web.Response:
    return _json({"namespace": namespace, "state": state})
