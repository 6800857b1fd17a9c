"""``atoll domain add-lite ID`` and ``atoll token show DOMAIN`` (Kuscia's add_domain_lite.sh; see
:mod:`atoll.node.admin_ops`)."""

from __future__ import annotations

from pathlib import Path

import click

from atoll.cli.common import fail
from atoll.cli.connect import admin_client, master_options, run
from atoll.node.admin_ops import add_lite, wait_token


@click.group()
def domain() -> None:
    """Domains of the network (run on the master)."""


@domain.command("add-lite")
@click.argument("domain_id")
@click.argument("master_domain_id", required=False)
@master_options
def add_lite_cmd(domain_id: str, master_domain_id: str | None, config_path: Path | None,
                 kubeconfig: str | None) -> None:
    """Create the Domain of a lite node and print its one-time deploy token."""
    from atoll.api.constants import domain_id_problem

    problem = domain_id_problem(domain_id)
    if problem:
        fail(f"DOMAIN_ID {domain_id!r}: {problem}")
    client, master = admin_client(config_path, kubeconfig)
    click.echo(run(lambda c: add_lite(c, domain_id, master_domain_id or master), client))


@click.group()
def token() -> None:
    """Lite deploy tokens (run on the master)."""


@token.command("show")
@click.argument("domain_id")
@master_options
def token_show(domain_id: str, config_path: Path | None, kubeconfig: str | None) -> None:
    """Print the unused deploy token of DOMAIN_ID."""
    client, _ = admin_client(config_path, kubeconfig)
    click.echo(run(lambda c: wait_token(c, domain_id, 10.0), client))
