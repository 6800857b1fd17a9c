"""Admission for lite identities (Kubernetes' NodeRestriction, for Kuscia's node label).

RBAC cannot look inside objects: ``create nodes`` is nameless, so a lite could create a Node
labelled ``kuscia.secretflow/namespace=<another domain>`` and attract that domain's pods. A user of
group ``system:nodes`` named ``system:node:<domain>`` may therefore only create or change Nodes
whose ``kuscia.secretflow/namespace`` label is ``<domain>``, before and after the write.
"""

from __future__ import annotations

from typing import Any

from atoll.api import errors
from atoll.api.constants import LABEL_NODE_NAMESPACE
from atoll.apiserver.admission.chain import Attributes
from atoll.node.registration_messages import NODE_USER_PREFIX, NODES_GROUP

JSON = dict[str, Any]


def _label(obj: JSON | None) -> str | None:
    labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
    value = labels.get(LABEL_NODE_NAMESPACE)
    return str(value) if value is not None else None


class LiteNodeRestriction:
    async def admit(self, attrs: Attributes) -> None:
        user = attrs.user
        if user is None or NODES_GROUP not in user.groups or not user.name.startswith(NODE_USER_PREFIX):
            return
        if attrs.rd.group != "" or attrs.rd.plural != "nodes":
            return
        domain = user.name.removeprefix(NODE_USER_PREFIX)
        field = f"metadata.labels[{LABEL_NODE_NAMESPACE}]"
        if attrs.operation in ("UPDATE", "DELETE") and _label(attrs.old) != domain:
            raise errors.Forbidden(
                f'nodes "{attrs.name}" is forbidden: {field} is {_label(attrs.old)!r}, not the domain of '
                f'user "{user.name}"'
            )
        if attrs.operation in ("CREATE", "UPDATE") and _label(attrs.obj) != domain:
            raise errors.Forbidden(
                f'nodes "{attrs.name}" is forbidden: {field} must be "{domain}" for user "{user.name}"'
            )
