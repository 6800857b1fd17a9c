"""An acknowledged SQLite write survives kill -9 of the process that made it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from atoll.store.sqlite import SQLiteStore

WRITER = """
import asyncio, sys
from pathlib import Path
from atoll.store.sqlite import SQLiteStore

async def main():
    store = SQLiteStore(Path(sys.argv[1]))
    await store.start()
    async def worker(w):
        i = 0
        while True:
            rev = await store.create(f"/k/{w}/{i}", b"v" * 100)
            print(rev, flush=True)
            i += 1
    await asyncio.gather(*(worker(w) for w in range(16)))

asyncio.run(main())
"""


async def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", WRITER, str(db), stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    acked: list[int] = []
    while len(acked) < 3000:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line, "writer died"
        acked.append(int(line))
    os.kill(proc.pid, signal.SIGKILL)
    await proc.wait()
    acked += [int(line) for line in (await proc.stdout.read()).split()]  # printed before the kill

    store = SQLiteStore(db)
    await store.start()
    try:
        listed = await store.list("/k/")
        present = {kv.revision for kv in listed.items}
        assert set(acked) <= present
        assert await store.current_revision() >= max(acked)
    finally:
        await store.close()
