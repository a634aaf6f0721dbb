# SPDX-License-Identifier: AGPL-3.0-or-later
"""The recorder's score of published label maps against ground truth. ROS-free.

A label map and its ground truth are paired by the **stamp** of the input frame (the node
copies the camera's header onto its outputs), never by arrival order: the node drops frames
(``superseded``) and DDS does not order one topic against another, so either side may come
first or never. Unpaired items wait in bounded buffers; the oldest are given up on (counted).

Each pair adds to a joint histogram of (published id, ground-truth class). Ids mean the same
class for the whole run (README.md, "Outputs"), so the legend at the end maps every id to a
ground-truth class by name (:func:`sfs_ros.evaluation.mapping.build_mapping`) and the
histogram is folded into :class:`sfs_ros.evaluation.metrics.ConfusionMatrix`: the metrics are
``sfs-eval``'s (mmseg's) definitions. An id with no class of the ground truth (0 =
unidentified, or a name the ground truth lacks) scores as a miss of the true class.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np

from sfs_ros.evaluation.mapping import IGNORED, build_mapping
from sfs_ros.evaluation.metrics import ConfusionMatrix
from sfs_ros.vocabularies import Vocabulary

__all__ = ["MAX_PENDING", "GroundTruthScorer"]

#: Label maps (or ground truths) kept while they wait for their partner.
MAX_PENDING = 32


class GroundTruthScorer:
    """Pairs label maps with ground truth by stamp and scores them.

    Args:
        vocabulary: the ground truth's classes (value ``i`` = ``vocabulary.names[i]``; 255 =
            ignore).
        max_pending: unpaired items kept per side before the oldest is given up on.
    """

    def __init__(self, vocabulary: Vocabulary, max_pending: int = MAX_PENDING) -> None:
        self.vocabulary = vocabulary
        self.max_pending = max(1, int(max_pending))
        self._labels: OrderedDict[int, np.ndarray] = OrderedDict()
        self._truths: OrderedDict[int, np.ndarray] = OrderedDict()
        self._joint = np.zeros((1, len(vocabulary) + 1), np.int64)  # [id, class]; last = ignore
        self.frames_scored = 0
        self.labels_given_up = 0  # label maps whose ground truth never came
        self.truths_given_up = 0  # ground truths whose label map never came (node drops)
        self.size_mismatches = 0

    # ------------------------------------------------------------------------ input
    def on_labels(self, stamp_ns: int, labels: np.ndarray) -> bool:
        """A published label map (ids) of the frame stamped ``stamp_ns``; True if scored now."""
        truth = self._truths.pop(stamp_ns, None)
        if truth is None:
            self.labels_given_up += _put(self._labels, stamp_ns, labels, self.max_pending)
            return False
        self._score(labels, truth)
        return True

    def on_ground_truth(self, stamp_ns: int, truth: np.ndarray) -> bool:
        """The ground truth (class values) of the frame stamped ``stamp_ns``; True if scored."""
        labels = self._labels.pop(stamp_ns, None)
        if labels is None:
            self.truths_given_up += _put(self._truths, stamp_ns, truth, self.max_pending)
            return False
        self._score(labels, truth)
        return True

    def _score(self, labels: np.ndarray, truth: np.ndarray) -> None:
        if labels.shape != truth.shape:
            self.size_mismatches += 1
            return
        n = len(self.vocabulary)
        ids = labels.astype(np.int64, copy=False).ravel()
        cls = truth.astype(np.int64, copy=False).ravel()
        cls = np.where((cls >= 0) & (cls < n), cls, n)  # ignore (255) and strays: last column
        rows = int(ids.max(initial=0)) + 1
        joint = np.bincount(ids * (n + 1) + cls, minlength=rows * (n + 1)).reshape(rows, n + 1)
        if rows > self._joint.shape[0]:
            grown = np.zeros((rows, n + 1), np.int64)
            grown[: self._joint.shape[0]] = self._joint
            self._joint = grown
        self._joint[:rows] += joint
        self.frames_scored += 1

    # ------------------------------------------------------------------------ output
    def results(self, legend: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The ``ground_truth`` section of the summary, None when nothing was paired.

        Keys: ``vocabulary``, ``frames_scored``, ``label_maps_without_ground_truth``,
        ``ground_truth_without_label_map`` (given up on plus still waiting),
        ``size_mismatches``, ``pixel_accuracy`` (aAcc), ``miou`` (mean over the classes
        present in the ground truth or the mapped labels), ``iou`` (class name -> IoU for
        those classes), ``classes_scored``, ``unmapped_ids`` (published ids with no
        ground-truth class, by name) and ``error`` (why there is no score, e.g. no legend).
        """
        if self.frames_scored == 0 and not self._truths and not self.truths_given_up:
            return None
        out: dict[str, Any] = {
            "vocabulary": self.vocabulary.name,
            "frames_scored": self.frames_scored,
            "label_maps_without_ground_truth": self.labels_given_up + len(self._labels),
            "ground_truth_without_label_map": self.truths_given_up + len(self._truths),
            "size_mismatches": self.size_mismatches,
            "pixel_accuracy": None,
            "miou": None,
            "iou": {},
            "classes_scored": 0,
            "unmapped_ids": {},
            "error": None,
        }
        if self.frames_scored == 0:
            out["error"] = "no label map was paired with its ground truth"
            return out
        if legend is None:
            out["error"] = "no legend received: published ids cannot be named"
            return out
        mapping = build_mapping(legend, self.vocabulary, self.vocabulary.name)
        n = len(self.vocabulary)
        ids = np.flatnonzero(self._joint.sum(axis=1))
        pred_of_id = mapping.apply(ids)
        pred = np.repeat(pred_of_id, n + 1)
        truth = np.tile(np.append(np.arange(n), IGNORED), ids.size)
        matrix = ConfusionMatrix(n, ignore_index=IGNORED)
        matrix.update(pred, truth, counts=self._joint[ids].ravel())
        metrics = matrix.results()
        present = [i for i in range(n) if not np.isnan(metrics.iou[i])]
        out.update(
            pixel_accuracy=_round(metrics.aacc),
            miou=_round(metrics.miou),
            iou={self.vocabulary.names[i]: _round(metrics.iou[i]) for i in present},
            classes_scored=len(present),
            unmapped_ids={
                str(int(i)): mapping.name_of(int(i))
                for i, p in zip(ids, pred_of_id, strict=True)
                if p == IGNORED
            },
        )
        return out


def _put(buffer: OrderedDict[int, np.ndarray], stamp_ns: int, item: np.ndarray, cap: int) -> int:
    """Keep ``item`` under ``stamp_ns``; returns how many of the oldest were given up on."""
    buffer[stamp_ns] = item
    buffer.move_to_end(stamp_ns)
    dropped = 0
    while len(buffer) > cap:
        buffer.popitem(last=False)
        dropped += 1
    return dropped


def _round(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 4)
