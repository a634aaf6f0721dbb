# SPDX-License-Identifier: AGPL-3.0-or-later
"""``sfs-bench soak``: the shipped preset for many frames; memory growth, latency drift and
frame accounting.

The frame path is the node's, without DDS: a camera thread (this module's main thread) stores
``rgb8`` messages into a :class:`~sfs_ros.ros.frame_slot.FrameSlots` slot at ``--rate`` Hz (0:
the next frame as soon as the previous one is done, so nothing is superseded), and one worker
thread takes the newest frame, decodes it, runs :meth:`Pipeline.process` and the node's publish
function (:meth:`~sfs_ros.ros.outputs.OutputEncoder.encode`), and reports it processed, or
dropped with a reason, exactly as the node does. Frames pan across the bundled sample photos.

It stops after ``--frames`` frames in or ``--seconds`` seconds, whichever comes first, waits for
the worker to finish, and reports:

* frame accounting: frames in = processed + dropped (by reason), which must balance;
* resident memory (``VmRSS``) after warm-up and at the end, and the growth;
* latency (frame stored → outputs built) p50 / p90 over the first and the last window of
  ``--window`` processed frames, and their ratio (drift).

Exit status 1 when the accounting does not balance or memory grew by more than
``--max-growth-mb``; else 0. The DDS soak of the real node process is ``bench/soak.py`` in the
repository.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sfs_ros.bench.inputs import (
    config_for,
    frame_header,
    image_msg_class,
    resolve_models,
    rgb8_message,
    shipped,
)
from sfs_ros.bench.machine import LoadMeter
from sfs_ros.bench.report import Report, command_line, fmt, publish

LOG = logging.getLogger("sfs_ros.bench")
CAMERA = "camera"
PIPELINE_ERROR = "pipeline_error"
"""Drop reason of a frame the pipeline or the output encoder raised on (as in the node)."""
IDLE_TIMEOUT_S = 600.0
"""How long the end of a run waits for the worker to finish the frame in hand."""


def rss_mb() -> float | None:
    """This process' resident memory (``VmRSS``) in MiB; None where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class SoakResult:
    """What a soak run measured.

    Attributes:
        frames_in: frames stored into the slot.
        processed: frames decoded, processed and encoded.
        dropped: drops by reason (``superseded``, decode reasons, ``pipeline_error``).
        balanced: frames_in == processed + dropped, with nothing pending or in progress.
        latencies_ms: per processed frame, in order: stored → outputs built.
        rss_start_mb: resident memory after warm-up (None without /proc).
        rss_end_mb: resident memory at the end.
        seconds: duration of the measured part.
    """

    frames_in: int
    processed: int
    dropped: dict[str, int]
    balanced: bool
    latencies_ms: list[float] = field(default_factory=list)
    rss_start_mb: float | None = None
    rss_end_mb: float | None = None
    seconds: float = 0.0

    @property
    def dropped_total(self) -> int:
        """All drops, whatever the reason."""
        return sum(self.dropped.values())

    @property
    def rss_growth_mb(self) -> float | None:
        """Memory growth from after warm-up to the end (None when not measured)."""
        if self.rss_start_mb is None or self.rss_end_mb is None:
            return None
        return self.rss_end_mb - self.rss_start_mb

    def window(self, size: int, last: bool) -> list[float]:
        """The first (or last) ``size`` latencies; halves of the run when it is shorter."""
        size = max(1, min(size, len(self.latencies_ms) // 2 or 1))
        return self.latencies_ms[-size:] if last else self.latencies_ms[:size]

    def drift(self, size: int) -> dict[str, float | None]:
        """p50 / p90 latency of the first and the last window and the last/first p50 ratio."""
        if not self.latencies_ms:
            return dict.fromkeys(("p50_first", "p90_first", "p50_last", "p90_last", "ratio"))
        first, last = self.window(size, False), self.window(size, True)
        out = {
            "p50_first": float(np.percentile(first, 50)),
            "p90_first": float(np.percentile(first, 90)),
            "p50_last": float(np.percentile(last, 50)),
            "p90_last": float(np.percentile(last, 90)),
        }
        out["ratio"] = out["p50_last"] / out["p50_first"] if out["p50_first"] > 0 else None
        return out


def run_soak(
    pipeline: Any,
    messages: Iterable[Any],
    *,
    frames: int | None,
    seconds: float | None,
    rate_hz: float = 0.0,
    warmup: int = 1,
    overlay_alpha: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
) -> SoakResult:
    """Feed ``messages`` (image messages, cycled) through the node's frame path.

    Args:
        pipeline: anything with ``process(rgb)`` and ``registry`` (a :class:`Pipeline`).
        messages: input messages, repeated in order as long as the run lasts.
        frames: stop after this many frames in (None: no limit).
        seconds: stop after this many seconds (None: no limit); one of the two must be set.
        rate_hz: camera rate; 0 = one frame in flight at a time (nothing superseded).
        warmup: frames processed before the measured part (not counted).
        overlay_alpha: the overlay's colour weight, as the node's parameter.
        clock: monotonic seconds (injectable for tests).
    """
    from sfs_ros.ros.conversions import ImageConversionError, image_msg_to_rgb
    from sfs_ros.ros.frame_slot import DropLogLimiter, FrameSlots
    from sfs_ros.ros.outputs import IMAGE_OUTPUTS, OutputEncoder

    if frames is None and seconds is None:
        raise ValueError("run_soak: give frames or seconds (or both)")
    source: Iterator[Any] = itertools.cycle(messages)
    encoder = OutputEncoder(pipeline.registry, image_msg_class())

    def one_frame(msg: Any) -> None:
        rgb = image_msg_to_rgb(msg)
        result = pipeline.process(rgb)
        encoder.encode(result, rgb, msg.header, overlay_alpha=overlay_alpha, wanted=IMAGE_OUTPUTS)

    for _ in range(warmup):
        one_frame(next(source))
    slots = FrameSlots([CAMERA], clock=clock)
    latencies: list[float] = []
    drop_log = DropLogLimiter(10.0)

    def work() -> None:
        while True:
            got = slots.take(timeout=0.5)
            if got is None:
                if slots.closed:
                    return
                continue
            _, (msg, stored_at) = got
            try:
                one_frame(msg)
            except ImageConversionError as exc:
                reason, error = exc.reason, exc
            except Exception as exc:  # as the node: count it, log it (rate-limited), go on
                reason, error = PIPELINE_ERROR, exc
            else:
                latencies.append((clock() - stored_at) * 1e3)
                slots.mark_processed(CAMERA)
                continue
            slots.mark_dropped(CAMERA, reason)
            unlogged = drop_log.report(reason)
            if unlogged is not None:
                LOG.error("soak: %d frame(s) dropped (%s), latest: %r", unlogged, reason, error)

    rss_start = rss_mb()
    worker = threading.Thread(target=work, name="sfs-bench-soak", daemon=True)
    worker.start()
    start = clock()
    count = 0
    period = 1.0 / rate_hz if rate_hz > 0 else 0.0
    try:
        while (frames is None or count < frames) and (seconds is None or clock() - start < seconds):
            if period:
                due = start + count * period
                time.sleep(max(0.0, due - clock()))
            slots.put(CAMERA, (next(source), clock()))
            count += 1
            if not period:
                _wait_idle(slots, IDLE_TIMEOUT_S)
        _wait_idle(slots, IDLE_TIMEOUT_S)
    finally:
        slots.close()
        worker.join(IDLE_TIMEOUT_S)
    elapsed = clock() - start
    stats = slots.stats(CAMERA)
    return SoakResult(
        frames_in=stats.frames_in,
        processed=stats.processed,
        dropped=dict(stats.dropped),
        balanced=stats.balanced() and stats.pending == 0 and stats.in_progress == 0,
        latencies_ms=latencies,
        rss_start_mb=rss_start,
        rss_end_mb=rss_mb(),
        seconds=elapsed,
    )


def _wait_idle(slots: Any, timeout: float) -> None:
    """Until the slot is empty and the worker reported its frame (or ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = slots.stats(CAMERA)
        if stats.pending == 0 and stats.in_progress == 0:
            return
        time.sleep(0.002)


def summary_line(result: SoakResult, window: int) -> str:
    """``frames_in=… processed=… dropped=… rss_growth_mb=… p50_first=… p50_last=…``."""
    drift = result.drift(window)
    growth = result.rss_growth_mb
    return (
        f"frames_in={result.frames_in} processed={result.processed} "
        f"dropped={result.dropped_total} rss_growth_mb={fmt(growth)} "
        f"p50_first={fmt(drift['p50_first'])} p50_last={fmt(drift['p50_last'])}"
    )


def build_report(
    result: SoakResult, args: argparse.Namespace, argv: list[str], load: LoadMeter, setup: str
) -> Report:
    """The soak report: accounting, memory and latency drift in one table."""
    drift = result.drift(args.window)
    drops = ", ".join(f"{k} {v}" for k, v in sorted(result.dropped.items())) or "none"
    verdicts = [
        "frames in = processed + dropped: "
        + ("balanced" if result.balanced else "**NOT balanced**"),
    ]
    growth = result.rss_growth_mb
    if growth is not None and args.max_growth_mb is not None:
        verdict = "within" if growth <= args.max_growth_mb else "**over**"
        verdicts.append(f"memory growth {growth:.1f} MiB: {verdict} {args.max_growth_mb} MiB")
    return Report(
        title="soak",
        command=command_line(argv),
        load=load,
        setup=[
            setup,
            f"Camera at {args.rate or 'back-to-back'}"
            + (" Hz" if args.rate else "")
            + f"; stop after {args.frames or '∞'} frames or {args.seconds or '∞'} s; "
            f"latency = frame stored → outputs built; windows of {args.window} processed "
            "frames.",
        ],
        headers=[
            "frames in",
            "processed",
            "dropped",
            "seconds",
            "RSS after warm-up MiB",
            "RSS end MiB",
            "growth MiB",
            "p50 first ms",
            "p90 first ms",
            "p50 last ms",
            "p90 last ms",
            "last/first p50",
        ],
        rows=[
            [
                str(result.frames_in),
                str(result.processed),
                drops,
                fmt(result.seconds),
                fmt(result.rss_start_mb),
                fmt(result.rss_end_mb),
                fmt(growth),
                fmt(drift["p50_first"]),
                fmt(drift["p90_first"]),
                fmt(drift["p50_last"]),
                fmt(drift["p90_last"]),
                fmt(drift["ratio"], 2),
            ]
        ],
        notes=verdicts,
    )


def passed(result: SoakResult, max_growth_mb: float | None) -> bool:
    """Accounting balanced and memory growth within the limit (when both are known)."""
    growth = result.rss_growth_mb
    grew_too_much = max_growth_mb is not None and growth is not None and growth > max_growth_mb
    return result.balanced and not grew_too_much


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """``sfs-bench soak``: build the shipped preset's pipeline, soak it, publish the report."""
    from sfs_ros.pipeline import Pipeline
    from sfs_ros.runtime import set_torch_threads
    from sfs_ros.samples import SamplesNotFoundError, frame_sequence

    if args.frames is None and args.seconds is None:
        args.frames = 300
    resolve_models(args)
    imgsz = args.imgsz or shipped("fastsam.imgsz")
    config = config_for(args, imgsz, shipped("backend"), overrides=args.overrides)
    set_torch_threads(args.threads)
    pipeline = Pipeline.from_config(config)
    width, height = args.size
    try:
        frames = frame_sequence("samples", width, height, loop=False)
        source = "pan across the bundled sample photos"
    except SamplesNotFoundError:
        frames = frame_sequence("synthetic", width, height, loop=False)
        source = "pan across synthetic scenes"
    header = frame_header()
    # every 4th frame of the pan: a varied sequence that holds little memory
    messages = [rgb8_message(rgb, header) for rgb in itertools.islice(frames, 0, None, 4)]
    load = LoadMeter.begin()
    result = run_soak(
        pipeline,
        messages,
        frames=args.frames,
        seconds=args.seconds,
        rate_hz=args.rate,
        warmup=args.warmup,
        overlay_alpha=config["overlay_alpha"],
    )
    pipeline.close()
    load.finish()
    changed = "".join(f", {item}" for item in args.overrides)
    setup = (
        f"Shipped preset (backend {config['backend']} → {pipeline.backend}, FastSAM imgsz "
        f"{imgsz}) with the benchmark's random-weight models (conf {config['fastsam.conf']}, "
        f"max {config['fastsam.max_masks']} masks){changed}; {len(messages)} frames of "
        f"{width}×{height} ({source}), cycled; {args.warmup} warm-up."
    )
    report = build_report(result, args, argv, load, setup)
    publish(report, args.append, summary_line(result, args.window))
    return 0 if passed(result, args.max_growth_mb) else 1
