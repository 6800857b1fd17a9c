"""client-go's event aggregation and spam filter (``atoll.runtime.eventcorrelator``) on a FakeClock."""

from __future__ import annotations

from atoll.api.clock import FakeClock
from atoll.runtime.eventcorrelator import BURST, COMBINED, INTERVAL, MAX_EVENTS, EventCorrelator

OBJ = ("uid-1", "ns")


def test_tenth_distinct_message_is_combined_and_repeats_share_its_key() -> None:
    c = EventCorrelator(FakeClock())
    decided = [c.correlate(OBJ, "Normal", "SuccessfulCreate", f"Created pod: p{i}") for i in range(12)]
    assert all(d is not None for d in decided)
    keys = [d[0] for d in decided if d]
    messages = [d[1] for d in decided if d]
    assert len(set(keys[: MAX_EVENTS - 1])) == MAX_EVENTS - 1
    assert messages[: MAX_EVENTS - 1] == [f"Created pod: p{i}" for i in range(MAX_EVENTS - 1)]
    assert set(keys[MAX_EVENTS - 1:]) == {keys[MAX_EVENTS - 1]} and keys[MAX_EVENTS - 1] not in keys[:9]
    assert messages[-1] == COMBINED + "Created pod: p11"
    # another reason or another object is its own group
    other = c.correlate(OBJ, "Normal", "SuccessfulDelete", "Deleted pod: p0")
    assert other is not None and not other[1].startswith(COMBINED)


def test_aggregation_forgets_after_its_interval() -> None:
    clock = FakeClock()
    c = EventCorrelator(clock)
    for i in range(MAX_EVENTS - 1):
        c.correlate(("u", "ns"), "Normal", "R", f"m{i}")
    clock.advance(INTERVAL + 1)
    decided = c.correlate(("u", "ns"), "Normal", "R", "m-late")
    assert decided is not None and decided[1] == "m-late"


def test_spam_filter_allows_a_burst_then_one_per_five_minutes_per_object() -> None:
    clock = FakeClock()
    c = EventCorrelator(clock)
    allowed = [c.correlate(OBJ, "Warning", "Failed", "same") is not None for _ in range(BURST + 5)]
    assert allowed == [True] * BURST + [False] * 5
    assert c.correlate(("uid-2", "ns"), "Warning", "Failed", "same") is not None  # another object
    clock.advance(299)
    assert c.correlate(OBJ, "Warning", "Failed", "same") is None
    clock.advance(2)
    assert c.correlate(OBJ, "Warning", "Failed", "same") is not None
    assert c.correlate(OBJ, "Warning", "Failed", "same") is None
