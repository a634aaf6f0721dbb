# SPDX-License-Identifier: AGPL-3.0-or-later
"""``sfs-bench gpu`` (alias ``sfs-bench --gpu``): a GPU check sized for a few minutes of a GPU.

Two input settings, each in fp32 and fp16 on the GPU, compared with the same pipeline on the
CPU in fp32:

* ``shipped``: the shipped preset's input, a 640x480 frame at ``fastsam.imgsz`` 640 with the
  shipped ``fastsam.mask_resolution`` (labels decided at input resolution along edges;
  ``--size``, ``--imgsz``);
* ``paper``: the SFS paper's setting, a Cityscapes-size 2048x1024 frame at imgsz 1024 with
  masks decoded at the input resolution (the paper's retina masks; ``--paper-size``,
  ``--paper-imgsz``, ``--no-paper``).

Each row gives frames per second (p50 of ``Pipeline.process`` with the device synchronised),
the mask count, the share of label-map pixels equal to the CPU's, and the speed-up over the
paper's 0.08 s per frame. The summary's ``paper_speedup`` comes from the paper-setting rows
only. The models are the benchmark's (FastSAM-s and SegFormer-B0 unless ``--fastsam`` /
``--closed-set`` say otherwise), not the paper's FastSAM-x and OneFormers. TensorRT is reported
as installed or not (the ``tensorrt`` backend is not part of this build).

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
PRECISIONS = ("fp32", "fp16")


@dataclass(frozen=True)
class GpuSetting:
    """One input setting of the check.

    Attributes:
        name: ``shipped`` or ``paper``.
        size: the input frame's (width, height).
        imgsz: ``fastsam.imgsz``.
        mask_resolution: ``fastsam.mask_resolution`` (``edges``, ``work`` or ``input``).
    """

    name: str
    size: tuple[int, int]
    imgsz: int
    mask_resolution: str

    @property
    def key(self) -> str:
        """Its name in the summary line: ``640`` (shipped, by imgsz) or ``paper``."""
        return "paper" if self.name == "paper" else str(self.imgsz)


@dataclass
class GpuRow:
    """One configuration's result."""

    setting: GpuSetting
    precision: str
    p50_ms: float
    masks: int
    label_agreement: float
    mask_count_cpu: int

    @property
    def paper_speedup(self) -> float:
        """The paper's time per frame over this row's."""
        return PAPER_S_PER_FRAME * 1e3 / self.p50_ms


def check_settings(args: argparse.Namespace) -> list[GpuSetting]:
    """The settings to run: the shipped input at each ``--imgsz`` (640 by default), then the
    paper's setting unless ``--no-paper``."""
    from sfs_ros.bench.inputs import shipped

    resolution = shipped("fastsam.mask_resolution")
    settings = [
        GpuSetting("shipped", args.size, imgsz, resolution) for imgsz in args.imgsz or [640]
    ]
    if not args.no_paper:
        settings.append(GpuSetting("paper", args.paper_size, args.paper_imgsz, "input"))
    return settings


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
    """Time and compare every (setting, precision) configuration; returns the rows."""
    from sfs_ros.pipeline import Pipeline

    device = args.device
    rows = []
    for setting in check_settings(args):
        rgb, _ = bench_frame(*setting.size)
        masks = {"fastsam.mask_resolution": setting.mask_resolution}
        cpu = {**masks, "device": "cpu"}
        reference = Pipeline.from_config(config_for(args, setting.imgsz, "torch", cpu))
        ref = reference.process(rgb)
        reference.close()
        for precision in PRECISIONS:
            extra = {**masks, "device": device, "half": precision == "fp16"}
            pipeline = Pipeline.from_config(config_for(args, setting.imgsz, "torch", extra))
            for _ in range(args.warmup):
                pipeline.process(rgb)
            samples = _time_process(pipeline, rgb, args.frames, device)
            result = pipeline.process(rgb)
            pipeline.close()
            rows.append(
                GpuRow(
                    setting=setting,
                    precision=precision,
                    p50_ms=float(np.percentile(samples, 50)),
                    masks=len(result.masks),
                    label_agreement=float((result.label_map == ref.label_map).mean()),
                    mask_count_cpu=len(ref.masks),
                )
            )
            print(f"[bench] gpu {device} {setting} {precision}: {rows[-1]}", file=sys.stderr)
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
            f"Device: {device_name(args.device)}. FastSAM `{Path(args.fastsam).name}` (conf "
            f"{args.conf}, at most {args.max_masks} masks), closed set "
            f"`{Path(args.closed_set).name}`, backend torch; {args.frames} timed frames after "
            f"{args.warmup} warm-up. `shipped`: the shipped preset's input and mask resolution; "
            "`paper`: the SFS paper's setting (Cityscapes-size frame, imgsz 1024, masks at the "
            "input resolution) with these models, not the paper's FastSAM-x and OneFormers. "
            "Agreement = share of label-map pixels equal to the CPU fp32 run of the same "
            f"setting. TensorRT: {trt} (backend `tensorrt` is not part of this build). Paper: "
            f"{PAPER_S_PER_FRAME * 1e3:.0f} ms per frame.",
        ],
        headers=[
            "setting",
            "input",
            "imgsz",
            "masks at",
            "precision",
            "p50 ms",
            "fps",
            "× paper speed",
            "masks (CPU)",
            "agreement",
        ],
        rows=[
            [
                row.setting.name,
                f"{row.setting.size[0]}×{row.setting.size[1]}",
                str(row.setting.imgsz),
                row.setting.mask_resolution,
                row.precision,
                f"{row.p50_ms:.1f}",
                f"{1e3 / row.p50_ms:.1f}",
                f"{row.paper_speedup:.1f}",
                f"{row.masks} ({row.mask_count_cpu})",
                f"{row.label_agreement:.2%}",
            ]
            for row in rows
        ],
    )


def summary_line(rows: list[GpuRow]) -> str:
    """Machine-readable last line: fps per configuration (``fps_640_fp16``, ``fps_paper_fp16``)
    and the best speed-up over the paper among the paper-setting rows (``n/a`` without them)."""
    parts = [f"fps_{r.setting.key}_{r.precision}={1e3 / r.p50_ms:.1f}" for r in rows]
    paper = [r.paper_speedup for r in rows if r.setting.name == "paper"]
    return " ".join([*parts, f"paper_speedup={max(paper):.1f}" if paper else "paper_speedup=n/a"])


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
