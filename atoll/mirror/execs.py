"""Source ``pods/exec`` requests answered by the target cluster's ``pods/exec``.

The source API server opens the node's kubelet endpoint ``GET /exec/{namespace}/{pod}/{container}``
as a WebSocket (remotecommand ``v5.channel.k8s.io``/``v4``, :mod:`atoll.agent.execserver`); here
that request is re-issued against the target cluster's API for the mapped pod (``command``,
``stdin``, ``stdout``, ``stderr``, ``tty`` and the offered subprotocols passed through), the
caller's WebSocket is accepted with the subprotocol the target chose, and messages are copied
both ways unchanged (channels, resize, the final ``Status``, v5 close) until either side ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web

from atoll.api.errors import APIError
from atoll.client import Client, ClientError
from atoll.client.kubelet import copy_messages
from atoll.mirror.logs import target_of

JSON = dict[str, Any]
FORWARDED = ("command", "stdin", "stdout", "stderr", "tty")


async def relay_target_exec(request: web.Request, target: Client, pod: JSON, container: str,
                            cluster: str) -> web.StreamResponse:
    """Answer an ``/exec`` WebSocket with the target pod's ``pods/exec`` (400 when the pod has no
    target yet or the target refuses, 503 when the ``cluster`` named in the text is unreachable)."""
    try:
        namespace, name = target_of(pod)
    except APIError as exc:
        raise web.HTTPBadRequest(text=exc.message) from None
    params = [(k, v) for k, v in request.query.items() if k in FORWARDED] + [("container", container)]
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    try:
        upstream = await target.websocket(f"/api/v1/namespaces/{namespace}/pods/{name}/exec", params=params,
                                          protocols=offered)
    except APIError as exc:
        raise web.HTTPBadRequest(text=exc.message) from None
    except ClientError as exc:
        raise web.HTTPServiceUnavailable(text=f"{cluster} unreachable: {exc}") from None
    try:
        downstream = web.WebSocketResponse(protocols=(upstream.protocol,) if upstream.protocol else (),
                                           max_msg_size=0)
        await downstream.prepare(request)
        await pump_both_ways(downstream, upstream)
        await downstream.close()
    finally:
        await upstream.close()
    return downstream


async def pump_both_ways(one: Any, other: Any) -> None:
    """Copy messages ``one`` → ``other`` and back until either side closes."""
    tasks = {asyncio.ensure_future(copy_messages(one, other)), asyncio.ensure_future(copy_messages(other, one))}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionResetError):
                await task
