"""The node's ``/diagnostics`` content: per-camera rates, latency, stage timings, drops.

A small replacement for diagnostic_updater (not available as a wheel): :class:`CameraMonitor`
collects measurements from the callback and worker threads, :func:`assess` decides level and
message, and :func:`camera_status` builds one ``diagnostic_msgs/DiagnosticStatus``.
"""

from __future__ import annotations

import platform
import statistics
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from sfs_ros.ros.frame_slot import SlotStats

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
STALE_AFTER_S = 5.0
"""Default of ``diagnostics.stale_timeout_s``: a camera silent this long is reported stopped."""
WINDOW_S = 30.0
"""Rates and drop shares are measured over this window (long enough for a camera at 0.1 Hz)."""
LATENCY_LIMIT_S = 3600.0
"""A latency beyond this (or below −1 s) means the input stamps are not comparable with the
node's clock (another time base, sim time, a camera's own clock): not a latency."""
NOT_FAILURES = frozenset({"superseded", "shutdown"})
"""Drop reasons that are not failures: the newest-frame policy, and the node shutting down."""


class RateMeter:
    """Events per second over a sliding time window, usable for slow sources.

    With events ``t_1 < ... < t_n`` in the window the rate is ``(n - 1) / (t_n - t_1)``; once
    the silence since ``t_n`` is longer than the mean interval it counts too
    (``(n - 1) / (now - t_1)``), so the rate falls when a source stops instead of freezing.
    """

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window_s = float(window_s)
        self._times: deque[float] = deque()

    def tick(self, now: float) -> None:
        """Record one event at monotonic time ``now``."""
        self._times.append(now)
        self._trim(now)

    def rate(self, now: float) -> float:
        """Events per second in the window ending at ``now`` (0 with fewer than two)."""
        self._trim(now)
        count = len(self._times)
        if count < 2:
            return 0.0
        first, last = self._times[0], self._times[-1]
        span = last - first
        if span <= 0:
            return 0.0
        if now - last > span / (count - 1):
            span = now - first
        return (count - 1) / span

    def count(self, now: float) -> int:
        """Events in the window ending at ``now``."""
        self._trim(now)
        return len(self._times)

    def last(self) -> float | None:
        """Time of the newest event still in the window."""
        return self._times[-1] if self._times else None

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()


@dataclass(frozen=True)
class MonitorSnapshot:
    """What one camera measured, at one instant (counts over the last ``WINDOW_S``)."""

    input_rate_hz: float
    output_rate_hz: float
    latency_ms: float | None
    stage_ms: dict[str, float]
    frames_published: int
    window_inputs: int = 0
    window_published: int = 0
    window_failures: dict[str, int] = dc_field(default_factory=dict)
    window_superseded: int = 0
    last_output_age_s: float | None = None
    first_input_age_s: float | None = None
    latency_incomparable: int = 0
    """Outputs whose input stamp was not comparable with the node's clock (window)."""


class CameraMonitor:
    """Thread-safe measurements of one camera (input/output rates, latency, stage timings,
    drops by reason) over a sliding window."""

    def __init__(
        self,
        window_s: float = WINDOW_S,
        samples: int = 50,
        clock: Callable[[], float] = time.monotonic,
        stale_after_s: float = STALE_AFTER_S,
    ) -> None:
        self._clock = clock
        self.window_s = float(window_s)
        self.stale_after_s = float(stale_after_s)
        self._lock = threading.Lock()
        self._inputs = RateMeter(window_s)
        self._outputs = RateMeter(window_s)
        self._drops: deque[tuple[float, str]] = deque()
        self._incomparable: deque[float] = deque()
        self._latency: deque[float] = deque(maxlen=samples)
        self._timings: deque[Mapping[str, float]] = deque(maxlen=samples)
        self._published = 0
        self._first_input: float | None = None
        self._last_output: float | None = None

    def on_input(self) -> None:
        """A frame arrived (subscription callback)."""
        with self._lock:
            now = self._clock()
            self._inputs.tick(now)
            if self._first_input is None:
                self._first_input = now

    def on_drop(self, reason: str) -> None:
        """A frame was dropped for ``reason`` (the frame-accounting key)."""
        with self._lock:
            now = self._clock()
            self._drops.append((now, reason))
            self._trim(now)

    def on_output(self, latency_s: float | None, timings: Mapping[str, float]) -> None:
        """A frame was published; ``latency_s`` = now − input stamp (None when unknown)."""
        with self._lock:
            now = self._clock()
            self._outputs.tick(now)
            self._last_output = now
            if latency_s is not None:
                if -1.0 <= latency_s <= LATENCY_LIMIT_S:
                    self._latency.append(latency_s)
                else:
                    self._incomparable.append(now)
            self._timings.append(dict(timings))
            self._published += 1
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self._drops and now - self._drops[0][0] > self.window_s:
            self._drops.popleft()
        while self._incomparable and now - self._incomparable[0] > self.window_s:
            self._incomparable.popleft()

    def snapshot(self) -> MonitorSnapshot:
        """Rates, median latency and median per-stage timings over the window."""
        with self._lock:
            now = self._clock()
            self._trim(now)
            stages: dict[str, list[float]] = {}
            for timing in self._timings:
                for stage, ms in timing.items():
                    stages.setdefault(stage, []).append(ms)
            failures: dict[str, int] = {}
            superseded = 0
            for _, reason in self._drops:
                if reason == "superseded":
                    superseded += 1
                elif reason not in NOT_FAILURES:
                    failures[reason] = failures.get(reason, 0) + 1
            incomparable = len(self._incomparable)
            return MonitorSnapshot(
                input_rate_hz=self._inputs.rate(now),
                output_rate_hz=self._outputs.rate(now),
                latency_ms=(
                    statistics.median(self._latency) * 1e3
                    if self._latency and not incomparable
                    else None
                ),
                stage_ms={stage: statistics.median(v) for stage, v in stages.items()},
                frames_published=self._published,
                window_inputs=self._inputs.count(now),
                window_published=self._outputs.count(now),
                window_failures=failures,
                window_superseded=superseded,
                last_output_age_s=None if self._last_output is None else now - self._last_output,
                first_input_age_s=None if self._first_input is None else now - self._first_input,
                latency_incomparable=incomparable,
            )


def assess(
    random_weights: Sequence[str],
    last_input_age_s: float | None,
    input_topic: str,
    stale_after_s: float = STALE_AFTER_S,
    snapshot: MonitorSnapshot | None = None,
) -> tuple[bytes, str]:
    """Level (``DiagnosticStatus.OK`` / ``WARN`` / ``ERROR``, bytes) and message of a camera.

    * ERROR: every frame handled in the window failed (dropped for a reason other than being
      superseded by a newer frame), e.g. an encoding the node cannot read.
    * WARN: most input frames of the window failed; input arrives but nothing was published
      for more than ``stale_after_s``; a camera that delivered frames has been silent for
      more than ``stale_after_s``; random weights are in use.
    * OK otherwise. Superseded frames (camera faster than the node) and input stamps that are
      not comparable with the node's clock are named in the message without raising the level.

    ``last_input_age_s`` is None before the first frame.
    """
    level, problems, notes = OK, [], []
    snap = snapshot
    if snap is not None:
        failed = sum(snap.window_failures.values())
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(snap.window_failures.items()))
        handled = failed + snap.window_published
        if failed and snap.window_published == 0 and handled:
            level = ERROR
            problems.append(
                f"every frame fails: {failed} of {snap.window_inputs} input frames in the last "
                f"{WINDOW_S:.0f} s dropped ({reasons}), nothing published"
            )
        elif failed * 2 > max(snap.window_inputs, 1):
            level = WARN
            problems.append(
                f"most frames fail: {failed} of {snap.window_inputs} input frames in the last "
                f"{WINDOW_S:.0f} s dropped ({reasons})"
            )
        input_flowing = last_input_age_s is not None and last_input_age_s <= stale_after_s
        silent_output = (
            snap.last_output_age_s is None
            and snap.first_input_age_s is not None
            and snap.first_input_age_s > stale_after_s
        ) or (snap.last_output_age_s is not None and snap.last_output_age_s > stale_after_s)
        if input_flowing and silent_output and level != ERROR:
            level = max(level, WARN)
            since = (
                "since the first frame"
                if snap.last_output_age_s is None
                else f"for {snap.last_output_age_s:.1f} s"
            )
            problems.append(f"input arrives but nothing was published {since}")
        if snap.window_superseded and snap.window_superseded * 2 > max(snap.window_inputs, 1):
            notes.append(
                f"node slower than the camera: {snap.window_superseded} of "
                f"{snap.window_inputs} frames superseded by newer ones"
            )
        if snap.latency_incomparable:
            notes.append(
                "latency unknown: input stamps are not comparable with the node's clock "
                "(another time base or use_sim_time?)"
            )
    if random_weights:
        level = max(level, WARN)
        problems.append(
            f"RANDOM WEIGHTS in use ({', '.join(random_weights)}): outputs are not meaningful"
        )
    if last_input_age_s is not None and last_input_age_s > stale_after_s:
        level = max(level, WARN)
        problems.append(f"camera stopped: no frame on {input_topic} for {last_input_age_s:.1f} s")
    if problems:
        return level, "; ".join(problems + notes)
    if last_input_age_s is None:
        return OK, f"waiting for images on {input_topic}"
    return OK, "; ".join(["running", *notes])


def hardware_id(device: str) -> str:
    """What runs the models: the GPU's name and index (``cuda:0 NVIDIA H200``), or the CPU
    model (``cpu: AMD EPYC 7B13``)."""
    if device.startswith("cuda"):
        torch = sys.modules.get("torch")
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        try:
            name = torch.cuda.get_device_name(index) if torch is not None else "unknown GPU"
        except (RuntimeError, AssertionError, AttributeError) as exc:
            name = f"unknown GPU ({exc})"
        return f"cuda:{index} {name}"
    return f"{device}: {cpu_model()}"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def camera_status(
    *,
    name: str,
    hardware_id: str,
    stats: SlotStats,
    snapshot: MonitorSnapshot,
    info: Mapping[str, str],
    random_weights: Sequence[str],
    now: float,
    stale_after_s: float = STALE_AFTER_S,
) -> DiagnosticStatus:
    """One DiagnosticStatus for a camera.

    Args:
        name: status name (e.g. ``/sfs/sfs: front``).
        hardware_id: what runs the models (:func:`hardware_id`).
        stats: the camera's frame accounting.
        snapshot: the camera's measurements.
        info: static key/values (input topic, transport, qos, device, backend, ...);
            ``input_topic`` is used in the message.
        random_weights: the models running with random weights (empty = none).
        now: monotonic time, to age ``stats.last_in``.
        stale_after_s: ``diagnostics.stale_timeout_s``.
    """
    age = None if stats.last_in is None else max(0.0, now - stats.last_in)
    level, message = assess(
        random_weights, age, info.get("input_topic", "?"), stale_after_s, snapshot
    )
    values = dict(info)
    values.update(
        {
            "random_weights": ", ".join(random_weights) or "none",
            "input_rate_hz": f"{snapshot.input_rate_hz:.2f}",
            "output_rate_hz": f"{snapshot.output_rate_hz:.2f}",
            "rate_window_s": f"{WINDOW_S:.0f}",
            "latency_ms": "n/a" if snapshot.latency_ms is None else f"{snapshot.latency_ms:.1f}",
            "latency_comparable": "false" if snapshot.latency_incomparable else "true",
            "last_frame_age_s": "n/a" if age is None else f"{age:.1f}",
            "stale_timeout_s": f"{stale_after_s:g}",
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
