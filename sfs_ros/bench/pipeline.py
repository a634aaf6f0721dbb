# SPDX-License-Identifier: AGPL-3.0-or-later
"""``sfs-bench pipeline`` (the default): per-stage timings of the node's frame path next to its
floor and the peer pipeline.

Configurations, all on the same input frame, interleaved frame by frame (so that load from
other processes hits every configuration alike):

* ``floor``: the bare network passes (FastSAM + closed set) on the same backend and prepared
  input images as ``ours`` (each pass includes its conversion to the float input): what no
  pipeline can beat;
* ``ours``: what the node does per frame: decode the ``rgb8`` message
  (:func:`~sfs_ros.ros.conversions.image_msg_to_rgb`) → :meth:`Pipeline.process` → the node's
  publish function, :meth:`sfs_ros.ros.outputs.OutputEncoder.encode` (``semantic`` mono16 and,
  with ``--outputs all``, the default, every image output as if each had a subscriber; with
  ``--outputs semantic`` only what the node sends with no subscriber on the others);
* ``ours KEY=VALUE``: ``ours`` with one parameter changed (``--compare``);
* ``peer``: what SFS/SSA do (:mod:`sfs_ros.bench.peer`): ultralytics
  ``FastSAM.predict(retina_masks=True)``, the transformers image processor, a per-mask
  ``np.bincount`` loop and painting mask by mask, all at full resolution.

Peak RSS is measured per ``ours`` configuration in a fresh child process
(``python -m sfs_ros.bench pipeline --rss-child``: models loaded, a few frames run). The last
printed line is ``ours/floor=<x> peer/ours=<y> fps=<z> rss_gb=<w>`` for the first imgsz and
backend. ``--quick`` measures what a user of the shipped preset gets: its ``fastsam.imgsz`` and
the backend its ``backend: auto`` resolves to on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sfs_ros.bench.inputs import (
    bench_frame,
    config_for,
    frame_header,
    image_msg_class,
    resolve_models,
    rgb8_message,
    shipped,
)
from sfs_ros.bench.machine import LoadMeter
from sfs_ros.bench.report import Report, command_line, fmt, publish

STAGES = (
    "decode",
    "fastsam_pre",
    "fastsam_forward",
    "fastsam_post",
    "closed_set",
    "vote_fuse",
    "paint",
    "outputs",
)
STAGE_HEADERS = {
    "decode": "decode",
    "fastsam_pre": "FastSAM pre",
    "fastsam_forward": "FastSAM fwd",
    "fastsam_post": "FastSAM post",
    "closed_set": "closed-set",
    "vote_fuse": "vote+fuse",
    "paint": "paint",
    "outputs": "outputs",
}
OVERLAP_BURST = 6
"""Frames per sample of an ``overlap_frames`` configuration (the first one fills the stages)."""
OUTPUT_CHOICES = ("all", "semantic")
"""``--outputs``: every image output (a subscriber on each), or ``semantic`` alone."""

Step = Callable[[], tuple[dict[str, float], int]]
"""One timed sample of a configuration: stage timings (ms, with ``total``; ``latency`` when
frames overlap) and the mask count."""


@dataclass
class Run:
    """One configuration's samples."""

    name: str
    backend: str
    imgsz: int
    step: Step | None = None
    samples: list[dict[str, float]] = field(default_factory=list)
    masks: list[int] = field(default_factory=list)
    rss_gb: float | None = None

    def stat(self, stage: str, q: float) -> float | None:
        """Percentile ``q`` of a stage's samples (None when the stage was never timed)."""
        values = [s[stage] for s in self.samples if stage in s]
        return float(np.percentile(values, q)) if values else None


# ------------------------------------------------------------------------------ runners
def wanted_outputs(choice: str) -> tuple[str, ...]:
    """The ``wanted`` argument of :meth:`OutputEncoder.encode` for ``--outputs``."""
    from sfs_ros.ros.outputs import IMAGE_OUTPUTS, ON_EVERY_FRAME

    return IMAGE_OUTPUTS if choice == "all" else (ON_EVERY_FRAME,)


def make_ours(
    pipeline: Any,
    msg: Any,
    outputs: str = "all",
    overlay_alpha: float = 0.5,
    overlap: bool = False,
) -> Step:
    """The node's per-frame path: decode → infer → finish → :meth:`OutputEncoder.encode`.

    With ``overlap`` (the node's ``overlap_frames``) one sample is a burst of
    :data:`OVERLAP_BURST` frames through :class:`~sfs_ros.overlap.FrameOverlap`, as the node
    runs them: ``total`` is the steady interval between two finished frames (what sets the
    frame rate), ``latency`` the median time from decode to encoded outputs of a frame, and
    the stage columns are the burst's means.
    """
    from sfs_ros.overlap import FrameOverlap
    from sfs_ros.ros.conversions import image_msg_to_rgb
    from sfs_ros.ros.outputs import OutputEncoder

    encoder = OutputEncoder(pipeline.registry, image_msg_class())
    wanted = wanted_outputs(outputs)
    header = msg.header

    def first_half() -> tuple[float, dict[str, float], Any, np.ndarray]:
        t0 = time.perf_counter()
        rgb = image_msg_to_rgb(msg)
        decode_ms = (time.perf_counter() - t0) * 1e3
        return t0, {"decode": decode_ms}, pipeline.infer(rgb), rgb

    def second_half(begun: tuple[float, dict[str, float], Any, np.ndarray]) -> dict[str, Any]:
        t0, timings, net, rgb = begun
        result = pipeline.finish(net)
        t1 = time.perf_counter()
        encoder.encode(result, rgb, header, overlay_alpha=overlay_alpha, wanted=wanted)
        t2 = time.perf_counter()
        timings.update(result.timings)
        timings.pop("fastsam", None)
        timings.update(pipeline.mask_generator.last_timings)
        timings.update(outputs=(t2 - t1) * 1e3, total=(t2 - t0) * 1e3)
        return {"timings": timings, "masks": len(result.masks), "done": t2, "start": t0}

    def step() -> tuple[dict[str, float], int]:
        frame = second_half(first_half())
        return frame["timings"], frame["masks"]

    def burst() -> tuple[dict[str, float], int]:
        frames: list[dict[str, Any]] = []
        failures: list[Exception] = []

        def finish(begun: tuple[float, dict[str, float], Any, np.ndarray]) -> None:
            try:
                frames.append(second_half(begun))
            except Exception as exc:  # re-raised on the caller's thread below
                failures.append(exc)

        runner = FrameOverlap(finish, enabled=True)
        try:
            for _ in range(OVERLAP_BURST):
                runner.submit(first_half())
        finally:
            runner.close()
        if failures:
            raise failures[0]
        done = [f["done"] for f in frames]
        stages = {k for f in frames for k in f["timings"]} - {"total"}
        timings = {k: float(np.mean([f["timings"].get(k, 0.0) for f in frames])) for k in stages}
        timings["total"] = (done[-1] - done[0]) / (len(done) - 1) * 1e3
        timings["latency"] = float(np.median([f["done"] - f["start"] for f in frames]) * 1e3)
        return timings, frames[-1]["masks"]

    return burst if overlap else step


def make_floor(pipeline: Any, rgb: np.ndarray) -> Step:
    """Bare network passes on prepared input images (same models and backend as ``ours``):
    FastSAM's on the letterboxed frame, a SegFormer's on the resized one, each including the
    conversion to the network's float input (inside the compiled model on OpenVINO / ONNX
    Runtime, in the torch network otherwise). A processor-based
    closed-set model (Mask2Former, OneFormer) has no separable pass, so its floor is the whole
    call (the floor is then an upper bound and ours/floor a lower one).
    """
    import torch

    masker = pipeline.mask_generator
    image, _ = masker.network_image(rgb)
    out_hw = masker.output_hw(rgb.shape[:2])
    passes = [_network_pass(seg, rgb, out_hw) for seg in pipeline.segmenters]

    def step() -> tuple[dict[str, float], int]:
        t0 = time.perf_counter()
        masker.forward(image)
        t1 = time.perf_counter()
        with torch.inference_mode():
            for run_pass in passes:
                run_pass()
        t2 = time.perf_counter()
        return {
            "fastsam_forward": (t1 - t0) * 1e3,
            "closed_set": (t2 - t1) * 1e3,
            "total": (t2 - t0) * 1e3,
        }, 0

    return step


def _network_pass(seg: Any, rgb: np.ndarray, out_hw: tuple[int, int]) -> Callable[[], object]:
    """One closed-set model's floor pass (see :func:`make_floor`)."""
    from sfs_ros.models.closed_set import SegFormerSegmenter

    if isinstance(seg, SegFormerSegmenter):
        image = seg.network_image(rgb)
        return lambda: seg.forward(image)
    return lambda: seg(rgb, out_hw)


def make_peer(peer: Any, msg: Any) -> Step:
    """The peer pipeline on the same message (decoded the same way)."""
    from sfs_ros.ros.conversions import image_msg_to_rgb

    def step() -> tuple[dict[str, float], int]:
        t0 = time.perf_counter()
        rgb = image_msg_to_rgb(msg)
        t1 = time.perf_counter()
        _, count = peer(rgb)
        t2 = time.perf_counter()
        timings = dict(peer.last_timings, decode=(t1 - t0) * 1e3, total=(t2 - t0) * 1e3)
        return timings, count

    return step


# ------------------------------------------------------------------------------ memory
def rss_child(args: argparse.Namespace) -> int:
    """Child-process mode: build one pipeline, run a few frames, print the peak RSS."""
    from sfs_ros.pipeline import Pipeline

    imgsz, backend = args.rss_child.split(":")
    config = config_for(args, int(imgsz), backend)
    pipeline = Pipeline.from_config(config)
    msg = rgb8_message(bench_frame(*args.size)[0])
    step = make_ours(pipeline, msg, args.outputs, config["overlay_alpha"], config["overlap_frames"])
    for _ in range(3):
        step()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rss_gb": peak_kb / 1024**2}))
    return 0


def measure_rss(args: argparse.Namespace, imgsz: int, backend: str) -> float | None:
    """Peak RSS (GB) of ``ours`` at ``imgsz`` / ``backend`` in a fresh child process."""
    cmd = [sys.executable, "-m", "sfs_ros.bench", "pipeline", "--rss-child", f"{imgsz}:{backend}"]
    cmd += ["--size", f"{args.size[0]}x{args.size[1]}", "--threads", str(args.threads)]
    cmd += ["--fastsam", args.fastsam, "--closed-set", args.closed_set]
    cmd += ["--conf", str(args.conf), "--max-masks", str(args.max_masks)]
    cmd += ["--outputs", args.outputs]
    # Run from the folder holding the sfs_ros this process imported, so that the child's
    # ``-m sfs_ros.bench`` is the same copy (not a checkout in the caller's directory).
    import sfs_ros

    package_root = Path(next(iter(sfs_ros.__path__))).resolve().parent
    # argv is this interpreter plus options parsed by argparse, passed as a list; no shell
    proc = subprocess.run(  # noqa: S603
        cmd, capture_output=True, text=True, check=False, cwd=package_root
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return float(json.loads(line)["rss_gb"])
    print(f"[bench] RSS probe {imgsz}:{backend} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
    return None


# ------------------------------------------------------------------------------ report
def find(runs: list[Run], name: str, imgsz: int, backend: str | None = None) -> Run | None:
    """The run called ``name`` at ``imgsz`` (and ``backend`` when given)."""
    for run in runs:
        if run.name == name and run.imgsz == imgsz and (backend is None or run.backend == backend):
            return run
    return None


def table_rows(runs: list[Run]) -> list[list[str]]:
    """One row per configuration: stage p50s, total p50/p90, fps, peak RSS."""
    rows = []
    for run in runs:
        p50 = run.stat("total", 50)
        fps = 1e3 / p50 if p50 else None
        masks = f"{np.mean(run.masks):.0f}" if run.masks and run.name != "floor" else "–"
        stages = {"fastsam_forward": run.stat("fastsam", 50)} if run.name == "peer" else {}
        rows.append(
            [run.name, run.backend, str(run.imgsz), masks]
            + [fmt(stages.get(s, run.stat(s, 50))) for s in STAGES]
            + [fmt(p50), fmt(run.stat("total", 90)), fmt(run.stat("latency", 50) or p50)]
            + [fmt(fps, 2), fmt(run.rss_gb, 2)]
        )
    return rows


def paired_ratio(run: Run, reference: Run) -> float | None:
    """Median over frames of ``run``'s total / ``reference``'s total in the same frame round.

    The two samples of a round are taken next to each other, so a slow spell of the machine
    moves both; this is steadier than the ratio of the two medians when the machine's speed
    drifts during the run (None without paired samples)."""
    ratios = [
        mine["total"] / theirs["total"]
        for mine, theirs in zip(run.samples, reference.samples, strict=False)
        if mine.get("total") and theirs.get("total")
    ]
    return float(np.median(ratios)) if ratios else None


def ratio_lines(runs: list[Run]) -> list[str]:
    """ours/floor, peer/ours and fps per ``ours``; each ``--compare`` variant vs ``ours``."""
    lines = []
    for run in runs:
        if run.name != "ours":
            continue
        ours_ms = run.stat("total", 50)
        floor = find(runs, "floor", run.imgsz, run.backend)
        peer = find(runs, "peer", run.imgsz)
        parts = [f"ours {run.backend} imgsz {run.imgsz}:"]
        if floor:
            parts.append(f"ours/floor = {ours_ms / floor.stat('total', 50):.2f}")
            paired = paired_ratio(run, floor)
            if paired is not None:
                parts.append(f"(per frame round: {paired:.2f})")
        if peer:
            parts.append(f"peer/ours = {peer.stat('total', 50) / ours_ms:.2f}")
        parts.append(f"{1e3 / ours_ms:.2f} fps")
        lines.append(" ".join(parts))
        for variant in runs:
            if variant.name.startswith("ours ") and (variant.imgsz, variant.backend) == (
                run.imgsz,
                run.backend,
            ):
                variant_ms = variant.stat("total", 50)
                lines.append(
                    f"{variant.name} {run.backend} imgsz {run.imgsz}: "
                    f"{variant_ms / ours_ms:.2f}x the time of ours ({1e3 / variant_ms:.2f} fps)"
                )
    return lines


def summary_line(runs: list[Run], imgsz: int, backend: str) -> str:
    """``ours/floor=x peer/ours=y fps=z rss_gb=w`` (nan where not measured)."""
    ours = find(runs, "ours", imgsz, backend)
    floor = find(runs, "floor", imgsz, backend)
    peer = find(runs, "peer", imgsz)
    o50 = ours.stat("total", 50)
    of = o50 / floor.stat("total", 50) if floor else float("nan")
    po = peer.stat("total", 50) / o50 if peer else float("nan")
    rss = ours.rss_gb if ours.rss_gb is not None else float("nan")
    return f"ours/floor={of:.2f} peer/ours={po:.2f} fps={1e3 / o50:.2f} rss_gb={rss:.2f}"


def build_report(
    runs: list[Run], args: argparse.Namespace, argv: list[str], load: LoadMeter, source: str
) -> Report:
    """The pipeline benchmark's report."""
    outputs = "every image output" if args.outputs == "all" else "semantic only"
    return Report(
        title="pipeline",
        command=command_line(argv),
        load=load,
        setup=[
            f"Input {args.size[0]}×{args.size[1]} RGB ({source}), as an rgb8 message; "
            f"random-weight FastSAM-s (conf {args.conf}, max {args.max_masks} masks) + "
            f"{Path(args.closed_set).name} (512×512), {args.threads or os.cpu_count()} threads; "
            f"{args.frames} timed frames per configuration after {args.warmup} warm-up, "
            "configurations interleaved frame by frame.",
            "Stage columns: p50 ms. `floor` = bare network passes only; `ours` = decode, "
            f"Pipeline.process and the node's publish function (OutputEncoder.encode, {outputs}); "
            "`peer` = sfs_ros/bench/peer.py (ultralytics predict with retina masks, image "
            "processor, per-mask loops at full resolution); its FastSAM column is the whole "
            "predict call. `FastSAM pre` is the letterbox; each network column includes the "
            "conversion of the uint8 image to the network's float input (inside the compiled "
            "model on OpenVINO).",
            "With `overlap_frames` (the node's default) `ours` runs bursts of "
            f"{OVERLAP_BURST} frames as the node does, each frame's decode/fusion/outputs on a "
            "second thread while the next frame's networks run: `total` is then the interval "
            "between two finished frames (it sets fps), `latency` a frame's own time from "
            "decode to outputs, and the stage columns are means under that overlap.",
        ],
        headers=["config", "backend", "imgsz", "masks"]
        + [STAGE_HEADERS[s] for s in STAGES]
        + ["total p50", "total p90", "latency p50", "fps", "peak RSS GB"],
        rows=table_rows(runs),
        notes=ratio_lines(runs),
    )


# ------------------------------------------------------------------------------ main
def configurations(args: argparse.Namespace) -> tuple[list[int], list[str]]:
    """The imgsz values and backends to time: as given, else with ``--quick`` the shipped
    preset's (its ``fastsam.imgsz``, and the backend its ``backend`` resolves to on this
    machine's CPU), else imgsz 640 and 1024 on every available backend."""
    from sfs_ros.models.backends import available_backends, resolve_backend

    imgszs = args.imgsz or ([shipped("fastsam.imgsz")] if args.quick else [640, 1024])
    backends = args.backends or (
        [resolve_backend(shipped("backend"), "cpu", False)[0]]
        if args.quick
        else available_backends()
    )
    return imgszs, backends


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """``sfs-bench pipeline``: time every configuration, publish the report, summary last."""
    if args.rss_child:
        return rss_child(args)
    from sfs_ros.params import parse_override
    from sfs_ros.pipeline import Pipeline
    from sfs_ros.runtime import set_torch_threads

    imgszs, backends = configurations(args)
    args.frames = args.frames or (5 if args.quick else 10)
    resolve_models(args)
    load = LoadMeter.begin()
    rgb, source = bench_frame(*args.size)
    msg = rgb8_message(rgb, frame_header())

    rss = {}
    if not args.no_rss:  # before anything else is loaded in this process
        rss = {(i, b): measure_rss(args, i, b) for i in imgszs for b in backends}
    set_torch_threads(args.threads)
    runs: list[Run] = []
    for imgsz in imgszs:
        for backend in backends:
            print(f"[bench] loading ours imgsz {imgsz} backend {backend}", file=sys.stderr)
            config = config_for(args, imgsz, backend)
            pipeline = Pipeline.from_config(config)
            step = make_ours(
                pipeline, msg, args.outputs, config["overlay_alpha"], config["overlap_frames"]
            )
            ours = Run("ours", backend, imgsz, step)
            ours.rss_gb = rss.get((imgsz, backend))
            runs += [Run("floor", backend, imgsz, make_floor(pipeline, rgb)), ours]
            for setting in args.compare:
                key, value = parse_override(setting)
                print(f"[bench] loading ours {setting} imgsz {imgsz}", file=sys.stderr)
                config = config_for(args, imgsz, backend, {key: value})
                variant = Pipeline.from_config(config)
                step = make_ours(
                    variant, msg, args.outputs, config["overlay_alpha"], config["overlap_frames"]
                )
                runs.append(Run(f"ours {setting}", backend, imgsz, step))
        if not args.no_peer:
            from sfs_ros.bench.peer import PeerPipeline

            print(f"[bench] loading peer imgsz {imgsz}", file=sys.stderr)
            peer = PeerPipeline(
                args.fastsam,
                args.closed_set,
                imgsz=imgsz,
                conf=args.conf,
                iou=0.9,
                max_det=args.max_masks,
                threads=args.threads,
            )
            runs.append(Run("peer", "torch", imgsz, make_peer(peer, msg)))

    for one in runs:
        for _ in range(args.warmup):
            one.step()
    for frame in range(args.frames):
        order = runs[frame % len(runs) :] + runs[: frame % len(runs)]  # rotate the order
        for one in order:
            timings, count = one.step()
            one.samples.append(timings)
            one.masks.append(count)
        print(f"[bench] frame {frame + 1}/{args.frames}", file=sys.stderr)
    load.finish()
    report = build_report(runs, args, argv, load, source)
    publish(report, args.append, summary_line(runs, imgszs[0], backends[0]))
    return 0
