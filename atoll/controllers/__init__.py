"""Controllers: one package per reconciled kind, wired into a runtime ``Manager``.

Each controller package exposes ``setup(manager, ctx)`` that creates its informers and adds its
controller(s) to the manager. Controllers never import each other; this module is the only place
that knows them all. ``CONTROLLERS`` lists the packages in start order.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass

from atoll.client import Client
from atoll.runtime.manager import Manager

log = logging.getLogger(__name__)

# packages under atoll.controllers, each with setup(manager, ctx)
CONTROLLERS: tuple[str, ...] = (
    "namespace",
    "garbagecollector",
    "resourcequota",
    "domain",
    "nodelifecycle",
    "endpoints",
    "replicaset",
    "deployment",
    "job",
    "cronjob",
    "disruption",
    "daemonset",
    "statefulset",
    "persistentvolume",
    "kusciajob",
    "kusciatask",
    "taskresourcegroup",
    "domainroute",
)


@dataclass(frozen=True, slots=True)
class ControllerContext:
    """What controllers may know about the node they run in."""

    client: Client
    master_domain: str = "kuscia-system"
    workers: int = 4
    enable_workload_approve: bool = False
    """``enableWorkloadApprove``: jobs wait in ``AwaitingApproval`` until every party accepts."""
    job_gc_duration_hours: float = 720.0
    """``garbageCollection.kusciaJobGC.durationHours``: finished KusciaJobs are deleted after this."""
    probe_task_ports: bool = False
    """``probeTaskPorts``: every lite runs on this host, so task ports busy here are skipped."""


def setup_all(manager: Manager, ctx: ControllerContext, names: tuple[str, ...] = CONTROLLERS) -> list[str]:
    """Set up every available controller package; returns the names set up."""
    done = []
    for name in names:
        try:
            module = importlib.import_module(f"atoll.controllers.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"atoll.controllers.{name}":
                raise
            log.debug("controller package %s is not available", name)
            continue
        setup = getattr(module, "setup", None)
        if setup is None:
            log.warning("atoll.controllers.%s has no setup(manager, ctx); not started", name)
            continue
        setup(manager, ctx)
        done.append(name)
    return done
