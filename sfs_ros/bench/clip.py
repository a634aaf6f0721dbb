# SPDX-License-Identifier: AGPL-3.0-or-later
"""``sfs-bench clip MODEL [MODEL ...]``: one open-vocabulary CLIP pass, crop vs dense mode.

One pass of :meth:`ClipScorer.score` over ``--max-masks`` elliptical masks, in
``open_vocab.mode`` crop (one masked crop per mask, one batch) and dense (one whole-image
forward, patch tokens pooled per mask), per open_clip model with random weights, the two modes
interleaved pass by pass.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

import numpy as np

from sfs_ros.bench.inputs import bench_frame
from sfs_ros.bench.machine import LoadMeter
from sfs_ros.bench.report import Report, command_line, fmt, publish


def clip_masks(count: int, width: int, height: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` elliptical masks of assorted sizes at ``width`` x ``height`` and their boxes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    cx, cy = rng.uniform(0, width, count), rng.uniform(0, height, count)
    rx = rng.uniform(0.02, 0.25, count) * width
    ry = rng.uniform(0.02, 0.25, count) * height
    masks = np.empty((count, height, width), bool)
    for i in range(count):
        masks[i] = ((xx - cx[i]) / rx[i]) ** 2 + ((yy - cy[i]) / ry[i]) ** 2 <= 1.0
    boxes = np.stack(
        [
            np.clip(cx - rx, 0, width),
            np.clip(cy - ry, 0, height),
            np.clip(cx + rx, 0, width),
            np.clip(cy + ry, 0, height),
        ],
        axis=1,
    ).astype(np.float32)
    return masks, boxes


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Time crop vs dense for every model of ``args.models``; publish the report."""
    from sfs_ros.open_vocab.clip import ClipScorer, ClipStats, check_dense_support
    from sfs_ros.params import ConfigError
    from sfs_ros.runtime import set_torch_threads
    from sfs_ros.vocabularies import get_vocabulary

    set_torch_threads(args.threads)
    reps = args.frames or (3 if args.quick else 5)
    load = LoadMeter.begin()
    rgb, source = bench_frame(*args.size)
    masks, boxes = clip_masks(args.max_masks, *args.size)
    names = list(get_vocabulary("ade20k").names)
    rows = []
    for model in args.models:
        print(f"[bench] loading CLIP {model} (random weights)", file=sys.stderr)
        crop = ClipScorer.load(model, "", allow_random=True, mode="crop")
        params_m = sum(p.numel() for p in crop.model.visual.parameters()) / 1e6
        scorers = {"crop": crop}
        try:
            check_dense_support(crop.model, model)
            scorers["dense"] = dataclasses.replace(crop, mode="dense", stats=ClipStats())
        except ConfigError as exc:
            print(f"[bench] {model}: dense skipped ({exc})", file=sys.stderr)
        crop.text_embeddings(names)  # text is cached in both modes: not part of a pass
        times: dict[str, list[float]] = {mode: [] for mode in scorers}
        for scorer in scorers.values():  # warm-up
            for _ in range(args.warmup):
                scorer.score(rgb, masks, boxes, names)
        for rep in range(reps):
            order = list(scorers.items())
            order = order[rep % len(order) :] + order[: rep % len(order)]
            for mode, scorer in order:
                start = time.perf_counter()
                scorer.score(rgb, masks, boxes, names)
                times[mode].append((time.perf_counter() - start) * 1e3)
            print(f"[bench] {model} rep {rep + 1}/{reps}", file=sys.stderr)
        p50 = {mode: float(np.percentile(t, 50)) for mode, t in times.items()}
        grid = "×".join(str(g) for g in getattr(crop.model.visual, "grid_size", ())) or "–"
        crop_ms, dense_ms = p50.get("crop"), p50.get("dense")
        ratio = crop_ms / dense_ms if crop_ms and dense_ms else None
        cells = [model, f"{params_m:.1f}", str(crop.image_size), grid]
        rows.append([*cells, fmt(crop_ms), fmt(dense_ms), fmt(ratio, 1)])
        del crop, scorers
    load.finish()
    n_masks = int((masks.sum(axis=(1, 2)) >= 4).sum())
    report = Report(
        title="CLIP crop vs dense",
        command=command_line(argv),
        load=load,
        setup=[
            f"One open-vocabulary CLIP pass (`ClipScorer.score`) over {n_masks} elliptical "
            f"masks on a {args.size[0]}×{args.size[1]} frame ({source}) against {len(names)} "
            "ADE20K names (text embeddings cached, as in the running branch); open_clip models "
            f"with random weights, {args.threads or os.cpu_count()} threads; {reps} timed "
            f"passes per mode after {args.warmup} warm-up, crop and dense interleaved.",
            "`crop` = one masked crop per mask, all in one image-encoder batch; `dense` = one "
            "forward of the whole (squashed) frame, MaskCLIP value-path patch tokens pooled per "
            "mask. The crop/dense ratio is the number to read.",
        ],
        headers=[
            "model",
            "image tower params (M)",
            "input",
            "patch grid",
            "crop p50 ms",
            "dense p50 ms",
            "crop/dense",
        ],
        rows=rows,
    )
    publish(report, args.append)
    return 0
