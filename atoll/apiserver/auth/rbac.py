"""RBAC authorization: Role/ClusterRole rules granted through RoleBindings and ClusterRoleBindings.

Semantics follow Kubernetes: subjects are Users, Groups and ServiceAccounts
(``system:serviceaccount:<ns>:<name>``); a RoleBinding grants its role's rules inside its own
namespace, a ClusterRoleBinding everywhere; rules match verbs, API groups, resources
(``pods``, ``pods/log``, ``*``, ``*/status``) and, optionally, resource names. ``system:masters``
may do anything. Bindings are indexed by subject and decisions are memoised until any RBAC object
changes, so authorization costs a dictionary lookup on the hot path.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from atoll.apiserver.auth.user import UserInfo
from atoll.apiserver.cache.watchcache import WatchCache, WatchEvent

JSON = dict[str, Any]
log = logging.getLogger(__name__)
RBAC_GROUP = "rbac.authorization.k8s.io"
RBAC_PREFIX = f"/{RBAC_GROUP}/"
MASTERS = "system:masters"
_PUBLIC_NON_RESOURCE = ("/api", "/apis", "/version", "/healthz", "/livez", "/readyz", "/openapi")
_MAX_DECISIONS = 50_000


@dataclass(frozen=True, slots=True)
class Request:
    user: str
    groups: tuple[str, ...]
    verb: str
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""  # non-resource requests only
    node_name: str = ""  # a list/watch pinned by ``fieldSelector=spec.nodeName=X`` (node grants)

    @property
    def is_resource(self) -> bool:
        return bool(self.resource)


def verb_for(method: str, has_name: bool, watch: bool) -> str:
    if method in ("GET", "HEAD"):
        if has_name:  # a named GET is a get, whatever its query says (kube's RequestInfo)
            return "get"
        return "watch" if watch else "list"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(
        method, "delete" if has_name else "deletecollection"
    )


def forbidden_message(req: Request) -> str:
    target = f"{req.resource}{'/' + req.subresource if req.subresource else ''}"
    qualified = f"{req.resource}.{req.api_group}" if req.api_group else req.resource
    subject = f'{qualified} "{req.name}"' if req.name else qualified
    where = f' in the namespace "{req.namespace}"' if req.namespace else " at the cluster scope"
    if not req.is_resource:
        return f'forbidden: User "{req.user}" cannot {req.verb.lower()} path "{req.path}"'
    return (
        f'{subject} is forbidden: User "{req.user}" cannot {req.verb} resource "{target}" '
        f'in API group "{req.api_group}"{where}'
    )


def _rule_matches(rule: JSON, req: Request) -> bool:
    """Whether one rule grants ``req``; a malformed rule grants nothing (never fails open or closed for all)."""
    try:
        return _rule_grants(rule, req)
    except (AttributeError, TypeError):
        return False


def _strings(rule: JSON, key: str) -> list[str]:
    values = rule.get(key)
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []


def _rule_grants(rule: JSON, req: Request) -> bool:
    verbs = _strings(rule, "verbs")
    if "*" not in verbs and req.verb not in verbs:
        return False
    if not req.is_resource:
        urls = _strings(rule, "nonResourceURLs")
        return any(u == "*" or u == req.path or (u.endswith("*") and req.path.startswith(u[:-1])) for u in urls)
    groups = _strings(rule, "apiGroups")
    if "*" not in groups and req.api_group not in groups:
        return False
    wanted = f"{req.resource}/{req.subresource}" if req.subresource else req.resource
    resources = _strings(rule, "resources")
    if not any(r in ("*", wanted) or (req.subresource and r == f"*/{req.subresource}") for r in resources):
        return False
    names = _strings(rule, "resourceNames")
    if names:
        # a named URL (or a list/watch pinned by metadata.name) matches by name whatever the verb:
        # ``create serviceaccounts/NAME/token`` is named; ``create pods`` (no name) never matches
        return bool(req.name) and req.name in names
    return True


def subjects_of(user: UserInfo) -> list[tuple[str, str]]:
    """(kind, id) pairs a binding subject may name to match this user."""
    out = [("User", user.name)] + [("Group", g) for g in user.groups]
    if user.name.startswith("system:serviceaccount:"):
        out.append(("ServiceAccount", user.name.removeprefix("system:serviceaccount:")))
    return out


def _subject_ids(binding: JSON) -> Iterable[tuple[str, str]]:
    """The subjects a binding names; a malformed binding (stored before validation) names none."""
    ns = str(binding["metadata"].get("namespace") or "")
    subjects = binding.get("subjects")
    if not isinstance(subjects, list) or not isinstance(binding.get("roleRef"), dict):
        log.error("ignoring malformed binding %s/%s", ns, binding["metadata"].get("name"))
        return
    for subject in subjects:
        if not isinstance(subject, dict):
            continue
        kind, name = subject.get("kind", ""), subject.get("name", "")
        if not isinstance(kind, str) or not isinstance(name, str) or not name:
            continue
        if kind == "ServiceAccount":
            yield kind, f"{subject.get('namespace') or ns}:{name}"
        else:
            yield kind, name


class Authorizer(Protocol):
    def authorize(self, user: UserInfo, req: Request) -> bool: ...


class RBACAuthorizer:
    def __init__(self, cache: WatchCache) -> None:
        self._cache = cache
        self._by_subject: dict[tuple[str, str], list[tuple[str, JSON]]] | None = None
        self._decisions: dict[Request, bool] = {}
        self._fallbacks: list[Authorizer] = []
        cache.add_listener(RBAC_PREFIX, self._changed)

    def add_fallback(self, authorizer: Authorizer) -> None:
        """Consulted (never memoised) when RBAC denies, like kube-apiserver's ``Node,RBAC`` chain."""
        self._fallbacks.append(authorizer)

    def _changed(self, _event: WatchEvent) -> None:
        self._by_subject = None
        self._decisions.clear()

    def _index(self) -> dict[tuple[str, str], list[tuple[str, JSON]]]:
        if self._by_subject is None:
            index: dict[tuple[str, str], list[tuple[str, JSON]]] = {}
            for plural in ("clusterrolebindings", "rolebindings"):
                for cached in self._cache.list(f"/{RBAC_GROUP}/{plural}/"):
                    binding = cached.obj
                    scope = binding["metadata"].get("namespace", "")
                    for sid in _subject_ids(binding):
                        index.setdefault(sid, []).append((scope, binding.get("roleRef") or {}))
            self._by_subject = index
        return self._by_subject

    def _rules(self, scope: str, role_ref: JSON) -> list[JSON]:
        kind, name = role_ref.get("kind"), role_ref.get("name", "")
        if kind == "ClusterRole":
            role = self._cache.get(f"/{RBAC_GROUP}/clusterroles/{name}")
        elif kind == "Role" and scope:
            role = self._cache.get(f"/{RBAC_GROUP}/roles/{scope}/{name}")
        else:
            role = None
        rules = role.obj.get("rules") if role is not None else None
        return [r for r in rules if isinstance(r, dict)] if isinstance(rules, list) else []

    def authorize(self, user: UserInfo, req: Request) -> bool:
        if MASTERS in user.groups:
            return True
        if not req.is_resource and req.verb == "get" and req.path.startswith(_PUBLIC_NON_RESOURCE):
            return True
        decision = self._decisions.get(req)
        if decision is None:
            decision = self._decide(user, req)
            if len(self._decisions) > _MAX_DECISIONS:
                self._decisions.clear()
            self._decisions[req] = decision
        return decision or any(f.authorize(user, req) for f in self._fallbacks)

    def _decide(self, user: UserInfo, req: Request) -> bool:
        index = self._index()
        for sid in subjects_of(user):
            for scope, role_ref in index.get(sid, ()):
                if scope and (not req.is_resource or scope != req.namespace):
                    continue
                if any(_rule_matches(rule, req) for rule in self._rules(scope, role_ref)):
                    return True
        return False

    def rules_for(self, user: UserInfo, namespace: str) -> list[JSON]:
        """Every rule that applies to ``user`` in ``namespace`` (for SelfSubjectRulesReview)."""
        if MASTERS in user.groups:
            return [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
        out: list[JSON] = []
        index = self._index()
        for sid in subjects_of(user):
            for scope, role_ref in index.get(sid, ()):
                if not scope or scope == namespace:
                    out.extend(self._rules(scope, role_ref))
        return out
