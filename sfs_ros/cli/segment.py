"""``sfs-segment``: label images, folders and videos with Semantic-Fast-SAM, without ROS.

Recorded ROS 2 bags (``sfs-segment BAG -o OUT``) are handled by :mod:`sfs_ros.cli.bag`.

Writes per frame ``<stem>_label.png`` (16-bit class ids), ``<stem>_color.png`` and
``<stem>_overlay.png``, plus ``legend.json`` and ``timings.json`` for the whole run. Every
file is written atomically and checked; stems are unique per run (see
:func:`sfs_ros.cli.inputs.assign_stems`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from sfs_ros.cli.arguments import add_model_arguments, load_model_config
from sfs_ros.cli.inputs import (
    Frame,
    InputError,
    InputItem,
    assign_stems,
    count_frames,
    expand_inputs,
    iter_frames,
)
from sfs_ros.io_safety import (
    OutputWriteError,
    atomic_write_image,
    atomic_write_json,
    ensure_writable_dir,
)
from sfs_ros.params import ConfigError, as_config
from sfs_ros.weights import WeightsNotFoundError

LOG = logging.getLogger("sfs_ros")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (README.md, "Without ROS")."""
    parser = argparse.ArgumentParser(
        prog="sfs-segment",
        description="Semantic-Fast-SAM on images, folders and videos "
        "(recorded ROS 2 bags: sfs-segment BAG -o OUT --help).",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="images, folders or videos")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    add_model_arguments(parser)
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
    """The three PNGs of one frame, each encoded (checked) and written atomically.

    Raises:
        OutputWriteError: a file could not be encoded or written (message names it).
    """
    from sfs_ros import render

    atomic_write_image(out_dir / f"{stem}_label.png", label_map.astype(np.uint16))
    color = render.colorize(label_map, lut)
    atomic_write_image(out_dir / f"{stem}_color.png", cv2.cvtColor(color, cv2.COLOR_RGB2BGR))
    blended = render.overlay(rgb, label_map, lut, alpha)
    atomic_write_image(out_dir / f"{stem}_overlay.png", cv2.cvtColor(blended, cv2.COLOR_RGB2BGR))


def _error(message: str) -> None:
    print(f"sfs-segment: error: {message}", file=sys.stderr)


def frames_of(item: InputItem, args: argparse.Namespace) -> Iterator[Frame]:
    """The frames of one input (images and videos), under the item's unique output stem."""
    return iter_frames(item.path, args.max_frames, args.video_stride, stem=item.stem)


def main(argv: list[str] | None = None) -> int:
    """Run sfs-segment (images, folders and videos; bags: :mod:`sfs_ros.cli.bag`)."""
    from sfs_ros.cli import bag

    if bag.names_bag(sys.argv[1:] if argv is None else argv):  # ROS 2 bags: sfs_ros/cli/bag.py
        return bag.main(argv)
    return segment_files(argv)


def segment_files(argv: list[str] | None = None) -> int:
    """sfs-segment on images, folders and videos; returns the process exit code.

    Exit codes: 0 every input done; 1 some input failed (the batch goes on past it and the
    summary lists it), an output could not be written (the run stops; frames saved so far
    stay valid) or the models could not be loaded; 2 bad arguments, configuration, inputs or
    output folder (found before any model loads).
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[sfs-segment] %(levelname)s %(message)s")
    if args.video_stride < 1 or (args.max_frames is not None and args.max_frames < 1):
        _error("--video-stride and --max-frames must be >= 1")
        return 2
    try:
        config = load_model_config(args)
        items = assign_stems(expand_inputs(args.inputs))
        out_dir = ensure_writable_dir(args.output)
    except (ConfigError, InputError, OutputWriteError) as exc:
        _error(str(exc))
        return 2

    from tqdm import tqdm

    from sfs_ros.pipeline import Pipeline

    try:
        # Offline: CLIP names masks on every frame, inline (no background worker), so the
        # open-vocabulary labels land in the PNGs and legend.json of that same frame.
        pipeline = Pipeline.from_config(as_config(config).offline())
    except (WeightsNotFoundError, ConfigError, ValueError) as exc:
        _error(str(exc))
        return 1
    total = sum(
        min(count_frames(i.path) // args.video_stride or 1, args.max_frames or 10**9) for i in items
    )
    timings: list[dict] = []
    failed: list[tuple[Path, str]] = []
    write_error: OutputWriteError | None = None
    bar = tqdm(total=total, unit="frame", disable=args.no_progress, file=sys.stderr)
    try:
        for item in items:
            pipeline.reset_sequence()  # mask tracks follow a video, never jump between files
            try:
                for frame in frames_of(item, args):
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
                            "input": str(item.path),
                            "masks": len(result.masks),
                            **{k: round(v, 3) for k, v in result.timings.items()},
                        }
                    )
                    bar.update(1)
            except InputError as exc:
                LOG.error("skipping input: %s", exc)
                failed.append((item.path, str(exc)))
    except OutputWriteError as exc:
        write_error = exc
    finally:
        bar.close()
        try:
            atomic_write_json(out_dir / "legend.json", pipeline.legend_dict())
            atomic_write_json(out_dir / "timings.json", timings)
        except OutputWriteError as exc:
            write_error = write_error or exc
        pipeline.close()
    if pipeline.random_weights:
        LOG.warning(
            "these outputs come from RANDOM WEIGHTS (%s)", ", ".join(pipeline.random_weights)
        )
    if write_error is not None:
        _error(f"{write_error}; stopped after {len(timings)} frame(s) saved in {out_dir}")
        return 1
    mean_total = float(np.mean([t["total"] for t in timings])) if timings else 0.0
    print(f"sfs-segment: {len(timings)} frame(s) → {out_dir} (mean {mean_total:.1f} ms/frame)")
    if failed:
        print(f"sfs-segment: {len(failed)} input(s) failed:", file=sys.stderr)
        for path, reason in failed:
            print(f"  {path}: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
