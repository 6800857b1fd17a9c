"""``atoll store check``: is a node's database readable, and is every stored object an object?

Opens the store named by the node config (without starting the node), then reads every live row
and reports those that are not JSON objects with object ``metadata`` (rows written before
validation existed, or damaged): the API server skips such rows with an error in its log, and this
check names them so they can be repaired or deleted. A database that cannot be opened at all is
reported as ``CorruptDatabase`` (which file, what is wrong, what to do).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import orjson

from atoll.store.endpoint import open_store

PAGE = 1000


@dataclass
class CheckReport:
    revision: int = 0
    objects: int = 0
    malformed: list[tuple[str, str]] = field(default_factory=list)  # (key, problem)

    @property
    def ok(self) -> bool:
        return not self.malformed


def _problem(value: bytes) -> str:
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return f"not JSON: {exc}"
    if not isinstance(obj, dict):
        return f"a JSON {type(obj).__name__}, not an object"
    if not isinstance(obj.get("metadata"), dict):
        return "metadata is not an object"
    return ""


async def check_store(endpoint: str | None, data_dir: Path) -> CheckReport:
    """Read every live object of the store; raises ``CorruptDatabase`` when it cannot be opened."""
    store = open_store(endpoint, data_dir)
    await store.start()
    report = CheckReport()
    try:
        report.revision = await store.current_revision()
        start = ""
        while True:
            page = await store.list("/", revision=report.revision, limit=PAGE, start_key=start)
            for kv in page.items:
                report.objects += 1
                problem = _problem(kv.value)
                if problem:
                    report.malformed.append((kv.key, problem))
            if not page.more or not page.items:
                return report
            start = page.items[-1].key + "\x00"
    finally:
        await store.close()
