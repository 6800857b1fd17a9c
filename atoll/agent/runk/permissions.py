"""Least privilege in the institution's namespace: what the RunK agent needs, and what it lacks.

:data:`REQUIRED` is the Role shipped as ``deploy/k8s/lite/rbac.yaml`` (a test keeps the two
equal). :func:`missing` asks the institution's API server with ``SelfSubjectAccessReview``s, so
the answer is the cluster's own authorizer's; the agent turns a non-empty answer into the Node
condition ``RunKPermissions=False`` whose message names each verb and resource.
"""

from __future__ import annotations

import asyncio
from typing import Any

from atoll.client import Client

JSON = dict[str, Any]
REVIEW_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
REQUIRED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("pods", ("get", "list", "watch", "create", "delete")),
    ("pods/log", ("get",)),
    ("configmaps", ("get", "create", "update", "delete")),
    ("secrets", ("get", "create", "update", "delete")),
    ("persistentvolumeclaims", ("get", "create", "update", "delete")),
    ("resourcequotas", ("list",)),
)
CONDITION = "RunKPermissions"


def role_rules() -> list[JSON]:
    """:data:`REQUIRED` as RBAC rules (core API group)."""
    return [{"apiGroups": [""], "resources": [resource], "verbs": list(verbs)} for resource, verbs in REQUIRED]


async def allowed(client: Client, namespace: str, verb: str, resource: str) -> bool:
    plural, _, sub = resource.partition("/")
    attrs = {"namespace": namespace, "verb": verb, "group": "", "resource": plural, "subresource": sub}
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attrs}}
    answer: JSON = await client.request("POST", REVIEW_PATH, body=body)
    return bool((answer.get("status") or {}).get("allowed"))


async def missing(client: Client, namespace: str) -> list[str]:
    """``"<verb> <resource>"`` for every required permission the agent does not have."""
    wanted = [(verb, resource) for resource, verbs in REQUIRED for verb in verbs]
    answers = await asyncio.gather(*(allowed(client, namespace, verb, resource) for verb, resource in wanted))
    return [f"{verb} {resource}" for (verb, resource), ok in zip(wanted, answers, strict=True) if not ok]


def condition(namespace: str, lacking: list[str], error: str = "") -> JSON:
    """The Node condition (without times; the heartbeat stamps them)."""
    if error:
        return {"type": CONDITION, "status": "Unknown", "reason": "ReviewFailed",
                "message": f"runk: could not check permissions in namespace {namespace}: {error}"}
    if lacking:
        return {"type": CONDITION, "status": "False", "reason": "MissingPermissions",
                "message": f"runk: the agent may not {', '.join(lacking)} in namespace {namespace} "
                           "of the institution's cluster (grant deploy/k8s/lite/rbac.yaml)"}
    return {"type": CONDITION, "status": "True", "reason": "PermissionsGranted",
            "message": f"runk: every permission the agent needs in namespace {namespace} is granted"}
