# SPDX-License-Identifier: AGPL-3.0-or-later
"""Boundary F-score: how well predicted region boundaries line up with the ground truth.

A boundary pixel is a pixel whose right or lower neighbour has a different label (any class
change counts: the score is class-agnostic; ground-truth ``ignore_index`` pixels are no
boundary and are not scored). Precision is the share of predicted boundary pixels within
``tolerance`` pixels (Euclidean) of a ground-truth boundary pixel, recall the share of
ground-truth boundary pixels within ``tolerance`` of a predicted one, and
``F = 2 P R / (P + R)`` (Csurka et al., "What is a good evaluation measure for semantic
segmentation?", BMVC 2013, there per class with a tolerance of 0.75 % of the image diagonal).
Counts are summed over images, so large and small images weigh by their boundary length.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = ["BoundaryScore", "boundary_map"]


def boundary_map(labels: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """(H, W) bool: pixels whose right or lower neighbour has another label (both valid)."""
    labels = np.asarray(labels)
    ok = np.ones(labels.shape, bool) if valid is None else np.asarray(valid, bool)
    edge = np.zeros(labels.shape, bool)
    right = (labels[:, :-1] != labels[:, 1:]) & ok[:, :-1] & ok[:, 1:]
    down = (labels[:-1, :] != labels[1:, :]) & ok[:-1, :] & ok[1:, :]
    edge[:, :-1] |= right
    edge[:-1, :] |= down
    return edge


def _within(edges: np.ndarray, other: np.ndarray, tolerance: float) -> int:
    """How many ``edges`` pixels lie within ``tolerance`` of an ``other`` pixel."""
    if not edges.any():
        return 0
    if not other.any():
        return 0
    dist = cv2.distanceTransform((~other).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return int((dist[edges] <= tolerance).sum())


@dataclass
class BoundaryScore:
    """Accumulates boundary precision / recall counts over images.

    Args:
        tolerance: match distance in pixels.
        ignore_index: ground-truth value of pixels that are not scored.
    """

    tolerance: float = 3.0
    ignore_index: int = 255
    matched_pred: int = field(default=0, init=False)
    total_pred: int = field(default=0, init=False)
    matched_gt: int = field(default=0, init=False)
    total_gt: int = field(default=0, init=False)

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Add one image (``pred`` and ``gt`` in the same class-index space, same shape)."""
        pred, gt = np.asarray(pred), np.asarray(gt)
        if pred.shape != gt.shape:
            raise ValueError(f"prediction shape {pred.shape} != ground-truth shape {gt.shape}")
        valid = gt != self.ignore_index
        pred_edges = boundary_map(pred, valid)
        gt_edges = boundary_map(gt, valid)
        self.matched_pred += _within(pred_edges, gt_edges, self.tolerance)
        self.total_pred += int(pred_edges.sum())
        self.matched_gt += _within(gt_edges, pred_edges, self.tolerance)
        self.total_gt += int(gt_edges.sum())

    @property
    def precision(self) -> float:
        """Matched predicted boundary pixels / predicted boundary pixels (NaN when none)."""
        return self.matched_pred / self.total_pred if self.total_pred else float("nan")

    @property
    def recall(self) -> float:
        """Matched ground-truth boundary pixels / ground-truth boundary pixels (NaN when none)."""
        return self.matched_gt / self.total_gt if self.total_gt else float("nan")

    @property
    def f_score(self) -> float:
        """Harmonic mean of precision and recall (0 when both are 0, NaN when undefined)."""
        p, r = self.precision, self.recall
        if np.isnan(p) or np.isnan(r):
            return float("nan")
        return 0.0 if p + r == 0 else 2 * p * r / (p + r)
