"""The master's control plane over any Kubernetes API: the leader-elected controller manager
(controllers + scheduler profile), CRD installation and the namespaces every master needs.

Everything here talks through :class:`atoll.client.Client` only — the same code runs against the
embedded API server (``MasterNode``) and an external one (``apiserver: external``, see
:mod:`atoll.node.external`).
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Callable
from typing import Any

from atoll.api import errors, kinds
from atoll.api.crd import kuscia_crds, pooling_crds
from atoll.api.registry import ResourceDef
from atoll.client import Client
from atoll.controllers import CONTROLLERS, ControllerContext, setup_all
from atoll.node.config import NodeConfig
from atoll.runtime.leader import LeaderElector
from atoll.runtime.manager import Manager
from atoll.scheduler import setup as setup_scheduler

log = logging.getLogger(__name__)
CONTROLLER_LEASE = "kuscia-controller-manager"
CRDS = ResourceDef("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions",
                   "customresourcedefinition", False, ("crd", "crds"))
MASTER_NAMESPACES = ("cross-domain",)
JSON = dict[str, Any]


def lease_identity(address: str = "") -> str:
    """A controller manager's holderIdentity in the Lease: ``hostname_host:port_suffix`` (the
    master's ``host:port`` when it has an API server of its own), unique per process."""
    return "_".join(p for p in (socket.gethostname(), address, uuid.uuid4().hex[:8]) if p)


async def run_controllers(
    client: Client,
    config: NodeConfig,
    on_manager: Callable[[Manager], None] | None = None,
    *,
    address: str = "",
    identity: str | None = None,
) -> None:
    """Controllers and the scheduler, only while this replica holds the lease. ``address`` (the
    master's ``host:port``) goes into the Lease's holderIdentity, so ``atoll status`` can say
    which master leads; ``identity`` replaces that holderIdentity (an ``apiserver: external``
    master records its own in its data dir for the same purpose)."""
    elector = LeaderElector(
        client,
        name=CONTROLLER_LEASE,
        namespace=config.domain_id,
        identity=identity or lease_identity(address),
        # a standby takes over < 17 s after a crash (lease + two jittered 1-2.2 s polls); the leader
        # renews every 2 s (kube-controller-manager's period: one PUT each), which that bound does
        # not depend on
        lease_duration=12.0,
        renew_deadline=8.0,
        retry_period=1.0,
        renew_period=2.0,
    )
    manager = Manager(client, leader_election=elector)
    ctx = ControllerContext(
        client,
        master_domain=config.domain_id,
        enable_workload_approve=config.enable_workload_approve,
        job_gc_duration_hours=config.job_gc_duration_hours,
        probe_task_ports=config.extra.get("probeTaskPorts") is True,
    )
    wanted = config.controllers
    names = setup_all(manager, ctx, CONTROLLERS if wanted is None else tuple(n for n in wanted if n != "scheduler"))
    if wanted is None or "scheduler" in wanted:
        setup_scheduler(manager, ctx)
        names.append("scheduler")
    log.info("controllers: %s", ", ".join(names) or "none")
    if on_manager is not None:
        on_manager(manager)
    await manager.run()


async def install_crds(client: Client, *, pooling: bool = True) -> list[str]:
    """Create Atoll's CRDs, or bring their spec up to date; returns what changed (``created X``...)."""
    done: list[str] = []
    for crd in (*kuscia_crds(), *(pooling_crds() if pooling else ())):
        name = crd["metadata"]["name"]
        try:
            current = await client.get(CRDS, name)
        except errors.NotFound:
            await client.create(CRDS, crd)
            done.append(f"created {name}")
            continue
        if current.get("spec") != crd.get("spec"):
            await client.update(CRDS, {**current, "spec": crd["spec"]})
            done.append(f"updated {name}")
    return done


async def ensure_namespaces(client: Client, config: NodeConfig) -> None:
    """``cross-domain`` and the master's own namespace (where its Lease lives)."""
    for name in (*MASTER_NAMESPACES, config.domain_id):
        try:
            await client.create(kinds.NAMESPACES, {"metadata": {"name": name}})
        except errors.AlreadyExists:
            pass
