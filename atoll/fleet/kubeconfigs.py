"""Kubeconfigs for instances: the caller's management-plane kubeconfig re-pointed at an instance's
proxy (``…/apis/kairship.io/v1alpha1/instances/NAME/proxy``), keeping its credentials and CA —
the management plane authorises the caller per instance and relays with the instance's own."""

from __future__ import annotations

import copy
from typing import Any

JSON = dict[str, Any]


class KubeconfigError(Exception):
    """The kubeconfig has no usable context/cluster/user."""


def proxy_path(instance: str) -> str:
    return f"/apis/kairship.io/v1alpha1/instances/{instance}/proxy"


def _named(doc: JSON, section: str, name: str) -> JSON:
    for entry in doc.get(section) or ():
        if entry.get("name") == name:
            return dict(entry)
    raise KubeconfigError(f"kubeconfig has no {section[:-1]} named {name!r}")


def proxy_kubeconfig(doc: JSON, context: str | None, instance: str) -> JSON:
    """A kubeconfig for ``instance`` through the management plane of ``doc``'s ``context`` (default:
    its current context)."""
    name = context or doc.get("current-context")
    if not name:
        raise KubeconfigError("kubeconfig has no current-context (pass --context)")
    ctx = _named(doc, "contexts", name).get("context") or {}
    cluster = copy.deepcopy(_named(doc, "clusters", str(ctx.get("cluster"))))
    user = copy.deepcopy(_named(doc, "users", str(ctx.get("user"))))
    server = str((cluster.get("cluster") or {}).get("server") or "").rstrip("/")
    if not server:
        raise KubeconfigError(f"cluster {cluster.get('name')!r} has no server")
    entry = f"kairship-{instance}"
    cluster["name"] = entry
    cluster["cluster"] = {**cluster["cluster"], "server": server + proxy_path(instance)}
    user["name"] = f"{entry}-{user.get('name')}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [user],
        "contexts": [
            {
                "name": entry,
                "context": {"cluster": entry, "user": user["name"], "namespace": ctx.get("namespace") or "default"},
            }
        ],
        "current-context": entry,
    }
