"""The ``atoll`` command: init, start, kubeconfig (and more as modules arrive).

Every failure prints one clear line on stderr and exits non-zero; never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from atoll.cli.common import fail, load
from atoll.cli.data import data as data_command
from atoll.cli.domain import domain, token
from atoll.cli.eventloop import loop_factory
from atoll.cli.init_cmd import init
from atoll.cli.job import job as job_commands
from atoll.cli.quickstart import quickstart
from atoll.cli.route import route
from atoll.cli.status import status
from atoll.cli.store import store as store_commands
from atoll.node.config import ConfigError, NodeConfig
from atoll.store.base import StoreError

F = TypeVar("F", bound=Callable[..., Any])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Atoll: a Kubernetes-compatible control plane for secure multi-party computing."""


main.add_command(init)
main.add_command(domain)
main.add_command(token)
main.add_command(route)
main.add_command(quickstart)
main.add_command(status)
_load = load


@main.command()
@click.option("-c", "--config", "config_path", type=click.Path(path_type=Path), required=True)
def start(config_path: Path) -> None:
    """Run the node until SIGTERM or SIGINT (clean shutdown, exit 0)."""
    from atoll.node.pki import check_pki

    config = _load(config_path)
    try:
        check_pki(config)
    except ConfigError as exc:
        fail(str(exc))
    logging.basicConfig(
        level=getattr(logging, config.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        factory = loop_factory()
    except ValueError as exc:
        fail(str(exc))
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(_run_node(config))
    except (ConfigError, OSError, StoreError) as exc:
        fail(str(exc))
    except BaseExceptionGroup as group:  # a module's start failed inside the node's TaskGroup
        leaf = _first_leaf(group)
        if isinstance(leaf, (ConfigError, OSError)):
            logging.getLogger("atoll").debug("node failed", exc_info=group)
            fail(str(leaf))
        raise


def _first_leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


async def _run_node(config: NodeConfig) -> None:
    from atoll.node.runner import run_node

    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    stopping = False

    def stop() -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            logging.getLogger("atoll").info("shutting down")
            task.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    with contextlib.suppress(asyncio.CancelledError):
        await run_node(config)
    if not stopping:
        raise SystemExit(1)


@main.command()
@click.option("-c", "--config", "config_path", type=click.Path(path_type=Path), required=True)
@click.option("--token", is_flag=True, help="Authenticate with the admin token instead of a client certificate.")
@click.option("--server", default="", help="Server URL (default: the running node's, else the configured port).")
def kubeconfig(config_path: Path, token: bool, server: str) -> None:
    """Print an admin kubeconfig for the node."""
    from atoll.node.kubeconfig import admin_kubeconfig, dump
    from atoll.node.master import endpoint_file
    from atoll.pki import PKI

    config = _load(config_path)
    if not server:
        running = endpoint_file(config.data_dir)
        server = running.read_text().strip() if running.exists() else f"https://{config.api_host}:{config.api_port}"
    pki = PKI(config.data_dir / "pki")
    if not pki.admin_cert.exists():
        fail(f"{pki.admin_cert} does not exist: `atoll kubeconfig` needs a master's config (created by atoll init)")
    click.echo(dump(admin_kubeconfig(pki, server, use_token=token)), nl=False)


@main.group()
def image() -> None:
    """The local image store of a RunP node (directories of programs)."""


@image.command("load")
@click.option("-c", "--config", "config_path", type=click.Path(path_type=Path), required=True)
@click.option("--name", "reference", required=True, help="Image reference NAME:TAG used in pod specs.")
@click.argument("directory", type=click.Path(path_type=Path, exists=True, file_okay=False))
def image_load(config_path: Path, reference: str, directory: Path) -> None:
    """Copy DIRECTORY into the node's image store as NAME:TAG."""
    from atoll.agent.runp.images import ImageError, ImageStore

    config = _load(config_path)
    try:
        loaded = ImageStore(config.data_dir / "agent" / "images").load(directory, reference)
    except (ImageError, OSError) as exc:
        fail(str(exc))
        raise AssertionError from exc
    click.echo(f"loaded {loaded.reference} {loaded.image_id}")


@image.command("ls")
@click.option("-c", "--config", "config_path", type=click.Path(path_type=Path), required=True)
def image_ls(config_path: Path) -> None:
    """List the images of the node's store."""
    from atoll.agent.runp.images import ImageStore

    config = _load(config_path)
    click.echo(f"{'IMAGE':<50} ID")
    for img in ImageStore(config.data_dir / "agent" / "images").list():
        click.echo(f"{img.reference:<50} {img.image_id[:19]}")


@main.command()
@click.option("--pooling", is_flag=True, help="Kubeocean's ClusterBinding and ResourceLeasingPolicy instead.")
@click.option("--kubeconfig", default="", help="Install them (create or update) on this API server, not print.")
def crds(pooling: bool, kubeconfig: str) -> None:
    """Print the Kuscia CRD manifests, or install them on an API server (K8s controller mode)."""
    import yaml

    from atoll.api.crd import kuscia_crds, pooling_crds

    if kubeconfig:
        from atoll.cli.crds import install

        install(kubeconfig)
        return
    click.echo(yaml.safe_dump_all(pooling_crds() if pooling else kuscia_crds(), sort_keys=False), nl=False)


from atoll.cli.pooling import pool_syncer  # noqa: E402

main.add_command(pool_syncer)


main.add_command(data_command)
from atoll.cli.fleet import fleet_commands  # noqa: E402

main.add_command(fleet_commands)
main.add_command(job_commands)
main.add_command(store_commands)

if __name__ == "__main__":
    main()
