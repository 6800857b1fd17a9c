"""RBAC attributes of a request (verb, resource, subresource, namespace, name, or a path) and the
403 when the caller's roles do not grant them. Servers without authentication skip the check."""

from __future__ import annotations

from aiohttp import web

from atoll.api import errors
from atoll.apiserver.auth.rbac import MASTERS, RBACAuthorizer, Request, forbidden_message, verb_for
from atoll.apiserver.auth.user import UserInfo
from atoll.apiserver.http import codec
from atoll.apiserver.http.routing import Route


def _caller(request: web.Request) -> UserInfo | None:
    user = request.get(codec.USER_KEY)
    return user if isinstance(user, UserInfo) else None


def resource_request(user: UserInfo, request: web.Request, route: Route) -> Request:
    """The RBAC attributes of a resource request; a ``metadata.name=X`` field selector pins the
    name of a list or watch (RBAC ``resourceNames``)."""
    watch = codec.bool_param(request, "watch")
    name = route.name or field_selector_name(request.query.get("fieldSelector", "")) or ""
    return Request(
        user.name,
        user.groups,
        verb_for(request.method, route.name is not None, watch),
        route.rd.group,
        route.rd.plural,
        route.subresource,
        route.namespace or "",
        name,
        node_name=field_selector_node(request.query.get("fieldSelector", "")),
    )


def authorize_resource(authorizer: RBACAuthorizer, request: web.Request, route: Route) -> None:
    user = _caller(request)
    if user is None or MASTERS in user.groups:  # RBAC allows system:masters everything: no attributes needed
        return
    req = resource_request(user, request, route)
    if not authorizer.authorize(user, req):
        raise errors.Forbidden(
            forbidden_message(req), details={"name": req.name, "group": req.api_group, "kind": req.resource}
        )


def authorize_path(authorizer: RBACAuthorizer, request: web.Request) -> None:
    """Non-resource URLs beyond discovery and health (``/metrics``) need an RBAC grant."""
    user = _caller(request)
    if user is None:
        return
    req = Request(user.name, user.groups, request.method.lower(), path=request.path)
    if not authorizer.authorize(user, req):
        raise errors.Forbidden(forbidden_message(req))


def field_selector_name(field_selector: str) -> str | None:
    """The object name a lone ``metadata.name=X`` field selector pins, else None."""
    if field_selector.startswith("metadata.name=") and "," not in field_selector:
        return field_selector.split("=", 1)[1].lstrip("=")
    return None


def field_selector_node(field_selector: str) -> str:
    """The node a ``spec.nodeName=X`` term of a field selector pins (a node agent's pod watch)."""
    for part in field_selector.split(","):
        key, _, value = part.partition("=")
        if key.strip() == "spec.nodeName":
            return value.lstrip("=").strip()
    return ""
