"""Admin kubeconfig for a node's API server (client certificate, or the admin token)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from atoll.pki import PKI


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def admin_kubeconfig(pki: PKI, server: str, *, use_token: bool = False, name: str = "atoll") -> dict[str, Any]:
    user: dict[str, str]
    if use_token:
        user = {"token": pki.admin_token.read_text().strip()}
    else:
        user = {"client-certificate-data": _b64(pki.admin_cert), "client-key-data": _b64(pki.admin_key)}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": _b64(pki.ca_cert)}}],
        "users": [{"name": f"{name}-admin", "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-admin", "namespace": "default"}}],
        "current-context": name,
        "preferences": {},
    }


def dump(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False)
