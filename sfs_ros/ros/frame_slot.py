"""Latest-frame slots (one per camera), drop accounting and rate-limited drop reports.

ROS-free on purpose, so the threading and bookkeeping rules are unit-tested without DDS:

* The subscription callback only calls :meth:`FrameSlots.put`: the newest frame wins, and a
  frame that is overwritten before the worker took it is counted as dropped (``superseded``).
* One worker thread calls :meth:`FrameSlots.take`, which serves the cameras that have a frame
  waiting in turn (round robin), then reports each frame exactly once as processed
  (:meth:`FrameSlots.mark_processed`) or dropped with a reason (:meth:`FrameSlots.mark_dropped`).
* Invariant, at every instant and per camera:
  ``frames_in == processed + dropped + pending + in_progress`` (see :class:`SlotStats`), so
  ``frames_in == processed + dropped`` whenever the worker is idle and no frame is waiting.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

SUPERSEDED = "superseded"
"""Drop reason of a frame overwritten by a newer one before the worker took it."""


@dataclass(frozen=True)
class SlotStats:
    """A consistent snapshot of one camera's counters.

    Attributes:
        frames_in: frames stored by the subscription callback.
        processed: frames fully processed and published.
        dropped: drops by reason (``superseded``, decode reasons, ``pipeline_error``, ...).
        pending: frames waiting in the slot (0 or 1).
        in_progress: frames taken by the worker and not yet reported (up to 2 while one is
            being finished on the overlap thread, sfs_ros/overlap.py).
        last_in: monotonic time of the newest frame, None before the first one.
    """

    frames_in: int
    processed: int
    dropped: dict[str, int]
    pending: int
    in_progress: int
    last_in: float | None

    @property
    def dropped_total(self) -> int:
        """All drops, whatever the reason."""
        return sum(self.dropped.values())

    def balanced(self) -> bool:
        """True when the accounting invariant holds (it always should)."""
        return self.frames_in == (
            self.processed + self.dropped_total + self.pending + self.in_progress
        )


@dataclass
class _Slot:
    item: Any = None
    has_item: bool = False
    frames_in: int = 0
    processed: int = 0
    in_progress: int = 0
    last_in: float | None = None
    dropped: Counter = field(default_factory=Counter)


class FrameSlots:
    """One single-frame slot per camera, shared by the callbacks and one worker thread.

    Args:
        cameras: camera names (any hashable labels, unique); the round-robin order.
        clock: monotonic time source (seconds), injectable for tests.
    """

    def __init__(self, cameras: Sequence[str], clock: Callable[[], float] = time.monotonic) -> None:
        if not cameras:
            raise ValueError("at least one camera is needed")
        if len(set(cameras)) != len(cameras):
            raise ValueError(f"camera names must be unique, got {list(cameras)}")
        self.cameras = tuple(cameras)
        self._slots = {name: _Slot() for name in self.cameras}
        self._clock = clock
        self._cond = threading.Condition()
        self._cursor = len(self.cameras) - 1  # the first take() starts at camera 0
        self._closed = False

    # ------------------------------------------------------------------ producer side
    def put(self, camera: str, item: Any) -> bool:
        """Store ``item`` as the newest frame of ``camera`` (never blocks for long).

        Returns:
            True when an unprocessed older frame was overwritten (counted as ``superseded``).
        """
        with self._cond:
            slot = self._slots[camera]
            superseded = slot.has_item
            if superseded:
                slot.dropped[SUPERSEDED] += 1
            slot.item = item
            slot.has_item = True
            slot.frames_in += 1
            slot.last_in = self._clock()
            self._cond.notify()
            return superseded

    # ------------------------------------------------------------------ consumer side
    def take(self, timeout: float | None = None) -> tuple[str, Any] | None:
        """The next camera (round robin among those with a waiting frame) and its frame.

        Blocks up to ``timeout`` seconds (None = until a frame arrives or :meth:`close`).
        The frame counts as in progress until reported with :meth:`mark_processed` or
        :meth:`mark_dropped`.

        Returns:
            ``(camera, item)``, or None on timeout or once closed.
        """
        with self._cond:
            deadline = None if timeout is None else self._clock() + timeout
            while not self._closed:
                camera = self._next_ready()
                if camera is not None:
                    slot = self._slots[camera]
                    item, slot.item, slot.has_item = slot.item, None, False
                    slot.in_progress += 1
                    return camera, item
                if deadline is None:
                    self._cond.wait()
                else:
                    left = deadline - self._clock()
                    if left <= 0:
                        return None
                    self._cond.wait(left)
            return None

    def _next_ready(self) -> str | None:
        count = len(self.cameras)
        for step in range(1, count + 1):
            index = (self._cursor + step) % count
            if self._slots[self.cameras[index]].has_item:
                self._cursor = index
                return self.cameras[index]
        return None

    def mark_processed(self, camera: str) -> None:
        """Report the frame taken from ``camera`` as processed and published."""
        with self._cond:
            slot = self._finish(camera)
            slot.processed += 1

    def mark_dropped(self, camera: str, reason: str) -> None:
        """Report the frame taken from ``camera`` as dropped for ``reason``."""
        with self._cond:
            slot = self._finish(camera)
            slot.dropped[reason] += 1

    def _finish(self, camera: str) -> _Slot:
        slot = self._slots[camera]
        if slot.in_progress <= 0:
            raise RuntimeError(f"camera '{camera}': no frame in progress to report")
        slot.in_progress -= 1
        return slot

    # ------------------------------------------------------------------ control / queries
    def close(self) -> None:
        """Wake the worker; every later :meth:`take` returns None at once."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def stats(self, camera: str) -> SlotStats:
        """A consistent snapshot of ``camera``'s counters."""
        with self._cond:
            slot = self._slots[camera]
            return SlotStats(
                frames_in=slot.frames_in,
                processed=slot.processed,
                dropped=dict(slot.dropped),
                pending=int(slot.has_item),
                in_progress=slot.in_progress,
                last_in=slot.last_in,
            )


class DropLogLimiter:
    """Decides when a drop may be logged: per reason at most once per ``period`` seconds.

    :meth:`report` counts every drop; when it returns a number, log one line saying that many
    frames were dropped for that reason since the previous line (including this one).
    """

    def __init__(self, period: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.period = float(period)
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._unreported: Counter = Counter()

    def report(self, key: str) -> int | None:
        """Count one drop for ``key``; the number of drops to log now, or None to stay quiet."""
        now = self._clock()
        with self._lock:
            self._unreported[key] += 1
            last = self._last.get(key)
            if last is not None and now - last < self.period:
                return None
            self._last[key] = now
            return self._unreported.pop(key)
