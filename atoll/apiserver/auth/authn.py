"""Authentication: who is calling (bearer tokens, X.509 client certificates).

Authenticators are tried in order; the first that recognises the credentials wins. A request
without any credentials is anonymous and, apart from the public health and version endpoints,
refused with 401. Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
from typing import Protocol

from aiohttp import web

from atoll.apiserver.auth.user import UserInfo
from atoll.pki import peer_identity

PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})
ADMIN_USER = UserInfo("atoll-admin", ("system:masters", "system:authenticated"))


class Authenticator(Protocol):
    def authenticate(self, request: web.Request, token: str | None) -> UserInfo | None: ...


class StaticTokenAuthenticator:
    """The admin token written under ``<data_dir>/pki/admin.token``."""

    def __init__(self, tokens: dict[str, UserInfo]) -> None:
        self._tokens = [(known.encode(), user) for known, user in tokens.items()]

    def authenticate(self, request: web.Request, token: str | None) -> UserInfo | None:
        if not token:
            return None
        presented = token.encode()
        for known, user in self._tokens:
            if hmac.compare_digest(known, presented):
                return user
        return None


class ClientCertAuthenticator:
    """Client certificates verified by the TLS layer against the cluster CA: CN user, O groups.

    The certificate is the one the event loop decoded once at the handshake (the transport's
    ``peercert``), not ``getpeercert()`` again per request: a connection's peer cannot change
    (no renegotiation), and decoding the certificate was ~1% of the master's CPU per request."""

    def authenticate(self, request: web.Request, token: str | None) -> UserInfo | None:
        transport = request.transport
        if transport is None:
            return None
        peercert = transport.get_extra_info("peercert")
        if peercert is None:
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is None:
                return None
            peercert = ssl_object.getpeercert()
        identity = peer_identity(peercert)
        if identity is None:
            return None
        user, groups = identity
        return UserInfo(user, (*groups, "system:authenticated"))


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


class AuthenticatorChain:
    def __init__(self, authenticators: list[Authenticator]) -> None:
        self.authenticators = authenticators

    def authenticate(self, request: web.Request) -> UserInfo | None:
        token = bearer_token(request)
        for authn in self.authenticators:
            user = authn.authenticate(request, token)
            if user is not None:
                return user
        return None
