"""``sfs-bench --open-vocab MODEL``: closed-set frame rate with the CLIP branch on vs off.

One pipeline (random weights), one process: blocks of frames alternate between the branch
enabled (its background worker labelling snapshots at ``open_vocab.rate_hz``) and disabled
(``open_vocab.enabled`` set live, after the running CLIP pass has finished). Reported: the
per-frame ``total`` p50 / fps of each mode and the CLIP passes completed while enabled.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

BLOCKS = 4  # on/off blocks each


def open_vocab_bench(args: argparse.Namespace, argv: list[str], imgsz: int, backend: str) -> int:
    """Run the on/off comparison and append a table to ``args.output``."""
    from sfs_ros.cli.bench import config_for, fmt, machine_description, test_image
    from sfs_ros.pipeline import Pipeline

    config = config_for(args, imgsz, backend)
    config.update(
        {
            "open_vocab.enabled": True,
            "open_vocab.model": args.open_vocab,
            "open_vocab.pretrained": "",
            "open_vocab.rate_hz": args.open_vocab_rate,
        }
    )
    pipeline = Pipeline.from_config(config)
    rgb = test_image(*args.size)
    per_block = max(2, (args.frames or 12) // BLOCKS)
    load_start = os.getloadavg()[0]
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
    load_end = os.getloadavg()[0]

    def row(enabled: bool) -> str:
        ms = totals[enabled]
        fps = len(ms) / spans[enabled]
        return (
            f"| {'on' if enabled else 'off'} | {len(ms)} | {fmt(float(np.percentile(ms, 50)))} "
            f"| {fmt(float(np.percentile(ms, 90)))} | {fmt(fps, 2)} |"
        )

    command = "sfs-bench " + shlex.join(argv)
    today = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    passes = stats["passes"] - passes_before
    table = (
        "\n".join(
            [
                f"\n## {today} — `{command}`\n",
                f"- Machine: {machine_description()}",
                f"- Load average (1 min) at start / end: {load_start:.2f} / {load_end:.2f}.",
                f"- Closed-set per-frame path ({args.size[0]}×{args.size[1]}, FastSAM-s imgsz "
                f"{imgsz}, backend {backend}, random weights) with the open-vocabulary branch on "
                f"(CLIP {args.open_vocab}, random weights, crop mode, ≤ {args.open_vocab_rate} "
                "Hz on its "
                f"background thread) and off, in alternating blocks of {per_block} frames in one "
                f"process. CLIP passes completed while on: {passes} (last pass "
                f"{fmt(stats['last_pass_ms'])} ms). Frames are processed back to back, so 'fps' is "
                "the per-frame path's own rate on this CPU, which the CLIP thread shares.",
                "",
                "| open vocab | frames | total p50 ms | total p90 ms | fps |",
                "|---|---|---|---|---|",
                row(False),
                row(True),
            ]
        )
        + "\n"
    )
    print(table)
    if not args.no_write:
        out = Path(args.output)
        with open(out, "a") as handle:
            handle.write(table)
        print(f"[bench] appended to {out}", file=sys.stderr)
    return 0
