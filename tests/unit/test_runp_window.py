"""The agent's shared status-write window (``atoll/agent/runp/window.py``): writers that start
waiting while a window is open leave together; a writer that would get less than half the debounce
waits for the following window instead; one cancelled writer does not hold back or release the
others early; a closed window makes way for a new one."""

from __future__ import annotations

import asyncio

from atoll.agent.runp.window import WriteWindow
from tests.conftest import eventually


def waiting(window: WriteWindow, started: list[int], i: int) -> asyncio.Task[None]:
    """A writer task; ``i`` is in ``started`` once it waits (``wait`` runs without yielding up to
    the window's event)."""

    async def writer() -> None:
        started.append(i)
        await window.wait()

    return asyncio.create_task(writer())


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


async def test_a_writer_that_would_wait_less_than_half_joins_the_following_window() -> None:
    window = WriteWindow(3600.0)  # windows close only when the test closes them
    started: list[int] = []
    first = waiting(window, started, 1)
    await eventually(lambda: started == [1])
    opened = window._open
    assert opened is not None
    opened.closes_at = asyncio.get_running_loop().time() + 1000.0  # less than half (1,800 s) left
    late = waiting(window, started, 2)
    await eventually(lambda: started == [1, 2])
    following = window._next
    assert following is not None and window.opened == 2
    assert following.closes_at == opened.closes_at + 1800.0  # half a debounce after the open one
    window._close(opened)  # what the open window's timer does
    await first
    assert not late.done()  # it waits for its own window
    assert window._open is following and window._next is None
    window._close(following)
    await late


async def test_a_cancelled_writer_does_not_release_or_block_the_others() -> None:
    window = WriteWindow(3600.0)
    started: list[int] = []
    first, second = waiting(window, started, 1), waiting(window, started, 2)
    await eventually(lambda: sorted(started) == [1, 2])  # both wait on the one open window
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    assert first.cancelled() and not second.done()
    assert window._open is not None
    window._close(window._open)
    await second
    assert window.opened == 1
