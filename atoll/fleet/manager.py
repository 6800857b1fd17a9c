"""The fleet manager (Kairship's controller-manager on the management plane, leader-elected).

It owns the ``PlaneSet`` of running instances and runs the instance controller
(:mod:`atoll.fleet.instances`) and the statistics controller (:mod:`atoll.fleet.statistics`). The
management API server asks it two things: the upstream of an instance for the ``instances/proxy``
subresource, and an instance's member clusters before letting the instance be deleted
(:mod:`atoll.fleet.admission`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

from atoll.api import errors, kinds
from atoll.client import Client
from atoll.fleet import constants as c
from atoll.fleet.instances import InstanceReconciler
from atoll.fleet.karmada.manager import KarmadaManager, KarmadaSettings
from atoll.fleet.kinds import CLUSTERS, INSTANCES
from atoll.fleet.plane import PlaneFactory, Upstream
from atoll.fleet.planes import PlaneSet
from atoll.fleet.search import SearchIndex
from atoll.fleet.statistics import StatisticsController
from atoll.runtime import Controller, InformerFactory, ObjectKey
from atoll.runtime.leader import LeaderElector


@dataclass(slots=True)
class FleetSettings:
    kubernetes_version: str = "v1.29.0"
    start_timeout: float = 30.0
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    renew_period: float = 4.0
    """The leader's pause between renewals (one PUT each; a failed one is retried every
    ``retry_period`` until ``renew_deadline``): half as often as client-go's default, which neither
    failover (lease duration + standby polls) nor safety (renew deadline < lease) depends on."""
    statistics_period: float = 10.0
    """How often each instance's ``status.summary`` is recomputed."""


class FleetManager:
    def __init__(
        self,
        factory: PlaneFactory,
        root: Path,
        settings: FleetSettings | None = None,
        *,
        karmada: KarmadaSettings | None = None,
    ) -> None:
        self.settings = settings or FleetSettings()
        self.karmada_settings = karmada or KarmadaSettings()
        self.planes = PlaneSet(factory, root, workers=self._run_karmada, start_timeout=self.settings.start_timeout)
        self.leading = asyncio.Event()
        self.karmada: dict[str, KarmadaManager] = {}
        """The running instances' Karmada controller-managers (their caches feed the search index)."""
        self.search = SearchIndex(self.karmada)

    async def _run_karmada(self, name: str, client: Client) -> None:
        manager = KarmadaManager(client, self.karmada_settings)
        self.karmada[name] = manager
        try:
            await manager.run()
        finally:
            if self.karmada.get(name) is manager:
                del self.karmada[name]

    # ---- asked by the management API server ---------------------------------------------------

    def upstream(self, name: str) -> Upstream:
        """The running instance's API (for ``instances/NAME/proxy``), else a 503 naming it."""
        upstream = self.planes.upstream(name)
        if upstream is None:
            raise errors.ServiceUnavailable(f'the control plane of instance "{name}" is not running on this replica')
        return upstream

    async def member_clusters(self, name: str) -> list[str] | None:
        """Names of the instance's member clusters (None: the instance is not running here)."""
        client = self.planes.client(name)
        if client is None:
            return None
        listed = await client.list(CLUSTERS)
        return sorted(item["metadata"]["name"] for item in listed.get("items") or ())

    # ---- the controller -------------------------------------------------------------------------

    async def run(self, client: Client) -> None:
        with contextlib.suppress(errors.AlreadyExists):
            await client.create(kinds.NAMESPACES, {"metadata": {"name": c.SYSTEM_NAMESPACE}})
        informers = InformerFactory(client)
        instances = informers.informer(INSTANCES)
        elector = LeaderElector(
            client,
            name=c.MANAGER_LEASE,
            namespace=c.SYSTEM_NAMESPACE,
            identity=f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}",
            lease_duration=self.settings.lease_duration,
            renew_deadline=self.settings.renew_deadline,
            retry_period=self.settings.retry_period,
            renew_period=self.settings.renew_period,
        )
        reconciler = InstanceReconciler(
            client, instances.cache, self.planes, kubernetes_version=self.settings.kubernetes_version
        )
        controller: Controller[ObjectKey] = Controller("kairship-instance", reconciler, workers=4)
        controller.watch(instances)

        statistics = StatisticsController(client, self.planes, period=self.settings.statistics_period)

        async def lead() -> None:
            self.leading.set()
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(statistics.run(), name="fleet/statistics")
                    await controller.run()
            finally:
                self.leading.clear()
                await self.planes.close()

        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(informers.run(), name="fleet/informers")
                await elector.run(lead)
        finally:
            await self.planes.close()
