"""The local-path provisioner's node half (Rancher local-path-provisioner's helper pods, in-process).

The agent keeps its node's local-path volumes under ``<data dir>/agent/local-path`` and publishes
that directory on its Node (annotation ``local-path.atoll.dev/root``), where the master's
``persistentvolume`` controller reads it to place new volumes. It then watches PersistentVolumes:

* a volume pinned to this node with a path under the root gets its directory (mode 0700) as soon
  as it appears (RunP also creates it on first use, :func:`claim_dir`);
* a deleted one (``Delete`` reclaim) holding ``local-path.atoll.dev/cleanup`` has its directory
  removed, then the finalizer dropped, so the object disappears only once the data is gone. A
  path outside the root is never removed (a hand-made hostPath volume is the administrator's).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path
from typing import Any

from atoll.agent.config import AgentConfig
from atoll.api import kinds
from atoll.api.errors import APIError, Conflict, NotFound
from atoll.api.kinds import kind
from atoll.api.storage import LOCAL_PATH_CLEANUP, LOCAL_PATH_ROOT, pv_path, pv_single_node
from atoll.client import Client, ClientError
from atoll.runtime.informer import Informer

JSON = dict[str, Any]
PVS = kind("", "persistentvolumes")
log = logging.getLogger(__name__)


def local_path_root(config: AgentConfig) -> Path:
    return config.root / "local-path"


def owned_dir(root: Path, pv: JSON) -> Path | None:
    """The volume's directory when it lies strictly under ``root`` (else None: not ours to touch)."""
    path = pv_path(pv)
    if path is None:
        return None
    target = Path(path).resolve()
    base = root.resolve()
    return target if target != base and target.is_relative_to(base) else None


def make_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)


class LocalPathVolumes:
    def __init__(self, client: Client, config: AgentConfig) -> None:
        self.client, self.node = client, config.name
        self.root = local_path_root(config)
        self.informer = Informer(client, PVS)
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True, mode=0o700)
        await self._publish_root()
        self.informer.add_handler(on_add=self._on_volume, on_update=lambda _old, new: self._on_volume(new))
        await self.informer.run()

    async def _publish_root(self) -> None:
        patch = {"metadata": {"annotations": {LOCAL_PATH_ROOT: str(self.root.resolve())}}}
        try:
            await self.client.patch(kinds.NODES, self.node, patch)
        except (APIError, ClientError) as exc:
            log.warning("could not publish the local-path root on node %s: %s", self.node, exc)

    def _on_volume(self, pv: JSON) -> None:
        if pv_single_node(pv) != self.node:
            return
        target = owned_dir(self.root, pv)
        if target is None:
            return
        name = str(pv["metadata"]["name"])
        deleting = bool(pv["metadata"].get("deletionTimestamp"))
        if deleting and LOCAL_PATH_CLEANUP in (pv["metadata"].get("finalizers") or []) and name not in self._busy:
            self._busy.add(name)
            task = asyncio.create_task(self._cleanup(name, target), name=f"local-path/cleanup/{name}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif not deleting and not target.exists():
            try:
                make_dir(target)
            except OSError as exc:
                log.warning("could not create local-path volume %s at %s: %s", name, target, exc)

    async def _cleanup(self, name: str, target: Path) -> None:
        try:
            await asyncio.to_thread(shutil.rmtree, target, True)
            for _ in range(5):
                current = self.informer.cache.get(name)
                if current is None:
                    return
                finalizers = [f for f in current["metadata"].get("finalizers") or [] if f != LOCAL_PATH_CLEANUP]
                patch = {"metadata": {"finalizers": finalizers,
                                      "resourceVersion": current["metadata"].get("resourceVersion")}}
                try:
                    await self.client.patch(PVS, name, patch)
                    log.info("local-path volume %s removed from %s", name, target)
                    return
                except Conflict:
                    await asyncio.sleep(0.2)
                except NotFound:
                    return
        except (APIError, ClientError, OSError) as exc:
            log.warning("cleanup of local-path volume %s failed: %s", name, exc)
        finally:
            self._busy.discard(name)
