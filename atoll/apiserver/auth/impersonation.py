"""Impersonation (``kubectl --as``/``--as-group``/``--as-uid``): act as another identity if allowed.

As kube-apiserver does, the caller must hold the ``impersonate`` verb on every part of the
identity it asks for: ``users`` (by name), ``serviceaccounts`` (``system:serviceaccount:NS:NAME``
→ the ServiceAccount NAME in NS), ``groups``, ``uids`` and ``userextras/<key>``
(``authentication.k8s.io``). Any refusal is a 403 and the request does not run; granted, the
request runs as the impersonated user (with ``system:authenticated``, and the ServiceAccount groups
for a ServiceAccount), and only as that user. Headers are never ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote

from aiohttp import web

from atoll.api import errors
from atoll.apiserver.auth.rbac import Request, forbidden_message
from atoll.apiserver.auth.user import UserInfo

USER, GROUP, UID, EXTRA = "Impersonate-User", "Impersonate-Group", "Impersonate-Uid", "Impersonate-Extra-"
AUTHENTICATED = "system:authenticated"
SA_PREFIX = "system:serviceaccount:"
Authorize = Callable[[UserInfo, Request], bool]


def _headers(request: web.Request) -> tuple[str, list[str], str, dict[str, list[str]]]:
    extra: dict[str, list[str]] = {}
    for key, value in request.headers.items():
        if key.lower().startswith(EXTRA.lower()):
            extra.setdefault(unquote(key[len(EXTRA):]).lower(), []).append(value)
    return request.headers.get(USER, ""), request.headers.getall(GROUP, []), request.headers.get(UID, ""), extra


_PREFIX = b"impersonate-"


def wants_impersonation(request: web.Request) -> bool:
    """Any ``Impersonate-*`` header (names compared as sent, without building the header map's keys)."""
    for name, _ in request.raw_headers:
        if name[:12].lower() == _PREFIX:
            return True
    return False


def impersonate(request: web.Request, requester: UserInfo, authorize: Authorize) -> UserInfo:
    """The identity the request runs as, or a 403/400 ``APIError``."""
    name, groups, uid, extra = _headers(request)
    if not name:
        raise errors.BadRequest("requested impersonation of groups, uid or extra fields without impersonating a user "
                                f"(set the {USER} header)")

    def check(resource: str, target: str, group: str = "", namespace: str = "", subresource: str = "") -> None:
        req = Request(requester.name, requester.groups, "impersonate", group, resource, subresource, namespace,
                      target)
        if not authorize(requester, req):
            raise errors.Forbidden(forbidden_message(req), details={"name": target, "group": group, "kind": resource})

    out_groups = list(groups)
    if name.startswith(SA_PREFIX):
        namespace, _, sa = name.removeprefix(SA_PREFIX).partition(":")
        if not namespace or not sa:
            raise errors.BadRequest(f"invalid service account name to impersonate: {name!r}")
        check("serviceaccounts", sa, namespace=namespace)
        out_groups += ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"]
    else:
        check("users", name)
    for group in groups:
        check("groups", group)
    if uid:
        check("uids", uid, group="authentication.k8s.io")
    for key, values in extra.items():
        for value in values:
            check("userextras", value, group="authentication.k8s.io", subresource=key)
    if AUTHENTICATED not in out_groups:
        out_groups.append(AUTHENTICATED)
    return UserInfo(name, tuple(out_groups), uid, extra)
