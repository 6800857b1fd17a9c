"""Install what a starting API server must hold: objects created once, CRDs brought to this version's spec.

Shared by the master (``atoll/node/master.py``) and the fleet instance (``atoll/node/fleet.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from atoll.api import errors
from atoll.apiserver.registry.storage import WriteOptions

JSON = dict[str, Any]


async def ensure_created(creation: Awaitable[object]) -> None:
    """Await a create; an object that already exists is fine."""
    try:
        await creation
    except errors.AlreadyExists:
        pass


def with_spec(spec: Any) -> Callable[[JSON], JSON]:
    """A modify function that replaces ``spec``."""
    return lambda current: {**current, "spec": spec}


async def ensure_crds(objects: Any, registry: Any, crds: Iterable[JSON], opts: WriteOptions) -> None:
    """Create each CRD, or replace its spec when the stored one differs (an upgrade)."""
    crd_rd = registry.get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    assert crd_rd is not None
    for crd in crds:
        name = crd["metadata"]["name"]
        try:
            current = objects.get(crd_rd, None, name).obj
        except errors.NotFound:
            await ensure_created(objects.create(crd_rd, None, crd, opts))
            continue
        if current.get("spec") != crd.get("spec"):
            await objects.modify(crd_rd, None, name, with_spec(crd["spec"]), opts)
