"""A Pull cluster's own identity in its instance (what ``karmadactl register`` sets up with its
bootstrap token), so ``atoll fleet agent`` never holds the instance's admin credentials.

:func:`grant_agent` (run with admin rights on the instance, e.g. through the management proxy)
creates, idempotently:

- the ``Cluster`` itself (``syncMode: Pull``; refused if a Push cluster has the name) and its
  execution namespace ``karmada-es-<cluster>`` — so the agent needs no ``create clusters`` right
  (Karmada's agent role grants ``create`` on every Cluster name: a stolen agent credential could
  register other clusters there; not here);
- ServiceAccount ``karmada-cluster/karmada-agent-<cluster>`` and its RBAC:
  ClusterRole/ClusterRoleBinding ``karmada-agent:<cluster>`` — its own Cluster (get/list/watch/
  update/patch and ``clusters/status``, by ``resourceNames``), read-only
  ``resourceinterpretercustomizations``; Role/RoleBinding ``karmada-agent`` in
  ``karmada-es-<cluster>`` — its Works and their status; Role/RoleBinding ``karmada-agent-<cluster>``
  in ``karmada-cluster`` — its Lease (``create`` + named get/update/patch) and a TokenRequest for
  its own ServiceAccount (so a running agent can renew its token);

and returns a token of that ServiceAccount (TokenRequest, at most 48 h). Anything else — another
cluster's Works or status, Secrets, policies — is answered 403 naming the resource.
:func:`revoke_agent` removes the identity (``unjoin``).
"""

from __future__ import annotations

import base64
import contextlib
from typing import Any

from atoll.api import kinds
from atoll.api.errors import AlreadyExists, NotFound
from atoll.api.registry import ResourceDef
from atoll.client import Client
from atoll.fleet import constants as c
from atoll.fleet.instances import instance_kubeconfig
from atoll.fleet.karmada.names import execution_namespace
from atoll.fleet.kinds import CLUSTERS, INSTANCES
from atoll.fleet.kubeconfigs import proxy_path

JSON = dict[str, Any]
ROLES = kinds.kind("rbac.authorization.k8s.io", "roles")
CLUSTERROLEBINDINGS = kinds.kind("rbac.authorization.k8s.io", "clusterrolebindings")
RBAC = "rbac.authorization.k8s.io"
AGENT_TOKEN_SECONDS = 48 * 3600
"""The longest TokenRequest the API server grants; the agent renews it at 80 % of its life."""


class IdentityError(Exception):
    """The identity cannot be issued (the message names the argument)."""


def service_account(cluster: str) -> str:
    return f"karmada-agent-{cluster}"


def agent_user(cluster: str) -> str:
    return f"system:serviceaccount:{c.CLUSTER_NAMESPACE}:{service_account(cluster)}"


def _rule(group: str, resources: list[str], verbs: list[str], names: list[str] | None = None) -> JSON:
    rule: JSON = {"apiGroups": [group], "resources": resources, "verbs": verbs}
    if names:
        rule["resourceNames"] = names
    return rule


def _objects(cluster: str) -> list[tuple[ResourceDef, str | None, JSON]]:
    sa = service_account(cluster)
    es = execution_namespace(cluster)
    subject = [{"kind": "ServiceAccount", "name": sa, "namespace": c.CLUSTER_NAMESPACE}]
    cluster_role = f"karmada-agent:{cluster}"
    read = ["get", "list", "watch"]
    return [
        (kinds.SERVICEACCOUNTS, c.CLUSTER_NAMESPACE, {"metadata": {"name": sa}}),
        (
            kinds.CLUSTERROLES,
            None,
            {
                "metadata": {"name": cluster_role},
                "rules": [
                    _rule("cluster.karmada.io", ["clusters"], [*read, "update", "patch"], [cluster]),
                    _rule("cluster.karmada.io", ["clusters/status"], ["get", "update", "patch"], [cluster]),
                    _rule("config.karmada.io", ["resourceinterpretercustomizations"], read),
                ],
            },
        ),
        (
            CLUSTERROLEBINDINGS,
            None,
            {
                "metadata": {"name": cluster_role},
                "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": cluster_role},
                "subjects": subject,
            },
        ),
        (
            ROLES,
            es,
            {
                "metadata": {"name": "karmada-agent"},
                "rules": [
                    _rule("work.karmada.io", ["works"], [*read, "update", "patch"]),
                    _rule("work.karmada.io", ["works/status"], ["get", "update", "patch"]),
                ],
            },
        ),
        (
            kinds.ROLEBINDINGS,
            es,
            {
                "metadata": {"name": "karmada-agent"},
                "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "karmada-agent"},
                "subjects": subject,
            },
        ),
        (
            ROLES,
            c.CLUSTER_NAMESPACE,
            {
                "metadata": {"name": sa},
                "rules": [
                    _rule("coordination.k8s.io", ["leases"], ["create"]),
                    _rule("coordination.k8s.io", ["leases"], ["get", "update", "patch"], [cluster]),
                    _rule("", ["serviceaccounts/token"], ["create"], [sa]),
                ],
            },
        ),
        (
            kinds.ROLEBINDINGS,
            c.CLUSTER_NAMESPACE,
            {
                "metadata": {"name": sa},
                "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": sa},
                "subjects": subject,
            },
        ),
    ]


async def _ensure_cluster(instance: Client, cluster: str) -> None:
    body = {
        "apiVersion": CLUSTERS.api_version,
        "kind": "Cluster",
        "metadata": {"name": cluster},
        "spec": {"syncMode": "Pull"},
    }
    try:
        await instance.create(CLUSTERS, body)
    except AlreadyExists:
        current = await instance.get(CLUSTERS, cluster)
        mode = (current.get("spec") or {}).get("syncMode") or "Push"
        if mode != "Pull":
            raise IdentityError(
                f"NAME: cluster {cluster!r} is joined with syncMode {mode}: unjoin it before registering an agent"
            ) from None


async def grant_agent(instance: Client, cluster: str, *, seconds: int = AGENT_TOKEN_SECONDS) -> str:
    """Register ``cluster`` (Pull) and give its agent a least-privilege identity; its token."""
    await _ensure_cluster(instance, cluster)
    for namespace in (c.CLUSTER_NAMESPACE, execution_namespace(cluster)):
        with contextlib.suppress(AlreadyExists):
            await instance.create(kinds.NAMESPACES, {"metadata": {"name": namespace}})
    for rd, where, body in _objects(cluster):
        try:
            await instance.create(rd, body, where)
        except AlreadyExists:
            if "rules" in body or "subjects" in body:  # keep the grants exactly ours
                current = await instance.get(rd, body["metadata"]["name"], where)
                await instance.update(rd, {**current, **{k: v for k, v in body.items() if k != "metadata"}})
    return await request_token(instance, cluster, seconds)


async def request_token(instance: Client, cluster: str, seconds: int = AGENT_TOKEN_SECONDS) -> str:
    """A token of the agent's ServiceAccount (the agent calls this itself to renew)."""
    sa = service_account(cluster)
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": seconds}}
    path = f"/api/v1/namespaces/{c.CLUSTER_NAMESPACE}/serviceaccounts/{sa}/token"
    reply = await instance.request("POST", path, body=body)
    token = str(((reply or {}).get("status") or {}).get("token") or "")
    if not token:
        raise IdentityError(f"no token issued for serviceaccount {c.CLUSTER_NAMESPACE}/{sa}")
    return token


async def agent_kubeconfig(
    management: Client, instance: str, cluster: str, *, seconds: int = AGENT_TOKEN_SECONDS
) -> JSON:
    """``atoll fleet cluster token``: through the management plane (its admin rights on the
    instance via the proxy), register ``cluster`` and return its agent's kubeconfig — the
    instance's own endpoint and CA, the agent's ServiceAccount token."""
    status = (await management.get(INSTANCES, instance)).get("status") or {}
    if not status.get("controlPlaneReady") or not status.get("endpoint"):
        raise IdentityError(f"INSTANCE: instance {instance!r} is not running (phase {status.get('phase')})")
    secret = await management.get(kinds.SECRETS, instance + c.ADMIN_SECRET_SUFFIX, c.SYSTEM_NAMESPACE)
    ca = base64.b64decode(str((secret.get("data") or {}).get("ca.crt") or ""))
    async with management.under_path(proxy_path(instance)) as proxied:
        token = await grant_agent(proxied, cluster, seconds=seconds)
    return instance_kubeconfig(instance, str(status["endpoint"]), ca, token, user=service_account(cluster))


async def revoke_agent(instance: Client, cluster: str) -> None:
    """Remove the agent's identity (its tokens stop working with its ServiceAccount)."""
    for rd, where, body in reversed(_objects(cluster)):
        with contextlib.suppress(NotFound):
            await instance.delete(rd, body["metadata"]["name"], where)
