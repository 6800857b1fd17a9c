"""What a request to the Kubernetes REST API looks like: resource paths and content types.

Only documented REST paths are built here (``/api/v1/…``, ``/apis/<group>/<version>/…``), so the
client talks to Atoll's server, kube-apiserver, k3s or kind alike. Pure: no I/O, no session.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from atoll.api.registry import ResourceDef

PatchType = Literal["merge", "json", "strategic", "apply"]

PATCH_CONTENT_TYPES: Mapping[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}
METADATA_ONLY: Mapping[str, str] = {
    "Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
}
"""Headers of a metadata-only list or watch (client-go's metadata client): items are
``PartialObjectMetadata``; a server that cannot serve them answers full objects."""


def resource_path(
    rd: ResourceDef, namespace: str | None = None, name: str | None = None, subresource: str | None = None
) -> str:
    """``/api/v1/namespaces/ns/pods/x/status`` and friends; no namespace lists across all."""
    path = f"/apis/{rd.group}/{rd.version}" if rd.group else f"/api/{rd.version}"
    if rd.namespaced and namespace:
        path += f"/namespaces/{namespace}"
    path += f"/{rd.plural}"
    if name is not None:
        if rd.namespaced and not namespace:
            raise ValueError(f"{rd.group_resource} {name!r}: a namespace is required")
        path += f"/{name}"
        if subresource:
            path += f"/{subresource}"
    return path
