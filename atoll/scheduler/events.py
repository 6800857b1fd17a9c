"""The scheduler's Event recorder: :class:`atoll.runtime.events.EventRecorder` (shared with pooling)."""

from atoll.runtime.events import EventRecorder

__all__ = ["EventRecorder"]
