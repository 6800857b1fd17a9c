"""Virtual resources answered by the server itself, never stored.

``SelfSubjectAccessReview`` (``kubectl auth can-i``), ``SelfSubjectRulesReview``
(``kubectl auth can-i --list``), ``SelfSubjectReview`` (``kubectl auth whoami``) and the
ServiceAccount ``token`` subresource (``kubectl create token``), which issues a signed JWT.
Each takes the decoded request body and answers the object to return; the HTTP layer does the
decoding and encoding.
"""

from __future__ import annotations

from typing import Any

from atoll.api import errors, timestamps
from atoll.api.builtin_validation import require_valid
from atoll.api.registry import ResourceDef
from atoll.apiserver.auth.rbac import RBACAuthorizer, Request
from atoll.apiserver.auth.token_request import parse_token_request
from atoll.apiserver.auth.tokens import TokenIssuer
from atoll.apiserver.auth.user import UserInfo
from atoll.apiserver.cache.watchcache import WatchCache

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
    # kubectl 1.27's ``auth whoami`` asks v1beta1 (v1 is preferred: registered first)
    ResourceDef(AUTHN, "v1beta1", "SelfSubjectReview", "selfsubjectreviews", "selfsubjectreview", False,
                verbs=("create",)),
)


class Reviews:
    def __init__(self, authorizer: RBACAuthorizer, issuer: TokenIssuer, cache: WatchCache) -> None:
        self._authorizer = authorizer
        self._issuer = issuer
        self._cache = cache

    def review(self, rd: ResourceDef, user: UserInfo, body: JSON) -> JSON:
        """The answered review (``status`` filled in) for the caller ``user``."""
        require_valid(body, rd.group, rd.version, rd.kind)
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
        return {
            "kind": rd.kind,
            "apiVersion": rd.api_version,
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }

    def token_request(self, namespace: str, name: str, body: JSON) -> JSON:
        """``POST serviceaccounts/NAME/token``: the TokenRequest with a signed token in its status."""
        cached = self._cache.get(f"/core/serviceaccounts/{namespace}/{name}")
        if cached is None:
            raise errors.not_found("serviceaccounts", "", name)
        parsed = parse_token_request(body, namespace, self._cache)
        spec = body.get("spec") or {}
        token, expires = self._issuer.issue(cached.obj, parsed.audiences, parsed.expiration_seconds, parsed.bound)
        status = {"token": token, "expirationTimestamp": timestamps.format_time(expires)}
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
            "spec": dict(spec, audiences=spec.get("audiences") or ["https://kubernetes.default.svc.cluster.local"]),
            "status": status,
        }
