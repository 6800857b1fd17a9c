"""``atoll quickstart`` (what ``make quickstart`` runs): see :mod:`atoll.node.quickstart`.

Progress is shown with rich (a spinner per step on a terminal, plain lines otherwise). SIGINT and
SIGTERM cancel the run; every node is stopped before the command returns. Exit 0 when the network
came up and the check passed (or ``--keep`` was stopped by a signal after that); 1 with one error
line naming the failing node or party otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from pathlib import Path

import click
from rich.console import Console

from atoll.cli.common import fail


@click.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path("quickstart-data"), show_default=True,
              help="Where the three nodes keep their state (wiped at the start of every run).")
@click.option("--keep", is_flag=True, help="Leave the network running until Ctrl-C / SIGTERM.")
def quickstart(data_dir: Path, keep: bool) -> None:
    """Start a master and lites alice and bob as three processes and show the network working."""
    from atoll.node.quickstart import QuickstartError, run_quickstart

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    console = Console(highlight=False)

    def say(line: str) -> None:
        console.print(line, markup=False, soft_wrap=True)

    @contextlib.contextmanager
    def step(text: str) -> Iterator[None]:
        if console.is_terminal:
            with console.status(text):
                yield
        else:
            yield

    async def main() -> None:
        work = asyncio.ensure_future(run_quickstart(data_dir, keep=keep, say=say, step=step))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, work.cancel)
        await work

    try:
        asyncio.run(main())
    except QuickstartError as exc:
        fail(str(exc))
    except asyncio.CancelledError:
        fail("interrupted; every node was stopped")
    except OSError as exc:
        fail(str(exc))
