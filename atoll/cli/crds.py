"""``atoll crds --kubeconfig FILE``: install Atoll's CRDs (Kuscia's and Kubeocean's) on any
Kubernetes API server, for ``apiserver: external`` (K8s controller mode)."""

from __future__ import annotations

import asyncio
import sys

import click

from atoll.api.errors import APIError
from atoll.client import Client, ClientError, ConfigError
from atoll.node.control_plane import install_crds


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def install(kubeconfig: str) -> None:
    async def run() -> list[str]:
        async with Client.from_kubeconfig(kubeconfig, user_agent="atoll-crds") as client:
            return await install_crds(client)

    try:
        changes = asyncio.run(run())
    except ConfigError as exc:
        fail(f"--kubeconfig: {exc}")
        return
    except (APIError, ClientError) as exc:
        fail(f"installing the CRDs failed: {exc}")
        return
    for line in changes:
        click.echo(line)
    click.echo(f"{len(changes)} CRDs created or updated; the others are up to date")
