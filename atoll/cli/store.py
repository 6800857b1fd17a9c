"""``atoll store``: offline checks of a node's database."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from atoll.node.config import ConfigError, load_config
from atoll.store.base import StoreError


@click.group()
def store() -> None:
    """The node's database (SQLite file, or PostgreSQL / MySQL)."""


@store.command("check")
@click.option("-c", "--config", "config_path", type=click.Path(path_type=Path), required=True)
def check(config_path: Path) -> None:
    """Open the database without starting the node and check every stored object."""
    from atoll.store.check import check_store

    try:
        config = load_config(config_path)
        report = asyncio.run(check_store(config.datastore_endpoint or None, config.data_dir))
    except (ConfigError, OSError, StoreError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    for key, problem in report.malformed:
        click.echo(f"malformed: {key}: {problem}")
    verdict = "ok" if report.ok else f"{len(report.malformed)} malformed (skipped by the API server)"
    click.echo(f"{report.objects} objects at revision {report.revision}: {verdict}")
    sys.exit(0 if report.ok else 1)
