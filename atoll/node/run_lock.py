"""One running master per data dir: its run files (``run/apiserver.url``, the loopback socket)
and its SQLite database are per process, so a second ``atoll start`` on the same data dir is
refused at once, naming the process that holds it.

The lock is an ``flock`` on ``<dataDir>/run/master.lock`` held for the process's lifetime; the
kernel drops it when the process exits, even on ``kill -9``, so a stale file never blocks a
restart. Masters sharing one PostgreSQL/MySQL database each need their own data dir.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from atoll.files import private_dir
from atoll.node.config import ConfigError


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    run = data_dir / "run"
    if not run.exists():
        private_dir(data_dir)
        run.mkdir(mode=0o700, exist_ok=True)
    path = run / "master.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise ConfigError(
                f"{data_dir} is in use by another atoll master (pid {holder}): every master, also masters "
                "sharing one datastore, needs its own --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
