"""Evaluation results and their JSON / Markdown reports.

Percentages in the reports are ``100 x`` the fractions of
:class:`~sfs_ros.evaluation.metrics.SegmentationMetrics`; undefined values (NaN: a class absent
from both ground truth and prediction, or an accuracy of a class absent from the ground truth)
are ``null`` in JSON and ``-`` in Markdown.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sfs_ros.evaluation.mapping import ClassMapping
from sfs_ros.evaluation.metrics import SegmentationMetrics
from sfs_ros.io_safety import atomic_write_text, ensure_writable_dir

__all__ = ["EvaluationResult", "render_markdown", "to_dict", "write_reports"]

IGNORED_PREDICTION_POLICY = (
    "Pixels predicted with an id that maps to no dataset class (id 0 = unidentified, names "
    "with no dataset class, ids missing from the legend) count as a wrong prediction of no "
    "class: they add to their ground-truth class's union, to no predicted class."
)


@dataclass(frozen=True)
class EvaluationResult:
    """Everything one evaluation run measured.

    Attributes:
        dataset: dataset name.
        root: dataset root.
        class_names: dataset class names, index order.
        metrics: dataset-level metrics.
        mapping: the legend -> dataset mapping (from the final legend).
        id_pixels: our id -> number of non-ignored ground-truth pixels predicted with it.
        per_image_ms: image stem -> prediction time in milliseconds, in evaluation order.
        stage_ms: image stem -> pipeline stage -> milliseconds (model runs only).
        timing_what: what ``per_image_ms`` measures.
        source: how predictions were obtained (``{"mode": "predictions", "path": ...}`` or
            ``{"mode": "config", "config": ..., "overrides": [...]}``).
        limit: the ``--limit`` given, if any.
        vocabulary: the legend's ``vocabulary`` field, if any.
        legend_revision: the legend's ``revision`` field, if any.
    """

    dataset: str
    root: str
    class_names: tuple[str, ...]
    metrics: SegmentationMetrics
    mapping: ClassMapping
    id_pixels: dict[int, int]
    per_image_ms: dict[str, float]
    timing_what: str
    stage_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    limit: int | None = None
    vocabulary: str | None = None
    legend_revision: int | None = None

    @property
    def num_images(self) -> int:
        """Number of evaluated images."""
        return len(self.per_image_ms)


def _pct(value: float) -> float | None:
    """Fraction -> percent, NaN -> ``None``."""
    return None if math.isnan(value) else 100.0 * float(value)


def _timing(per_image_ms: dict[str, float]) -> dict[str, Any]:
    values = np.array(list(per_image_ms.values()), dtype=np.float64)
    if values.size == 0:
        stats: dict[str, float | None] = dict.fromkeys(
            ("mean_ms", "median_ms", "p90_ms", "min_ms", "max_ms"), None
        )
        return {**stats, "total_s": 0.0}
    return {
        "mean_ms": float(values.mean()),
        "median_ms": float(np.median(values)),
        "p90_ms": float(np.percentile(values, 90)),
        "min_ms": float(values.min()),
        "max_ms": float(values.max()),
        "total_s": float(values.sum() / 1000.0),
    }


def _stage_means(stage_ms: dict[str, dict[str, float]]) -> dict[str, float]:
    """Mean milliseconds per pipeline stage over the images that report it."""
    sums: dict[str, list[float]] = {}
    for stages in stage_ms.values():
        for stage, ms in stages.items():
            sums.setdefault(stage, []).append(float(ms))
    return {stage: float(np.mean(values)) for stage, values in sums.items()}


def to_dict(result: EvaluationResult) -> dict[str, Any]:
    """The JSON report as a dict (percentages, ``None`` for undefined values)."""
    m = result.metrics
    per_class = [
        {
            "index": i,
            "name": name,
            "IoU": _pct(m.iou[i]),
            "Acc": _pct(m.acc[i]),
            "gt_pixels": int(m.area_gt[i]),
            "pred_pixels": int(m.area_pred[i]),
            "intersection": int(m.area_intersect[i]),
            "union": int(m.area_union[i]),
        }
        for i, name in enumerate(result.class_names)
    ]
    mapping = result.mapping
    known = {c.id for c in mapping.mapped} | {c.id for c in mapping.ignored}
    ignored = [
        {"id": c.id, "name": c.name, "reason": c.reason, "pixels": result.id_pixels.get(c.id, 0)}
        for c in mapping.ignored
    ]
    ignored += [
        {"id": i, "name": mapping.name_of(i), "reason": "not in legend", "pixels": n}
        for i, n in sorted(result.id_pixels.items())
        if i not in known and n > 0
    ]
    return {
        "dataset": result.dataset,
        "root": result.root,
        "num_images": result.num_images,
        "limit": result.limit,
        "source": result.source,
        "vocabulary": result.vocabulary,
        "legend_revision": result.legend_revision,
        "metrics": {"mIoU": _pct(m.miou), "aAcc": _pct(m.aacc), "mAcc": _pct(m.macc)},
        "definitions": (
            "mmseg: ignore_index 255; areas summed over the dataset; IoU = I / (GT + Pred - I), "
            "Acc = I / GT; NaN (null) where the denominator is 0; mIoU, mAcc = nanmean; "
            "aAcc = sum(I) / sum(GT). " + IGNORED_PREDICTION_POLICY
        ),
        "per_class": per_class,
        "mapping": {
            "mapped": [
                {
                    "id": c.id,
                    "name": c.name,
                    "dataset_index": c.dataset_index,
                    "dataset_class": c.dataset_name,
                    "via": c.via,
                    "pixels": result.id_pixels.get(c.id, 0),
                }
                for c in mapping.mapped
            ],
            "ignored": ignored,
            "ignored_prediction_pixels": m.ignored_prediction_pixels,
        },
        "timing": {
            "what": result.timing_what,
            "images": result.num_images,
            **_timing(result.per_image_ms),
            "stages_mean_ms": _stage_means(result.stage_ms),
            "per_image_ms": dict(result.per_image_ms),
            "per_image_stages_ms": {k: dict(v) for k, v in result.stage_ms.items()},
        },
    }


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(result: EvaluationResult) -> str:
    """The Markdown report."""
    data = to_dict(result)
    metrics = data["metrics"]
    source = data["source"]
    if source.get("mode") == "predictions":
        source_text = f"label PNGs in `{source.get('path')}`"
    else:
        overrides = " ".join(f"--set {o}" for o in source.get("overrides", []))
        config = source.get("config") or "default config"
        source_text = f"model run with `{config}`" + (f" `{overrides}`" if overrides else "")
    lines = [
        f"# sfs-eval: {result.dataset}",
        "",
        f"- dataset root: `{result.root}`",
        f"- images: {result.num_images}"
        + (f" (--limit {result.limit})" if result.limit is not None else ""),
        f"- predictions: {source_text}",
        f"- legend vocabulary: {result.vocabulary or '-'}",
        "",
    ]
    if source.get("random_weights"):
        lines += [
            f"**RANDOM WEIGHTS** ({', '.join(source['random_weights'])}): these numbers say "
            "nothing about the method.",
            "",
        ]
    lines += [
        "| mIoU | aAcc | mAcc |",
        "|---:|---:|---:|",
        f"| {_fmt(metrics['mIoU'])} | {_fmt(metrics['aAcc'])} | {_fmt(metrics['mAcc'])} |",
        "",
        "Metrics as mmseg computes them (ignore index 255, areas summed over the dataset, "
        "classes absent from both ground truth and prediction excluded from the means).",
        "",
        "## Per class",
        "",
        "| # | class | IoU | Acc | GT pixels | predicted pixels |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for row in data["per_class"]:
        lines.append(
            f"| {row['index']} | {_cell(row['name'])} | {_fmt(row['IoU'])} | {_fmt(row['Acc'])} "
            f"| {row['gt_pixels']} | {row['pred_pixels']} |"
        )
    lines += ["", "## Class mapping", "", IGNORED_PREDICTION_POLICY, ""]
    ignored = data["mapping"]["ignored"]
    if ignored:
        lines += [
            f"Ignored predictions: {data['mapping']['ignored_prediction_pixels']} pixels.",
            "",
            "| id | our class | reason | pixels |",
            "|---:|---|---|---:|",
        ]
        lines += [
            f"| {c['id']} | {_cell(c['name'])} | {c['reason']} | {c['pixels']} |" for c in ignored
        ]
        lines.append("")
    synonyms = [c for c in data["mapping"]["mapped"] if c["via"] == "synonym"]
    if synonyms:
        lines += ["Mapped through synonyms:", ""]
        lines += [f"- {_cell(c['name'])} -> {_cell(c['dataset_class'])}" for c in synonyms]
        lines.append("")
    timing = data["timing"]
    lines += [
        "## Timing",
        "",
        f"{timing['what']}, per image, over {timing['images']} images:",
        "",
        "| mean ms | median ms | p90 ms | min ms | max ms | total s |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {_fmt(timing['mean_ms'])} | {_fmt(timing['median_ms'])} | {_fmt(timing['p90_ms'])} "
        f"| {_fmt(timing['min_ms'])} | {_fmt(timing['max_ms'])} | {_fmt(timing['total_s'])} |",
        "",
    ]
    if timing["stages_mean_ms"]:
        stages = ", ".join(f"{k} {v:.1f}" for k, v in timing["stages_mean_ms"].items())
        lines += [f"Pipeline stages, mean ms: {stages}.", ""]
    return "\n".join(lines)


def write_reports(result: EvaluationResult, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``<out_dir>/<dataset>.json`` and ``<out_dir>/<dataset>.md``.

    Both files are written atomically (see :mod:`sfs_ros.io_safety`).

    Returns:
        The JSON and Markdown paths.

    Raises:
        OutputWriteError: the folder or a file could not be written (message names it).
    """
    out = ensure_writable_dir(out_dir)
    json_path = out / f"{result.dataset}.json"
    md_path = out / f"{result.dataset}.md"
    atomic_write_text(json_path, json.dumps(to_dict(result), indent=2, allow_nan=False) + "\n")
    atomic_write_text(md_path, render_markdown(result))
    return json_path, md_path
