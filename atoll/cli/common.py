"""What every ``atoll`` sub-command shares: one-line errors and loading the node config."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from atoll.node.config import ConfigError, NodeConfig, load_config


def fail(message: str) -> NoReturn:
    """Print ``error: <message>`` on stderr and exit 1 (never a traceback)."""
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def load(config_path: Path) -> NodeConfig:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        fail(str(exc))
