"""Joining and unjoining member clusters (``karmadactl join`` / ``unjoin``, Push mode), through
any client of the instance (its own endpoint or the management proxy).

``join`` first checks that the member kubeconfig connects (a clear error naming
``--member-kubeconfig`` if not), stores the credentials in ``karmada-cluster/<name>`` (the
flattened ``kubeconfig`` plus Karmada's ``token``/``caBundle`` keys) and creates the ``Cluster``.
``unjoin`` deletes the Cluster (refused by the instance while bindings still target it; its
controller removes the Works and the member copies), the Secret and, for a Pull cluster, its
agent's identity (:mod:`atoll.fleet.agentid`: its tokens stop working).
"""

from __future__ import annotations

import base64
import contextlib
import re
from typing import Any

import yaml

from atoll.api import kinds
from atoll.api.errors import AlreadyExists, APIError, NotFound
from atoll.client import Client, ClientError, ConfigError
from atoll.fleet.agentid import revoke_agent
from atoll.fleet.constants import CLUSTER_NAMESPACE
from atoll.fleet.kinds import CLUSTERS

JSON = dict[str, Any]
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class JoinError(Exception):
    """Join/unjoin refused (the message names the argument or field)."""


async def check_member(member_doc: JSON, connect_timeout: float = 10.0) -> str:
    """The member's ``gitVersion``; JoinError if the kubeconfig does not connect."""
    try:
        async with Client.from_kubeconfig(member_doc, timeout=connect_timeout, user_agent="karmadactl-join") as member:
            version = await member.get_path("/version")
            await member.list(kinds.NAMESPACES, limit=1)
    except (ConfigError, ClientError, APIError) as exc:
        raise JoinError(f"--member-kubeconfig: the member cluster does not connect: {exc}") from None
    return str(version.get("gitVersion") or "")


def _b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


async def join_cluster(
    instance: Client,
    name: str,
    member_doc: JSON,
    *,
    labels: dict[str, str] | None = None,
    connect_timeout: float = 10.0,
) -> JSON:
    if not _NAME.match(name) or len(name) > 48:
        raise JoinError(f"NAME: {name!r} must be a lowercase RFC 1123 label of at most 48 characters")
    await check_member(member_doc, connect_timeout)
    cluster_entry = (member_doc.get("clusters") or [{}])[0].get("cluster") or {}
    user = (member_doc.get("users") or [{}])[0].get("user") or {}
    data = {"kubeconfig": _b64(yaml.safe_dump(member_doc, sort_keys=False))}
    if user.get("token"):
        data["token"] = _b64(str(user["token"]))
    if cluster_entry.get("certificate-authority-data"):
        data["caBundle"] = str(cluster_entry["certificate-authority-data"])
    secret = {"metadata": {"name": name, "namespace": CLUSTER_NAMESPACE}, "type": "Opaque", "data": data}
    cluster = {
        "apiVersion": CLUSTERS.api_version,
        "kind": "Cluster",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "syncMode": "Push",
            "apiEndpoint": cluster_entry.get("server"),
            "secretRef": {"namespace": CLUSTER_NAMESPACE, "name": name},
            "insecureSkipTLSVerification": bool(cluster_entry.get("insecure-skip-tls-verify")),
        },
    }
    try:
        created = await instance.create(CLUSTERS, cluster)
    except AlreadyExists:
        raise JoinError(f"NAME: cluster {name!r} is already joined") from None
    try:
        await instance.create(kinds.SECRETS, secret, CLUSTER_NAMESPACE)
    except AlreadyExists:
        await instance.patch(kinds.SECRETS, name, {"data": data}, CLUSTER_NAMESPACE)
    return created


async def unjoin_cluster(instance: Client, name: str) -> None:
    try:
        await instance.delete(CLUSTERS, name)
    except NotFound:
        raise JoinError(f"NAME: cluster {name!r} is not joined to this instance") from None
    with contextlib.suppress(NotFound):
        await instance.delete(kinds.SECRETS, name, CLUSTER_NAMESPACE)
    await revoke_agent(instance, name)  # a Pull cluster's agent identity (none for Push: no-op)
