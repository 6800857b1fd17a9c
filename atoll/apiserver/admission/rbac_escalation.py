"""RBAC escalation prevention, as Kubernetes defines it (``escalate`` and ``bind`` verbs).

A user may create or update a Role/ClusterRole only if they already hold every permission in it
(in that namespace, or cluster-wide for a ClusterRole), or may ``escalate`` roles. A user may
create or update a RoleBinding/ClusterRoleBinding only if they hold every permission of the role it
references (in the binding's namespace, or cluster-wide), or may ``bind`` that role (by name).
So a domain whose ``admin`` role lets it manage RoleBindings in its namespace still cannot bind
``cluster-admin`` to itself (403, as ``kubectl create rolebinding … --clusterrole=cluster-admin``
gets from kube-apiserver).
"""

from __future__ import annotations

from typing import Any

from atoll.api import errors
from atoll.api.registry import ResourceDef
from atoll.apiserver.admission.chain import Attributes
from atoll.apiserver.auth.rbac import RBAC_GROUP, RBACAuthorizer, Request
from atoll.apiserver.auth.user import UserInfo
from atoll.apiserver.cache.watchcache import WatchCache

JSON = dict[str, Any]
_ROLES = {"roles", "clusterroles"}
_BINDINGS = {"rolebindings", "clusterrolebindings"}


def _strings(rule: JSON, key: str) -> list[str]:
    values = rule.get(key)
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []


def _has(values: list[str], wanted: str) -> bool:
    return "*" in values or wanted in values


def _resource_covered(owned: list[str], wanted: str) -> bool:
    if _has(owned, wanted):
        return True
    _, sep, sub = wanted.partition("/")
    return bool(sep) and f"*/{sub}" in owned


def _covers(owner: JSON, rule: JSON) -> bool:
    """Whether ``owner`` grants everything ``rule`` grants (Kubernetes' ``ruleCovers``)."""
    verbs = _strings(rule, "verbs")
    if not verbs or not all(_has(_strings(owner, "verbs"), v) for v in verbs):
        return not verbs
    urls = _strings(rule, "nonResourceURLs")
    if urls:
        owned = _strings(owner, "nonResourceURLs")
        return all(
            any(o == "*" or o == u or (o.endswith("*") and u.startswith(o[:-1])) for o in owned) for u in urls
        )
    groups, resources = _strings(rule, "apiGroups"), _strings(rule, "resources")
    if not all(_has(_strings(owner, "apiGroups"), g) for g in groups):
        return False
    if not all(_resource_covered(_strings(owner, "resources"), r) for r in resources):
        return False
    owner_names = _strings(owner, "resourceNames")
    if not owner_names:
        return True
    names = _strings(rule, "resourceNames")
    return bool(names) and all(n in owner_names for n in names)


def uncovered(owned: list[JSON], wanted: list[JSON]) -> list[JSON]:
    """The rules of ``wanted`` no single rule of ``owned`` covers (empty: no escalation)."""
    out = []
    for rule in wanted:
        if not isinstance(rule, dict):
            continue
        if _covers_split(owned, rule):
            continue
        out.append(rule)
    return out


def _covers_split(owned: list[JSON], rule: JSON) -> bool:
    """Coverage verb by verb, resource by resource (a rule may be covered by several owned rules)."""
    verbs = _strings(rule, "verbs") or [""]
    keys = ("nonResourceURLs",) if _strings(rule, "nonResourceURLs") else ("apiGroups", "resources")
    atoms: list[JSON] = [{**rule, "verbs": [v]} for v in verbs]
    for key in keys:
        atoms = [{**a, key: [x]} for a in atoms for x in (_strings(rule, key) or [""])]
    return all(any(_covers(o, a) for o in owned) for a in atoms)


class RBACEscalation:
    """Admission: refuses roles and bindings that would grant more than their author holds."""

    def __init__(self, authorizer: RBACAuthorizer, cache: WatchCache) -> None:
        self._authz = authorizer
        self._cache = cache

    @staticmethod
    def applies_to(rd: ResourceDef) -> bool:
        return rd.group == RBAC_GROUP

    async def admit(self, attrs: Attributes) -> None:
        rd, user, obj = attrs.rd, attrs.user, attrs.obj
        if rd.group != RBAC_GROUP or user is None or obj is None or attrs.operation not in ("CREATE", "UPDATE"):
            return
        namespace = attrs.namespace or ""
        if rd.plural in _ROLES:
            if self._may(user, "escalate", rd.plural, namespace, attrs.name):
                return
            rules = obj.get("rules")
            missing = uncovered(self._authz.rules_for(user, namespace), rules if isinstance(rules, list) else [])
            if missing:
                raise self._forbidden(attrs, user, f"user {user.name!r} is attempting to grant RBAC permissions "
                                      f"not currently held: {missing}")
        elif rd.plural in _BINDINGS:
            ref = obj.get("roleRef")
            if not isinstance(ref, dict):
                return  # schema validation answers
            kind, name = str(ref.get("kind") or ""), str(ref.get("name") or "")
            plural = "clusterroles" if kind == "ClusterRole" else "roles"
            if self._may(user, "bind", plural, namespace, name):
                return
            if plural == "roles":
                role = self._cache.get(f"/{RBAC_GROUP}/roles/{namespace}/{name}")
            else:
                role = self._cache.get(f"/{RBAC_GROUP}/clusterroles/{name}")
            if role is None:
                raise self._forbidden(attrs, user, f"{kind.lower()}s.rbac.authorization.k8s.io {name!r} not found")
            rules = role.obj.get("rules")
            missing = uncovered(self._authz.rules_for(user, namespace), rules if isinstance(rules, list) else [])
            if missing:
                raise self._forbidden(attrs, user, f"user {user.name!r} is attempting to grant RBAC permissions "
                                      f"not currently held: {missing}")

    def _may(self, user: UserInfo, verb: str, plural: str, namespace: str, name: str) -> bool:
        return self._authz.authorize(user, Request(user.name, user.groups, verb, RBAC_GROUP, plural, "",
                                                   namespace, name))

    @staticmethod
    def _forbidden(attrs: Attributes, user: UserInfo, why: str) -> errors.APIError:
        rd = attrs.rd
        return errors.Forbidden(
            f'{rd.plural}.{rd.group} "{attrs.name}" is forbidden: {why}',
            details={"name": attrs.name, "group": rd.group, "kind": rd.plural},
        )
