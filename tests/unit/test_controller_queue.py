"""A controller uses the work queue it is given, even while that queue is empty (and so falsy)."""

from __future__ import annotations

from atoll.runtime import Controller, ObjectKey, Result, WorkQueue


class Nothing:
    async def reconcile(self, key: ObjectKey) -> Result:
        return Result()


def test_the_given_queue_is_kept() -> None:
    queue: WorkQueue[ObjectKey] = WorkQueue("given")
    assert len(queue) == 0
    controller = Controller("given", Nothing(), queue)
    assert controller.queue is queue
