"""The lite side of registration (Kuscia §3.6): run once by ``atoll start`` of a lite.

A lite whose ``<dataDir>/pki/registration.json`` exists is registered and starts at once. Otherwise
it sends a ``RegisterRequest`` (:mod:`atoll.node.registration_messages`) to ``masterEndpoint``
and stores what the master returns — the domain certificate, the node certificate, the master CA
and public key — each written atomically; ``registration.json`` comes last, so a node killed
half-way simply registers again (the master recognises its key and answers without a token).
Any failure raises :class:`RegistrationError` with one line saying what to do, and writes nothing.

TLS to the master endpoint before registration is trust-on-first-use, like Kuscia (the lite has
no CA yet): the one-time deploy token and the request's JWT are what authenticate the lite.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from typing import Any

import orjson

from atoll.api import errors
from atoll.client import Client
from atoll.client.errors import ClientConnectionError, ClientTimeoutError
from atoll.files import write_atomic
from atoll.node.config import ConfigError, NodeConfig, domain_key
from atoll.node.pki import node_pki
from atoll.node.registration_messages import (
    HANDSHAKE_HOST,
    JWT_HEADER,
    REGISTER_PATH,
    register_request,
    unb64,
)

JSON = dict[str, Any]
TIMEOUT_SECONDS = 15.0


class RegistrationError(ConfigError):
    """Registration failed; the message is the one line the CLI prints."""


@dataclass(frozen=True, slots=True)
class Registration:
    apiserver: str
    node_name: str


def load_registration(config: NodeConfig) -> Registration | None:
    path = node_pki(config).registration
    if not path.exists():
        return None
    doc = orjson.loads(path.read_bytes())
    return Registration(str(doc["apiserver"]), str(doc["node_name"]))


def _tofu_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _transport_problem(endpoint: str, exc: Exception) -> str:
    text = str(exc)
    if endpoint.startswith("https") and ("SSL" in text or "WRONG_VERSION" in text or "record layer" in text):
        return (f"masterEndpoint {endpoint}: TLS handshake failed — does the master speak plain HTTP "
                f"(protocol NOTLS)? then use http://")
    if endpoint.startswith("http:") and ("disconnected" in text.lower() or "reset" in text.lower()):
        return f"masterEndpoint {endpoint}: the master closed the connection — does it expect TLS? then use https://"
    if isinstance(exc, ClientTimeoutError):
        return f"masterEndpoint {endpoint}: no answer within {TIMEOUT_SECONDS:.0f} s"
    reason = text.split(": ", 1)[-1] if ": " in text else text
    return f"masterEndpoint {endpoint}: master unreachable ({reason})"


async def register(config: NodeConfig, node_name: str) -> Registration:
    """Register this lite with its master and store the result; see the module docstring."""
    endpoint = config.master_endpoint
    if not endpoint:
        raise RegistrationError("masterEndpoint: required for a lite (or use kubeconfig to join directly)")
    body, signed = register_request(domain_key(config), config.domain_id, config.lite_deploy_token, node_name)
    client = Client(
        endpoint,
        ssl_context=_tofu_context() if endpoint.startswith("https") else None,
        headers={JWT_HEADER: signed, "Kuscia-Host": HANDSHAKE_HOST},
        timeout=TIMEOUT_SECONDS,
        user_agent=f"atoll-lite/{config.domain_id}",
    )
    try:
        async with client:
            reply = await client.request("POST", REGISTER_PATH, body=body)
    except (ClientConnectionError, ClientTimeoutError) as exc:
        raise RegistrationError(_transport_problem(endpoint, exc)) from None
    except errors.APIError as exc:
        raise RegistrationError(f"registration of {config.domain_id} refused by the master: {exc.message}") from None
    if not isinstance(reply, dict):
        raise RegistrationError(f"masterEndpoint {endpoint}: not an Atoll/Kuscia master (unexpected answer)")
    return _store(config, reply, node_name)


def _store(config: NodeConfig, reply: JSON, node_name: str) -> Registration:
    pki = node_pki(config)
    try:
        files = {
            pki.domain_cert: unb64(reply.get("cert"), "cert"),
            pki.node_cert: unb64(reply.get("node_cert"), "node_cert"),
            pki.ca_cert: unb64(reply.get("ca_cert"), "ca_cert"),
            pki.master_pub: unb64(reply.get("master_pubkey"), "master_pubkey"),
        }
    except ValueError as exc:
        raise RegistrationError(f"masterEndpoint {config.master_endpoint}: invalid RegisterResponse ({exc})") from None
    apiserver = str(reply.get("apiserver") or "")
    if not apiserver:
        raise RegistrationError(f"masterEndpoint {config.master_endpoint}: RegisterResponse lacks the API address")
    for path, data in files.items():
        write_atomic(path, data, 0o644)
    registration = Registration(apiserver, node_name)
    doc = {"apiserver": apiserver, "node_name": node_name, "registeredAt": int(time.time())}
    write_atomic(pki.registration, orjson.dumps(doc), 0o600)
    return registration


def lite_kubeconfig(config: NodeConfig, registration: Registration) -> JSON:
    """The lite's own API credentials: its node certificate and domain key, the master CA."""
    pki = node_pki(config)
    name = f"lite-{config.domain_id}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": registration.apiserver,
                                                 "certificate-authority": str(pki.ca_cert)}}],
        "users": [{"name": name, "user": {"client-certificate": str(pki.node_cert),
                                          "client-key": str(pki.domain_key)}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": config.domain_id}}],
        "current-context": name,
    }
