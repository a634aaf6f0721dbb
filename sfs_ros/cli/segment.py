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
from typing import Any

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
from sfs_ros.overlap import FrameOverlap
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
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into an output folder that holds an earlier run's results (replacing the "
        "files of the same names); without it such a folder is refused",
    )
    return parser


OUTPUT_PATTERNS = ("legend.json", "timings.json", "*_label.png", "*_color.png", "*_overlay.png")
"""The files an sfs-segment run writes into its output folder."""


def check_earlier_run(out_dir: Path, overwrite: bool) -> None:
    """Refuse an output folder holding an earlier run's results (:data:`OUTPUT_PATTERNS`)
    unless ``overwrite``, which is then announced with a warning.

    Raises:
        OutputWriteError: the folder holds results and ``overwrite`` is false.
    """
    earlier = sorted({path for pattern in OUTPUT_PATTERNS for path in out_dir.glob(pattern)})
    if earlier and not overwrite:
        raise OutputWriteError(
            f"output folder '{out_dir}' already holds {len(earlier)} result file(s) of an "
            f"earlier run (e.g. {earlier[0].name}); choose another folder, or pass --overwrite "
            "to replace them"
        )
    if earlier:
        LOG.warning(
            "--overwrite: files of the same names among the %d earlier result file(s) in %s "
            "are replaced; the others stay",
            len(earlier),
            out_dir,
        )


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


class _SegmentRun:
    """The second half of each frame of a run (finish, write, count) and what it gathered.

    Attributes:
        timings: one entry per frame written (``timings.json``).
        failure: the first error that stops the run (an output that cannot be written, or a
            model failure); no frame is finished after it.
    """

    def __init__(self, pipeline: Any, out_dir: Path, alpha: float, bar: Any) -> None:
        self.pipeline = pipeline
        self.out_dir = out_dir
        self.alpha = alpha
        self.bar = bar
        self.timings: list[dict[str, Any]] = []
        self.failure: Exception | None = None

    def finish(self, job: tuple[InputItem, Frame, Any, bool]) -> None:
        """Finish one frame (``first``: the first of its input: the mask tracks restart)."""
        item, frame, net, first = job
        if self.failure is not None:
            return
        try:
            if first:
                self.pipeline.reset_sequence()
            result = self.pipeline.finish(net)
            write_frame_outputs(
                self.out_dir,
                frame.stem,
                frame.rgb,
                result.label_map,
                lut=self.pipeline.registry.color_lut(),
                alpha=self.alpha,
            )
        except Exception as exc:  # handed to the main thread, which reports or re-raises it
            self.failure = exc
            return
        self.timings.append(
            {
                "frame": frame.stem,
                "input": str(item.path),
                "masks": len(result.masks),
                **{k: round(v, 3) for k, v in result.timings.items()},
            }
        )
        self.bar.update(1)


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
        check_earlier_run(out_dir, args.overwrite)
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
    bar = tqdm(total=total, unit="frame", disable=args.no_progress, file=sys.stderr)
    run = _SegmentRun(pipeline, out_dir, config["overlay_alpha"], bar)
    # overlap_frames: frame N is finished and written on a second thread while frame N+1's
    # networks run (sfs_ros/overlap.py); the outputs are the same, in the same order.
    overlap = FrameOverlap(run.finish, enabled=config["overlap_frames"], name="sfs-segment")
    failed: list[tuple[Path, str]] = []
    try:
        for item in items:
            first = True  # mask tracks follow a video, never jump between files
            try:
                for frame in frames_of(item, args):
                    if run.failure is not None:
                        break
                    overlap.submit((item, frame, pipeline.infer(frame.rgb), first))
                    first = False
            except InputError as exc:
                LOG.error("skipping input: %s", exc)
                failed.append((item.path, str(exc)))
            if run.failure is not None:
                break
    finally:
        overlap.close()  # the frame in flight is finished and written first
        bar.close()
        try:
            atomic_write_json(out_dir / "legend.json", pipeline.legend_dict())
            atomic_write_json(out_dir / "timings.json", run.timings)
        except OutputWriteError as exc:
            run.failure = run.failure or exc
        pipeline.close()
    write_error = run.failure
    if write_error is not None and not isinstance(write_error, OutputWriteError):
        raise write_error  # a model failure: as without the overlap, it ends the run
    timings = run.timings
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
