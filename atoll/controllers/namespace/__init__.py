"""Namespace controller: deletes a terminating namespace's content, then finalizes it.

See :mod:`.controller` for the life cycle and :mod:`.content` for how content is found and
deleted. ``setup`` wires one informer (namespaces) and one controller into the manager.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from atoll.api.kinds import NAMESPACES
from atoll.controllers.namespace.controller import NamespaceReconciler
from atoll.runtime import Controller, ObjectKey

if TYPE_CHECKING:
    from atoll.controllers import ControllerContext
    from atoll.runtime import Manager

__all__ = ["NamespaceReconciler", "setup"]


def _terminating(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Only terminating namespaces need work; label or status writes of live ones are ignored."""
    return bool((new.get("metadata") or {}).get("deletionTimestamp"))


def setup(manager: Manager, ctx: ControllerContext) -> None:
    informer = manager.informer(NAMESPACES)
    controller: Controller[ObjectKey] = Controller(
        "namespace", NamespaceReconciler(ctx.client, informer), workers=ctx.workers
    )
    controller.watch(informer, update_predicate=_terminating)
    manager.add(controller)
