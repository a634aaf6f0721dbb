# SPDX-License-Identifier: AGPL-3.0-or-later
"""``sfs-bench closed-set``: the SegFormer network pass, transformers' decode head vs folded.

Times one forward of the closed-set SegFormer (``--closed-set``, random weights when not on
disk) on the processor-sized input, as transformers computes it and with the decode head folded
(:mod:`sfs_ros.models.segformer_head`), on torch and on OpenVINO in each ``--precisions``
value, all variants interleaved pass by pass. Every variant's class map is compared with
transformers' torch f32 map on the same input (the "agree" column).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sfs_ros.bench.inputs import bench_frame
from sfs_ros.bench.machine import LoadMeter
from sfs_ros.bench.report import Report, command_line, fmt, publish


def _openvino_runner(module: object, x: np.ndarray, precision: str, threads: int, path: Path):
    """``module`` exported to ONNX at ``path`` and compiled by OpenVINO in ``precision``."""
    import openvino as ov

    from sfs_ros.models.backends import export_onnx

    export_onnx(module, x.shape, path, "pixel_values", ["logits"])
    compiled = ov.Core().compile_model(
        str(path),
        "CPU",
        {
            "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": precision,
        },
    )
    request = compiled.create_infer_request()
    return lambda: np.asarray(request.infer({0: x})[compiled.output(0)])


def _transformers_logits(model: object) -> object:
    """``model`` as a ``pixel_values -> logits`` module, computed by transformers itself."""
    import torch

    class TransformersLogits(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            return self.inner(pixel_values=pixel_values).logits

    return TransformersLogits(model).eval()


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Time transformers' vs the folded SegFormer per backend/precision; publish the report."""
    import tempfile

    import torch
    from transformers import AutoModelForSemanticSegmentation

    from sfs_ros.models.closed_set import load_segmenter
    from sfs_ros.models.segformer_head import FoldedSegformer
    from sfs_ros.runtime import select_device, set_torch_threads
    from sfs_ros.vocabularies import get_vocabulary
    from sfs_ros.weights import resolve_hf_model

    set_torch_threads(args.threads)
    threads = args.threads or (os.cpu_count() or 1)
    reps = args.frames or 8
    load = LoadMeter.begin()
    rgb, source = bench_frame(*args.size)
    ade = dict(enumerate(get_vocabulary("ade20k").names))
    path, random = resolve_hf_model(args.closed_set, ade, allow_random=True)
    segmenter = load_segmenter(path, select_device("cpu"), allow_random=True)
    pixels = segmenter.preprocess(rgb)
    x = np.ascontiguousarray(pixels.numpy(), dtype=np.float32)
    model = AutoModelForSemanticSegmentation.from_pretrained(path, dtype=torch.float32).eval()
    heads = {
        "transformers": _transformers_logits(model),
        "folded": FoldedSegformer(model).eval(),
    }
    variants: dict[str, Callable[[], object]] = {}
    for head, module in heads.items():
        variants[f"{head} | torch | f32"] = lambda m=module: m(pixels).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        for precision in args.precisions:
            for head, module in heads.items():
                name = f"{head} | openvino | {precision}"
                print(f"[bench] compiling {name}", file=sys.stderr)
                onnx = Path(tmp) / f"{head}-{precision}.onnx"
                variants[name] = _openvino_runner(module, x, precision, threads, onnx)
        with torch.inference_mode():
            reference = np.asarray(variants["transformers | torch | f32"]()).argmax(1)
            agree = {
                name: float((np.asarray(run_once()).argmax(1) == reference).mean())
                for name, run_once in variants.items()
            }
            for run_once in variants.values():  # warm-up
                for _ in range(args.warmup):
                    run_once()
            times: dict[str, list[float]] = {n: [] for n in variants}
            for rep in range(reps):
                order = list(variants.items())
                order = order[rep % len(order) :] + order[: rep % len(order)]
                for name, run_once in order:
                    start = time.perf_counter()
                    run_once()
                    times[name].append((time.perf_counter() - start) * 1e3)
                print(f"[bench] pass {rep + 1}/{reps}", file=sys.stderr)
    load.finish()
    p50 = {n: float(np.percentile(t, 50)) for n, t in times.items()}
    base = p50["transformers | openvino | f32"] if "f32" in args.precisions else None
    rows = []
    for name, ms in p50.items():
        head, backend, precision = name.split(" | ")
        rel = ms / base if base else None
        rows.append([head, backend, precision, fmt(ms), fmt(rel, 2), f"{agree[name]:.2%}"])
    weights = "random weights" if random else "trained weights"
    report = Report(
        title="closed-set network: transformers' SegFormer head vs folded",
        command=command_line(argv),
        load=load,
        setup=[
            f"One forward of {Path(path).name} ({weights}) on its {x.shape[2]}×{x.shape[3]} "
            f"input (the {args.size[0]}×{args.size[1]} frame {source}, preprocessed as the "
            f"pipeline does), {threads} threads; {reps} timed passes per variant after "
            f"{args.warmup} warm-up, variants interleaved.",
            "`folded` = the decode head with its 1x1 mixing convolution folded into per-stage "
            "maps (sfs_ros/models/segformer_head.py); `agree` = share of logit-map pixels whose "
            "class equals transformers' torch f32 class; `× openvino f32` = time relative to "
            "transformers' head on OpenVINO f32.",
        ],
        headers=["head", "backend", "precision", "p50 ms", "× openvino f32", "agree"],
        rows=rows,
    )
    publish(report, args.append)
    return 0
