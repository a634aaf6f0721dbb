"""Confusion-matrix segmentation metrics with mmseg semantics.

The definitions follow mmsegmentation's ``intersect_and_union`` + ``total_area_to_metrics``
(``ignore_index=255``), which is how the field reports mIoU on Cityscapes and ADE20K:

* pixels whose ground truth is ``ignore_index`` are dropped before anything is counted;
* areas are summed over the whole dataset (not averaged per image);
* ``IoU[c] = intersect[c] / (area_gt[c] + area_pred[c] - intersect[c])`` and
  ``Acc[c] = intersect[c] / area_gt[c]``; a division by zero gives NaN, so a class absent from
  both ground truth and prediction has IoU NaN and a class absent from the ground truth has Acc
  NaN; ``mIoU``/``mAcc`` are ``nanmean`` over classes (NaN classes excluded, a class present only
  in the prediction counts with IoU 0);
* ``aAcc = sum(intersect) / sum(area_gt)``.

A predicted value outside ``[0, num_classes)`` (for instance the 255 "ignored" marker that
:mod:`sfs_ros.evaluation.mapping` gives to ids with no dataset class) is a wrong prediction of no
class: it adds to the ground-truth class's area (and so to its union) but to no predicted class.
mmseg behaves the same way, because its histograms only count values in ``[0, num_classes)``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["ConfusionMatrix", "SegmentationMetrics"]


@dataclass(frozen=True)
class SegmentationMetrics:
    """Dataset-level metrics; ratios are fractions in ``[0, 1]`` (NaN where undefined).

    Attributes:
        iou: per-class IoU, shape ``(num_classes,)``.
        acc: per-class accuracy (recall), shape ``(num_classes,)``.
        miou: ``nanmean(iou)``.
        macc: ``nanmean(acc)``.
        aacc: overall pixel accuracy over non-ignored pixels.
        area_intersect: per-class correctly predicted pixels.
        area_union: per-class union pixels.
        area_gt: per-class ground-truth pixels.
        area_pred: per-class predicted pixels (on non-ignored ground truth).
        ignored_prediction_pixels: non-ignored ground-truth pixels whose prediction was no class.
    """

    iou: np.ndarray
    acc: np.ndarray
    miou: float
    macc: float
    aacc: float
    area_intersect: np.ndarray
    area_union: np.ndarray
    area_gt: np.ndarray
    area_pred: np.ndarray
    ignored_prediction_pixels: int


def _nanmean(values: np.ndarray) -> float:
    """``np.nanmean`` that returns NaN without a warning when every value is NaN."""
    if values.size == 0 or np.all(np.isnan(values)):
        return float("nan")
    return float(np.nanmean(values))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Element-wise ``num / den`` as float64 with NaN where ``den`` is 0."""
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return num.astype(np.float64) / den.astype(np.float64)


class ConfusionMatrix:
    """Accumulates a ``(num_classes, num_classes + 1)`` confusion matrix over images.

    Row ``g`` is the ground-truth class, column ``p`` the predicted class; the extra last column
    counts pixels predicted as no class (any value outside ``[0, num_classes)``).

    Args:
        num_classes: number of dataset classes.
        ignore_index: ground-truth value whose pixels are not evaluated.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.matrix = np.zeros((self.num_classes, self.num_classes + 1), dtype=np.int64)

    def update(self, pred: np.ndarray, gt: np.ndarray, counts: np.ndarray | None = None) -> None:
        """Add one image (or pixel pairs counted beforehand).

        Args:
            pred: predicted dataset class per pixel (any integer dtype); values outside
                ``[0, num_classes)`` mean "no class".
            gt: ground-truth dataset class per pixel, ``ignore_index`` for ignored pixels.
            counts: optional, same shape: how many pixels each ``(pred, gt)`` element stands
                for (a joint histogram accumulated elsewhere); default one each.

        Raises:
            ValueError: on a shape mismatch or a ground-truth value that is neither a class
                index nor ``ignore_index``.
        """
        pred = np.asarray(pred)
        gt = np.asarray(gt)
        if pred.shape != gt.shape:
            raise ValueError(f"prediction shape {pred.shape} != ground-truth shape {gt.shape}")
        if counts is not None and np.shape(counts) != gt.shape:
            raise ValueError(f"counts shape {np.shape(counts)} != ground-truth shape {gt.shape}")
        valid = gt != self.ignore_index
        g = gt[valid].astype(np.int64, copy=False)
        if g.size and (g.min() < 0 or g.max() >= self.num_classes):
            bad = g[(g < 0) | (g >= self.num_classes)]
            raise ValueError(
                f"ground-truth value {int(bad[0])} is neither a class index "
                f"(0..{self.num_classes - 1}) nor the ignore index {self.ignore_index}"
            )
        p = pred[valid].astype(np.int64, copy=False)
        p = np.where((p >= 0) & (p < self.num_classes), p, self.num_classes)
        width = self.num_classes + 1
        weights = None if counts is None else np.asarray(counts)[valid].astype(np.float64)
        hist = np.bincount(g * width + p, weights=weights, minlength=self.num_classes * width)
        if weights is not None:  # bincount sums weights as floats; counts are whole pixels
            hist = np.rint(hist).astype(np.int64)
        self.matrix += hist.reshape(self.num_classes, width)

    def results(self) -> SegmentationMetrics:
        """Metrics over everything added so far (see the module docstring for definitions)."""
        m = self.matrix
        intersect = np.diagonal(m[:, : self.num_classes]).copy()
        area_gt = m.sum(axis=1)
        area_pred = m[:, : self.num_classes].sum(axis=0)
        union = area_gt + area_pred - intersect
        iou = _ratio(intersect, union)
        acc = _ratio(intersect, area_gt)
        total_gt = int(area_gt.sum())
        aacc = float(intersect.sum()) / total_gt if total_gt else float("nan")
        return SegmentationMetrics(
            iou=iou,
            acc=acc,
            miou=_nanmean(iou),
            macc=_nanmean(acc),
            aacc=aacc,
            area_intersect=intersect,
            area_union=union,
            area_gt=area_gt,
            area_pred=area_pred,
            ignored_prediction_pixels=int(m[:, self.num_classes].sum()),
        )
