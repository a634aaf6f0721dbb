"""``sfs-bench``: per-stage timings of sfs_ros next to its floor and the peer pipeline.

Configurations, all on the same input frames, interleaved frame by frame (so that load from
other processes hits every configuration alike):

* ``floor``: the bare network passes (FastSAM + closed-set) on the same backend and input
  tensors as ``ours``: what no pipeline can beat;
* ``ours``: decode (sensor_msgs/Image rgb8) → :meth:`Pipeline.process` → render (colour,
  overlay, instances) → message build (four ``sensor_msgs/Image``);
* ``peer``: what SFS/SSA do (``sfs_ros/bench_peer.py``): ultralytics
  ``FastSAM.predict(retina_masks=True)``, the transformers image processor, a per-mask
  ``np.bincount`` loop and painting mask by mask, all at full resolution.

Peak RSS is measured per ``ours`` configuration in a fresh child process (models loaded, a few
frames run). Results are printed and appended to ``BENCHMARKS.md`` as a Markdown table with the
command and the machine; the last printed line is
``ours/floor=<x> peer/ours=<y> fps=<z> rss_gb=<w>`` for the first imgsz and backend.

``--clip MODEL [MODEL ...]`` runs a separate benchmark instead: one open-vocabulary CLIP pass
over ``--max-masks`` masks, ``open_vocab.mode`` crop (one masked crop per mask, one batch) vs
dense (one whole-image forward, patch tokens pooled per mask), per open_clip model with random
weights, interleaved; its table is appended to ``BENCHMARKS.md`` the same way.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

STAGES = (
    "decode",
    "fastsam_pre",
    "fastsam_forward",
    "fastsam_post",
    "closed_set",
    "vote_fuse",
    "paint",
    "render",
    "msg_build",
)
STAGE_HEADERS = {
    "decode": "decode",
    "fastsam_pre": "FastSAM pre",
    "fastsam_forward": "FastSAM fwd",
    "fastsam_post": "FastSAM post",
    "closed_set": "closed-set",
    "vote_fuse": "vote+fuse",
    "paint": "paint",
    "render": "render",
    "msg_build": "msg build",
}
DEFAULT_SEGMENTER = "nvidia/segformer-b0-finetuned-ade-512-512"


# ------------------------------------------------------------------------------ inputs
def test_image(width: int, height: int) -> np.ndarray:
    """The benchmark frame: ultralytics' bus.jpg (RGB) resized, else a synthetic scene."""
    import cv2

    try:
        import ultralytics

        path = Path(ultralytics.__file__).parent / "assets" / "bus.jpg"
        bgr = cv2.imread(str(path))
    except ImportError:
        bgr = None
    if bgr is None:
        rng = np.random.default_rng(0)
        img = np.zeros((height, width, 3), np.uint8)
        img[:] = np.linspace(40, 200, width, dtype=np.uint8)[None, :, None]
        for _ in range(12):
            x, y = rng.integers(0, width), rng.integers(0, height)
            color = tuple(int(c) for c in rng.integers(0, 255, 3))
            cv2.circle(img, (int(x), int(y)), int(rng.integers(10, height // 4)), color, -1)
        return img
    return cv2.cvtColor(cv2.resize(bgr, (width, height)), cv2.COLOR_BGR2RGB)


def rgb8_message(rgb: np.ndarray) -> Any:
    """A sensor_msgs/Image (or a stand-in when ROS is not installed) holding ``rgb``."""
    try:
        from sensor_msgs.msg import Image

        msg = Image()
    except ImportError:
        msg = SimpleNamespace()
    msg.height, msg.width = rgb.shape[:2]
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = rgb.shape[1] * 3
    msg.data = rgb.tobytes()
    return msg


def message_class() -> Any:
    try:
        from sensor_msgs.msg import Image

        return Image
    except ImportError:
        return SimpleNamespace


# ------------------------------------------------------------------------------ runners
@dataclass
class Run:
    """One configuration's samples."""

    name: str
    backend: str
    imgsz: int
    step: Any = None  # callable() -> (stage timings dict, mask count)
    samples: list[dict[str, float]] = field(default_factory=list)
    masks: list[int] = field(default_factory=list)
    rss_gb: float | None = None
    note: str = ""

    def stat(self, stage: str, q: float) -> float | None:
        values = [s[stage] for s in self.samples if stage in s]
        return float(np.percentile(values, q)) if values else None


def config_for(
    args: argparse.Namespace, imgsz: int, backend: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    from sfs_ros.params import load_config

    return load_config(
        None,
        {
            **(extra or {}),
            "device": "cpu",
            "backend": backend,
            "num_threads": args.threads,
            "allow_random_weights": True,
            "fastsam.model": args.fastsam,
            "fastsam.imgsz": imgsz,
            "fastsam.conf": args.conf,
            "fastsam.max_masks": args.max_masks,
            "closed_set.model": args.closed_set,
            **(extra or {}),
        },
    )


def make_ours(pipeline: Any, msg: Any) -> Any:
    """Full per-frame path of the node: decode → process → render → messages."""
    from sfs_ros import render
    from sfs_ros.ros.conversions import image_msg_to_rgb, to_image_msg

    lut = pipeline.registry.color_lut()
    cls = message_class()
    header = SimpleNamespace(stamp=0, frame_id="camera")

    def step() -> tuple[dict[str, float], int]:
        t0 = time.perf_counter()
        rgb = image_msg_to_rgb(msg)
        t1 = time.perf_counter()
        result = pipeline.process(rgb)
        t2 = time.perf_counter()
        color = render.colorize(result.label_map, lut)
        over = render.overlay(rgb, result.label_map, lut, 0.5)
        inst = render.instance_colors(result.instance_map)
        t3 = time.perf_counter()
        to_image_msg(result.label_map, "mono16", header, cls)
        to_image_msg(color, "rgb8", header, cls)
        to_image_msg(over, "rgb8", header, cls)
        to_image_msg(inst, "rgb8", header, cls)
        t4 = time.perf_counter()
        timings = dict(result.timings)
        timings.pop("fastsam", None)
        timings.pop("total", None)
        timings.update(pipeline.mask_generator.last_timings)
        timings.update(
            decode=(t1 - t0) * 1e3,
            render=(t3 - t2) * 1e3,
            msg_build=(t4 - t3) * 1e3,
            total=(t4 - t0) * 1e3,
        )
        return timings, len(result.masks)

    return step


def make_floor(pipeline: Any, rgb: np.ndarray) -> Any:
    """Bare network passes on prepared input tensors (same models and backend as ``ours``)."""
    import torch

    masker = pipeline.mask_generator
    tensor, _ = masker.preprocess(rgb)
    segmenters = pipeline.segmenters
    pixels = [s.preprocess(rgb) for s in segmenters]

    def step() -> tuple[dict[str, float], int]:
        t0 = time.perf_counter()
        masker.forward(tensor)
        t1 = time.perf_counter()
        with torch.inference_mode():
            for seg, px in zip(segmenters, pixels, strict=True):
                seg.forward(px)
        t2 = time.perf_counter()
        return {
            "fastsam_forward": (t1 - t0) * 1e3,
            "closed_set": (t2 - t1) * 1e3,
            "total": (t2 - t0) * 1e3,
        }, 0

    return step


def load_peer_module() -> Any:
    """The peer pipeline, :mod:`sfs_ros.bench_peer`, from the installed package.

    Never from the working directory: a ``bench/`` folder there is not imported.
    """
    from sfs_ros import bench_peer

    return bench_peer


def make_peer(peer: Any, msg: Any) -> Any:
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
    pipeline = Pipeline.from_config(config_for(args, int(imgsz), backend))
    msg = rgb8_message(test_image(*args.size))
    step = make_ours(pipeline, msg)
    for _ in range(3):
        step()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rss_gb": peak_kb / 1024**2}))
    return 0


def measure_rss(args: argparse.Namespace, imgsz: int, backend: str) -> float | None:
    cmd = [sys.executable, "-m", "sfs_ros.cli.bench", "--rss-child", f"{imgsz}:{backend}"]
    cmd += ["--size", f"{args.size[0]}x{args.size[1]}", "--threads", str(args.threads)]
    cmd += ["--fastsam", args.fastsam, "--closed-set", args.closed_set]
    cmd += ["--conf", str(args.conf), "--max-masks", str(args.max_masks)]
    # argv is this interpreter plus options parsed by argparse, passed as a list; no shell
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return float(json.loads(line)["rss_gb"])
    print(f"[bench] RSS probe {imgsz}:{backend} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
    return None


# ------------------------------------------------------------------------------ report
def machine_description() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    versions = []
    for mod in ("torch", "onnxruntime", "openvino", "ultralytics", "transformers"):
        try:
            versions.append(f"{mod} {__import__(mod).__version__}")
        except (ImportError, AttributeError):
            versions.append(f"{mod} -")
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem_gb:.0f} GiB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}; " + ", ".join(versions)
    )


def fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(runs: list[Run], args: argparse.Namespace, command: str, load: tuple) -> str:
    today = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [
        f"\n## {today} — `{command}`\n",
        f"- Machine: {machine_description()}",
        f"- Load average (1 min) at start / end: {load[0]:.2f} / {load[1]:.2f} — other "
        "processes shared the CPU; ratios are from interleaved frames, absolute times are "
        "noisier than the ratios.",
        f"- Input {args.size[0]}×{args.size[1]} RGB (ultralytics bus.jpg resized); random-weight "
        f"FastSAM-s (conf {args.conf}, max {args.max_masks} masks) + "
        f"{Path(args.closed_set).name} (512×512), {args.threads or os.cpu_count()} threads; "
        f"{args.frames} timed frames per configuration after {args.warmup} warm-up, "
        "configurations interleaved frame by frame.",
        "- Stage columns: p50 ms. `floor` = bare network passes only; `peer` = "
        "sfs_ros/bench_peer.py (ultralytics predict with retina masks, image processor, "
        "per-mask loops at full resolution); its FastSAM column is the whole predict call.",
        "",
        "| config | backend | imgsz | masks | "
        + " | ".join(STAGE_HEADERS[s] for s in STAGES)
        + " | total p50 | total p90 | fps | peak RSS GB |",
        "|" + "---|" * (4 + len(STAGES) + 4),
    ]
    for run in runs:
        p50 = run.stat("total", 50)
        fps = 1e3 / p50 if p50 else None
        masks = f"{np.mean(run.masks):.0f}" if run.masks and run.name != "floor" else "–"
        stages = {"fastsam_forward": run.stat("fastsam", 50)} if run.name == "peer" else {}
        cells = [fmt(stages.get(s, run.stat(s, 50))) for s in STAGES]
        lines.append(
            f"| {run.name} | {run.backend} | {run.imgsz} | {masks} | "
            + " | ".join(cells)
            + f" | {fmt(p50)} | {fmt(run.stat('total', 90))} | {fmt(fps, 2)} | "
            + f"{fmt(run.rss_gb, 2)} |"
        )
    lines.append("")
    for line in ratio_lines(runs):
        lines.append(f"- {line}")
    return "\n".join(lines) + "\n"


def find(runs: list[Run], name: str, imgsz: int, backend: str | None = None) -> Run | None:
    for run in runs:
        if run.name == name and run.imgsz == imgsz and (backend is None or run.backend == backend):
            return run
    return None


def ratio_lines(runs: list[Run]) -> list[str]:
    lines = []
    for run in runs:
        if run.name != "ours":
            continue
        floor = find(runs, "floor", run.imgsz, run.backend)
        peer = find(runs, "peer", run.imgsz)
        parts = [f"ours {run.backend} imgsz {run.imgsz}:"]
        if floor:
            parts.append(f"ours/floor = {run.stat('total', 50) / floor.stat('total', 50):.2f}")
        if peer:
            parts.append(f"peer/ours = {peer.stat('total', 50) / run.stat('total', 50):.2f}")
        parts.append(f"{1e3 / run.stat('total', 50):.2f} fps")
        lines.append(" ".join(parts))
        for variant in runs:
            if variant.name.startswith("ours ") and (variant.imgsz, variant.backend) == (
                run.imgsz,
                run.backend,
            ):
                ratio = variant.stat("total", 50) / run.stat("total", 50)
                lines.append(
                    f"{variant.name} {run.backend} imgsz {run.imgsz}: {ratio:.2f}x the time of "
                    f"ours ({1e3 / variant.stat('total', 50):.2f} fps)"
                )
    return lines


def last_line(runs: list[Run], imgsz: int, backend: str) -> str:
    ours = find(runs, "ours", imgsz, backend)
    floor = find(runs, "floor", imgsz, backend)
    peer = find(runs, "peer", imgsz)
    o50 = ours.stat("total", 50)
    of = o50 / floor.stat("total", 50) if floor else float("nan")
    po = peer.stat("total", 50) / o50 if peer else float("nan")
    rss = ours.rss_gb if ours.rss_gb is not None else float("nan")
    return f"ours/floor={of:.2f} peer/ours={po:.2f} fps={1e3 / o50:.2f} rss_gb={rss:.2f}"


# ------------------------------------------------------------------------------ main
def parse_size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


# ------------------------------------------------------------------------------ CLIP crop vs dense
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


def clip_bench(args: argparse.Namespace, argv: list[str]) -> int:
    """Time one CLIP pass (``ClipScorer.score``) over ``args.max_masks`` masks, crop vs dense,
    for every model of ``args.clip`` (random weights), interleaved; print and append a table."""
    import dataclasses

    from sfs_ros.open_vocab.clip import ClipScorer, ClipStats, check_dense_support
    from sfs_ros.params import ConfigError
    from sfs_ros.runtime import set_torch_threads
    from sfs_ros.vocabularies import get_vocabulary

    set_torch_threads(args.threads)
    reps = args.frames or (3 if args.quick else 5)
    load_start = os.getloadavg()[0]
    rgb = test_image(*args.size)
    masks, boxes = clip_masks(args.max_masks, *args.size)
    names = list(get_vocabulary("ade20k").names)
    rows = []
    for model in args.clip:
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
        rows.append((model, params_m, crop.image_size, grid, p50.get("crop"), p50.get("dense")))
        del crop, scorers
    load_end = os.getloadavg()[0]

    command = "sfs-bench " + shlex.join(argv)
    today = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    n_masks = int((masks.sum(axis=(1, 2)) >= 4).sum())
    lines = [
        f"\n## {today} — `{command}`\n",
        f"- Machine: {machine_description()}",
        f"- Load average (1 min) at start / end: {load_start:.2f} / {load_end:.2f} — this "
        f"machine has {os.cpu_count()} cores and other processes were running at the same "
        "time: absolute times are noisy, the crop/dense ratio (interleaved passes) is the "
        "number to read.",
        f"- One open-vocabulary CLIP pass (`ClipScorer.score`) over {n_masks} elliptical masks "
        f"on a {args.size[0]}×{args.size[1]} frame against {len(names)} ADE20K names (text "
        f"embeddings cached, as in the running branch); open_clip models with random weights, "
        f"{args.threads or os.cpu_count()} threads; {reps} timed passes per mode after "
        f"{args.warmup} warm-up, crop and dense interleaved. `crop` = one masked crop per mask, "
        "all in one image-encoder batch; `dense` = one forward of the whole (squashed) frame, "
        "MaskCLIP value-path patch tokens pooled per mask.",
        "",
        "| model | image tower params (M) | input | patch grid | crop p50 ms | dense p50 ms | "
        "crop/dense |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, params_m, size, grid, crop_ms, dense_ms in rows:
        ratio = crop_ms / dense_ms if crop_ms and dense_ms else None
        lines.append(
            f"| {model} | {params_m:.1f} | {size} | {grid} | {fmt(crop_ms)} | {fmt(dense_ms)} | "
            f"{fmt(ratio, 1)} |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    if not args.no_write:
        out = Path(args.output)
        if not out.exists():
            out.write_text("# Benchmarks\n")
        with open(out, "a") as handle:
            handle.write(table)
        print(f"[bench] appended to {out}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sfs-bench",
        description="Per-stage timings of sfs_ros vs. its floor (bare networks) and the peer "
        "pipeline (SFS/SSA style); appends a table to BENCHMARKS.md.",
    )
    parser.add_argument("--quick", action="store_true", help="default preset only, few frames")
    parser.add_argument("--size", type=parse_size, default=(640, 480), help="input WxH")
    parser.add_argument("--imgsz", type=int, nargs="+", help="FastSAM imgsz values (640 1024)")
    parser.add_argument("--backends", nargs="+", help="torch onnx openvino (default: available)")
    parser.add_argument("--frames", type=int, help="timed frames per configuration")
    parser.add_argument("--warmup", type=int, default=1, help="untimed frames per configuration")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0 = all cores)")
    parser.add_argument("--fastsam", default="FastSAM-s.pt", help="FastSAM weights")
    parser.add_argument("--closed-set", default=DEFAULT_SEGMENTER, help="closed-set model")
    parser.add_argument(
        "--conf",
        type=float,
        default=0.003,
        help="FastSAM conf (0.003: ~100 masks from random weights, like the real model at 0.4)",
    )
    parser.add_argument("--max-masks", type=int, default=100)
    parser.add_argument(
        "--compare",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="also time ours with each of these parameter settings, side by side in the same "
        "run (e.g. fastsam.mask_resolution=input openvino_precision=bf16)",
    )
    parser.add_argument("--no-peer", action="store_true", help="skip the peer pipeline")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS child runs")
    parser.add_argument("--output", default="BENCHMARKS.md", help="Markdown file to append to")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--clip",
        nargs="+",
        metavar="MODEL",
        help="instead: time one CLIP pass over --max-masks masks, open_vocab.mode crop vs "
        "dense, for these open_clip models (random weights), e.g. ViT-B-32 ViT-S-16",
    )
    parser.add_argument(
        "--open-vocab",
        metavar="MODEL",
        help="instead: closed-set frame rate with the open-vocabulary branch on vs off, "
        "with this open_clip model (random weights), at the first --imgsz / --backends",
    )
    parser.add_argument("--open-vocab-rate", type=float, default=1.0, help="open_vocab.rate_hz")
    parser.add_argument(
        "--gpu",
        action="store_true",
        help="instead: the GPU check (fp32 / fp16 at each --imgsz, default 640 1024, parity "
        "with the CPU, speed-up over the paper's 0.08 s/frame); a few minutes on a GPU",
    )
    parser.add_argument(
        "--gpu-device", default="cuda", help="device of --gpu (cpu: test the check's plumbing)"
    )
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    import logging

    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if args.rss_child:
        logging.basicConfig(level=logging.ERROR)
        return rss_child(args)
    logging.basicConfig(level=logging.WARNING, format="[%(name)s] %(message)s")
    if args.clip:
        return clip_bench(args, argv)
    if args.gpu:
        from sfs_ros.cli.bench_gpu import gpu_check
        from sfs_ros.vocabularies import get_vocabulary
        from sfs_ros.weights import resolve_fastsam_weights, resolve_hf_model

        args.fastsam, _ = resolve_fastsam_weights(args.fastsam, allow_random=True)
        ade = dict(enumerate(get_vocabulary("ade20k").names))
        args.closed_set, _ = resolve_hf_model(args.closed_set, ade, allow_random=True)
        args.frames = args.frames or 20
        args.warmup = max(args.warmup, 3)
        return gpu_check(args, argv)
    if args.open_vocab:
        from sfs_ros.cli.bench_open_vocab import open_vocab_bench
        from sfs_ros.weights import resolve_fastsam_weights, resolve_hf_model

        args.fastsam, _ = resolve_fastsam_weights(args.fastsam, allow_random=True)
        from sfs_ros.vocabularies import get_vocabulary

        ade = dict(enumerate(get_vocabulary("ade20k").names))
        args.closed_set, _ = resolve_hf_model(args.closed_set, ade, allow_random=True)
        imgsz = (args.imgsz or [640])[0]
        backend = (args.backends or ["torch"])[0]
        return open_vocab_bench(args, argv, imgsz, backend)
    from sfs_ros.models.backends import available_backends, resolve_backend
    from sfs_ros.params import parse_override
    from sfs_ros.pipeline import Pipeline
    from sfs_ros.weights import resolve_fastsam_weights, resolve_hf_model

    imgszs = args.imgsz or ([640] if args.quick else [640, 1024])
    # --quick measures what a user of the shipped preset gets: the backend auto resolves to
    backends = args.backends or (
        [resolve_backend("auto", "cpu", False)[0]] if args.quick else available_backends()
    )
    frames = args.frames or (5 if args.quick else 10)
    args.frames = frames
    # Resolve (or build, random) the weights once, so every configuration uses the same files.
    from sfs_ros.vocabularies import get_vocabulary

    args.fastsam, _ = resolve_fastsam_weights(args.fastsam, allow_random=True)
    args.closed_set, _ = resolve_hf_model(
        args.closed_set, dict(enumerate(get_vocabulary("ade20k").names)), allow_random=True
    )
    load_start = os.getloadavg()[0]
    rgb = test_image(*args.size)
    msg = rgb8_message(rgb)

    runs: list[Run] = []
    if not args.no_rss:  # before anything else is loaded in this process
        rss = {(i, b): measure_rss(args, i, b) for i in imgszs for b in backends}
    from sfs_ros.runtime import set_torch_threads

    set_torch_threads(args.threads)
    for imgsz in imgszs:
        for backend in backends:
            print(f"[bench] loading ours imgsz {imgsz} backend {backend}", file=sys.stderr)
            pipeline = Pipeline.from_config(config_for(args, imgsz, backend))
            ours = Run("ours", backend, imgsz, make_ours(pipeline, msg))
            if not args.no_rss:
                ours.rss_gb = rss[(imgsz, backend)]
            runs += [Run("floor", backend, imgsz, make_floor(pipeline, rgb)), ours]
            for setting in args.compare:
                key, value = parse_override(setting)
                print(f"[bench] loading ours {setting} imgsz {imgsz}", file=sys.stderr)
                variant = Pipeline.from_config(config_for(args, imgsz, backend, {key: value}))
                runs.append(Run(f"ours {setting}", backend, imgsz, make_ours(variant, msg)))
        peer_mod = None if args.no_peer else load_peer_module()
        if peer_mod is not None:
            print(f"[bench] loading peer imgsz {imgsz}", file=sys.stderr)
            peer = peer_mod.PeerPipeline(
                args.fastsam,
                args.closed_set,
                imgsz=imgsz,
                conf=args.conf,
                iou=0.9,
                max_det=args.max_masks,
                threads=args.threads,
            )
            runs.append(Run("peer", "torch", imgsz, make_peer(peer, msg)))

    for run in runs:
        for _ in range(args.warmup):
            run.step()
    for frame in range(frames):
        order = runs[frame % len(runs) :] + runs[: frame % len(runs)]  # rotate the order
        for run in order:
            timings, count = run.step()
            run.samples.append(timings)
            run.masks.append(count)
        print(f"[bench] frame {frame + 1}/{frames}", file=sys.stderr)
    load_end = os.getloadavg()[0]

    command = "sfs-bench " + shlex.join(argv) if argv else "sfs-bench"
    table = markdown(runs, args, command.strip(), (load_start, load_end))
    print(table)
    if not args.no_write:
        out = Path(args.output)
        if not out.exists():
            out.write_text(
                "# Benchmarks\n\nAppended by `sfs-bench` (see README). Random weights: timings "
                "are real, segmentations are not.\n"
            )
        with open(out, "a") as handle:
            handle.write(table)
        print(f"[bench] appended to {out}", file=sys.stderr)
    print(last_line(runs, imgszs[0], backends[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
