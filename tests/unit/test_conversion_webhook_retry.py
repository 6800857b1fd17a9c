"""Which failures of a conversion webhook call send the review once more: the webhook ending a kept
connection under it (disconnected, reset, or closing as the review was written), not a connection
that could not be made nor any other error."""

from __future__ import annotations

import errno

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey

from atoll.apiserver.apiextensions.webhook import _retried

KEY = ConnectionKey("127.0.0.1", 443, True, True, None, None, None)


@pytest.mark.parametrize(
    ("exc", "retried"),
    [
        (aiohttp.ServerDisconnectedError(), True),
        (aiohttp.ClientConnectionResetError("Cannot write to closing transport"), True),
        (aiohttp.ClientOSError(errno.ECONNRESET, "Connection reset by peer"), True),
        (aiohttp.ClientOSError(errno.EPIPE, "Broken pipe"), True),
        (aiohttp.ClientOSError(errno.EHOSTUNREACH, "No route to host"), False),
        (aiohttp.ClientConnectorError(KEY, ConnectionResetError(errno.ECONNRESET, "reset")), False),
        (aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(errno.ECONNREFUSED, "refused")), False),
        (aiohttp.ClientPayloadError("Response payload is not completed"), False),
    ],
)
def test_only_a_kept_connection_ended_under_the_review_sends_it_again(exc: aiohttp.ClientError, retried: bool) -> None:
    assert _retried(exc) is retried
