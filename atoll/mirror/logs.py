"""Source ``pods/log`` requests answered from the target cluster's ``pods/log``.

The source pod's forward annotations name the target pod; the request's ``container``,
``follow``, ``tailLines``, ``previous``, ``sinceSeconds``, ``sinceTime``, ``timestamps`` and
``limitBytes`` are passed through unchanged, and the body is relayed as it streams.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from atoll.api.errors import APIError, BadRequest
from atoll.client import Client, ClientError, StreamResponse
from atoll.client.kubelet import relay_stream
from atoll.mirror import keys

JSON = dict[str, Any]
FORWARDED = ("follow", "tailLines", "sinceSeconds", "sinceTime", "previous", "timestamps", "limitBytes")


def target_of(pod: JSON) -> tuple[str, str]:
    """(namespace, name) of the target pod, from the source pod's forward annotations."""
    annotations = pod["metadata"].get("annotations") or {}
    namespace, name = annotations.get(keys.PHYSICAL_POD_NAMESPACE), annotations.get(keys.PHYSICAL_POD_NAME)
    if not namespace or not name:
        raise BadRequest(f'pod "{pod["metadata"]["name"]}" has not been created in the worker cluster yet')
    return str(namespace), str(name)


async def open_target_logs(target: Client, pod: JSON, container: str, query: Mapping[str, str]) -> StreamResponse:
    """A streaming response of the target pod's log (the caller closes it)."""
    namespace, name = target_of(pod)
    params = {k: query[k] for k in FORWARDED if k in query}
    params["container"] = container
    stream: StreamResponse = await target.request(
        "GET", f"/api/v1/namespaces/{namespace}/pods/{name}/log", params=params, stream=True, read_timeout=None
    )
    return stream


async def relay_target_logs(
    request: web.Request, target: Client, pod: JSON, container: str, cluster: str
) -> web.StreamResponse:
    """Answer a ``/containerLogs`` request with the target pod's log (400 when the pod has no
    target yet or the target refuses; 503 when the ``cluster`` named in the text is unreachable)."""
    try:
        upstream = await open_target_logs(target, pod, container, request.query)
    except APIError as exc:
        raise web.HTTPBadRequest(text=exc.message) from None
    except ClientError as exc:
        raise web.HTTPServiceUnavailable(text=f"{cluster} unreachable: {exc}") from None
    return await relay_stream(request, upstream)
