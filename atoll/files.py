"""Private local files: data directories (0700), database and key files (0600), atomic writes.

Everything a node keeps on disk can hold secrets (a Secret's value sits in ``state.db``; keys
under ``pki/``), so nothing is readable by other users, whatever the umask: directories are
created (or tightened) to 0700 and files to 0600. ``write_atomic`` writes a temporary file in the
same directory, fsyncs it and renames it over the target, so a concurrent reader sees the old
content or the new, never half a PEM; ``locked`` serialises writers across processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if missing; make ``path`` itself 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    if path.stat().st_mode & 0o077:
        path.chmod(DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty with 0600 if missing, or tighten an existing file to 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    if path.stat().st_mode & 0o077:
        path.chmod(FILE_MODE)
    return path


def tighten(*paths: Path) -> None:
    """Make each existing file 0600 (e.g. SQLite's ``-wal``/``-shm`` written by an older version)."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mode & 0o077:
                path.chmod(FILE_MODE)


def write_atomic(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """Replace ``path`` with ``data`` atomically (temp file + fsync + rename) with ``mode``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``lock_file`` (created 0600) for the ``with`` block."""
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
