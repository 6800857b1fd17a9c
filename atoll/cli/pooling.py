"""``atoll pool-syncer``: one ClusterBinding's syncer as its own process (Kubeocean's per-cluster
Deployment), against the computing cluster named by a kubeconfig."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click


@click.command("pool-syncer")
@click.option("--binding", required=True, help="Name of the ClusterBinding to sync.")
@click.option("--kubeconfig", "kubeconfig", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              required=True, help="Kubeconfig of the computing cluster.")
@click.option("--pki-dir", type=click.Path(path_type=Path, exists=True, file_okay=False), default=None,
              help="The computing master's pki directory (same machine): serve kubectl logs of pooled pods.")
@click.option("--time-zone", default="UTC", show_default=True, help="IANA time zone of leasing windows.")
@click.option("--lease-duration", type=click.IntRange(min=4), default=40, show_default=True,
              help="vnode Lease duration in seconds (renewed every quarter of it).")
def pool_syncer(binding: str, kubeconfig: Path, pki_dir: Path | None, time_zone: str, lease_duration: int) -> None:
    """Run the syncer of one ClusterBinding until its teardown completes (leader-elected)."""
    from atoll.api.errors import APIError
    from atoll.client import Client, ClientError, ConfigError
    from atoll.pooling.context import SyncerSettings
    from atoll.pooling.node import run_standalone_syncer
    from atoll.pooling.proxier import proxier_tls_from_ca
    from atoll.pooling.windows import time_zone as parse_zone

    try:
        zone = parse_zone(time_zone)
        client = Client.from_kubeconfig(kubeconfig, user_agent="atoll-pool-syncer")
    except (ValueError, ConfigError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    tls = proxier_tls_from_ca(pki_dir) if pki_dir is not None else None
    settings = SyncerSettings(lease_duration=lease_duration, time_zone=zone)

    async def run() -> None:
        async with client:
            await run_standalone_syncer(client, binding, settings, tls)

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    except APIError as exc:
        click.echo(f"error: binding {binding}: {exc.message}", err=True)
        sys.exit(1)
    except ClientError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
