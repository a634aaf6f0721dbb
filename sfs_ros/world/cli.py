# SPDX-License-Identifier: AGPL-3.0-or-later
"""``sfs-world``: generate tiny-world data, train its models, measure the pipeline on it.

::

    sfs-world generate --seed S --frames N --out DIR [--sequence [--step PX]] [--size HxW]
    sfs-world train [--out DIR] [--only PART ...] [--retrain]
    sfs-world eval --seed S --frames N [--models DIR] [--out DIR] [--set key=value ...]

``generate`` writes the layout ``sfs-eval --dataset tiny-world --root DIR`` reads
(``images/``, ``labels/``, ``instances/``). ``eval`` generates N held-out scenes from seed S,
trains the models first if they are not cached (see :mod:`sfs_ros.world.train`), and runs the
pipeline through its real loading paths in three configurations:

* ``closed``: the closed-set model alone. The pipeline runs with a mask generator that
  proposes nothing (:class:`NoMasks`), so every pixel keeps the closed-set class (at the
  pipeline's working resolution, like the other two);
* ``sfs``: FastSAM masks + closed-set vote (the paper's closed-set mode), at the configured
  ``fastsam.conf`` (default 0.4);
* ``open``: ``sfs`` plus the open-vocabulary branch (the tiny CLIP, the open-only class names
  as ``open_vocab.vocabulary``), run inline on every frame as ``sfs-segment`` does;
* ``oracle``: the ground-truth instance masks at input resolution (:class:`OracleMasks`) with
  the same closed-set vote: what SFS would reach with perfect masks.

It prints one line per configuration and, as its last line,
``closed_miou=x sfs_miou=y open_miou=z boundary_f=w closed_boundary_f=a sfs_boundary_f=b
oracle_miou=c`` (fractions; ``boundary_f`` = ``sfs_boundary_f``, the boundary F-score of
``sfs``, tolerance 3 px, see :mod:`sfs_ros.evaluation.boundary`), and writes
``tiny_world_eval.json`` (every configuration's scores with per-class IoU, and how well the
``sfs`` masks cover the objects, :func:`proposal_scores`) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

if TYPE_CHECKING:
    from sfs_ros.models.fastsam import MaskSet
    from sfs_ros.models.protocols import MaskGenerator
    from sfs_ros.params import FastSAMConfig

from sfs_ros.world.classes import CLASS_NAMES, GENERATOR_VERSION, OPEN_ONLY_NAMES

__all__ = ["evaluate_world", "main", "write_dataset"]

#: Default world seed of ``sfs-world eval`` (training uses 1, training metrics 2).
EVAL_SEED = 1000
BOUNDARY_TOLERANCE_PX = 3.0


def write_dataset(
    out: Path,
    seed: int,
    frames: int,
    size: tuple[int, int] | None = None,
    *,
    sequence: bool = False,
    step: int = 8,
) -> Path:
    """Write ``frames`` scenes of world ``seed`` in the tiny-world dataset layout.

    Files: ``out/images/<stem>.png`` (RGB), ``out/labels/<stem>.png`` (uint8 class index),
    ``out/instances/<stem>.png`` (uint16 instance id), with ``<stem>`` =
    ``tw<seed>_<frame:06d>``. ``sequence`` pans one wide scene (``step`` pixels a frame)
    instead of drawing independent scenes.

    Raises:
        FileExistsError: ``out`` already holds images (nothing is overwritten).
    """
    from sfs_ros.world.scene import DEFAULT_SIZE, generate_scene, generate_sequence

    size = size or DEFAULT_SIZE
    if (out / "images").is_dir() and any((out / "images").iterdir()):
        raise FileExistsError(f"{out / 'images'} is not empty; choose another --out")
    for sub in ("images", "labels", "instances"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    if sequence:
        scenes = generate_sequence(seed, frames, size, step=step)
    else:
        scenes = (generate_scene(seed, i, size) for i in range(frames))
    for i, scene in enumerate(scenes):
        stem = f"tw{seed}_{i:06d}"
        cv2.imwrite(str(out / "images" / f"{stem}.png"), scene.rgb[:, :, ::-1])
        cv2.imwrite(str(out / "labels" / f"{stem}.png"), scene.semantic)
        cv2.imwrite(str(out / "instances" / f"{stem}.png"), scene.instances)
    return out


class _RecordingPredictor:
    """A pipeline predictor that keeps every label map it returns (for the boundary score);
    ``on_frame(stem)`` is called before each frame (the oracle picks its masks)."""

    needs_rgb = True
    timing_what = "model inference (Pipeline.process)"

    def __init__(self, pipeline: Any, on_frame: Callable[[str], None] | None = None) -> None:
        from sfs_ros.evaluation.cli import PipelinePredictor

        self.capture = _LastResult(pipeline)
        self.inner = PipelinePredictor(self.capture)
        self.random_weights = self.inner.random_weights
        self.labels: dict[str, np.ndarray] = {}
        self.instances: dict[str, np.ndarray] = {}
        self.mapped: dict[str, np.ndarray] = {}  # labels as tiny-world classes (_score)
        self.gt: dict[str, np.ndarray] = {}  # the ground truth of each frame (_score)
        self.last_timings: dict[str, float] | None = None
        self.on_frame = on_frame

    def __call__(self, stem: str, rgb: np.ndarray | None) -> np.ndarray:
        if self.on_frame is not None:
            self.on_frame(stem)
        label = self.inner(stem, rgb)
        self.last_timings = self.inner.last_timings
        self.labels[stem] = label
        self.instances[stem] = self.capture.last.instance_map
        return label

    def legend(self) -> Mapping[str, Any]:
        return self.inner.legend()


class _LastResult:
    """A pipeline that keeps the last :class:`~sfs_ros.pipeline.SegmentationResult`."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self.last: Any = None

    def process(self, rgb: np.ndarray) -> Any:
        self.last = self.pipeline.process(rgb)
        return self.last

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pipeline, name)


#: Objects whose visible part is at least this many pixels high and wide count in the
#: proposal recall (640x480 frames).
PROPOSAL_MIN_PX = 20
PROPOSAL_IOU = 0.5


def proposal_scores(
    instances_dir: Path,
    sfs: _RecordingPredictor,
    closed: _RecordingPredictor,
) -> dict[str, Any]:
    """How well the masks cover the objects: per ground-truth object of at least
    :data:`PROPOSAL_MIN_PX` in both directions, the best IoU of an instance of the ``sfs``
    output (``recall``: share with IoU >= :data:`PROPOSAL_IOU`), against the closed set's own
    shape of the object (the pixels of the object's class in the ``closed`` output, within the
    object's box grown by 8 px, IoU with the object) on the same objects."""
    found, total, mask_iou, closed_iou = 0, 0, [], []
    for stem, inst_pred in sfs.instances.items():
        truth = cv2.imread(str(instances_dir / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        closed_map = closed.mapped[stem]
        gt_sem = closed.gt[stem]
        for k in np.unique(truth[truth > 0]).tolist():
            obj = truth == k
            ys, xs = np.nonzero(obj)
            if np.ptp(ys) + 1 < PROPOSAL_MIN_PX or np.ptp(xs) + 1 < PROPOSAL_MIN_PX:
                continue
            total += 1
            ids, overlap = np.unique(inst_pred[obj], return_counts=True)
            best = 0.0
            for i, inter in zip(ids.tolist(), overlap.tolist(), strict=True):
                if i:
                    union = obj.sum() + (inst_pred == i).sum() - inter
                    best = max(best, inter / union)
            if best >= PROPOSAL_IOU:
                found += 1
                mask_iou.append(best)
                y0, y1 = max(ys.min() - 8, 0), ys.max() + 9
                x0, x1 = max(xs.min() - 8, 0), xs.max() + 9
                cls = int(np.bincount(gt_sem[obj]).argmax())
                region = np.zeros_like(obj)
                region[y0:y1, x0:x1] = closed_map[y0:y1, x0:x1] == cls
                closed_iou.append((region & obj).sum() / (region | obj).sum())
    return {
        "objects": total,
        "recall": _round(found / total) if total else None,
        "mask_iou_found": _round(float(np.mean(mask_iou))) if mask_iou else None,
        "closed_shape_iou_found": _round(float(np.mean(closed_iou))) if closed_iou else None,
    }


def _score(dataset: Any, predictor: _RecordingPredictor, name: str) -> dict[str, Any]:
    """mIoU / aAcc / per-class IoU (sfs-eval's definitions) and the boundary F-score."""
    from sfs_ros.evaluation.boundary import BoundaryScore
    from sfs_ros.evaluation.cli import evaluate

    result = evaluate(dataset, predictor, progress=True, source={"mode": name})
    boundary = BoundaryScore(BOUNDARY_TOLERANCE_PX)
    for sample in dataset.samples:
        pred = result.mapping.apply(predictor.labels[sample.stem])
        gt = dataset.load_gt(sample)
        boundary.update(pred, gt)
        predictor.mapped[sample.stem] = pred
        predictor.gt[sample.stem] = gt
    m = result.metrics
    per_class = {n: _round(v) for n, v in zip(CLASS_NAMES, m.iou.tolist(), strict=True)}
    ms = [sum(v for k, v in t.items() if k != "total") for t in result.stage_ms.values()]
    closed = [i for i, n in enumerate(CLASS_NAMES) if n not in OPEN_ONLY_NAMES]
    closed_iou = m.iou[closed]
    return {
        "miou": _round(m.miou),
        "miou_closed_set_classes": _round(
            float(np.nanmean(closed_iou)) if not np.all(np.isnan(closed_iou)) else math.nan
        ),
        "aacc": _round(m.aacc),
        "boundary_f": _round(boundary.f_score),
        "boundary_precision": _round(boundary.precision),
        "boundary_recall": _round(boundary.recall),
        "iou": per_class,
        "median_ms_per_frame": _round(float(np.median(ms))) if ms else None,
        "random_weights": list(predictor.random_weights),
    }


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 4)


class NoMasks:
    """A mask generator that proposes nothing (the "closed set alone" configuration): the
    geometry of the generator it stands in for, no masks."""

    def __init__(self, inner: MaskGenerator) -> None:
        self.inner = inner
        self.is_random = inner.is_random

    def infer(self, rgb: np.ndarray) -> tuple[int, int]:
        """No network pass: only the image size is kept."""
        return (int(rgb.shape[0]), int(rgb.shape[1]))

    def decode(self, raw: tuple[int, int]) -> MaskSet:
        """An empty mask set at the working resolution of ``inner`` (with its input-resolution
        edges, ``fastsam.mask_resolution: edges``, so the closed-set map is decided as there)."""
        from sfs_ros.models.fastsam import MaskSet

        edges = getattr(self.inner, "mask_resolution", "") == "edges"
        return MaskSet.empty(raw, self.inner.output_hw(raw), edges=edges)

    def __call__(self, rgb: np.ndarray) -> MaskSet:
        """An empty mask set at the working resolution of ``inner``."""
        return self.decode(self.infer(rgb))

    def output_hw(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        """The working resolution of ``inner``."""
        return self.inner.output_hw(image_hw)

    def apply(self, settings: FastSAMConfig) -> None:
        """Hand a changed ``fastsam`` group on to ``inner`` (used again after this one)."""
        self.inner.apply(settings)


class OracleMasks:
    """A mask generator that proposes the ground-truth instance masks of the current frame, at
    input resolution (the ``oracle`` configuration: perfect masks, the same vote). The frame
    is chosen by :meth:`select` with its dataset stem before each call."""

    is_random = False

    def __init__(self, instances_dir: Path) -> None:
        self.instances_dir = Path(instances_dir)
        self._instances: np.ndarray | None = None

    def select(self, stem: str) -> None:
        """Use the instance map ``<instances_dir>/<stem>.png`` for the next frame."""
        path = self.instances_dir / f"{stem}.png"
        instances = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if instances is None:
            raise FileNotFoundError(f"no ground-truth instance map {path}")
        self._instances = instances

    def infer(self, rgb: np.ndarray) -> np.ndarray:
        """The selected ground-truth instance map (it must match the frame's size)."""
        if self._instances is None or self._instances.shape != rgb.shape[:2]:
            raise ValueError("OracleMasks: select() the frame's ground truth first")
        return self._instances

    def decode(self, raw: np.ndarray) -> MaskSet:
        """One mask per ground-truth instance, at input resolution, with its box."""
        from sfs_ros.models.fastsam import MaskSet

        ids = np.flatnonzero(np.bincount(raw.ravel()))
        ids = ids[ids > 0]
        if not len(ids):
            return MaskSet.empty(raw.shape, raw.shape)
        masks = raw[None] == ids[:, None, None].astype(raw.dtype)
        boxes = []
        for mask in masks:
            ys, xs = np.nonzero(mask)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        scores = np.ones(len(ids), np.float32)
        return MaskSet(masks, np.asarray(boxes, np.float32), scores, raw.shape)

    def __call__(self, rgb: np.ndarray) -> MaskSet:
        """The ground-truth masks of the selected frame."""
        return self.decode(self.infer(rgb))

    def output_hw(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        """Input resolution."""
        return image_hw

    def apply(self, settings: FastSAMConfig) -> None:
        """Nothing to change: ``conf`` and the other ``fastsam`` settings do not apply."""


def evaluate_world(
    seed: int,
    frames: int,
    out: Path,
    models_dir: Path | None = None,
    overrides: Sequence[str] = (),
) -> dict[str, dict[str, Any]]:
    """Run the three configurations (see the module docstring) on held-out scenes.

    Returns:
        ``{"closed": scores, "sfs": scores, "open": scores, "oracle": scores}`` where scores
        hold ``miou``, ``aacc``, ``boundary_f`` (+ precision, recall), per-class ``iou`` and
        timings.
    """
    from sfs_ros.evaluation.datasets import open_dataset
    from sfs_ros.params import SfsConfig, load_config, parse_override
    from sfs_ros.pipeline import Pipeline
    from sfs_ros.world.train import TinyWorldModels, ensure_models

    if models_dir is None:
        models = ensure_models()  # the cache: trained first when missing or stale
    else:  # a folder of the user's: used as it is, never trained into
        models = TinyWorldModels(Path(models_dir))
        missing = models.missing()
        if missing:
            raise FileNotFoundError(
                f"--models {models_dir}: no tiny-world models there (missing {missing[0]}); "
                "train them with sfs-world train --out DIR, or leave --models out to use the cache"
            )
    data = out / f"tiny-world-v{GENERATOR_VERSION}-seed{seed}-n{frames}"
    if len(list((data / "labels").glob("*.png"))) != frames:  # else: same scenes, reused
        shutil.rmtree(data, ignore_errors=True)
        write_dataset(data, seed, frames)
    dataset = open_dataset("tiny-world", data)
    user = dict(parse_override(o) for o in overrides)
    base = {"device": "cpu", **models.overrides(), **user}
    scores: dict[str, dict[str, Any]] = {}
    pipeline = Pipeline.from_config(SfsConfig.from_flat(load_config(None, base)).offline())
    try:
        masks, uncovered = pipeline.mask_generator, pipeline.config.paint.uncovered
        # No masks and every pixel keeps its closed-set class: the closed set alone. (Not
        # conf 1.0: an INT8 FastSAM's quantised scores can exceed 1.)
        pipeline.mask_generator = NoMasks(masks)
        pipeline.update("paint.uncovered", "closed_set")
        closed = _RecordingPredictor(pipeline)
        scores["closed"] = _score(dataset, closed, "closed")
        pipeline.mask_generator = masks
        pipeline.update("paint.uncovered", uncovered)
        sfs = _RecordingPredictor(pipeline)
        scores["sfs"] = _score(dataset, sfs, "sfs")
        scores["sfs"]["proposals"] = proposal_scores(data / "instances", sfs, closed)
        del closed, sfs
        oracle = OracleMasks(data / "instances")
        pipeline.mask_generator = oracle
        scores["oracle"] = _score(dataset, _RecordingPredictor(pipeline, oracle.select), "oracle")
        pipeline.mask_generator = masks
    finally:
        pipeline.close()
    open_cfg = {**base, **models.overrides(open_vocab=True), **user}
    pipeline = Pipeline.from_config(SfsConfig.from_flat(load_config(None, open_cfg)).offline())
    try:
        scores["open"] = _score(dataset, _RecordingPredictor(pipeline), "open")
    finally:
        pipeline.close()
    report = {
        "seed": seed,
        "frames": frames,
        "models": str(models.root),
        "model_metrics": {k: v.get("metrics") for k, v in models.metrics().items()},
        "overrides": list(overrides),
        "open_only_classes": list(OPEN_ONLY_NAMES),
        "boundary_tolerance_px": BOUNDARY_TOLERANCE_PX,
        "scores": scores,
    }
    (out / "tiny_world_eval.json").write_text(json.dumps(report, indent=2) + "\n")
    return scores


def summary_line(scores: Mapping[str, Mapping[str, Any]]) -> str:
    """``closed_miou=x sfs_miou=y open_miou=z boundary_f=w closed_boundary_f=a
    sfs_boundary_f=b oracle_miou=c`` (fractions, 4 decimals; ``boundary_f`` is ``sfs``'s)."""

    def fmt(value: Any) -> str:
        return "nan" if value is None else f"{value:.4f}"

    return (
        f"closed_miou={fmt(scores['closed']['miou'])} sfs_miou={fmt(scores['sfs']['miou'])} "
        f"open_miou={fmt(scores['open']['miou'])} boundary_f={fmt(scores['sfs']['boundary_f'])} "
        f"closed_boundary_f={fmt(scores['closed']['boundary_f'])} "
        f"sfs_boundary_f={fmt(scores['sfs']['boundary_f'])} "
        f"oracle_miou={fmt(scores['oracle']['miou'])}"
    )


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW, e.g. 480x640, got {text!r}") from None
    return h, w


def build_parser() -> argparse.ArgumentParser:
    """The ``sfs-world`` argument parser (``train`` arguments are parsed by its own module)."""
    parser = argparse.ArgumentParser(prog="sfs-world", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write tiny-world scenes + ground truth")
    gen.add_argument("--seed", type=int, required=True)
    gen.add_argument("--frames", type=int, required=True)
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--size", type=_size, default=None, help="HxW (default 480x640)")
    gen.add_argument("--sequence", action="store_true", help="a panning camera over one scene")
    gen.add_argument("--step", type=int, default=8, help="pan per frame in pixels")
    sub.add_parser("train", help="train the models (see sfs-world train --help)", add_help=False)
    ev = sub.add_parser("eval", help="closed set vs SFS vs SFS + open vocabulary on new scenes")
    ev.add_argument("--seed", type=int, default=EVAL_SEED)
    ev.add_argument("--frames", type=int, default=20)
    ev.add_argument("--models", type=Path, default=None, help="models folder (default: cache)")
    ev.add_argument("--out", type=Path, default=Path("tiny_world_eval"))
    ev.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``sfs-world``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":
        from sfs_ros.world import train

        return train.main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "generate":
        if args.frames < 1:
            print("sfs-world: error: --frames must be >= 1", file=sys.stderr)
            return 2
        try:
            out = write_dataset(
                args.out, args.seed, args.frames, args.size, sequence=args.sequence, step=args.step
            )
        except (FileExistsError, ValueError) as exc:
            print(f"sfs-world: error: {exc}", file=sys.stderr)
            return 2
        print(out)
        return 0
    from sfs_ros.world.train import TRAIN_SEED, VAL_SEED

    if args.seed in (TRAIN_SEED, VAL_SEED):
        print(
            f"sfs-world: warning: seed {args.seed} is a training seed; the scores are not held-out",
            file=sys.stderr,
        )
    try:
        scores = evaluate_world(args.seed, args.frames, args.out, args.models, args.overrides)
    except FileNotFoundError as exc:
        print(f"sfs-world: error: {exc}", file=sys.stderr)
        return 2
    for name, s in scores.items():
        open_iou = {n: s["iou"].get(n) for n in OPEN_ONLY_NAMES}
        print(
            f"{name:6s} mIoU={s['miou']} (closed-set classes {s['miou_closed_set_classes']}) "
            f"aAcc={s['aacc']} boundary_f={s['boundary_f']} "
            f"open-only IoU={open_iou} ms/frame={s['median_ms_per_frame']}"
        )
    prop = scores["sfs"]["proposals"]
    print(
        f"masks  recall={prop['recall']} of {prop['objects']} objects >= {PROPOSAL_MIN_PX} px "
        f"(IoU >= {PROPOSAL_IOU}); their mask IoU {prop['mask_iou_found']} vs the closed "
        f"set's shape {prop['closed_shape_iou_found']}"
    )
    print(summary_line(scores), flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
