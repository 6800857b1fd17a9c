"""``atoll domain add-lite ID`` and ``atoll token show DOMAIN`` (Kuscia's add_domain_lite.sh).

``add-lite`` applies the Domain of a lite (annotation ``domain/<id>:
kuscia.secretflow/domain-type=embedded``, ``spec.master`` = the master's domain, ``authCenter``
Token/RSA-GEN), waits up to 60 s for the Domain controller to mint a deploy token and prints it.
An existing Domain is kept; its current unused token is printed. ``token show`` prints the unused
deploy token of a domain (a fresh one appears once the previous one was used).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import click

from atoll.api import errors, kinds
from atoll.cli.common import fail
from atoll.cli.connect import admin_client, master_options, run
from atoll.client import Client

JSON = dict[str, Any]
TOKEN_WAIT_SECONDS = 60.0


def lite_domain(domain: str, master: str) -> JSON:
    return {
        "apiVersion": "kuscia.secretflow/v1alpha1",
        "kind": "Domain",
        "metadata": {"name": domain, "annotations": {f"domain/{domain}": "kuscia.secretflow/domain-type=embedded"}},
        "spec": {"cert": "", "role": "", "master": master,
                 "authCenter": {"authenticationType": "Token", "tokenGenMethod": "RSA-GEN"}},
    }


def unused_token(domain: JSON) -> str:
    for entry in (domain.get("status") or {}).get("deployTokenStatuses") or []:
        if entry.get("state") == "unused" and entry.get("token"):
            return str(entry["token"])
    return ""


async def wait_token(client: Client, domain: str, within: float = TOKEN_WAIT_SECONDS) -> str:
    deadline = time.monotonic() + within
    while True:
        token = unused_token(await client.get(kinds.DOMAINS, domain))
        if token:
            return token
        if time.monotonic() > deadline:
            raise errors.InternalError(
                f"domain {domain}: no unused deploy token after {within:.0f} s (is the master's domain controller "
                f"running?)"
            )
        await asyncio.sleep(0.2)


async def add_lite(client: Client, domain: str, master: str) -> str:
    try:
        await client.create(kinds.DOMAINS, lite_domain(domain, master))
    except errors.AlreadyExists:
        pass
    return await wait_token(client, domain)


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
