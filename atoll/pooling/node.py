"""What a process runs for pooling: the manager on a master, or one binding's syncer on its own.

``pooling_settings(extra, pki_dir)`` reads the node file's ``pooling`` section::

    pooling:
      timeZone: Europe/Paris        # time windows (IANA name); default UTC
      externalSyncers: false        # true: syncers run as `atoll pool-syncer` processes
      leaseDurationSeconds: 40      # vnode Lease duration (renewed every quarter of it)

``run_standalone_syncer`` is ``atoll pool-syncer --binding NAME``: one binding's syncer, leader
-elected on Lease ``kubeocean-system/kubeocean-syncer-<binding>`` so several replicas can run.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from atoll.client import Client
from atoll.pooling import constants as c
from atoll.pooling.context import SyncerSettings
from atoll.pooling.kinds import CLUSTERBINDINGS
from atoll.pooling.manager import ManagerSettings, worker_client
from atoll.pooling.proxier import ProxierTLS, proxier_tls_from_ca
from atoll.pooling.syncer import Syncer
from atoll.pooling.windows import time_zone
from atoll.runtime.leader import LeaderElector

log = logging.getLogger(__name__)


def pooling_settings(extra: dict[str, Any], pki_dir: Path | None) -> ManagerSettings:
    section = extra.get("pooling") or {}
    if not isinstance(section, dict):
        raise ValueError("pooling: must be a mapping")
    lease = section.get("leaseDurationSeconds", 40)
    if not isinstance(lease, int) or lease < 4:
        raise ValueError(f"pooling.leaseDurationSeconds: must be an integer >= 4 (got {lease!r})")
    try:
        zone = time_zone(section.get("timeZone"))
    except ValueError as exc:
        raise ValueError(f"pooling.{exc}") from None
    tls = proxier_tls_from_ca(pki_dir) if pki_dir is not None and (pki_dir / "ca.key").exists() else None
    return ManagerSettings(
        syncer=SyncerSettings(lease_duration=lease, time_zone=zone),
        external_syncers=bool(section.get("externalSyncers", False)),
        tls=tls,
    )


async def run_standalone_syncer(client: Client, binding: str, settings: SyncerSettings,
                                tls: ProxierTLS | None, host: str = "127.0.0.1") -> None:
    """Run one binding's syncer (leader-elected) until its teardown completes."""
    elector = LeaderElector(client, name=f"kubeocean-syncer-{binding}", namespace=c.SYSTEM_NAMESPACE)

    async def lead() -> None:
        delay = 1.0
        while True:
            current = await client.get(CLUSTERBINDINGS, binding)
            worker, _ = await worker_client(client, current)
            try:
                await Syncer(binding, client, worker, settings=settings, tls=tls, proxier_host=host).run()
                return
            except Exception as exc:  # restart with backoff, like the in-master supervisor
                log.warning("syncer of %s failed: %s; restarting in %.0fs", binding, exc, delay)
            finally:
                await worker.close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)

    await elector.run(lead)
