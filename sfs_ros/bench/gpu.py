# SPDX-License-Identifier: AGPL-3.0-or-later
"""``sfs-bench gpu`` (alias ``sfs-bench --gpu``): a GPU check sized for a few minutes of a GPU.

For each input size (640x480 and the paper's 1024 setting) and each precision (fp32, fp16) the
pipeline runs on the GPU and is compared with the same pipeline on the CPU in fp32: frames per
second (p50 of ``Pipeline.process`` with the device synchronised), mask count, label agreement
with the CPU's label map, and the speed-up over the SFS paper's 0.08 s per frame. TensorRT is
reported as installed or not (the ``tensorrt`` backend is not part of this build).

``--device cpu`` runs the same path on the CPU with a tiny budget: that is how the check's
plumbing is tested on machines without a GPU (test/test_bench.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sfs_ros.bench.inputs import bench_frame, config_for, resolve_models
from sfs_ros.bench.report import Report, command_line, publish

PAPER_S_PER_FRAME = 0.08  # the SFS paper's reported inference time per frame (its GPU)


@dataclass
class GpuRow:
    """One configuration's result."""

    imgsz: int
    precision: str
    p50_ms: float
    masks: int
    label_agreement: float
    mask_count_cpu: int


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def _time_process(pipeline: Any, rgb: np.ndarray, frames: int, device: str) -> list[float]:
    samples = []
    for _ in range(frames):
        _sync(device)
        t0 = time.perf_counter()
        pipeline.process(rgb)
        _sync(device)
        samples.append((time.perf_counter() - t0) * 1e3)
    return samples


def run_gpu_check(args: argparse.Namespace) -> list[GpuRow]:
    """Time and compare every (imgsz, precision) configuration; returns the rows."""
    from sfs_ros.pipeline import Pipeline

    rgb, _ = bench_frame(*args.size)
    device = args.device
    rows = []
    for imgsz in args.imgsz or [640, 1024]:
        reference = Pipeline.from_config(config_for(args, imgsz, "torch", {"device": "cpu"}))
        ref = reference.process(rgb)
        reference.close()
        for precision in ("fp32", "fp16"):
            extra = {"device": device, "half": precision == "fp16"}
            pipeline = Pipeline.from_config(config_for(args, imgsz, "torch", extra))
            for _ in range(args.warmup):
                pipeline.process(rgb)
            samples = _time_process(pipeline, rgb, args.frames, device)
            result = pipeline.process(rgb)
            pipeline.close()
            rows.append(
                GpuRow(
                    imgsz=imgsz,
                    precision=precision,
                    p50_ms=float(np.percentile(samples, 50)),
                    masks=len(result.masks),
                    label_agreement=float((result.label_map == ref.label_map).mean()),
                    mask_count_cpu=len(ref.masks),
                )
            )
            print(f"[bench] gpu {device} imgsz {imgsz} {precision}: {rows[-1]}", file=sys.stderr)
    return rows


def device_name(device: str) -> str:
    """The GPU's name (or "CPU" for the plumbing run)."""
    if device.startswith("cuda"):
        import torch

        index = torch.device(device).index or 0
        return f"{torch.cuda.get_device_name(index)} ({device})"
    return "CPU (plumbing run, not a GPU figure)"


def build_report(rows: list[GpuRow], args: argparse.Namespace, argv: list[str]) -> Report:
    """The GPU check's report."""
    trt = "installed" if importlib.util.find_spec("tensorrt") else "not installed"
    return Report(
        title="GPU check",
        command=command_line(argv),
        setup=[
            f"Device: {device_name(args.device)}. FastSAM `{Path(args.fastsam).name}`, closed "
            f"set `{Path(args.closed_set).name}`, input {args.size[0]}×{args.size[1]}, "
            f"{args.frames} timed frames after {args.warmup} warm-up; agreement = share of "
            f"label-map pixels equal to the CPU fp32 run. TensorRT: {trt} (backend `tensorrt` "
            f"is not part of this build). Paper: {PAPER_S_PER_FRAME * 1e3:.0f} ms per frame.",
        ],
        headers=[
            "imgsz",
            "precision",
            "p50 ms",
            "fps",
            "× paper speed",
            "masks (CPU)",
            "agreement",
        ],
        rows=[
            [
                str(row.imgsz),
                row.precision,
                f"{row.p50_ms:.1f}",
                f"{1e3 / row.p50_ms:.1f}",
                f"{PAPER_S_PER_FRAME * 1e3 / row.p50_ms:.1f}",
                f"{row.masks} ({row.mask_count_cpu})",
                f"{row.label_agreement:.2%}",
            ]
            for row in rows
        ],
    )


def summary_line(rows: list[GpuRow]) -> str:
    """Machine-readable last line: fps per configuration and the best paper speed-up."""
    parts = [f"fps_{r.imgsz}_{r.precision}={1e3 / r.p50_ms:.1f}" for r in rows]
    best = max(PAPER_S_PER_FRAME * 1e3 / r.p50_ms for r in rows)
    return " ".join([*parts, f"paper_speedup={best:.1f}"])


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """``sfs-bench gpu``: run the check, publish the report, the summary line last."""
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            "sfs-bench gpu: no CUDA device here (use --device cpu to test the plumbing)",
            file=sys.stderr,
        )
        return 2
    resolve_models(args)
    args.frames = args.frames or 20
    args.warmup = max(args.warmup, 3) if args.device.startswith("cuda") else args.warmup
    rows = run_gpu_check(args)
    publish(build_report(rows, args, argv), args.append, summary_line(rows))
    return 0
