"""Async Kubernetes REST client for Atoll's API server and real clusters (the only HTTP client layer).

Typical use::

    async with Client.from_kubeconfig("~/.kube/config") as client:
        rd = await client.discover("kuscia.secretflow/v1alpha1", "Domain")
        items, rv = await client.list_all(rd)
        async for kind, obj in client.watch(rd, resource_version=rv):
            ...
"""

from atoll.api.errors import (
    AlreadyExists,
    APIError,
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    Unauthorized,
)
from atoll.client.errors import ClientConnectionError, ClientError, ClientTimeoutError, ConfigError
from atoll.client.kubeconfig import KubeConfig, in_cluster_config, load_kubeconfig
from atoll.client.paths import PatchType, resource_path
from atoll.client.rest import Client
from atoll.client.stream import StreamResponse

__all__ = [
    "APIError",
    "AlreadyExists",
    "BadRequest",
    "Client",
    "ClientConnectionError",
    "ClientError",
    "ClientTimeoutError",
    "ConfigError",
    "Conflict",
    "Forbidden",
    "Gone",
    "Invalid",
    "KubeConfig",
    "NotFound",
    "PatchType",
    "StreamResponse",
    "Unauthorized",
    "in_cluster_config",
    "load_kubeconfig",
    "resource_path",
]
