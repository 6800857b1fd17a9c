"""ServiceAccounts: the ``token`` subresource (``kubectl create token``) issues a signed JWT bound
to the ServiceAccount (see ``atoll.apiserver.auth.tokens``); never stored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from atoll.api import errors
from atoll.apiserver.auth.reviews import Reviews
from atoll.apiserver.registry.subresources import Reply, StatusReply, SubresourceCall

if TYPE_CHECKING:
    from atoll.apiserver.registry.storage import ResourceStorage


@dataclass(frozen=True, slots=True)
class TokenSubresource:
    """``POST serviceaccounts/NAME/token``: a TokenRequest answered with a token (201)."""

    reviews: Reviews | None  # None: the server has no signing key (no authentication)
    verbs: tuple[str, ...] = ("create",)
    response_kind: tuple[str, str, str] | None = ("authentication.k8s.io", "v1", "TokenRequest")
    generic_methods: frozenset[str] = frozenset()

    async def serve(self, storage: ResourceStorage, call: SubresourceCall) -> Reply:
        if self.reviews is None:
            raise errors.NotImplementedYet("authentication is disabled on this server")
        if call.method != "POST":
            raise errors.MethodNotAllowed("only create is supported on serviceaccounts/token")
        assert call.namespace is not None
        return StatusReply(self.reviews.token_request(call.namespace, call.name, call.body or {}), 201)
