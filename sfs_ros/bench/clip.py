# SPDX-License-Identifier: AGPL-3.0-or-later
"""``sfs-bench clip MODEL [MODEL ...]``: one open-vocabulary CLIP pass, crop vs dense mode, and
the crop-mode image tower in torch and on OpenVINO in f32 and bf16.

One pass of :meth:`ClipScorer.score` over ``--max-masks`` elliptical masks, per open_clip model
with random weights, in ``open_vocab.mode`` crop (one masked crop per mask, one batch: the
tower in torch, then on OpenVINO with ``open_vocab.num_threads`` threads in each
``open_vocab.openvino_precision``, f32 and bf16, when OpenVINO is installed) and dense (one
whole-image forward, patch tokens pooled per mask, torch); the variants interleaved pass by
pass.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

import numpy as np

from sfs_ros.bench.inputs import bench_frame, shipped
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


VARIANTS = ("crop torch", "crop openvino f32", "crop openvino bf16", "dense torch")
"""The timed variants of a pass, in table order (the OpenVINO ones only where it is installed)."""


def scorer_variants(crop: object, model: str, threads: int) -> dict[str, object]:
    """The scorers to time for one model: ``crop`` (torch) as loaded, the same model with its
    tower on OpenVINO in f32 and bf16, and dense mode where the model supports it."""
    import importlib.util

    from sfs_ros.open_vocab.clip import ClipStats, check_dense_support, make_image_encoder
    from sfs_ros.params import ConfigError

    scorers = {"crop torch": crop}
    if importlib.util.find_spec("openvino") is not None:
        for precision in ("f32", "bf16"):
            encoder = make_image_encoder(
                "openvino",
                crop.model,
                model_name=model,
                image_size=crop.image_size,
                device="cpu",
                threads=threads,
                openvino_precision=precision,
            )
            scorers[f"crop openvino {precision}"] = dataclasses.replace(
                crop, image_encoder=encoder, stats=ClipStats()
            )
    try:
        check_dense_support(crop.model, model)
        scorers["dense torch"] = dataclasses.replace(crop, mode="dense", stats=ClipStats())
    except ConfigError as exc:
        print(f"[bench] {model}: dense skipped ({exc})", file=sys.stderr)
    return scorers


def _ratio(p50: dict[str, float], a: str, b: str) -> float | None:
    return p50[a] / p50[b] if a in p50 and b in p50 else None


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Time every variant for every model of ``args.models``; publish the report."""
    from sfs_ros.models.backends import cpu_has_native_bf16
    from sfs_ros.open_vocab.clip import ClipScorer
    from sfs_ros.runtime import set_torch_threads
    from sfs_ros.vocabularies import get_vocabulary

    set_torch_threads(args.threads)
    clip_threads = shipped("open_vocab.num_threads")
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
        scorers = scorer_variants(crop, model, clip_threads)
        crop.text_embeddings(names)  # text is cached in every variant: not part of a pass
        times: dict[str, list[float]] = {name: [] for name in scorers}
        for scorer in scorers.values():  # warm-up
            for _ in range(args.warmup):
                scorer.score(rgb, masks, boxes, names)
        for rep in range(reps):
            order = list(scorers.items())
            order = order[rep % len(order) :] + order[: rep % len(order)]
            for name, scorer in order:
                start = time.perf_counter()
                scorer.score(rgb, masks, boxes, names)
                times[name].append((time.perf_counter() - start) * 1e3)
            print(f"[bench] {model} rep {rep + 1}/{reps}", file=sys.stderr)
        p50 = {name: float(np.percentile(t, 50)) for name, t in times.items()}
        grid = "×".join(str(g) for g in getattr(crop.model.visual, "grid_size", ())) or "–"
        cells = [model, f"{params_m:.1f}", str(crop.image_size), grid]
        timings = [fmt(p50.get(name)) for name in VARIANTS]
        ratios = [
            fmt(_ratio(p50, "crop torch", "dense torch"), 1),
            fmt(_ratio(p50, "crop openvino f32", "crop openvino bf16"), 1),
        ]
        rows.append([*cells, *timings, *ratios])
        del crop, scorers
    load.finish()
    n_masks = int((masks.sum(axis=(1, 2)) >= 4).sum())
    bf16 = "natively" if cpu_has_native_bf16() else "NOT natively (OpenVINO emulates it)"
    report = Report(
        title="CLIP crop vs dense, and the crop tower's backend and precision",
        command=command_line(argv),
        load=load,
        setup=[
            f"One open-vocabulary CLIP pass (`ClipScorer.score`) over {n_masks} elliptical "
            f"masks on a {args.size[0]}×{args.size[1]} frame ({source}) against {len(names)} "
            "ADE20K names (text embeddings cached, as in the running branch); open_clip models "
            f"with random weights, torch on {args.threads or os.cpu_count()} threads, the "
            f"OpenVINO tower on {clip_threads} (open_vocab.num_threads); {reps} timed passes per "
            f"variant after {args.warmup} warm-up, variants interleaved. This CPU computes "
            f"bf16 {bf16}.",
            "`crop` = one masked crop per mask, all in one image-encoder batch (the image tower "
            "in torch, or on OpenVINO in `open_vocab.openvino_precision` f32 / bf16); `dense` = "
            "one forward of the whole (squashed) frame, MaskCLIP value-path patch tokens pooled "
            "per mask. Ratios are of p50 times.",
        ],
        headers=[
            "model",
            "image tower params (M)",
            "input",
            "patch grid",
            *(f"{name} p50 ms" for name in VARIANTS),
            "crop torch / dense",
            "openvino f32 / bf16",
        ],
        rows=rows,
    )
    publish(report, args.append)
    return 0
