"""Reaching member clusters (Push mode) from a Cluster and its credentials Secret.

Karmada's Secret (``spec.secretRef``, namespace ``karmada-cluster``) holds ``token`` and
``caBundle`` for ``spec.apiEndpoint``; ``atoll fleet cluster join`` also stores the member's own
(flattened) ``kubeconfig`` there, which wins when present. Clients are cached per cluster until the
Cluster's endpoint or the Secret changes.
"""

from __future__ import annotations

import base64
import ssl
from pathlib import Path
from typing import Any

import yaml

from atoll.api import kinds
from atoll.api.errors import NotFound
from atoll.client import Client, ConfigError
from atoll.client.kubeconfig import load_kubeconfig
from atoll.runtime import Cache

JSON = dict[str, Any]


class MemberError(Exception):
    """The member's credentials are missing or unusable (the message names the field)."""


def _data(secret: JSON, key: str) -> bytes | None:
    raw = (secret.get("data") or {}).get(key)
    if raw:
        return base64.b64decode(raw)
    text = (secret.get("stringData") or {}).get(key)
    return text.encode() if text else None


def client_from_secret(cluster: JSON, secret: JSON) -> Client:
    spec = cluster.get("spec") or {}
    kubeconfig = _data(secret, "kubeconfig")
    try:
        if kubeconfig:
            doc = yaml.safe_load(kubeconfig)
            if spec.get("apiEndpoint"):
                for entry in doc.get("clusters") or ():
                    entry.setdefault("cluster", {})["server"] = spec["apiEndpoint"]
            return Client.from_kubeconfig(doc, timeout=10.0, user_agent="karmada-controller-manager")
    except (ConfigError, yaml.YAMLError, AttributeError) as exc:
        raise MemberError(f"spec.secretRef: kubeconfig: {exc}") from None
    endpoint = spec.get("apiEndpoint")
    if not endpoint:
        raise MemberError("spec.apiEndpoint: Required value")
    ctx = ssl.create_default_context()
    ca = _data(secret, "caBundle")
    if spec.get("insecureSkipTLSVerification"):
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    elif ca:
        try:
            ctx.load_verify_locations(cadata=ca.decode())
        except (ssl.SSLError, ValueError) as exc:
            raise MemberError(f"spec.secretRef: caBundle: {exc}") from None
    token = _data(secret, "token")
    return Client(
        str(endpoint),
        ssl_context=ctx,
        token=token.decode().strip() if token else None,
        timeout=10.0,
        user_agent="karmada-controller-manager",
    )


class MemberClients:
    """One client per member cluster, rebuilt when its endpoint or Secret changes."""

    def __init__(self, client: Client, secrets: Cache | None = None) -> None:
        self.client = client
        self.secrets = secrets
        """An informer cache of ``karmada-cluster``'s Secrets: no GET per apply (the hot path)."""
        self._clients: dict[str, tuple[str, Client]] = {}

    async def get(self, cluster: JSON) -> Client:
        name = cluster["metadata"]["name"]
        ref = (cluster.get("spec") or {}).get("secretRef") or {}
        if not ref.get("name"):
            raise MemberError("spec.secretRef: Required value")
        namespace = ref.get("namespace") or "karmada-cluster"
        secret = self.secrets.get(ref["name"], namespace) if self.secrets is not None else None
        try:
            if secret is None:
                secret = await self.client.get(kinds.SECRETS, ref["name"], namespace)
        except NotFound:
            raise MemberError(f"spec.secretRef: Secret {ref.get('namespace')}/{ref['name']} not found") from None
        version = f"{secret['metadata'].get('resourceVersion')}/{(cluster.get('spec') or {}).get('apiEndpoint')}"
        cached = self._clients.get(name)
        if cached is not None and cached[0] == version:
            return cached[1]
        if cached is not None:
            await cached[1].close()
        member = client_from_secret(cluster, secret)
        self._clients[name] = (version, member)
        return member

    async def drop(self, name: str) -> None:
        cached = self._clients.pop(name, None)
        if cached is not None:
            await cached[1].close()

    async def close(self) -> None:
        for name in list(self._clients):
            await self.drop(name)


def flatten_kubeconfig(path: Path, context: str | None = None) -> JSON:
    """The member kubeconfig reduced to one context with every file embedded (to store in a Secret)."""
    load_kubeconfig(path, context)  # fails with a clear ConfigError when unusable
    doc = yaml.safe_load(path.read_text())
    name = context or doc.get("current-context")
    ctx = next(c for c in doc.get("contexts") or () if c.get("name") == name)
    cluster = dict(next(c for c in doc["clusters"] if c.get("name") == ctx["context"]["cluster"])["cluster"])
    user_name = ctx["context"].get("user")
    user = dict(next((u for u in doc.get("users") or () if u.get("name") == user_name), {"user": {}})["user"])
    for section, key in ((cluster, "certificate-authority"), (user, "client-certificate"), (user, "client-key")):
        if section.get(key):
            file = Path(section.pop(key))
            file = file if file.is_absolute() else path.parent / file
            section[f"{key}-data"] = base64.b64encode(file.read_bytes()).decode()
    if user.get("tokenFile"):
        user["token"] = Path(user.pop("tokenFile")).read_text().strip()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "member",
        "clusters": [{"name": "member", "cluster": cluster}],
        "users": [{"name": "member", "user": user}],
        "contexts": [{"name": "member", "context": {"cluster": "member", "user": "member"}}],
    }
