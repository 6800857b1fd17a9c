"""Validation of a TokenRequest body (``POST serviceaccounts/NAME/token``).

The body is checked against the published ``TokenRequest`` schema (422 naming the field for
``expirationSeconds: "abc"``, ``boundObjectRef: "x"``, ``spec: "x"``). ``spec.boundObjectRef`` binds
the token to a Pod or Secret of the ServiceAccount's namespace, as Kubernetes allows: the object
must exist, its ``uid`` (when given) must match, and the token stops working when the object is
gone. The reference can never name a ServiceAccount, so it cannot change the token's subject.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from atoll.api import errors
from atoll.api.builtin_validation import check
from atoll.apiserver.cache.watchcache import WatchCache

JSON = dict[str, Any]
BOUND_KINDS = {"Pod": "pods", "Secret": "secrets"}
GROUP = "authentication.k8s.io"


@dataclass(frozen=True, slots=True)
class TokenSpec:
    audiences: list[str]
    expiration_seconds: int | None
    bound: JSON | None  # {"kind", "name", "uid"} of an existing Pod or Secret


def _invalid(field: str, message: str, reason: str = "FieldValueInvalid") -> errors.APIError:
    return errors.invalid("TokenRequest", GROUP, "", [{"reason": reason, "field": field, "message": message}])


def parse_token_request(body: Any, namespace: str, cache: WatchCache) -> TokenSpec:
    if not isinstance(body, dict):
        raise errors.BadRequest("a TokenRequest must be an object")
    _, causes = check(body, GROUP, "v1", "TokenRequest")
    if causes:
        raise errors.invalid("TokenRequest", GROUP, "", causes)
    spec = body.get("spec") or {}
    seconds = spec.get("expirationSeconds")
    ref = spec.get("boundObjectRef")
    return TokenSpec(list(spec.get("audiences") or []), seconds, _bound(ref, namespace, cache) if ref else None)


def _bound(ref: JSON, namespace: str, cache: WatchCache) -> JSON:
    kind, name = ref.get("kind") or "", ref.get("name") or ""
    if kind not in BOUND_KINDS:
        raise _invalid("spec.boundObjectRef.kind", f'Unsupported value: "{kind}": supported values: "Pod", "Secret"',
                       "FieldValueNotSupported")
    if ref.get("apiVersion") not in (None, "", "v1"):
        raise _invalid("spec.boundObjectRef.apiVersion", f'Unsupported value: "{ref["apiVersion"]}": '
                       'supported values: "v1"', "FieldValueNotSupported")
    if not name:
        raise _invalid("spec.boundObjectRef.name", "Required value", "FieldValueRequired")
    plural = BOUND_KINDS[kind]
    cached = cache.get(f"/core/{plural}/{namespace}/{name}")
    if cached is None:
        raise errors.not_found(plural, "", name)
    uid = str(cached.obj["metadata"].get("uid") or "")
    if ref.get("uid") and ref["uid"] != uid:
        raise errors.Conflict(
            f"the UID in the bound object reference ({ref['uid']}) does not match the UID in record ({uid}). "
            "The object might have been deleted and then recreated"
        )
    return {"kind": kind, "name": name, "uid": uid}


def bound_object_alive(info: JSON, namespace: str, cache: WatchCache) -> bool:
    """For a token's ``kubernetes.io`` claim: its bound Pod/Secret (if any) still exists with that uid."""
    for kind, plural in BOUND_KINDS.items():
        bound = info.get(kind.lower())
        if bound is None:
            continue
        if not isinstance(bound, dict):
            return False
        cached = cache.get(f"/core/{plural}/{namespace}/{bound.get('name', '')}")
        if cached is None or cached.obj["metadata"].get("uid") != bound.get("uid"):
            return False
    return True
