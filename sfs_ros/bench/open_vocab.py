# SPDX-License-Identifier: AGPL-3.0-or-later
"""``sfs-bench open-vocab MODEL``: the closed-set frame rate with the CLIP branch on vs off, and
how many masks carry a fresh CLIP label, per ``open_vocab.max_masks_per_pass`` and per
``open_vocab.openvino_precision`` of the CLIP tower.

One pipeline per ``--clip-precision`` value (random weights), one process, one run per
configuration in this order: off, each precision with each ``--masks-per-pass`` value (on),
off again (the off runs use the first pipeline). A run lasts ``--seconds`` (or ``--frames`` frames)
of back-to-back frames. Between runs the branch is switched off (which forgets its tracks, after
the running CLIP pass has finished), so every "on" run starts without labels, as a node does.
Reported per run: the per-frame ``total`` p50 / p90 / fps, the CLIP passes it completed and the
masks of its last pass, and the share of the masks of its second half (steady state) that held
a fresh CLIP label.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from sfs_ros.bench.inputs import bench_frame, config_for, resolve_models, shipped
from sfs_ros.bench.machine import LoadMeter
from sfs_ros.bench.report import Report, command_line, fmt, publish


@dataclass
class RunResult:
    """One run: frame totals (ms), its wall time, CLIP passes, steady-state label coverage."""

    totals: list[float] = field(default_factory=list)
    span_s: float = 0.0
    passes: int = 0
    masks: int = 0
    labelled: int = 0
    last_pass_masks: int | None = None


def timed_run(pipeline, rgb: np.ndarray, *, frames: int | None, seconds: float) -> RunResult:
    """Frames back to back for ``frames`` frames (or ``seconds``); coverage over the second
    half of them."""
    result = RunResult()
    branch = pipeline.open_vocab
    coverage = branch.tracks.coverage
    passes_before = pipeline.open_vocab_stats()["passes"]
    half_mark: tuple[int, int] | None = None
    start = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - start
        done = len(result.totals)
        finished = done >= frames if frames else elapsed >= seconds
        halfway = done >= frames / 2 if frames else elapsed >= seconds / 2
        if halfway and half_mark is None:
            half_mark = (coverage.masks, coverage.labelled)
        if finished:
            break
        result.totals.append(pipeline.process(rgb).timings["total"])
    result.span_s = time.perf_counter() - start
    branch.worker.wait_idle(600.0)  # the pass this run started counts for it
    stats = pipeline.open_vocab_stats()
    result.passes = stats["passes"] - passes_before
    result.last_pass_masks = stats["last_pass_masks"]
    result.masks = coverage.masks - half_mark[0]
    result.labelled = coverage.labelled - half_mark[1]
    return result


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Run the on/off comparison; publish the report."""
    from sfs_ros.models.backends import resolve_backend
    from sfs_ros.open_vocab.clip import resolve_clip_backend
    from sfs_ros.pipeline import Pipeline

    args.imgsz = args.imgsz or shipped("fastsam.imgsz")
    args.backend = args.backend or resolve_backend(shipped("backend"), "cpu", False)[0]
    budgets = args.masks_per_pass or [shipped("open_vocab.max_masks_per_pass")]
    precisions = args.clip_precision or [shipped("open_vocab.openvino_precision")]
    resolve_models(args)
    configs = {
        precision: config_for(
            args,
            args.imgsz,
            args.backend,
            {
                "open_vocab.enabled": True,
                "open_vocab.model": args.model,
                "open_vocab.pretrained": "",
                "open_vocab.rate_hz": args.rate,
                "open_vocab.openvino_precision": precision,
            },
        )
        for precision in precisions
    }
    pipelines = {precision: Pipeline.from_config(config) for precision, config in configs.items()}
    config = configs[precisions[0]]
    rgb, source = bench_frame(*args.size)
    load = LoadMeter.begin()
    for pipeline in pipelines.values():
        # First pass encodes the vocabulary text: let it finish so every run sees steady state.
        pipeline.process(rgb)
        pipeline.open_vocab.worker.wait_idle(600.0)
        pipeline.update("open_vocab.enabled", False)
    # (precision, budget) per run; budget None: branch off
    plan: list[tuple[str, int | None]] = [
        (precisions[0], None),
        *((precision, budget) for precision in precisions for budget in budgets),
        (precisions[0], None),
    ]
    results: list[RunResult] = []
    for number, (precision, budget) in enumerate(plan, 1):
        pipeline = pipelines[precision]
        pipeline.update("open_vocab.enabled", False)  # forgets the tracks
        if budget is not None:
            pipeline.update("open_vocab.max_masks_per_pass", budget)
            pipeline.update("open_vocab.enabled", True)
        results.append(timed_run(pipeline, rgb, frames=args.frames, seconds=args.seconds))
        pipeline.update("open_vocab.enabled", False)
        label = "off" if budget is None else f"on, {precision}, {budget} masks per pass"
        print(f"[bench] run {number}/{len(plan)} open vocab {label}", file=sys.stderr)
    last = pipelines[plan[-2][0]]
    stats = last.open_vocab_stats()
    masks_per_frame = last.open_vocab.tracks.coverage.last_masks
    towers = {p: pipe.open_vocab.scorer.image_encoder for p, pipe in pipelines.items()}
    for pipeline in pipelines.values():
        pipeline.close()
    clip_backend = resolve_clip_backend(
        config["open_vocab.backend"], "cpu", config["open_vocab.mode"]
    )
    load.finish()

    def tower_precision(precision: str) -> str:
        resolved = getattr(towers[precision], "precision", "torch")
        return resolved if precision == resolved else f"{precision} ({resolved})"

    def row(precision: str, budget: int | None, result: RunResult) -> list[str]:
        ms = result.totals
        share = result.labelled / result.masks if result.masks else None
        return [
            "off" if budget is None else "on",
            "–" if budget is None else tower_precision(precision),
            "–" if budget is None else str(budget),
            str(len(ms)),
            fmt(float(np.percentile(ms, 50))),
            fmt(float(np.percentile(ms, 90))),
            fmt(len(ms) / result.span_s, 2),
            "–" if budget is None else str(result.passes),
            "–" if budget is None else str(result.last_pass_masks),
            "–" if share is None else f"{100 * share:.0f}%",
        ]

    length = f"{args.frames} frames" if args.frames else f"{args.seconds:g} s"
    report = Report(
        title="open vocabulary on vs off",
        command=command_line(argv),
        load=load,
        setup=[
            f"Closed-set per-frame path ({args.size[0]}×{args.size[1]} {source}, FastSAM-s "
            f"imgsz {args.imgsz}, backend {args.backend}, random weights, {masks_per_frame} "
            f"masks per frame) with the open-vocabulary branch on (CLIP {args.model}, random "
            f"weights, {config['open_vocab.mode']} mode on {clip_backend}, ≤ {args.rate} Hz on "
            f"its background thread, labels kept {config['open_vocab.max_age_s']:g} s) and off. "
            f"One run of {length} per row, in table order, in one process; each 'on' run "
            "starts without labels. Frames are processed back to back, so 'fps' is the "
            "per-frame path's own rate on this CPU, which the CLIP thread shares. 'labelled' = "
            "share of the masks of the run's second half that held a fresh CLIP label "
            f"(last pass: {fmt(stats['last_pass_ms'])} ms over {stats['last_pass_masks']} masks). "
            "'max masks per pass' = open_vocab.max_masks_per_pass; 'CLIP precision' = "
            "open_vocab.openvino_precision (in brackets: what auto resolved to; 'torch': the "
            "tower does not run on openvino).",
        ],
        headers=[
            "open vocab",
            "CLIP precision",
            "max masks per pass",
            "frames",
            "total p50 ms",
            "total p90 ms",
            "fps",
            "CLIP passes",
            "masks in last pass",
            "labelled",
        ],
        rows=[
            row(precision, budget, result)
            for (precision, budget), result in zip(plan, results, strict=True)
        ],
    )
    publish(report, args.append)
    return 0
