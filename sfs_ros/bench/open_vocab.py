# SPDX-License-Identifier: AGPL-3.0-or-later
"""``sfs-bench open-vocab MODEL``: the closed-set frame rate with the CLIP branch on vs off.

One pipeline (random weights), one process: blocks of frames alternate between the branch
enabled (its background worker labelling snapshots at ``open_vocab.rate_hz``) and disabled
(``open_vocab.enabled`` set live, after the running CLIP pass has finished). Reported: the
per-frame ``total`` p50 / p90 / fps of each mode and the CLIP passes completed while enabled.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from sfs_ros.bench.inputs import bench_frame, config_for, resolve_models, shipped
from sfs_ros.bench.machine import LoadMeter
from sfs_ros.bench.report import Report, command_line, fmt, publish

BLOCKS = 4
"""On blocks and off blocks, each."""


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Run the on/off comparison; publish the report."""
    from sfs_ros.models.backends import resolve_backend
    from sfs_ros.open_vocab.clip import resolve_clip_backend
    from sfs_ros.pipeline import Pipeline

    args.imgsz = args.imgsz or shipped("fastsam.imgsz")
    args.backend = args.backend or resolve_backend(shipped("backend"), "cpu", False)[0]
    resolve_models(args)
    config = config_for(
        args,
        args.imgsz,
        args.backend,
        {
            "open_vocab.enabled": True,
            "open_vocab.model": args.model,
            "open_vocab.pretrained": "",
            "open_vocab.rate_hz": args.rate,
        },
    )
    pipeline = Pipeline.from_config(config)
    rgb, source = bench_frame(*args.size)
    per_block = max(2, (args.frames or 12) // BLOCKS)
    load = LoadMeter.begin()
    # First pass encodes the vocabulary text: let it finish so both modes see steady state.
    pipeline.process(rgb)
    pipeline.open_vocab.worker.wait_idle(600.0)
    passes_before = pipeline.open_vocab_stats()["passes"]
    totals: dict[bool, list[float]] = {True: [], False: []}
    spans: dict[bool, float] = {True: 0.0, False: 0.0}
    for block in range(2 * BLOCKS):
        enabled = block % 2 == 0
        pipeline.update("open_vocab.enabled", enabled)
        if not enabled:  # a pass still running would compete with the "off" frames
            pipeline.open_vocab.worker.wait_idle(600.0)
        start = time.perf_counter()
        for _ in range(per_block):
            totals[enabled].append(pipeline.process(rgb).timings["total"])
        spans[enabled] += time.perf_counter() - start
        print(f"[bench] block {block + 1}/{2 * BLOCKS} open_vocab={enabled}", file=sys.stderr)
    stats = pipeline.open_vocab_stats()
    pipeline.close()
    clip_backend = resolve_clip_backend(
        config["open_vocab.backend"], "cpu", config["open_vocab.mode"]
    )
    load.finish()

    def row(enabled: bool) -> list[str]:
        ms = totals[enabled]
        return [
            "on" if enabled else "off",
            str(len(ms)),
            fmt(float(np.percentile(ms, 50))),
            fmt(float(np.percentile(ms, 90))),
            fmt(len(ms) / spans[enabled], 2),
        ]

    passes = stats["passes"] - passes_before
    report = Report(
        title="open vocabulary on vs off",
        command=command_line(argv),
        load=load,
        setup=[
            f"Closed-set per-frame path ({args.size[0]}×{args.size[1]} {source}, FastSAM-s "
            f"imgsz {args.imgsz}, backend {args.backend}, random weights) with the "
            f"open-vocabulary branch on (CLIP {args.model}, random weights, "
            f"{config['open_vocab.mode']} mode on {clip_backend}, ≤ "
            f"{args.rate} Hz on its background thread) and off, in alternating blocks of "
            f"{per_block} frames in one process. CLIP passes completed while on: {passes} "
            f"(last pass {fmt(stats['last_pass_ms'])} ms). Frames are processed back to back, "
            "so 'fps' is the per-frame path's own rate on this CPU, which the CLIP thread "
            "shares.",
        ],
        headers=["open vocab", "frames", "total p50 ms", "total p90 ms", "fps"],
        rows=[row(False), row(True)],
    )
    publish(report, args.append)
    return 0
