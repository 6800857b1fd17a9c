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

from atoll.cli.data import data as data_command
from atoll.cli.job import job as job_commands
from atoll.cli.store import store as store_commands
from atoll.node.config import ConfigError, NodeConfig, generate_domain_key, load_config, validate_domain_id
from atoll.store.base import StoreError

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Atoll: a Kubernetes-compatible control plane for secure multi-party computing."""


@main.command()
@click.option("--mode", type=click.Choice(["master", "lite", "autonomy"], case_sensitive=False), required=True)
@click.option("--domain", "-d", "domain_id", required=True, help="Domain ID (RFC 1123 label).")
@click.option("--data-dir", type=click.Path(path_type=Path), required=True, help="State directory of the node.")
@click.option("--api-port", type=int, default=6443, show_default=True, help="API server port (0 = any free port).")
@click.option("--api-host", default="127.0.0.1", show_default=True)
@click.option("--datastore-endpoint", "-e", default="", help="postgresql://… or mysql://… (empty: embedded SQLite).")
@click.option("--kubeconfig", default="", help="lite: join a master directly with this kubeconfig.")
@click.option("--runtime", "-r", default="runp", show_default=True)
@click.option(
    "--master-data-dir",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=None,
    help="lite, same machine as the master: issue the agent's log-serving certificate from its CA.",
)
@click.option("--log-level", "-l", default="INFO", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Config file to write.")
def init(
    mode: str,
    domain_id: str,
    data_dir: Path,
    api_port: int,
    api_host: str,
    datastore_endpoint: str,
    kubeconfig: str,
    runtime: str,
    master_data_dir: Path | None,
    log_level: str,
    output: Path,
) -> None:
    """Write a node configuration file."""
    mode = mode.lower()
    try:
        validate_domain_id(domain_id)
    except ConfigError as exc:
        fail(str(exc))
    if mode == "lite" and not kubeconfig:
        fail("--kubeconfig is required for --mode lite (direct join); gateway registration comes later")
    config = NodeConfig(
        mode=mode,
        domain_id=domain_id,
        data_dir=data_dir.resolve(),
        api_host=api_host,
        api_port=api_port,
        datastore_endpoint=datastore_endpoint,
        log_level=log_level.upper(),
        domain_key_data=generate_domain_key(),
        kubeconfig=str(Path(kubeconfig).resolve()) if kubeconfig else "",
        runtime=runtime,
    )
    if master_data_dir is not None:
        from atoll.node.lite import issue_agent_certificate

        try:
            issued = issue_agent_certificate(master_data_dir, config.data_dir, domain_id)
        except (OSError, ValueError) as exc:
            fail(f"--master-data-dir: cannot issue the agent certificate: {exc}")
        click.echo(f"issued {issued}")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(config.to_yaml())
    output.chmod(0o600)
    click.echo(f"wrote {output}")


def _load(config_path: Path) -> NodeConfig:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        fail(str(exc))
        raise AssertionError from exc


@main.command()
@click.option("-c", "--config", "config_path", type=click.Path(path_type=Path), required=True)
def start(config_path: Path) -> None:
    """Run the node until SIGTERM or SIGINT (clean shutdown, exit 0)."""
    config = _load(config_path)
    logging.basicConfig(
        level=getattr(logging, config.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        asyncio.run(_run_node(config))
    except (ConfigError, OSError, StoreError) as exc:
        fail(str(exc))


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
    from atoll.pki import ensure_pki

    config = _load(config_path)
    if not server:
        running = endpoint_file(config.data_dir)
        server = running.read_text().strip() if running.exists() else f"https://{config.api_host}:{config.api_port}"
    pki = ensure_pki(config.data_dir / "pki")
    click.echo(dump(admin_kubeconfig(pki, server, use_token=token)), nl=False)


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path("quickstart-data"), show_default=True)
@click.option("--exit", "exit_after", is_flag=True, help="Stop once the network is up and shown.")
def quickstart(data_dir: Path, exit_after: bool) -> None:
    """Start a local network (master + domains alice and bob) and show it working."""
    from atoll.node.quickstart import run_quickstart

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_until_signal(run_quickstart(data_dir, exit_after=exit_after, say=click.echo)))
    except (ConfigError, OSError) as exc:
        fail(str(exc))


async def _until_signal(work: Any) -> None:
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


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
def crds(pooling: bool) -> None:
    """Print the Kuscia CRD manifests (to install Atoll's controllers on a real cluster)."""
    import yaml

    from atoll.api.crd import kuscia_crds, pooling_crds

    click.echo(yaml.safe_dump_all(pooling_crds() if pooling else kuscia_crds(), sort_keys=False), nl=False)


from atoll.cli.pooling import pool_syncer  # noqa: E402

main.add_command(pool_syncer)


main.add_command(data_command)
main.add_command(job_commands)
main.add_command(store_commands)

if __name__ == "__main__":
    main()
