"""The node's ``/diagnostics`` content: per-camera rates, latency, stage timings, drops.

A small replacement for diagnostic_updater (not available as a wheel): :class:`CameraMonitor`
collects measurements from the callback and worker threads, :func:`assess` decides level and
message, and :func:`camera_status` builds one ``diagnostic_msgs/DiagnosticStatus``.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from sfs_ros.ros.frame_slot import SlotStats

OK, WARN = DiagnosticStatus.OK, DiagnosticStatus.WARN
STALE_AFTER_S = 5.0
"""A camera that delivered frames and then none for this long is reported as stopped."""


class RateMeter:
    """Events per second over a sliding time window."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = float(window_s)
        self._times: deque[float] = deque()

    def tick(self, now: float) -> None:
        """Record one event at monotonic time ``now``."""
        self._times.append(now)
        self._trim(now)

    def rate(self, now: float) -> float:
        """Events per second in the window ending at ``now`` (0 with fewer than two)."""
        self._trim(now)
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()


@dataclass(frozen=True)
class MonitorSnapshot:
    """What one camera measured, at one instant."""

    input_rate_hz: float
    output_rate_hz: float
    latency_ms: float | None
    stage_ms: dict[str, float]
    frames_published: int


class CameraMonitor:
    """Thread-safe measurements of one camera (input/output rates, latency, stage timings)."""

    def __init__(
        self, window_s: float = 5.0, samples: int = 50, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._inputs = RateMeter(window_s)
        self._outputs = RateMeter(window_s)
        self._latency: deque[float] = deque(maxlen=samples)
        self._timings: deque[Mapping[str, float]] = deque(maxlen=samples)
        self._published = 0

    def on_input(self) -> None:
        """A frame arrived (subscription callback)."""
        with self._lock:
            self._inputs.tick(self._clock())

    def on_output(self, latency_s: float | None, timings: Mapping[str, float]) -> None:
        """A frame was published; ``latency_s`` = now − input stamp (None when unknown)."""
        with self._lock:
            self._outputs.tick(self._clock())
            if latency_s is not None:
                self._latency.append(latency_s)
            self._timings.append(dict(timings))
            self._published += 1

    def snapshot(self) -> MonitorSnapshot:
        """Rates, median latency and median per-stage timings over the window."""
        with self._lock:
            now = self._clock()
            stages: dict[str, list[float]] = {}
            for timing in self._timings:
                for stage, ms in timing.items():
                    stages.setdefault(stage, []).append(ms)
            return MonitorSnapshot(
                input_rate_hz=self._inputs.rate(now),
                output_rate_hz=self._outputs.rate(now),
                latency_ms=(statistics.median(self._latency) * 1e3 if self._latency else None),
                stage_ms={stage: statistics.median(v) for stage, v in stages.items()},
                frames_published=self._published,
            )


def assess(
    random_weights: Sequence[str],
    last_input_age_s: float | None,
    input_topic: str,
    stale_after_s: float = STALE_AFTER_S,
) -> tuple[bytes, str]:
    """Level (``DiagnosticStatus.OK`` / ``WARN``, bytes) and message of a camera status.

    WARN while random weights are in use (the message says RANDOM WEIGHTS) and when a camera
    that delivered frames has been silent for more than ``stale_after_s``; OK otherwise.
    ``last_input_age_s`` is None before the first frame.
    """
    problems = []
    if random_weights:
        problems.append(
            f"RANDOM WEIGHTS in use ({', '.join(random_weights)}): outputs are not meaningful"
        )
    if last_input_age_s is not None and last_input_age_s > stale_after_s:
        problems.append(f"camera stopped: no frame on {input_topic} for {last_input_age_s:.1f} s")
    if problems:
        return WARN, "; ".join(problems)
    if last_input_age_s is None:
        return OK, f"waiting for images on {input_topic}"
    return OK, "running"


def camera_status(
    *,
    name: str,
    hardware_id: str,
    stats: SlotStats,
    snapshot: MonitorSnapshot,
    info: Mapping[str, str],
    random_weights: Sequence[str],
    now: float,
) -> DiagnosticStatus:
    """One DiagnosticStatus for a camera.

    Args:
        name: status name (e.g. ``/sfs/sfs: front``).
        hardware_id: the torch device.
        stats: the camera's frame accounting.
        snapshot: the camera's measurements.
        info: static key/values (input topic, transport, qos, device, backend, ...);
            ``input_topic`` is used in the message.
        random_weights: the models running with random weights (empty = none).
        now: monotonic time, to age ``stats.last_in``.
    """
    age = None if stats.last_in is None else max(0.0, now - stats.last_in)
    level, message = assess(random_weights, age, info.get("input_topic", "?"))
    values = dict(info)
    values.update(
        {
            "random_weights": ", ".join(random_weights) or "none",
            "input_rate_hz": f"{snapshot.input_rate_hz:.2f}",
            "output_rate_hz": f"{snapshot.output_rate_hz:.2f}",
            "latency_ms": "n/a" if snapshot.latency_ms is None else f"{snapshot.latency_ms:.1f}",
            "last_frame_age_s": "n/a" if age is None else f"{age:.1f}",
            "frames_in": str(stats.frames_in),
            "frames_processed": str(stats.processed),
            "frames_dropped": str(stats.dropped_total),
            "frames_pending": str(stats.pending + stats.in_progress),
        }
    )
    for reason, count in sorted(stats.dropped.items()):
        values[f"dropped.{reason}"] = str(count)
    for stage, ms in snapshot.stage_ms.items():
        values[f"time_ms.{stage}"] = f"{ms:.1f}"
    return DiagnosticStatus(
        level=level,
        name=name,
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=k, value=v) for k, v in values.items()],
    )
