"""``sfs-segment``: label images, folders and videos with Semantic-Fast-SAM, without ROS.

Recorded ROS 2 bags (``sfs-segment BAG -o OUT``) are handled by :mod:`sfs_ros.cli.bag`.

Writes per frame ``<stem>_label.png`` (16-bit class ids), ``<stem>_color.png`` and
``<stem>_overlay.png``, plus ``legend.json`` and ``timings.json`` for the whole run.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import cv2
import numpy as np

from sfs_ros.cli.inputs import InputError, count_frames, expand_inputs, iter_frames
from sfs_ros.params import ConfigError, load_config
from sfs_ros.weights import WeightsNotFoundError

LOG = logging.getLogger("sfs_ros")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (DESIGN §3)."""
    parser = argparse.ArgumentParser(
        prog="sfs-segment",
        description="Semantic-Fast-SAM on images, folders and videos "
        "(recorded ROS 2 bags: sfs-segment BAG -o OUT --help).",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="images, folders or videos")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    parser.add_argument("--config", help="parameter file (config/sfs.yaml, config/sfs_paper.yaml)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a parameter, value parsed as YAML (repeatable)",
    )
    parser.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--imgsz", type=int, help="FastSAM input size")
    parser.add_argument(
        "--allow-random-weights",
        action="store_true",
        help="run with random weights when real ones are missing (testing only)",
    )
    parser.add_argument(
        "--max-frames", type=int, default=None, help="at most this many frames per video"
    )
    parser.add_argument("--video-stride", type=int, default=1, help="use every N-th video frame")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def write_frame_outputs(
    out_dir: Path,
    stem: str,
    rgb: np.ndarray,
    label_map: np.ndarray,
    *,
    lut: np.ndarray,
    alpha: float,
) -> None:
    """The three PNGs of one frame."""
    from sfs_ros import render

    cv2.imwrite(str(out_dir / f"{stem}_label.png"), label_map.astype(np.uint16))
    color = render.colorize(label_map, lut)
    cv2.imwrite(str(out_dir / f"{stem}_color.png"), cv2.cvtColor(color, cv2.COLOR_RGB2BGR))
    blended = render.overlay(rgb, label_map, lut, alpha)
    cv2.imwrite(str(out_dir / f"{stem}_overlay.png"), cv2.cvtColor(blended, cv2.COLOR_RGB2BGR))


def main(argv: list[str] | None = None) -> int:
    """Run sfs-segment; returns the process exit code."""
    from sfs_ros.cli import bag

    if bag.names_bag(sys.argv[1:] if argv is None else argv):  # ROS 2 bags: sfs_ros/cli/bag.py
        return bag.main(argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[sfs-segment] %(levelname)s %(message)s")
    overrides = list(args.overrides)
    if args.device:
        overrides.append(f"device={args.device}")
    if args.imgsz:
        overrides.append(f"fastsam.imgsz={args.imgsz}")
    if args.allow_random_weights:
        overrides.append("allow_random_weights=true")
    try:
        config = load_config(args.config, overrides)
        files = expand_inputs(args.inputs)
    except (ConfigError, InputError) as exc:
        print(f"sfs-segment: error: {exc}", file=sys.stderr)
        return 2
    if args.video_stride < 1 or (args.max_frames is not None and args.max_frames < 1):
        print("sfs-segment: error: --video-stride and --max-frames must be >= 1", file=sys.stderr)
        return 2
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)

    from tqdm import tqdm

    from sfs_ros.pipeline import Pipeline

    try:
        # Offline: CLIP names masks on every frame, inline (no background worker), so the
        # open-vocabulary labels land in the PNGs and legend.json of that same frame.
        pipeline = Pipeline.from_config(config, offline=True)
    except (WeightsNotFoundError, ConfigError, ValueError) as exc:
        print(f"sfs-segment: error: {exc}", file=sys.stderr)
        return 1
    total = sum(
        min(count_frames(f) // args.video_stride or 1, args.max_frames or 10**9) for f in files
    )
    timings: list[dict] = []
    bar = tqdm(total=total, unit="frame", disable=args.no_progress, file=sys.stderr)
    try:
        for path in files:
            pipeline.reset_sequence()  # mask tracks follow a video, never jump between files
            for frame in iter_frames(path, args.max_frames, args.video_stride):
                result = pipeline.process(frame.rgb)
                write_frame_outputs(
                    out_dir,
                    frame.stem,
                    frame.rgb,
                    result.label_map,
                    lut=pipeline.registry.color_lut(),
                    alpha=config["overlay_alpha"],
                )
                timings.append(
                    {
                        "frame": frame.stem,
                        "masks": len(result.masks),
                        **{k: round(v, 3) for k, v in result.timings.items()},
                    }
                )
                bar.update(1)
    except InputError as exc:
        print(f"sfs-segment: error: {exc}", file=sys.stderr)
        return 1
    finally:
        bar.close()
        (out_dir / "legend.json").write_text(json.dumps(pipeline.legend_dict(), indent=1))
        (out_dir / "timings.json").write_text(json.dumps(timings, indent=1))
        pipeline.close()
    if pipeline.random_weights:
        LOG.warning(
            "these outputs come from RANDOM WEIGHTS (%s)", ", ".join(pipeline.random_weights)
        )
    mean_total = float(np.mean([t["total"] for t in timings])) if timings else 0.0
    print(f"sfs-segment: {len(timings)} frame(s) → {out_dir} (mean {mean_total:.1f} ms/frame)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
