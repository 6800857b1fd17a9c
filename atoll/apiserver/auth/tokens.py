"""ServiceAccount tokens: issued through the TokenRequest subresource, verified on every request.

Tokens are JWTs (ES256) signed by the server's key under ``<data_dir>/pki/sa.key``, bound to the
ServiceAccount's UID, with an audience and an expiry (default 1 h, at most 48 h, at least 10 min
as in Kubernetes). A token stops working when it expires, when its audience does not include the
API server's, or when its ServiceAccount is deleted (or re-created with a new UID).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from atoll.api import errors
from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.apiserver.auth.token_request import bound_object_alive
from atoll.apiserver.auth.user import UserInfo
from atoll.apiserver.cache.watchcache import WatchCache

JSON = dict[str, Any]
ISSUER = "https://kubernetes.default.svc.cluster.local"
API_AUDIENCE = "https://kubernetes.default.svc.cluster.local"
DEFAULT_EXPIRY = 3600
MIN_EXPIRY, MAX_EXPIRY = 600, 48 * 3600
VERIFIED_CACHE_TTL = 10.0
VERIFIED_CACHE_SIZE = 4096
LEEWAY = 5  # seconds of clock skew tolerated on exp/nbf


def sa_user(namespace: str, name: str, uid: str = "") -> UserInfo:
    return UserInfo(
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
        uid,
    )


class TokenIssuer:
    """Signs and verifies ServiceAccount JWTs."""

    def __init__(self, key_path: Path, cache: WatchCache, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        self._private = key
        self._public = key.public_key()
        self._cache = cache
        # token -> (valid until, claims): an ES256 verification costs ~0.1-0.7 ms, far more than the rest
        # of a GET; like kube-apiserver's token cache, a verified token is trusted for a few seconds
        # (never past its expiry). The ServiceAccount UID check still runs on every request.
        self._verified: dict[str, tuple[float, JSON]] = {}

    def issue(
        self, sa: JSON, audiences: list[str], expiration_seconds: int | None, bound: JSON | None = None
    ) -> tuple[str, int]:
        seconds = int(expiration_seconds or DEFAULT_EXPIRY)
        if seconds < MIN_EXPIRY:
            raise errors.invalid(
                "TokenRequest",
                "authentication.k8s.io",
                "",
                [
                    {
                        "reason": "FieldValueInvalid",
                        "field": "spec.expirationSeconds",
                        "message": f"Invalid value: {seconds}: may not specify a duration less than 10 minutes",
                    }
                ],
            )
        seconds = min(seconds, MAX_EXPIRY)
        now = int(self._clock.now())
        md = sa["metadata"]
        claims: JSON = {
            "iss": ISSUER,
            "sub": f"system:serviceaccount:{md['namespace']}:{md['name']}",
            "aud": audiences or [API_AUDIENCE],
            "iat": now,
            "nbf": now,
            "exp": now + seconds,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": {
                "namespace": md["namespace"],
                "serviceaccount": {"name": md["name"], "uid": md.get("uid", "")},
            },
        }
        if bound:  # validated by token_request: a Pod or Secret, never the subject's own claim
            key = {"Pod": "pod", "Secret": "secret"}[bound["kind"]]
            claims["kubernetes.io"][key] = {"name": bound["name"], "uid": bound["uid"]}
        return jwt.encode(claims, self._private, algorithm="ES256"), now + seconds

    def authenticate(self, request: web.Request, token: str | None) -> UserInfo | None:
        if not token or token.count(".") != 2:
            return None
        hit = self._verified.get(token)
        claims = hit[1] if hit is not None and hit[0] > self._clock.now() else self._verify(token)
        if claims is None:
            return None
        if hit is None or hit[1] is not claims:
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                self._verified.clear()
            self._verified[token] = (min(self._clock.now() + VERIFIED_CACHE_TTL, float(claims["exp"])), claims)
        info = claims.get("kubernetes.io") or {}
        namespace = info.get("namespace", "")
        sa = info.get("serviceaccount") or {}
        cached = self._cache.get(f"/core/serviceaccounts/{namespace}/{sa.get('name', '')}")
        if cached is None or cached.obj["metadata"].get("uid") != sa.get("uid"):
            return None
        if not bound_object_alive(info, namespace, self._cache):
            return None
        return sa_user(namespace, sa.get("name", ""), sa.get("uid", ""))

    def _verify(self, token: str) -> JSON | None:
        try:
            claims = jwt.decode(
                token,
                self._public,
                algorithms=["ES256"],
                audience=API_AUDIENCE,
                issuer=ISSUER,
                # times are checked below against this server's clock (injected: tests use fake time)
                options={"require": ["exp", "sub", "aud"], "verify_exp": False, "verify_nbf": False,
                         "verify_iat": False},
            )
        except jwt.PyJWTError:
            return None
        if not isinstance(claims, dict) or not _current(claims, self._clock.now()):
            return None
        return claims


def _current(claims: JSON, now: float) -> bool:
    """``nbf`` <= now < ``exp``, with PyJWT's usual leeway for clock skew between issuers."""
    try:
        expires, not_before = float(claims["exp"]), float(claims.get("nbf", 0))
    except (TypeError, ValueError):
        return False
    return not_before - LEEWAY <= now < expires + LEEWAY
