"""The Pull-mode agent (Karmada's ``karmada-agent``), run beside a member cluster.

It registers the member as a ``Cluster`` with ``syncMode: Pull`` in the instance (no credentials
leave the member: the instance never calls it), then:

- watches the Works of ``karmada-es-<cluster>`` in the instance and applies them to the member with
  the same executor the control plane uses for Push clusters (:mod:`.execution`, ``pull=True``),
  reporting ``Applied`` and ``manifestStatuses`` back into the Works; a label-selected watch on the
  member brings the applied objects' status back without polling;
- every ``period`` seconds (Karmada's ``--cluster-status-update-frequency``, 10 s) probes the member
  and posts the Cluster's status (``Ready``, versions, API enablements, node/resource summaries),
  and renews Lease ``karmada-cluster/<cluster>``. The control plane's cluster controller turns the
  cluster not ready (``ClusterStatusUnknown``, ``unreachable`` taint) when the lease is older than
  its ``--cluster-monitor-grace-period``.

It needs no admin rights: with the identity :mod:`atoll.fleet.agentid` issues (``atoll fleet
cluster token``) it may touch only its own Cluster, Works, Lease and token, and renews that token
(``renew_token``) at 80 % of its life. ``atoll fleet agent`` runs it as a process; tests run it
in-process.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from typing import Any

import orjson

from atoll.api import kinds
from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.errors import AlreadyExists, APIError, Forbidden, NotFound
from atoll.api.timestamps import format_micro_time
from atoll.client import Client, ClientError
from atoll.fleet import constants as c
from atoll.fleet.agentid import IdentityError, request_token
from atoll.fleet.karmada.clusters import probe_member
from atoll.fleet.karmada.execution import ExecutionReconciler, work_changed
from atoll.fleet.karmada.interpreter import Interpreter
from atoll.fleet.karmada.names import execution_namespace
from atoll.fleet.kinds import CLUSTERS, RESOURCE_INTERPRETER_CUSTOMIZATIONS, WORKS
from atoll.runtime import Controller, InformerFactory, ObjectKey

JSON = dict[str, Any]
log = logging.getLogger(__name__)


class LocalMember:
    """The executor's member source in the agent: always the member it runs beside."""

    def __init__(self, member: Client) -> None:
        self.member = member

    async def get(self, cluster: JSON) -> Client:
        return self.member


class PullAgent:
    def __init__(
        self,
        instance: Client,
        member: Client,
        cluster: str,
        *,
        labels: dict[str, str] | None = None,
        period: float = 10.0,
        lease_seconds: int = 40,
        workers: int = 5,
        clock: Clock = SYSTEM_CLOCK,
        renew_token: bool = False,
    ) -> None:
        """``renew_token``: ``instance`` uses the cluster's own ServiceAccount token
        (:mod:`atoll.fleet.agentid`); renew it at 80 % of its life (TokenRequest on itself)."""
        self.renew_token = renew_token
        self.instance = instance
        self.member = member
        self.cluster = cluster
        self.labels = labels or {}
        self.period = period
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.informers = InformerFactory(instance)
        self.works = self.informers.informer(WORKS, execution_namespace(cluster))
        self.clusters = self.informers.informer(CLUSTERS, field_selector=f"metadata.name={cluster}")
        self.rics = self.informers.informer(RESOURCE_INTERPRETER_CUSTOMIZATIONS)
        self.execution = ExecutionReconciler(
            instance,
            self.works.cache,
            self.clusters.cache,
            LocalMember(member),
            lambda key: self.controller.queue.add(key),
            pull=True,
            interpreter=Interpreter(self.rics.cache),
        )
        self.controller: Controller[ObjectKey] = Controller("karmada-agent-execution", self.execution, workers=workers)
        self.controller.watch(self.works, update_predicate=work_changed)
        self.registered = asyncio.Event()

    async def run(self) -> None:
        await self.register()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.informers.run(), name=f"karmada-agent/{self.cluster}/informers")
                tg.create_task(self.controller.run(), name=f"karmada-agent/{self.cluster}/execution")
                tg.create_task(self._status_loop(), name=f"karmada-agent/{self.cluster}/status")
                if self.renew_token:
                    tg.create_task(self._token_loop(), name=f"karmada-agent/{self.cluster}/token")
        finally:
            with contextlib.suppress(Exception):
                await self.execution.watches.close()

    async def register(self) -> None:
        """Create the Cluster (``syncMode: Pull``) unless it exists; refuse to take over a Push one.

        With a per-cluster identity (:mod:`atoll.fleet.agentid`) the Cluster was registered when
        the identity was issued and the agent may not create Clusters: it only updates its own
        labels and ``apiEndpoint``."""
        body = {
            "apiVersion": CLUSTERS.api_version,
            "kind": "Cluster",
            "metadata": {"name": self.cluster, "labels": self.labels},
            "spec": {"syncMode": "Pull", "apiEndpoint": self.member.server},
        }
        try:
            await self.instance.create(CLUSTERS, body)
        except (AlreadyExists, Forbidden) as exc:
            try:
                current = await self.instance.get(CLUSTERS, self.cluster)
            except NotFound:
                raise exc from None  # forbidden to create it, and nobody registered it
            spec = current.get("spec") or {}
            mode = spec.get("syncMode") or "Push"
            if mode != "Pull":
                raise AgentError(
                    f"cluster {self.cluster!r} is registered with syncMode {mode}: unjoin it before running an agent"
                ) from None
            labels = current["metadata"].get("labels") or {}
            if spec.get("apiEndpoint") != self.member.server or any(labels.get(k) != v for k, v in self.labels.items()):
                patch = {"metadata": {"labels": self.labels}, "spec": {"apiEndpoint": self.member.server}}
                await self.instance.patch(CLUSTERS, self.cluster, patch)
        self.registered.set()

    async def _status_loop(self) -> None:
        while True:
            try:
                await self.report()
            except (ClientError, APIError) as exc:
                log.warning("cluster %s: cannot report status to the instance: %s", self.cluster, exc)
            await self.clock.sleep(self.period)

    async def report(self) -> None:
        """Probe the member, post the Cluster's status and renew the lease."""
        await self._renew()
        try:
            cluster = await self.instance.get(CLUSTERS, self.cluster)
        except NotFound:  # unjoined: register again (as karmada-agent does on restart)
            await self.register()
            cluster = await self.instance.get(CLUSTERS, self.cluster)
        status, _taint = await probe_member(self.member, cluster.get("status") or {})
        if status != cluster.get("status"):
            await self.instance.patch(CLUSTERS, self.cluster, {"status": status}, subresource="status")

    async def _token_loop(self) -> None:
        while True:
            expiry = token_expiry(self.instance.token or "")
            if expiry is None:
                return  # not a ServiceAccount token: nothing to renew
            issued = token_issued(self.instance.token or "") or self.clock.now()
            await self.clock.sleep(max(1.0, issued + 0.8 * (expiry - issued) - self.clock.now()))
            try:
                self.instance.set_token(await request_token(self.instance, self.cluster))
            except (ClientError, APIError, IdentityError) as exc:
                log.warning("cluster %s: cannot renew the agent's token: %s", self.cluster, exc)
                await self.clock.sleep(self.period)

    async def _renew(self) -> None:
        now = format_micro_time(self.clock.now())
        spec = {"holderIdentity": f"karmada-agent-{self.cluster}", "leaseDurationSeconds": self.lease_seconds}
        try:
            await self.instance.patch(
                kinds.LEASES, self.cluster, {"spec": {**spec, "renewTime": now}}, c.CLUSTER_NAMESPACE
            )
        except NotFound:
            body = {"metadata": {"name": self.cluster}, "spec": {**spec, "acquireTime": now, "renewTime": now}}
            with contextlib.suppress(AlreadyExists):
                await self.instance.create(kinds.LEASES, body, c.CLUSTER_NAMESPACE)


def _claims(token: str) -> JSON:
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def token_expiry(token: str) -> float | None:
    """A JWT's ``exp`` (not verified: only to plan the renewal), None for other tokens."""
    exp = _claims(token).get("exp")
    return float(exp) if isinstance(exp, int | float) else None


def token_issued(token: str) -> float | None:
    iat = _claims(token).get("iat")
    return float(iat) if isinstance(iat, int | float) else None


class AgentError(Exception):
    """The agent cannot serve this cluster (the message says why)."""
