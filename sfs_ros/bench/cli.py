# SPDX-License-Identifier: AGPL-3.0-or-later
"""The ``sfs-bench`` command line: ``sfs-bench [SUBCOMMAND] [OPTIONS]``.

Subcommands (one module each, imported only when chosen):

* ``pipeline`` (the default when none is given, so ``sfs-bench --quick`` works): per-stage
  timings of the node's frame path vs its floor and the peer pipeline;
* ``clip MODEL ...``: one CLIP pass, crop vs dense;
* ``closed-set``: the SegFormer pass, transformers' decode head vs folded, per precision;
* ``open-vocab MODEL``: the closed-set frame rate with the CLIP branch on vs off, and the share
  of masks with a fresh CLIP label per ``open_vocab.max_masks_per_pass``;
* ``soak``: the shipped preset for many frames (memory growth, latency drift, accounting);
* ``gpu`` (also ``--gpu``): the GPU check.

Every subcommand prints its report; ``--append FILE.md`` also appends it to that file.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from sfs_ros.bench.inputs import DEFAULT_SEGMENTER, RANDOM_WEIGHTS_CONF, parse_size
from sfs_ros.bench.report import append_path
from sfs_ros.params import SPECS

COMMANDS = {
    "pipeline": "sfs_ros.bench.pipeline",
    "clip": "sfs_ros.bench.clip",
    "closed-set": "sfs_ros.bench.closed_set",
    "open-vocab": "sfs_ros.bench.open_vocab",
    "soak": "sfs_ros.bench.soak",
    "gpu": "sfs_ros.bench.gpu",
}
"""Subcommand → module with ``run(args, argv) -> int``."""
DEFAULT_COMMAND = "pipeline"
GPU_ALIAS = "--gpu"
"""``sfs-bench --gpu ...`` is ``sfs-bench gpu ...``."""


def common_options() -> argparse.ArgumentParser:
    """Options every subcommand takes: input size, budget, models, ``--append``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--size", type=parse_size, default=(640, 480), help="input WxH")
    common.add_argument("--frames", type=int, help="timed frames (per configuration)")
    common.add_argument("--warmup", type=int, default=1, help="untimed frames first")
    common.add_argument("--threads", type=int, default=0, help="CPU threads (0 = all cores)")
    common.add_argument("--fastsam", default="FastSAM-s.pt", help="FastSAM weights")
    common.add_argument("--closed-set", default=DEFAULT_SEGMENTER, help="closed-set model")
    common.add_argument(
        "--conf",
        type=float,
        default=RANDOM_WEIGHTS_CONF,
        help="FastSAM conf (0.003: ~100 masks from random weights, like the real model at 0.4)",
    )
    common.add_argument("--max-masks", type=int, default=100, help="fastsam.max_masks")
    common.add_argument(
        "--append",
        type=append_path,
        metavar="FILE.md",
        help="also append the report to this Markdown file (e.g. BENCHMARKS.md); without it "
        "nothing is written to any file",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The parser with one subparser per benchmark."""
    common = common_options()
    parser = argparse.ArgumentParser(
        prog="sfs-bench",
        description="Benchmarks of sfs_ros (random weights: timings are real, labels are not). "
        f"Without a subcommand: {DEFAULT_COMMAND}. Prints a Markdown report; --append FILE.md "
        "appends it.",
    )
    sub = parser.add_subparsers(dest="command", metavar="{" + ",".join(COMMANDS) + "}")

    pipe = sub.add_parser(
        "pipeline",
        parents=[common],
        help="node frame path vs floor vs peer (default)",
        description="Per-stage timings of the node's frame path (ours) vs the bare networks "
        "(floor) and the SFS-style peer pipeline. Last line: "
        "ours/floor=x peer/ours=y fps=z rss_gb=w.",
    )
    pipe.add_argument(
        "--quick", action="store_true", help="the shipped preset only (its imgsz and backend)"
    )
    pipe.add_argument("--imgsz", type=int, nargs="+", help="FastSAM imgsz values (640 1024)")
    pipe.add_argument("--backends", nargs="+", help="torch onnx openvino (default: available)")
    pipe.add_argument(
        "--compare",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="also time ours with each of these parameter settings, side by side in the same "
        "run (e.g. fastsam.mask_resolution=input openvino_precision=bf16)",
    )
    pipe.add_argument(
        "--outputs",
        choices=("all", "semantic"),
        default="all",
        help="image outputs ours builds: all (a subscriber on each) or semantic (no subscriber "
        "on the others)",
    )
    pipe.add_argument("--no-peer", action="store_true", help="skip the peer pipeline")
    pipe.add_argument("--no-rss", action="store_true", help="skip the peak-RSS child runs")
    pipe.add_argument("--rss-child", help=argparse.SUPPRESS)

    clip = sub.add_parser(
        "clip",
        parents=[common],
        help="one CLIP pass, crop vs dense, the crop tower in torch / openvino f32 / bf16",
        description="Time one CLIP pass over --max-masks masks, open_vocab.mode crop (the image "
        "tower in torch, and on openvino in f32 and bf16) vs dense, for these open_clip models "
        "(random weights).",
    )
    clip.add_argument("models", nargs="+", metavar="MODEL", help="e.g. ViT-B-32 ViT-S-16")
    clip.add_argument("--quick", action="store_true", help="3 passes per mode")

    closed = sub.add_parser(
        "closed-set",
        parents=[common],
        help="the SegFormer pass: transformers' decode head vs folded",
        description="Time one forward of the closed-set SegFormer as transformers computes it "
        "and with its decode head folded, on torch and on OpenVINO per precision.",
    )
    closed.add_argument(
        "--precisions",
        nargs="+",
        default=["f32", "bf16"],
        choices=["f32", "bf16"],
        help="OpenVINO inference precisions to time",
    )

    vocab = sub.add_parser(
        "open-vocab",
        parents=[common],
        help="closed-set frame rate and label coverage with the CLIP branch on vs off",
        description="Closed-set frame rate with the open-vocabulary branch on vs off, and the "
        "share of masks holding a fresh CLIP label, per open_vocab.max_masks_per_pass, in one "
        "process, with this open_clip model (random weights).",
    )
    vocab.add_argument("model", metavar="MODEL", help="open_clip model, e.g. ViT-B-32")
    vocab.add_argument("--rate", type=float, default=1.0, help="open_vocab.rate_hz")
    vocab.add_argument(
        "--masks-per-pass",
        type=int,
        nargs="+",
        metavar="N",
        help="open_vocab.max_masks_per_pass values, one 'on' run each (default: the shipped one)",
    )
    vocab.add_argument(
        "--seconds",
        type=float,
        default=30.0,
        help="length of each run (ignored with --frames: that many frames per run)",
    )
    vocab.add_argument(
        "--clip-precision",
        nargs="+",
        choices=SPECS["open_vocab.openvino_precision"].choices,
        metavar="P",
        help="open_vocab.openvino_precision values (auto, f32, bf16), each with every "
        "--masks-per-pass value (default: the shipped one)",
    )
    vocab.add_argument("--imgsz", type=int, help="FastSAM imgsz (default: the shipped one)")
    vocab.add_argument(
        "--backend",
        help="backend of both networks (default: what the shipped preset's backend resolves to "
        "on this CPU)",
    )

    soak = sub.add_parser(
        "soak",
        parents=[common],
        help="shipped preset for many frames: memory, latency drift, accounting",
        description="Run the shipped preset's frame path (slot, worker, publish function) for "
        "--frames frames or --seconds seconds; report memory growth, latency drift (first vs "
        "last window) and frames in = processed + dropped. Exit 1 when the accounting does not "
        "balance or memory grew more than --max-growth-mb.",
    )
    soak.add_argument("--seconds", type=float, help="stop after this long (default: frames)")
    soak.add_argument(
        "--rate", type=float, default=0.0, help="camera Hz (0: next frame when one is done)"
    )
    soak.add_argument("--window", type=int, default=20, help="frames per latency window")
    soak.add_argument("--max-growth-mb", type=float, default=200.0, help="memory growth limit")
    soak.add_argument("--imgsz", type=int, help="FastSAM imgsz (default: the shipped one)")
    soak.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a parameter of the preset, value parsed as YAML (repeatable)",
    )

    gpu = sub.add_parser(
        "gpu",
        parents=[common],
        help="GPU check: fp32 / fp16, parity with the CPU (alias --gpu)",
        description="The GPU check: fp32 / fp16 at the shipped setting (--size, each --imgsz) "
        "and at the paper's (--paper-size, --paper-imgsz, masks at the input resolution), "
        "parity with the CPU, speed-up over the paper's 0.08 s/frame; a few minutes on a GPU.",
    )
    gpu.add_argument(
        "--imgsz", type=int, nargs="+", help="imgsz values of the shipped setting (default 640)"
    )
    gpu.add_argument(
        "--paper-size",
        type=parse_size,
        default=(2048, 1024),
        help="input WxH of the paper setting (its Cityscapes frames)",
    )
    gpu.add_argument("--paper-imgsz", type=int, default=1024, help="imgsz of the paper setting")
    gpu.add_argument("--no-paper", action="store_true", help="skip the paper setting")
    gpu.add_argument(
        "--device",
        "--gpu-device",
        dest="device",
        default="cuda",
        help="device to check (cpu: test the check's plumbing)",
    )
    return parser


def with_subcommand(argv: Sequence[str]) -> list[str]:
    """``argv`` with its subcommand first: ``--gpu`` becomes ``gpu``, and ``pipeline`` is
    inserted when none is given (top-level ``-h`` stays as it is)."""
    argv = list(argv)
    if argv and argv[0] in COMMANDS:
        return argv
    if GPU_ALIAS in argv:
        return ["gpu", *[a for a in argv if a != GPU_ALIAS]]
    if argv and argv[0] in ("-h", "--help"):
        return argv
    return [DEFAULT_COMMAND, *argv]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sfs-bench`` console script."""
    given = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(with_subcommand(given))
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    quiet = getattr(args, "rss_child", None)
    logging.basicConfig(
        level=logging.ERROR if quiet else logging.WARNING, format="[%(name)s] %(message)s"
    )
    module = importlib.import_module(COMMANDS[args.command])
    return module.run(args, given)


if __name__ == "__main__":
    sys.exit(main())
