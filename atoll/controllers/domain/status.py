"""``Domain.status``: node statuses mirrored from Nodes, and the lite deploy tokens.

Both are pure functions of their inputs so that an unchanged world yields an equal status (and
therefore no write). Kuscia keeps at most one ``used`` and one ``unused`` deploy token (the newest
of each by ``lastTransitionTime``) and generates an unused one whenever none is left.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable, Iterable
from typing import Any

from atoll.api.timestamps import now_time

JSON = dict[str, Any]
TOKEN_ALPHABET = string.ascii_letters
TOKEN_LENGTH = 32


def new_token() -> str:
    """32 random letters (``secrets``: the token is a credential)."""
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))


def _ready_condition(node: JSON) -> JSON:
    for cond in (node.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Ready":
            return dict(cond)
    return {}


def node_status(node: JSON) -> JSON:
    """One ``nodeStatuses[]`` entry: Ready only when the Node's Ready condition is ``True``."""
    ready = _ready_condition(node)
    entry: JSON = {
        "name": str((node.get("metadata") or {}).get("name", "")),
        "version": str(((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion") or ""),
        "status": "Ready" if ready.get("status") == "True" else "NotReady",
    }
    for field in ("lastHeartbeatTime", "lastTransitionTime"):
        if ready.get(field):
            entry[field] = ready[field]
    return entry


def node_statuses(nodes: Iterable[JSON]) -> list[JSON]:
    return sorted((node_status(n) for n in nodes), key=lambda s: str(s["name"]))


def deploy_tokens(
    current: list[JSON], *, now: Callable[[], str] = now_time, generate: Callable[[], str] = new_token
) -> list[JSON]:
    """Keep the newest ``used`` and newest ``unused`` token (in their current order); add an unused one if none."""
    newest: dict[str, int] = {}
    for i, item in enumerate(current):
        state = item.get("state")
        if state not in ("used", "unused") or not item.get("token"):
            continue
        best = newest.get(state)
        if best is None or _when(item) >= _when(current[best]):
            newest[state] = i
    kept = [current[i] for i in sorted(newest.values())]
    if "unused" not in newest:
        kept.append({"token": generate(), "state": "unused", "lastTransitionTime": now()})
    return kept


def desired_status(domain: JSON, nodes: Iterable[JSON]) -> JSON:
    """The whole status; empty lists are omitted like Go's ``omitempty``."""
    current = domain.get("status") or {}
    status: JSON = {k: v for k, v in current.items() if k not in ("nodeStatuses", "deployTokenStatuses")}
    statuses = node_statuses(nodes)
    if statuses:
        status["nodeStatuses"] = statuses
    status["deployTokenStatuses"] = deploy_tokens(list(current.get("deployTokenStatuses") or []))
    return status


def _when(item: JSON) -> str:
    return str(item.get("lastTransitionTime") or "")
