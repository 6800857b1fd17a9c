"""Reconcile one Domain (Kuscia ``pkg/controllers/domain``), one small idempotent step at a time.

Steps, in order (each reads the informer caches and writes only on a difference):

1. **soft delete** — Domain gone: its namespace stays, labelled ``kuscia.secretflow/deleted=true``;
2. **namespace** ``<domain>`` with the domain-name / role / interconn-protocol labels (a re-created
   Domain removes the ``deleted`` label);
3. **identity** — ServiceAccount ``<domain>`` bound to ClusterRole ``admin`` in its namespace only;
4. **config** — ConfigMap ``domain-config`` and the localfs DomainDataSource ``default-data-source``
   (own domains only);
5. **quota** — ResourceQuota ``resource-limitation`` with ``pods: <podMaxCount>``; removed with the field;
6. **cert** — a ``spec.cert`` that is not a base64 PEM certificate gets a Warning Event;
7. **auth** — once (label ``kuscia.secretflow/domain-auth=completed``): the lite → master
   ClusterDomainRoute when ``spec.authCenter`` is set; a partner's empty ``spec.master`` defaults
   to itself;
8. **status** — ``nodeStatuses`` from Nodes labelled ``kuscia.secretflow/namespace=<domain>`` and the
   deploy tokens, through ``/status``; own domains are re-synced every ``status_period`` seconds.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from atoll.api import kinds
from atoll.api.constants import (
    DOMAIN_QUOTA_NAME,
    INTERCONN_PROTOCOLS,
    LABEL_DELETED,
    LABEL_DOMAIN_AUTH,
    LABEL_NODE_NAMESPACE,
)
from atoll.api.errors import NotFound
from atoll.api.timestamps import now_time
from atoll.client import Client, resource_path
from atoll.controllers.domain import resources as res
from atoll.controllers.domain.cert import cert_digest, cert_problem
from atoll.controllers.domain.status import desired_status
from atoll.controllers.domain.writes import Writes
from atoll.datamesh.constants import DOMAINDATASOURCES
from atoll.datamesh.sources import default_data_source
from atoll.runtime import Cache, ObjectKey, Result, get_logger

JSON = dict[str, Any]
log = get_logger(__name__)
CLUSTERDOMAINROUTES = kinds.kind("kuscia.secretflow", "clusterdomainroutes")
EVENT_NAMESPACE = "default"
"""Events about cluster-scoped objects live in ``default`` (as kube-apiserver's recorder does)."""


@dataclass(slots=True)
class Caches:
    """The informer caches the reconciler reads (namespaced ones hold only labelled objects)."""

    domains: Cache
    namespaces: Cache
    quotas: Cache
    configmaps: Cache
    serviceaccounts: Cache
    rolebindings: Cache
    nodes: Cache
    datasources: Cache


class DomainReconciler:
    def __init__(
        self,
        client: Client,
        caches: Caches,
        *,
        master_domain: str,
        status_period: float = 10.0,
        name: str = "domain",
    ) -> None:
        self.client = client
        self.c = caches
        self.master_domain = master_domain
        self.status_period = status_period
        self.writes = Writes(client, name)
        self._recorded: set[str] = set()

    async def reconcile(self, key: ObjectKey) -> Result:
        domain = self.c.domains.get(key.name)
        if domain is None or (domain.get("metadata") or {}).get("deletionTimestamp"):
            await self._soft_delete(key.name)
            return Result()
        namespace = await self._namespace(domain)
        if (namespace.get("metadata") or {}).get("deletionTimestamp"):
            log.info("namespace %s is terminating; waiting to re-create it", key.name)
            return Result(requeue_after=1.0)
        # independent of each other once the namespace exists: one round trip instead of four
        await asyncio.gather(self._identity(key.name), self._config(domain), self._quota(domain), self._cert(domain))
        domain = await self._auth(domain)
        await self._status(domain)
        return Result() if res.is_partner(domain) else Result(requeue_after=self.status_period)

    # -- steps ----------------------------------------------------------------------------------

    async def _soft_delete(self, name: str) -> None:
        namespace = self.c.namespaces.get(name)
        if namespace is None or (namespace.get("metadata") or {}).get("deletionTimestamp"):
            return
        patch = res.label_patch(namespace, {LABEL_DELETED: "true"})
        if patch:
            log.info("domain %s deleted: marking its namespace", name)
            await self._patch_labels(kinds.NAMESPACES, name, None, patch)

    async def _namespace(self, domain: JSON) -> JSON:
        name = res.name_of(domain)
        current = self.c.namespaces.get(name)
        if current is None:
            created = await self.writes.create(kinds.NAMESPACES, res.namespace(domain))
            if created is not None:
                return created
            current = await self.client.get(kinds.NAMESPACES, name)  # existed without our labels
        patch = res.label_patch(current, res.namespace_labels(domain))
        if patch:
            return await self._patch_labels(kinds.NAMESPACES, name, None, patch)
        return current

    async def _identity(self, name: str) -> None:
        await asyncio.gather(
            self._ensure(self.c.serviceaccounts, kinds.SERVICEACCOUNTS, res.service_account(name)),
            self._binding(name),
        )

    async def _binding(self, name: str) -> None:
        binding = self.c.rolebindings.get(name, name)
        if binding is None:
            await self.writes.create(kinds.ROLEBINDINGS, res.role_binding(name), name)
        elif binding.get("subjects") != res.role_binding_subjects(name):
            await self.writes.patch(kinds.ROLEBINDINGS, name, {"subjects": res.role_binding_subjects(name)}, name)

    async def _config(self, domain: JSON) -> None:
        if not res.is_partner(domain):
            name = res.name_of(domain)
            await asyncio.gather(
                self._ensure(self.c.configmaps, kinds.CONFIGMAPS, res.config_map(name)),
                self._ensure(self.c.datasources, DOMAINDATASOURCES, default_data_source(name)),
            )

    async def _quota(self, domain: JSON) -> None:
        name = res.name_of(domain)
        wanted = res.pod_max_count(domain)
        current = self.c.quotas.get(DOMAIN_QUOTA_NAME, name)
        if wanted is None:
            if current is not None:
                log.info("domain %s: resourceQuota removed; deleting %s", name, DOMAIN_QUOTA_NAME)
                await self.writes.delete(kinds.RESOURCEQUOTAS, DOMAIN_QUOTA_NAME, name)
            return
        if current is None:
            await self.writes.create(kinds.RESOURCEQUOTAS, res.resource_quota(name, wanted), name)
        elif ((current.get("spec") or {}).get("hard") or {}).get("pods") != str(wanted):
            patch = {"spec": {"hard": {"pods": str(wanted)}}}
            await self.writes.patch(kinds.RESOURCEQUOTAS, DOMAIN_QUOTA_NAME, patch, name)

    async def _cert(self, domain: JSON) -> None:
        cert = res.spec_of(domain).get("cert")
        if not isinstance(cert, str) or not cert:
            return
        problem = cert_problem(cert)
        event_name = f"{res.name_of(domain)}.cert-{cert_digest(cert)}"
        if problem is None or event_name in self._recorded:
            return
        log.warning("domain %s: %s", res.name_of(domain), problem)
        await self.writes.create(kinds.EVENTS, _event(domain, event_name, "InvalidCert", problem), EVENT_NAMESPACE)
        self._recorded.add(event_name)

    async def _auth(self, domain: JSON) -> JSON:
        meta = domain.get("metadata") or {}
        if (meta.get("labels") or {}).get(LABEL_DOMAIN_AUTH) == "completed":
            return domain
        name, spec = res.name_of(domain), res.spec_of(domain)
        master = spec.get("master") or ""
        # own domains get the lite -> master route; a partner only when it is its own master
        # speaking the kuscia protocol (a partner lite of another master is just marked done)
        wants_route = not res.is_partner(domain) or (master in ("", name) and _protocol(spec) == "kuscia")
        if spec.get("authCenter") and wants_route:
            path = resource_path(kinds.SERVICEACCOUNTS, name, name, "token")
            token = ((await self.writes.post(path, res.token_request())).get("status") or {}).get("token", "")
            route = res.cluster_domain_route(domain, self.master_domain, str(token))
            await self.writes.create(CLUSTERDOMAINROUTES, route)
        patch: JSON = {"metadata": {"labels": {LABEL_DOMAIN_AUTH: "completed"}}}
        if res.is_partner(domain) and not master:
            patch["spec"] = {"master": name}
        return await self.writes.patch(kinds.DOMAINS, name, patch)

    async def _status(self, domain: JSON) -> None:
        nodes = self.c.nodes.by_label(LABEL_NODE_NAMESPACE, res.name_of(domain))
        status = desired_status(domain, nodes)
        if status == (domain.get("status") or {}):
            return
        try:
            await self.writes.update_status(kinds.DOMAINS, {**domain, "status": status})
        except NotFound:
            pass

    # -- helpers --------------------------------------------------------------------------------

    async def _ensure(self, cache: Cache, rd: Any, body: JSON) -> None:
        meta = body["metadata"]
        if cache.get(meta["name"], meta.get("namespace")) is None:
            await self.writes.create(rd, body, meta.get("namespace"))

    async def _patch_labels(self, rd: Any, name: str, namespace: str | None, labels: dict[str, str | None]) -> JSON:
        return await self.writes.patch(rd, name, {"metadata": {"labels": labels}}, namespace)


def _protocol(spec: JSON) -> str:
    protocols = spec.get("interConnProtocols") or [INTERCONN_PROTOCOLS[0]]
    return str(protocols[0])


def _event(domain: JSON, name: str, reason: str, message: str) -> JSON:
    now = now_time()
    meta = domain.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": EVENT_NAMESPACE},
        "involvedObject": {
            "apiVersion": domain.get("apiVersion", "kuscia.secretflow/v1alpha1"),
            "kind": "Domain",
            "name": meta.get("name", ""),
            "uid": meta.get("uid", ""),
            "resourceVersion": meta.get("resourceVersion", ""),
        },
        "reason": reason,
        "message": message,
        "type": "Warning",
        "source": {"component": "domain-controller"},
        "reportingComponent": "domain-controller",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
