"""The async Kubernetes REST client: plain dicts in, plain dicts out, typed verbs over one session.

Design choices, and why:

* **Dicts, not models.** Controllers read a few fields and write patches; building typed models
  for every object on every watch event costs more than the reconcile. JSON goes through orjson.
* **Works against any API server.** Only documented REST paths and legacy discovery are used, so
  the same code talks to Atoll's server, kube-apiserver, k3s or kind.

:class:`Client` is layered by inheritance, so a verb is one call into the transport: the pooled
session, credentials, raw requests and error mapping (:mod:`atoll.client.transport`), watch
streaming (:mod:`atoll.client.watch`), and here the constructors, the get/list/write verbs and
discovery. Paths and content types: :mod:`atoll.client.paths`.
"""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Mapping
from typing import Any

from atoll.api.registry import ResourceDef
from atoll.client.discovery import AGGREGATED_ACCEPT, Discovery
from atoll.client.kubeconfig import KubeConfig, load_kubeconfig
from atoll.client.local import LOCAL_SUBRESOURCES, LocalWrites, local_mode, with_type
from atoll.client.paths import PATCH_CONTENT_TYPES, PatchType, resource_path
from atoll.client.transport import JSON
from atoll.client.watch import WatchVerbs

Items = list[JSON]
ResourceDefs = list[ResourceDef]


class Client(WatchVerbs):
    """Async client for one Kubernetes-compatible API server."""

    @classmethod
    def from_config(cls, config: KubeConfig, **kwargs: Any) -> Client:
        return cls(
            config.server,
            ssl_context=config.ssl_context,
            token=config.token,
            token_file=config.token_file,
            headers=config.headers,
            namespace=config.namespace,
            server_hostname=config.server_hostname,
            **kwargs,
        )

    @classmethod
    def from_kubeconfig(
        cls,
        source: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        context: str | None = None,
        **kwargs: Any,
    ) -> Client:
        return cls.from_config(load_kubeconfig(source, context), **kwargs)

    def under_path(self, prefix: str) -> Client:
        """A client of the API served under ``server + prefix`` (a proxied API server), with this
        client's TLS settings and credentials (close it separately)."""
        return Client(
            self.server + prefix,
            ssl_context=self._ssl if isinstance(self._ssl, ssl.SSLContext) else None,
            token=self._token,
            token_file=self._token_file,
            headers=self._headers,
            namespace=self.namespace,
            server_hostname=self._server_hostname,
            timeout=self.timeout,
            pool_size=self._pool_size,
        )

    @functools.cached_property
    def _discovery(self) -> Discovery:
        return Discovery(self.get_path, self._get_aggregated)

    async def _get_aggregated(self, path: str) -> JSON:
        return await self._json("GET", path, headers={"Accept": AGGREGATED_ACCEPT})

    # -- verbs -------------------------------------------------------------------------------

    async def get(
        self, rd: ResourceDef, name: str, namespace: str | None = None, subresource: str | None = None
    ) -> JSON:
        local = self.local
        if local is not None and not subresource and local.serves(rd):
            return await local.get(rd, namespace, name)
        return await self._json("GET", resource_path(rd, namespace, name, subresource))

    async def list(
        self,
        rd: ResourceDef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
        resource_version: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> JSON:
        """One page; ``headers`` e.g. ``METADATA_ONLY`` for a ``PartialObjectMetadataList``.
        With a ``local`` backend the items are the server's cached dicts: read-only."""
        params = {
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "limit": limit,
            "continue": continue_,
            "resourceVersion": resource_version,
        }
        local = self.local
        if local is not None and local.serves(rd):
            mode = local_mode(headers)
            if mode is not None:
                query = {k: str(v) for k, v in params.items() if v is not None and v != ""}
                return await local.list(rd, namespace, query, metadata_only=mode)
        return await self._json("GET", resource_path(rd, namespace), params=params, headers=headers)

    async def list_all(
        self,
        rd: ResourceDef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int | None = 500,
        resource_version: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[Items, str]:
        """All items, following ``continue`` tokens; items get ``apiVersion``/``kind`` filled in
        (kube-apiserver omits them inside lists). Returns (items, the list's resourceVersion).
        ``headers=METADATA_ONLY`` lists ``PartialObjectMetadata`` items."""
        items: Items = []
        list_rv = ""
        token: str | None = None
        while True:
            page = await self.list(
                rd,
                namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                limit=page_size,
                continue_=token,
                resource_version=None if token else resource_version,
                headers=headers,
            )
            meta = page.get("metadata") or {}
            list_rv = list_rv or str(meta.get("resourceVersion") or "")
            items.extend(with_type(item, rd) for item in page.get("items") or ())
            token = meta.get("continue") or None
            if not token:
                return items, list_rv

    async def create(
        self,
        rd: ResourceDef,
        body: JSON,
        namespace: str | None = None,
        *,
        dry_run: bool = False,
        field_manager: str | None = None,
        subresource: str | None = None,
    ) -> JSON:
        """``POST`` the object; with ``subresource`` (``binding``) POST it to that subresource of
        the object named by the body's ``metadata.name`` (client-go's ``Bind``)."""
        meta = body.get("metadata") or {}
        namespace = namespace or meta.get("namespace")
        if rd.namespaced and not namespace:
            raise ValueError(f"{rd.group_resource}: a namespace is required to create")
        name = str(meta["name"]) if subresource else None
        local = self._writes(rd, subresource)
        if local is not None:
            return await local.create(rd, namespace, body, name=name, subresource=subresource, dry_run=dry_run,
                                      field_manager=field_manager, user_agent=self.user_agent)
        params = {"dryRun": "All" if dry_run else None, "fieldManager": field_manager}
        return await self._json("POST", resource_path(rd, namespace, name, subresource), params=params, body=body)

    def _writes(self, rd: ResourceDef, subresource: str | None) -> LocalWrites | None:
        """The in-process write backend when it serves this write, else None (HTTP)."""
        local = self.local_writes
        if local is None or (subresource and subresource not in LOCAL_SUBRESOURCES) or not local.serves(rd):
            return None
        return local

    async def update(
        self,
        rd: ResourceDef,
        body: JSON,
        *,
        subresource: str | None = None,
        field_manager: str | None = None,
    ) -> JSON:
        """PUT the whole object; ``metadata.resourceVersion`` in the body is the precondition."""
        meta = body.get("metadata") or {}
        local = self._writes(rd, subresource)
        if local is not None:
            return await local.update(rd, meta.get("namespace"), str(meta["name"]), body, subresource=subresource,
                                      field_manager=field_manager, user_agent=self.user_agent)
        path = resource_path(rd, meta.get("namespace"), str(meta["name"]), subresource)
        return await self._json("PUT", path, params={"fieldManager": field_manager}, body=body)

    async def patch(
        self,
        rd: ResourceDef,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool | None = None,
    ) -> JSON:
        if patch_type == "apply" and not field_manager:
            raise ValueError("server-side apply needs a field_manager")
        local = self._writes(rd, subresource) if patch_type != "apply" else None
        if local is not None:
            return await local.patch(rd, namespace, name, patch, patch_type=patch_type, subresource=subresource,
                                     field_manager=field_manager, user_agent=self.user_agent)
        params = {"fieldManager": field_manager, "force": force}
        return await self._json(
            "PATCH",
            resource_path(rd, namespace, name, subresource),
            params=params,
            body=patch,
            content_type=PATCH_CONTENT_TYPES[patch_type],
        )

    async def delete(
        self,
        rd: ResourceDef,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: str | None = None,
        preconditions: JSON | None = None,
        grace_period_seconds: int | None = None,
        dry_run: bool = False,
    ) -> JSON:
        """Returns the deleted object (or the object marked for deletion), or a ``Status``."""
        options = _delete_options(propagation_policy, preconditions, grace_period_seconds, dry_run)
        local = self._writes(rd, None)
        if local is not None:
            return await local.delete(rd, namespace, name, options, user_agent=self.user_agent)
        return await self._json("DELETE", resource_path(rd, namespace, name), body=options)

    async def delete_collection(
        self,
        rd: ResourceDef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        propagation_policy: str | None = None,
    ) -> JSON:
        params = {"labelSelector": label_selector, "fieldSelector": field_selector}
        options = _delete_options(propagation_policy, None, None, False)
        return await self._json("DELETE", resource_path(rd, namespace), params=params, body=options)

    # -- discovery ---------------------------------------------------------------------------

    async def discover(self, api_version: str, kind: str) -> ResourceDef:
        """The ResourceDef for ``apiVersion``/``kind`` via legacy discovery (cached)."""
        return await self._discovery.resource(api_version, kind)

    async def resource_for(self, obj: Mapping[str, Any]) -> ResourceDef:
        """The ResourceDef of an object read from YAML."""
        return await self.discover(str(obj["apiVersion"]), str(obj["kind"]))

    async def preferred_resources(self) -> tuple[ResourceDefs, dict[str, Exception]]:
        """All resources of the preferred group-versions, plus the group-versions that failed."""
        return await self._discovery.preferred_resources()

    def invalidate_discovery(self) -> None:
        self._discovery.invalidate()


def _delete_options(
    propagation_policy: str | None,
    preconditions: JSON | None,
    grace_period_seconds: int | None,
    dry_run: bool,
) -> JSON | None:
    options: JSON = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if propagation_policy:
        options["propagationPolicy"] = propagation_policy
    if preconditions:
        options["preconditions"] = preconditions
    if grace_period_seconds is not None:
        options["gracePeriodSeconds"] = grace_period_seconds
    if dry_run:
        options["dryRun"] = ["All"]
    return options if len(options) > 2 else None
