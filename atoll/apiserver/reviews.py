"""Virtual resources answered by the server itself, never stored.

``SelfSubjectAccessReview`` (``kubectl auth can-i``), ``SelfSubjectRulesReview``
(``kubectl auth can-i --list``), ``SelfSubjectReview`` (``kubectl auth whoami``) and the
ServiceAccount ``token`` subresource (``kubectl create token``), which issues a signed JWT.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from atoll.api import errors
from atoll.api.registry import ResourceDef
from atoll.apiserver import codec
from atoll.apiserver.admission import UserInfo
from atoll.apiserver.rbac import RBACAuthorizer, Request
from atoll.apiserver.token_request import parse_token_request
from atoll.apiserver.tokens import TokenIssuer
from atoll.apiserver.watchcache import WatchCache

JSON = dict[str, Any]
AUTHZ, AUTHN = "authorization.k8s.io", "authentication.k8s.io"

VIRTUAL: tuple[ResourceDef, ...] = (
    ResourceDef(
        AUTHZ,
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        False,
        verbs=("create",),
    ),
    ResourceDef(
        AUTHZ,
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        "selfsubjectrulesreview",
        False,
        verbs=("create",),
    ),
    ResourceDef(AUTHN, "v1", "SelfSubjectReview", "selfsubjectreviews", "selfsubjectreview", False, verbs=("create",)),
)


def _user_of(request: web.Request) -> UserInfo:
    user = request.get(codec.USER_KEY)
    if not isinstance(user, UserInfo):
        raise errors.Unauthorized("Unauthorized")
    return user


class Reviews:
    def __init__(self, authorizer: RBACAuthorizer, issuer: TokenIssuer, cache: WatchCache) -> None:
        self._authorizer = authorizer
        self._issuer = issuer
        self._cache = cache

    async def handle(self, request: web.Request, rd: ResourceDef) -> web.Response:
        if request.method != "POST":
            raise errors.MethodNotAllowed(f"only create is supported on {rd.group_resource}")
        body = codec.decode_dict(await codec.read_body(request), codec.media_type(request))
        user = _user_of(request)
        spec = body.get("spec") or {}
        status: JSON
        if rd.plural == "selfsubjectaccessreviews":
            attrs = spec.get("resourceAttributes")
            if attrs:
                req = Request(
                    user.name,
                    user.groups,
                    str(attrs.get("verb", "")),
                    str(attrs.get("group", "")),
                    str(attrs.get("resource", "")),
                    str(attrs.get("subresource", "")),
                    str(attrs.get("namespace", "")),
                    str(attrs.get("name", "")),
                )
            else:
                non = spec.get("nonResourceAttributes") or {}
                req = Request(user.name, user.groups, str(non.get("verb", "")), path=str(non.get("path", "")))
            allowed = self._authorizer.authorize(user, req)
            # like Kubernetes' RBAC authorizer: a plain denial carries no reason (kubectl prints "no", not
            # "no - <reason>"); a reason only reports evaluation errors
            status = {"allowed": allowed}
        elif rd.plural == "selfsubjectrulesreviews":
            rules = self._authorizer.rules_for(user, str(spec.get("namespace", "")))
            status = {
                "resourceRules": [r for r in rules if r.get("resources")],
                "nonResourceRules": [r for r in rules if r.get("nonResourceURLs")],
                "incomplete": False,
            }
        else:
            status = {"userInfo": {"username": user.name, "uid": user.uid, "groups": list(user.groups)}}
        return codec.json_response(
            {
                "kind": rd.kind,
                "apiVersion": rd.api_version,
                "metadata": {"creationTimestamp": None},
                "spec": spec,
                "status": status,
            },
            201,
        )

    async def token(self, request: web.Request, namespace: str, name: str) -> web.Response:
        if request.method != "POST":
            raise errors.MethodNotAllowed("only create is supported on serviceaccounts/token")
        raw = await codec.read_body(request)
        body = codec.decode_dict(raw, codec.media_type(request)) if raw.strip() else {}
        cached = self._cache.get(f"/core/serviceaccounts/{namespace}/{name}")
        if cached is None:
            raise errors.not_found("serviceaccounts", "", name)
        parsed = parse_token_request(body, namespace, self._cache)
        spec = body.get("spec") or {}
        token, expires = self._issuer.issue(cached.obj, parsed.audiences, parsed.expiration_seconds, parsed.bound)
        import time

        status = {"token": token, "expirationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))}
        out = {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
            "spec": dict(spec, audiences=spec.get("audiences") or ["https://kubernetes.default.svc.cluster.local"]),
            "status": status,
        }
        return codec.json_response(out, 201)
