"""How master-side commands reach the master API: ``-c <master config>`` or a kubeconfig.

``-c`` (or ``$ATOLL_CONFIG``) uses the master's admin certificate from its data directory and
the URL the running master published (``<dataDir>/run/apiserver.url``); otherwise
``--kubeconfig`` / ``$KUBECONFIG`` is used, as kubectl does. Failures are one-line errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from atoll.api.errors import APIError
from atoll.cli.common import fail, load
from atoll.client import Client, ClientError
from atoll.client.errors import ConfigError as KubeconfigError

T = TypeVar("T")
DEFAULT_MASTER_DOMAIN = "kuscia-system"


def master_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("-c", "--config", "config_path", type=click.Path(path_type=Path), envvar="ATOLL_CONFIG",
                     default=None, help="The master's config file ($ATOLL_CONFIG).")(f)
    return click.option("--kubeconfig", envvar="KUBECONFIG", default=None,
                        help="A kubeconfig of the master (default $KUBECONFIG), when -c is not given.")(f)


def admin_client(config_path: Path | None, kubeconfig: str | None) -> tuple[Client, str]:
    """(client, the master's domain ID)."""
    from atoll.node.kubeconfig import admin_kubeconfig
    from atoll.node.master import endpoint_file
    from atoll.pki import PKI

    try:
        if config_path is not None:
            config = load(config_path)
            pki = PKI(config.data_dir / "pki")
            if not pki.admin_cert.exists():
                fail(f"{config_path} is not a master's config ({pki.admin_cert} does not exist)")
            running = endpoint_file(config.data_dir)
            server = running.read_text().strip() if running.exists() else f"https://{config.api_host}:{config.api_port}"
            return Client.from_kubeconfig(admin_kubeconfig(pki, server)), config.domain_id
        if kubeconfig:
            return Client.from_kubeconfig(kubeconfig.split(":")[0]), DEFAULT_MASTER_DOMAIN
    except (KubeconfigError, OSError) as exc:
        fail(f"kubeconfig: {exc}")
    fail("which master? give -c <master config> (or $ATOLL_CONFIG) or --kubeconfig (or $KUBECONFIG)")


def run(work: Callable[[Client], Coroutine[Any, Any, T]], client: Client) -> T:
    """Run ``work(client)``; API refusals and connection problems become one error line."""

    async def go() -> T:
        async with client:
            return await work(client)

    try:
        return asyncio.run(go())
    except APIError as exc:
        fail(exc.message)
    except ClientError as exc:
        fail(f"cannot reach the master API: {exc}")
