"""``atoll fleet``: Kairship instances and their member clusters, through the management plane
named by the usual kubeconfig resolution (``--kubeconfig`` / ``$KUBECONFIG`` / ``~/.kube/config``,
``--context``), like kubectl.

- ``instance create|delete|ls``, ``instance kubeconfig NAME`` (a kubeconfig whose server is the
  instance's proxy URL on the management plane, with the caller's own credentials);
- ``cluster join INSTANCE NAME --member-kubeconfig FILE`` / ``cluster unjoin INSTANCE NAME``
  (through the instance proxy);
- ``cluster token INSTANCE NAME`` (a Pull cluster's least-privilege agent kubeconfig) and
  ``agent INSTANCE NAME --member-kubeconfig FILE [--instance-kubeconfig AGENT_FILE]``.

Every refusal prints one ``error: …`` line and exits 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml

from atoll.api import errors
from atoll.client import Client, ClientError, ConfigError
from atoll.fleet.agentid import AGENT_TOKEN_SECONDS, IdentityError, agent_kubeconfig
from atoll.fleet.join import JoinError, join_cluster, unjoin_cluster
from atoll.fleet.karmada.members import flatten_kubeconfig
from atoll.fleet.kinds import INSTANCES
from atoll.fleet.kubeconfigs import KubeconfigError, proxy_kubeconfig, proxy_path

T = TypeVar("T")
JSON = dict[str, Any]


def _kubeconfig_path(kubeconfig: str | None) -> Path:
    if kubeconfig:
        return Path(kubeconfig)
    env = os.environ.get("KUBECONFIG", "")
    return Path(env.split(os.pathsep)[0]) if env else Path.home() / ".kube" / "config"


def _run(work: Callable[[Client], Awaitable[T]], kubeconfig: str | None, context: str | None) -> T:
    async def main() -> T:
        async with Client.from_kubeconfig(str(_kubeconfig_path(kubeconfig)), context) as client:
            return await work(client)

    try:
        return asyncio.run(main())
    except (errors.APIError, ClientError, ConfigError, IdentityError, JoinError, KubeconfigError, OSError) as exc:
        click.echo(f"error: {getattr(exc, 'message', None) or exc}", err=True)
    sys.exit(1)


def _proxy(client: Client, instance: str) -> Client:
    """A client of ``instance`` through the management plane's proxy, with the caller's credentials."""
    return client.under_path(proxy_path(instance))


@click.group("fleet")
@click.option("--kubeconfig", envvar="KUBECONFIG", default=None, help="Management plane kubeconfig.")
@click.option("--context", default=None, help="Kubeconfig context (default: its current context).")
@click.pass_context
def fleet_commands(ctx: click.Context, kubeconfig: str | None, context: str | None) -> None:
    """Kairship: isolated multi-cluster instances managed from one place."""
    ctx.obj = {"kubeconfig": kubeconfig, "context": context}


@fleet_commands.group("instance")
def instance_commands() -> None:
    """Create, delete and list instances; print an instance's kubeconfig."""


@instance_commands.command("create")
@click.argument("name")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until the control plane is ready.")
@click.pass_obj
def instance_create(obj: JSON, name: str, wait: bool) -> None:
    async def work(client: Client) -> None:
        await client.create(
            INSTANCES,
            {"apiVersion": "kairship.io/v1alpha1", "kind": "Instance", "metadata": {"name": name}, "spec": {}},
        )
        deadline = time.monotonic() + 60
        while wait:
            status = (await client.get(INSTANCES, name)).get("status") or {}
            if status.get("controlPlaneReady"):
                break
            if status.get("phase") == "Failed" or time.monotonic() > deadline:
                raise JoinError(
                    f"instance {name!r} did not become ready: {status.get('message') or status.get('phase')}"
                )
            await asyncio.sleep(0.2)

    _run(work, obj["kubeconfig"], obj["context"])
    click.echo(f"instance.kairship.io/{name} created")


@instance_commands.command("delete")
@click.argument("name")
@click.pass_obj
def instance_delete(obj: JSON, name: str) -> None:
    async def work(client: Client) -> None:
        await client.delete(INSTANCES, name)

    _run(work, obj["kubeconfig"], obj["context"])
    click.echo(f"instance.kairship.io/{name} deleted")


@instance_commands.command("ls")
@click.pass_obj
def instance_ls(obj: JSON) -> None:
    async def work(client: Client) -> list[JSON]:
        return list((await client.list(INSTANCES)).get("items") or ())

    rows = [("NAME", "PHASE", "READY", "CLUSTERS", "NODES")]
    for item in _run(work, obj["kubeconfig"], obj["context"]):
        status = item.get("status") or {}
        summary = status.get("summary") or {}
        rows.append(
            (
                item["metadata"]["name"],
                str(status.get("phase") or ""),
                str(bool(status.get("controlPlaneReady"))),
                str((summary.get("clusterSummary") or {}).get("totalNum", 0)),
                str((summary.get("nodeSummary") or {}).get("totalNum", 0)),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@instance_commands.command("kubeconfig")
@click.argument("name")
@click.pass_obj
def instance_kubeconfig(obj: JSON, name: str) -> None:
    """Print a kubeconfig for instance NAME through the management plane's proxy."""

    async def work(client: Client) -> None:
        await client.get(INSTANCES, name)  # 404 (or 403) now, not at first use

    _run(work, obj["kubeconfig"], obj["context"])
    try:
        doc = yaml.safe_load(_kubeconfig_path(obj["kubeconfig"]).read_text())
        click.echo(yaml.safe_dump(proxy_kubeconfig(doc, obj["context"], name), sort_keys=False), nl=False)
    except (KubeconfigError, OSError, yaml.YAMLError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


@fleet_commands.group("cluster")
def cluster_commands() -> None:
    """Join member clusters to an instance (Push mode) and remove them."""


@cluster_commands.command("join")
@click.argument("instance")
@click.argument("name")
@click.option(
    "--member-kubeconfig",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Kubeconfig of the member cluster.",
)
@click.option("--member-context", default=None, help="Context of the member kubeconfig.")
@click.pass_obj
def cluster_join(obj: JSON, instance: str, name: str, member_kubeconfig: Path, member_context: str | None) -> None:
    try:
        member = flatten_kubeconfig(member_kubeconfig, member_context)
    except (ConfigError, OSError, StopIteration, KeyError, yaml.YAMLError) as exc:
        click.echo(f"error: --member-kubeconfig: {exc or 'no such context'}", err=True)
        sys.exit(1)

    async def work(client: Client) -> None:
        await client.get(INSTANCES, instance)
        async with _proxy(client, instance) as proxied:
            await join_cluster(proxied, name, member)

    _run(work, obj["kubeconfig"], obj["context"])
    click.echo(f"cluster.cluster.karmada.io/{name} joined instance {instance}")


@cluster_commands.command("unjoin")
@click.argument("instance")
@click.argument("name")
@click.pass_obj
def cluster_unjoin(obj: JSON, instance: str, name: str) -> None:
    async def work(client: Client) -> None:
        async with _proxy(client, instance) as proxied:
            await unjoin_cluster(proxied, name)

    _run(work, obj["kubeconfig"], obj["context"])
    click.echo(f"cluster.cluster.karmada.io/{name} unjoined from instance {instance}")


@cluster_commands.command("token")
@click.argument("instance")
@click.argument("name")
@click.option(
    "--expiration-seconds",
    type=click.IntRange(600, AGENT_TOKEN_SECONDS),
    default=AGENT_TOKEN_SECONDS,
    show_default=True,
    help="Lifetime of the token (the running agent renews it).",
)
@click.pass_obj
def cluster_token(obj: JSON, instance: str, name: str, expiration_seconds: int) -> None:
    """Register NAME in INSTANCE as a Pull cluster and print a kubeconfig for its agent: the
    instance's endpoint and CA with a token of ServiceAccount karmada-cluster/karmada-agent-NAME,
    allowed only its own Cluster, Works, Lease and token (karmadactl register's least privilege)."""

    async def work(client: Client) -> JSON:
        return await agent_kubeconfig(client, instance, name, seconds=expiration_seconds)

    doc = _run(work, obj["kubeconfig"], obj["context"])
    click.echo(yaml.safe_dump(doc, sort_keys=False), nl=False)


@fleet_commands.command("agent")
@click.argument("instance")
@click.argument("name")
@click.option(
    "--member-kubeconfig",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Kubeconfig of the member cluster this agent runs beside.",
)
@click.option("--member-context", default=None, help="Context of the member kubeconfig.")
@click.option("--label", "labels", multiple=True, help="KEY=VALUE label of the registered Cluster (repeatable).")
@click.option(
    "--instance-kubeconfig",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The agent's own kubeconfig (atoll fleet cluster token); without it the agent goes through "
    "the management plane's proxy with the caller's credentials (the instance's admin rights).",
)
@click.option("--period", type=float, default=10.0, show_default=True, help="Cluster status and lease period (s).")
@click.pass_obj
def agent(
    obj: JSON,
    instance: str,
    name: str,
    member_kubeconfig: Path,
    member_context: str | None,
    labels: tuple[str, ...],
    instance_kubeconfig: Path | None,
    period: float,
) -> None:
    """Pull mode (karmada-agent): register NAME in INSTANCE with syncMode Pull, apply its Works to
    the member and report their status, the cluster's status and its lease, until interrupted."""
    from atoll.fleet.karmada.agent import AgentError, PullAgent

    pairs = dict(label.partition("=")[::2] for label in labels)
    if any(not k for k in pairs) or any("=" not in label for label in labels):
        click.echo("error: --label: expected KEY=VALUE", err=True)
        sys.exit(1)

    async def serve(instance_client: Client, renew: bool) -> None:
        async with Client.from_kubeconfig(str(member_kubeconfig), member_context, user_agent="karmada-agent") as member:
            pull = PullAgent(instance_client, member, name, labels=pairs, period=period, renew_token=renew)
            try:
                await pull.register()
            except AgentError as exc:
                raise JoinError(str(exc)) from None
            click.echo(f"karmada-agent: cluster {name} of instance {instance} (Pull)", err=True)
            await pull.run()

    async def work(client: Client) -> None:
        await client.get(INSTANCES, instance)
        async with _proxy(client, instance) as proxied:
            await serve(proxied, False)

    if instance_kubeconfig is not None:  # the agent's own identity: no management plane involved
        with contextlib.suppress(KeyboardInterrupt):
            _run(lambda own: serve(own, True), str(instance_kubeconfig), None)
        return
    with contextlib.suppress(KeyboardInterrupt):
        _run(work, obj["kubeconfig"], obj["context"])
