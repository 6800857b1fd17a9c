"""The agent's shared status-write window (``atoll/agent/runp/window.py``): writers that start
waiting while a window is open leave together; one cancelled writer does not hold back or release
the others early; a closed window makes way for a new one."""

from __future__ import annotations

import asyncio

from atoll.agent.runp.window import WriteWindow


async def test_writers_waiting_together_leave_together() -> None:
    window = WriteWindow(0.0)
    left: list[int] = []

    async def writer(i: int) -> None:
        await window.wait()
        left.append(i)

    tasks = [asyncio.create_task(writer(i)) for i in range(5)]
    await asyncio.gather(*tasks)
    assert sorted(left) == [0, 1, 2, 3, 4]
    assert window.opened == 1


async def test_a_writer_after_the_window_closed_opens_a_new_one() -> None:
    window = WriteWindow(0.0)
    await window.wait()
    await window.wait()
    assert window.opened == 2


async def test_a_cancelled_writer_does_not_release_or_block_the_others() -> None:
    window = WriteWindow(3600.0)  # closes only when the test closes it
    first = asyncio.create_task(window.wait())
    second = asyncio.create_task(window.wait())
    await asyncio.sleep(0)  # both are waiting on the one open window
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    assert first.cancelled() and not second.done()
    assert window._open is not None
    window._close(window._open)  # what the window's timer does
    await second
    assert window.opened == 1
