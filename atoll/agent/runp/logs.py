"""Container log files: one per container and restart, rotated by size.

Layout (Kuscia's): ``<agent>/logs/<namespace>_<pod>_<uid>/<container>/<restart>.log``. The
process writes the file directly (``O_APPEND``), so logs survive an agent restart and cost the
agent nothing per line. Rotation is copy-and-truncate (logrotate's ``copytruncate``): when a file
passes ``max_bytes`` it is copied to ``<restart>.log.1`` (older copies shift up, at most
``max_files`` kept) and truncated; the writer's ``O_APPEND`` continues at offset 0. A few bytes
written between the copy and the truncate can be lost — the price of needing no pipe.

Lines carry no per-line timestamps (the runtime does not sit in the output path): ``timestamps``
prefixes each line with the modification time of the file segment it comes from, and
``sinceSeconds``/``sinceTime`` skip whole segments older than the bound.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from atoll.api.timestamps import format_nano_time


def container_dir(root: Path, namespace: str, pod: str, uid: str, container: str) -> Path:
    return root / "logs" / f"{namespace}_{pod}_{uid}" / container


def log_path(root: Path, namespace: str, pod: str, uid: str, container: str, restart: int) -> Path:
    return container_dir(root, namespace, pod, uid, container) / f"{restart}.log"


def segments(path: Path) -> list[Path]:
    """The rotated copies of ``path`` (oldest first) and ``path`` itself, those that exist."""
    rotated = sorted(path.parent.glob(path.name + ".*"), key=lambda p: -_suffix_number(p))
    return [p for p in rotated if _suffix_number(p) > 0] + ([path] if path.exists() else [])


def _suffix_number(path: Path) -> int:
    try:
        return int(path.name.rsplit(".", 1)[1])
    except (IndexError, ValueError):
        return 0


def rotate_if_needed(path: Path, max_bytes: int, max_files: int) -> bool:
    try:
        if path.stat().st_size <= max_bytes:
            return False
    except FileNotFoundError:
        return False
    keep = max(max_files - 1, 1)
    for index in range(keep, 0, -1):
        older = path.with_name(f"{path.name}.{index}")
        if older.exists():
            if index == keep:
                older.unlink()
            else:
                os.replace(older, path.with_name(f"{path.name}.{index + 1}"))
    shutil.copyfile(path, path.with_name(f"{path.name}.1"))
    os.truncate(path, 0)
    return True


def read_tail(path: Path, *, tail_lines: int | None, since: float | None, timestamps: bool) -> tuple[bytes, int]:
    """The existing content (after ``tail_lines``/``since``) and the offset reached in ``path``."""
    parts: list[bytes] = []
    offset = 0
    for segment in segments(path):
        try:
            stat = segment.stat()
            data = segment.read_bytes()
        except FileNotFoundError:
            continue
        if segment == path:
            offset = len(data)
        if since is not None and stat.st_mtime < since:
            continue
        parts.append(stamp(data, stat.st_mtime) if timestamps else data)
    content = b"".join(parts)
    if tail_lines is not None:
        content = last_lines(content, tail_lines)
    return content, offset


def last_lines(data: bytes, count: int) -> bytes:
    if count <= 0:
        return b""
    lines = data.splitlines(keepends=True)
    return b"".join(lines[-count:])


def stamp(data: bytes, when: float) -> bytes:
    prefix = (format_nano_time(when) + " ").encode()
    return b"".join(prefix + line for line in data.splitlines(keepends=True))
