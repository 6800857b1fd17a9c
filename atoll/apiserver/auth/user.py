"""The authenticated identity of a request (Kubernetes' ``user.Info``): name, groups, uid, extra.

Authenticators produce it, RBAC and access reviews decide on it, admission and field managers
see it. It is a plain value with no behaviour, so every layer of the API server may hold one.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: dict[str, list[str]] = field(default_factory=dict)
