"""``atoll route create SRC DST URL`` (Kuscia's create_cluster_domain_route.sh; see
:mod:`atoll.node.admin_ops`)."""

from __future__ import annotations

from pathlib import Path

import click

from atoll.api.constants import domain_id_problem
from atoll.cli.common import fail
from atoll.cli.connect import admin_client, master_options, run
from atoll.node.admin_ops import create_route, parse_endpoint


@click.group()
def route() -> None:
    """Routes between domains (run on the master)."""


@route.command("create")
@click.argument("src")
@click.argument("dst")
@click.argument("url")
@click.option("--transit", default="", help="Relay through this third domain (THIRD-DOMAIN transit).")
@master_options
def create_cmd(src: str, dst: str, url: str, transit: str, config_path: Path | None, kubeconfig: str | None) -> None:
    """Create the ClusterDomainRoute SRC-DST to DST's gateway at URL."""
    for role, name in (("SRC", src), ("DST", dst)):
        problem = domain_id_problem(name) if name != "kuscia-system" else None
        if problem:
            fail(f"{role} {name!r}: {problem}")
    try:
        endpoint = parse_endpoint(url)
    except ValueError as exc:
        fail(str(exc))
    client, _ = admin_client(config_path, kubeconfig)
    click.echo(run(lambda c: create_route(c, src, dst, endpoint, transit), client))
