"""The instance controller: an ``Instance`` on the management plane → a running control plane.

Per Instance: add ``kairship.io/instance-protection``; start (or restart, after the management
plane restarted) its control plane from ``<data>/fleet/<name>``; keep the admin Secret
``kairship-system/<name>-admin`` (``kubeconfig``, ``token``, ``ca.crt``) current; report
``status.phase`` (``Pending`` → ``Running`` | ``Failed``), ``controlPlaneReady``, the versions and
the endpoint. Deleting an Instance (allowed by :mod:`atoll.fleet.admission` only once it has no
member clusters) stops the control plane, removes its data and its Secret, then the finalizer.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

import yaml

from atoll.api import kinds
from atoll.api.errors import AlreadyExists, NotFound
from atoll.client import Client
from atoll.fleet import constants as c
from atoll.fleet.kinds import INSTANCES
from atoll.fleet.plane import Upstream
from atoll.fleet.planes import PlaneError, PlaneSet
from atoll.runtime import Cache, ObjectKey, Result

JSON = dict[str, Any]
log = logging.getLogger(__name__)


def instance_kubeconfig(name: str, server: str, ca_pem: bytes, token: str, *, user: str = "admin") -> JSON:
    """A kubeconfig for one instance (``server``: its own endpoint or the management proxy URL)."""
    cluster = f"kairship-{name}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {"server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()},
            }
        ],
        "users": [{"name": f"{cluster}-{user}", "user": {"token": token}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": f"{cluster}-{user}"}}],
        "current-context": cluster,
    }


def admin_secret(name: str, upstream: Upstream) -> JSON:
    ca = upstream.ca_file.read_bytes()
    config = yaml.safe_dump(instance_kubeconfig(name, upstream.url, ca, upstream.token), sort_keys=False)
    data = {"kubeconfig": config.encode(), "token": upstream.token.encode(), "ca.crt": ca}
    return {
        "metadata": {
            "name": name + c.ADMIN_SECRET_SUFFIX,
            "namespace": c.SYSTEM_NAMESPACE,
            "labels": {c.INSTANCE_LABEL: name},
        },
        "type": "Opaque",
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }


class InstanceReconciler:
    def __init__(self, client: Client, instances: Cache, planes: PlaneSet, *, kubernetes_version: str) -> None:
        self.client = client
        self.instances = instances
        self.planes = planes
        self.kubernetes_version = kubernetes_version

    async def reconcile(self, key: ObjectKey) -> Result:
        instance = self.instances.get(key.name)
        if instance is None:
            await self.planes.stop(key.name)
            return Result()
        md = instance["metadata"]
        finalizers = list(md.get("finalizers") or ())
        if md.get("deletionTimestamp"):
            return await self._delete(instance, finalizers)
        if c.INSTANCE_FINALIZER not in finalizers:
            wanted = [*finalizers, c.INSTANCE_FINALIZER]
            await self.client.patch(
                INSTANCES, key.name, {"metadata": {"finalizers": wanted, "resourceVersion": md["resourceVersion"]}}
            )
            return Result()
        if not (instance.get("status") or {}).get("phase"):
            await self._status(instance, {"phase": c.PHASE_PENDING, "controlPlaneReady": False})
        try:
            upstream = await self.planes.ensure(key.name)
        except PlaneError as exc:
            await self._status(instance, {"phase": c.PHASE_FAILED, "controlPlaneReady": False, "message": str(exc)})
            return Result(requeue_after=10.0)
        await self._ensure_secret(key.name, upstream)
        await self._status(
            instance,
            {
                "phase": c.PHASE_RUNNING,
                "controlPlaneReady": True,
                "message": None,
                "karmadaVersion": c.KARMADA_VERSION,
                "kubernetesVersion": self.kubernetes_version,
                "endpoint": upstream.url,
                "secretRef": {"namespace": c.SYSTEM_NAMESPACE, "name": key.name + c.ADMIN_SECRET_SUFFIX},
            },
        )
        return Result()

    async def _delete(self, instance: JSON, finalizers: list[str]) -> Result:
        name = instance["metadata"]["name"]
        if c.INSTANCE_FINALIZER not in finalizers:
            return Result()
        if (instance.get("status") or {}).get("phase") != c.PHASE_DELETING:
            await self._status(instance, {"phase": c.PHASE_DELETING, "controlPlaneReady": False})
        await self.planes.stop(name, purge=True)
        try:
            await self.client.delete(kinds.SECRETS, name + c.ADMIN_SECRET_SUFFIX, c.SYSTEM_NAMESPACE)
        except NotFound:
            pass
        remaining = [f for f in finalizers if f != c.INSTANCE_FINALIZER]
        try:
            await self.client.patch(INSTANCES, name, {"metadata": {"finalizers": remaining or None}})
        except NotFound:
            pass
        log.info("instance %s deleted", name)
        return Result()

    async def _ensure_secret(self, name: str, upstream: Upstream) -> None:
        wanted = admin_secret(name, upstream)
        try:
            current = await self.client.get(kinds.SECRETS, wanted["metadata"]["name"], c.SYSTEM_NAMESPACE)
        except NotFound:
            try:
                await self.client.create(kinds.SECRETS, wanted, c.SYSTEM_NAMESPACE)
            except AlreadyExists:
                pass
            return
        if current.get("data") != wanted["data"]:
            await self.client.patch(
                kinds.SECRETS, wanted["metadata"]["name"], {"data": wanted["data"]}, c.SYSTEM_NAMESPACE
            )

    async def _status(self, instance: JSON, changes: JSON) -> None:
        status = dict(instance.get("status") or {})
        for key, value in changes.items():
            if value is None:
                status.pop(key, None)
            else:
                status[key] = value
        if status == instance.get("status"):
            return
        await self.client.patch(INSTANCES, instance["metadata"]["name"], {"status": changes}, subresource="status")
