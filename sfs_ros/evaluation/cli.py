"""``sfs-eval``: mIoU / aAcc on the Cityscapes or ADE20K validation split.

::

    sfs-eval --dataset {cityscapes,ade20k} --root DIR
             [--config YAML [--set key=value ...] | --predictions DIR] [--limit N] [--out DIR]

Without ``--predictions`` the model pipeline runs on every image (``--config`` or the default
configuration, with ``--set`` overrides); with ``--predictions DIR`` the label PNGs that
``sfs-segment`` wrote (``DIR/<stem>_label.png`` + ``DIR/legend.json``) are scored and no model
is loaded. Reports go to ``--out`` (``<dataset>.json`` and ``<dataset>.md``); the last line
printed is ``mIoU=<x> aAcc=<y>`` in percent. Exit code 2 on bad arguments or missing files.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from tqdm import tqdm

from sfs_ros.evaluation.datasets import (
    DATASETS,
    IGNORE_INDEX,
    EvaluationError,
    SegmentationDataset,
    dataset_vocabulary,
    open_dataset,
    read_label_png,
    read_rgb,
)
from sfs_ros.evaluation.mapping import ClassMapping, build_mapping
from sfs_ros.evaluation.metrics import ConfusionMatrix
from sfs_ros.evaluation.report import EvaluationResult, write_reports
from sfs_ros.io_safety import OutputWriteError, ensure_writable_dir

__all__ = [
    "LabelDirPredictor",
    "PipelinePredictor",
    "Predictor",
    "build_parser",
    "evaluate",
    "load_model_predictor",
    "main",
    "summary_line",
]


@runtime_checkable
class Predictor(Protocol):
    """Source of per-image label maps and of the legend that names their ids.

    ``predictor(stem, rgb)`` returns the (H, W) integer label map (our ids, 0 = unidentified)
    of the image ``stem`` whose RGB ``uint8`` pixels are ``rgb``; ``predictor.legend()``
    returns the legend dict (``{"revision", "vocabulary", "classes": [{"id", "name", ...}]}``)
    valid for every label map returned so far. A predictor that does not look at the pixels
    may set ``needs_rgb = False``; it is then called with ``rgb=None`` and the image is never
    decoded.
    """

    def __call__(self, stem: str, rgb: np.ndarray | None) -> np.ndarray:
        """Label map of one image."""
        ...

    def legend(self) -> Mapping[str, Any]:
        """The current legend dict."""
        ...


def _read_legend(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise EvaluationError(f"missing legend: {path} (sfs-segment writes it next to the labels)")
    try:
        legend = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EvaluationError(f"cannot read legend {path}: {exc}") from exc
    if not isinstance(legend, dict) or not isinstance(legend.get("classes"), list):
        raise EvaluationError(f"{path} is not a legend: no 'classes' list")
    return legend


class LabelDirPredictor:
    """Reads the label PNGs that ``sfs-segment`` wrote: ``DIR/<stem>_label.png``.

    Args:
        directory: the ``sfs-segment`` output folder (with ``legend.json``).

    Raises:
        EvaluationError: the folder or its ``legend.json`` is missing or invalid.
    """

    needs_rgb = False
    timing_what = "reading the label PNG"

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise EvaluationError(f"predictions folder not found: {self.directory}")
        self._legend = _read_legend(self.directory / "legend.json")

    def label_path(self, stem: str) -> Path:
        """Where the label PNG of ``stem`` is expected."""
        return self.directory / f"{stem}_label.png"

    def __call__(self, stem: str, rgb: np.ndarray | None = None) -> np.ndarray:
        """Read ``DIR/<stem>_label.png`` (16-bit class ids)."""
        path = self.label_path(stem)
        if not path.is_file():
            raise EvaluationError(
                f"missing prediction for {stem}: {path} (run sfs-segment on the dataset "
                f"images with -o {self.directory})"
            )
        return read_label_png(path)

    def legend(self) -> Mapping[str, Any]:
        """The contents of ``DIR/legend.json``."""
        return self._legend


class PipelinePredictor:
    """Runs the model pipeline (``sfs_ros.pipeline.Pipeline``) on each image.

    Args:
        pipeline: an object with ``process(rgb) -> result`` (``result.label_map``, optionally
            ``result.timings``: stage -> ms) and ``legend_dict()``.

    Attributes:
        last_timings: the per-stage milliseconds of the last image, if the pipeline gives them.
        random_weights: the parts the pipeline runs with random weights (empty normally).
    """

    needs_rgb = True
    timing_what = "model inference (Pipeline.process)"

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self.last_timings: dict[str, float] | None = None
        self.random_weights = tuple(str(p) for p in getattr(pipeline, "random_weights", ()))

    @classmethod
    def from_config(cls, config: str | None, overrides: Sequence[str]) -> PipelinePredictor:
        """Load the configuration and build the pipeline (imports torch; models load once).

        Raises:
            sfs_ros.params.ConfigError: invalid configuration (a ``ValueError``).
            sfs_ros.weights.WeightsNotFoundError: missing weights (a ``FileNotFoundError``).
        """
        from sfs_ros.params import as_config, load_config
        from sfs_ros.pipeline import Pipeline

        cfg = load_config(config, list(overrides))
        # Dataset images are unrelated: the open-vocabulary branch runs inline on every image
        # (offline) and its mask tracks are reset per image (__call__), so scores never depend
        # on timing or on the order of the images.
        return cls(Pipeline.from_config(as_config(cfg).offline()))

    def __call__(self, stem: str, rgb: np.ndarray | None) -> np.ndarray:
        """Label map of one image (uint16 ids at input resolution)."""
        if rgb is None:
            raise ValueError("PipelinePredictor needs the image pixels")
        reset = getattr(self.pipeline, "reset_sequence", None)
        if callable(reset):
            reset()
        result = self.pipeline.process(rgb)
        timings = getattr(result, "timings", None)
        self.last_timings = (
            {str(k): float(v) for k, v in timings.items()} if isinstance(timings, Mapping) else None
        )
        return np.asarray(result.label_map)

    def legend(self) -> Mapping[str, Any]:
        """The pipeline's current legend."""
        return self.pipeline.legend_dict()

    def close(self) -> None:
        """Stop the pipeline's workers, if it has any."""
        close = getattr(self.pipeline, "close", None)
        if callable(close):
            close()


def load_model_predictor(config: str | None, overrides: Sequence[str]) -> Predictor:
    """The predictor ``sfs-eval`` uses without ``--predictions``: the configured pipeline.

    A seam for tests and embedders: replace it to run ``main`` with any :class:`Predictor`.
    """
    return PipelinePredictor.from_config(config, overrides)


def evaluate(
    dataset: SegmentationDataset,
    predictor: Predictor,
    *,
    progress: bool = True,
    source: dict[str, Any] | None = None,
    limit: int | None = None,
) -> EvaluationResult:
    """Score ``predictor`` on every sample of ``dataset``.

    Each label map is translated with the mapping of the legend current after it was
    produced (rebuilt when the legend changes; ids are append-only, so earlier images keep
    their meaning), then added to one dataset-wide confusion matrix.

    Args:
        dataset: the (possibly limited) dataset.
        predictor: the label-map source.
        progress: show a tqdm progress bar on stderr.
        source: how predictions are obtained, copied into the report.
        limit: the ``--limit`` given, copied into the report.

    Raises:
        EvaluationError: unreadable files, a missing prediction, a label map whose shape
            differs from the ground truth, or an invalid legend.
    """
    vocab = dataset_vocabulary(dataset.name)
    matrix = ConfusionMatrix(len(dataset.class_names), IGNORE_INDEX)
    needs_rgb = bool(getattr(predictor, "needs_rgb", True))
    mapping: ClassMapping | None = None
    legend: Mapping[str, Any] = {}
    seen_classes: list[dict[str, Any]] | None = None
    id_pixels = np.zeros(0, dtype=np.int64)
    per_image_ms: dict[str, float] = {}
    stage_ms: dict[str, dict[str, float]] = {}
    bar = tqdm(
        dataset.samples,
        desc=f"sfs-eval {dataset.name}",
        unit="img",
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
    )
    for sample in bar:
        gt = dataset.load_gt(sample)
        rgb = read_rgb(sample.image_path) if needs_rgb else None
        start = time.perf_counter()
        label = np.asarray(predictor(sample.stem, rgb))
        per_image_ms[sample.stem] = (time.perf_counter() - start) * 1000.0
        stages = getattr(predictor, "last_timings", None)
        if isinstance(stages, Mapping):
            stage_ms[sample.stem] = dict(stages)
        if label.dtype.kind not in "ui" or label.shape != gt.shape:
            raise EvaluationError(
                f"prediction for {sample.stem} has shape {label.shape} dtype {label.dtype}; "
                f"expected integer ids of shape {gt.shape} like {sample.gt_path}"
            )
        legend = predictor.legend()
        classes = legend.get("classes") if isinstance(legend, Mapping) else None
        if mapping is None or classes != seen_classes:
            try:
                mapping = build_mapping(legend, vocab, dataset.name)
            except ValueError as exc:
                raise EvaluationError(f"invalid legend: {exc}") from exc
            seen_classes = [dict(c) for c in classes] if isinstance(classes, list) else None
        matrix.update(mapping.apply(label), gt)
        counts = np.bincount(label[gt != IGNORE_INDEX].astype(np.int64).ravel())
        if counts.size > id_pixels.size:
            counts[: id_pixels.size] += id_pixels
            id_pixels = counts
        else:
            id_pixels[: counts.size] += counts
    bar.close()
    if mapping is None:  # pragma: no cover - datasets are never empty
        raise EvaluationError("no images were evaluated")
    revision = legend.get("revision")
    vocabulary = legend.get("vocabulary")
    return EvaluationResult(
        dataset=dataset.name,
        root=str(dataset.root),
        class_names=dataset.class_names,
        metrics=matrix.results(),
        mapping=mapping,
        id_pixels={int(i): int(id_pixels[i]) for i in np.flatnonzero(id_pixels)},
        per_image_ms=per_image_ms,
        stage_ms=stage_ms,
        timing_what=str(getattr(predictor, "timing_what", "prediction")),
        source=dict(source or {}),
        limit=limit,
        vocabulary=vocabulary if isinstance(vocabulary, str) else None,
        legend_revision=revision if isinstance(revision, int) else None,
    )


def _percent(value: float) -> str:
    return "nan" if math.isnan(value) else f"{100.0 * value:.2f}"


def summary_line(result: EvaluationResult) -> str:
    """``mIoU=<x> aAcc=<y>`` in percent with 2 decimals (the last line ``sfs-eval`` prints)."""
    return f"mIoU={_percent(result.metrics.miou)} aAcc={_percent(result.metrics.aacc)}"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``sfs-eval`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="sfs-eval",
        description=(
            "mIoU/aAcc (mmseg definitions) of sfs_ros on the Cityscapes or ADE20K validation "
            "split (or a tiny-world folder from sfs-world generate): run the model (--config) or "
            "score sfs-segment label PNGs (--predictions)."
        ),
    )
    parser.add_argument("--dataset", required=True, choices=DATASETS, help="dataset layout")
    parser.add_argument(
        "--root",
        required=True,
        type=Path,
        help="dataset root: holds leftImg8bit/ and gtFine/ (cityscapes), images/ and "
        "annotations/ (ade20k, i.e. ADEChallengeData2016/) or images/ and labels/ (tiny-world)",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--config",
        type=Path,
        default=None,
        help="YAML configuration for the model run (default: the built-in defaults); "
        "config/sfs_paper.yaml reproduces the paper's setup",
    )
    source.add_argument(
        "--predictions",
        type=Path,
        default=None,
        help="score DIR/<stem>_label.png + DIR/legend.json written by sfs-segment; no model",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override a configuration parameter (value parsed as YAML); repeatable",
    )
    parser.add_argument(
        "--limit",
        type=_positive_int,
        default=None,
        metavar="N",
        help="evaluate only the first N images (sorted by path)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("eval_out"),
        help="folder for <dataset>.json and <dataset>.md (default: eval_out/)",
    )
    return parser


def _parse(argv: list[str] | None) -> argparse.Namespace | int:
    """Parsed arguments, or the exit code argparse asked for (2 on errors, 0 for --help)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.predictions is not None and args.overrides:
            parser.error("--set configures the model run; it cannot be used with --predictions")
        for item in args.overrides:
            if "=" not in item or not item.split("=", 1)[0].strip():
                parser.error(f"--set expects key=value, got {item!r}")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    return args


def _warn_ignored(result: EvaluationResult) -> None:
    mapping = result.mapping
    scored = {c.id for c in mapping.mapped}
    ignored = [(n, i) for i, n in result.id_pixels.items() if i not in scored and i != 0 and n > 0]
    if not ignored:
        return
    ignored.sort(reverse=True)
    shown = ", ".join(f"{mapping.name_of(i)!r} (id {i}, {n} px)" for n, i in ignored[:10])
    more = f" and {len(ignored) - 10} more" if len(ignored) > 10 else ""
    print(
        f"sfs-eval: predictions with no {result.dataset} class, scored as misses: {shown}{more}",
        file=sys.stderr,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``sfs-eval``; returns the exit code (0 ok, 2 bad arguments / files)."""
    args = _parse(argv)
    if isinstance(args, int):
        return args
    predictor: Predictor | None = None
    try:
        ensure_writable_dir(args.out)  # before the models load: a bad --out costs no run
        dataset = open_dataset(args.dataset, args.root).limited(args.limit)
        if args.predictions is not None:
            predictor = LabelDirPredictor(args.predictions)
            source: dict[str, Any] = {"mode": "predictions", "path": str(args.predictions)}
        else:
            if args.config is not None and not args.config.is_file():
                raise EvaluationError(f"config file not found: {args.config}")
            config = None if args.config is None else str(args.config)
            try:
                predictor = load_model_predictor(config, args.overrides)
            except (FileNotFoundError, ValueError, KeyError) as exc:
                raise EvaluationError(f"cannot set up the model: {exc}") from exc
            source = {"mode": "config", "config": config, "overrides": list(args.overrides)}
            random_parts = list(getattr(predictor, "random_weights", ()))
            if random_parts:
                source["random_weights"] = random_parts
        result = evaluate(dataset, predictor, source=source, limit=args.limit)
        json_path, md_path = write_reports(result, args.out)
    except (EvaluationError, OutputWriteError) as exc:
        print(f"sfs-eval: error: {exc}", file=sys.stderr)
        return 2
    finally:
        close = getattr(predictor, "close", None)
        if callable(close):
            close()
    _warn_ignored(result)
    if result.source.get("random_weights"):
        parts = ", ".join(result.source["random_weights"])
        print(
            f"sfs-eval: WARNING: RANDOM WEIGHTS ({parts}); these numbers mean nothing",
            file=sys.stderr,
        )
    sys.stderr.flush()
    print(f"reports: {json_path} {md_path}")
    print(summary_line(result), flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
