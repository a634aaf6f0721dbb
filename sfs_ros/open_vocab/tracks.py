"""Mask tracks: carry open-vocabulary labels from the frame CLIP saw to the frames after it.

Every frame, :meth:`TrackStore.update` associates the frame's masks with the live tracks by
mask IoU at the working resolution (one matrix product over subsampled masks, gated by box
IoU), greedily, best pair first. Matched tracks take the new mask and box (so they follow a
moving object), unmatched masks start new tracks, unmatched tracks count a missed frame and are
dropped after ``max_missed`` misses. The background worker writes its labels per track id
(:meth:`TrackStore.set_labels`); :meth:`TrackStore.scores` turns the labels of the current
masks' tracks into :class:`~sfs_ros.fusion.OpenVocabScores`, ignoring labels older than
``max_age_s``, and counts how many masks had one (:attr:`TrackStore.coverage`). When a CLIP pass
may score only some masks, :meth:`TrackStore.refresh_order` says which first: tracks without a
fresh label, then the oldest labels.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sfs_ros.fusion import OpenVocabScores

# Masks are compared at 1/_SUB of the working resolution in each direction (IoU is robust to it).
_SUB = 2


@dataclass
class LabelCoverage:
    """How many masks :meth:`TrackStore.scores` was asked about and how many had a fresh label
    (since the store was made; ``last_*``: the latest frame)."""

    masks: int = 0
    labelled: int = 0
    last_masks: int = 0
    last_labelled: int = 0

    @property
    def last_share(self) -> float | None:
        """Share of the latest frame's masks with a fresh label (None: no masks)."""
        return self.last_labelled / self.last_masks if self.last_masks else None


@dataclass(frozen=True)
class TrackLabel:
    """What CLIP said about one track.

    Attributes:
        label: registry id of the best name (0 when it did not clear the threshold at the time).
        score: cosine score of the best name.
        closed_scores: (L,) float32 score of every closed-set label id (index = id; NaN = not
            scored), used by fusion to decide whether CLIP contradicts the closed set.
        proposals: the top-K ``(name, score)`` pairs, best first.
        stamp: clock time of the snapshot the label was computed on.
    """

    label: int
    score: float
    closed_scores: np.ndarray
    proposals: tuple[tuple[str, float], ...]
    stamp: float


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of xyxy boxes."""
    a = np.asarray(a, np.float32).reshape(-1, 4)
    b = np.asarray(b, np.float32).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of bool masks (N, h, w) and (M, h, w), via one float32 matrix product."""
    fa = a.reshape(len(a), -1).astype(np.float32)
    fb = b.reshape(len(b), -1).astype(np.float32)
    inter = fa @ fb.T
    union = fa.sum(axis=1)[:, None] + fb.sum(axis=1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


class TrackStore:
    """Thread-safe mask tracks with open-vocabulary labels (see module docstring)."""

    def __init__(
        self,
        *,
        match_iou: float = 0.5,
        max_missed: int = 10,
        max_age_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.match_iou = float(match_iou)
        self.max_missed = int(max_missed)
        self.max_age_s = float(max_age_s)
        self.clock = clock
        self._lock = threading.Lock()
        self._next_id = 1
        self._ids = np.zeros(0, np.int64)
        self._masks = np.zeros((0, 0, 0), bool)  # subsampled
        self._boxes = np.zeros((0, 4), np.float32)
        self._missed = np.zeros(0, np.int64)
        self._labels: dict[int, TrackLabel] = {}
        self.coverage = LabelCoverage()

    def __len__(self) -> int:
        return len(self._ids)

    def reset(self) -> None:
        """Forget every track and label."""
        with self._lock:
            self._ids = np.zeros(0, np.int64)
            self._masks = np.zeros((0, 0, 0), bool)
            self._boxes = np.zeros((0, 4), np.float32)
            self._missed = np.zeros(0, np.int64)
            self._labels.clear()

    # ------------------------------------------------------------------------ per frame
    def update(self, masks: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Associate this frame's masks (N, h, w) / boxes (N, 4) with tracks; (N,) track ids."""
        sub = np.ascontiguousarray(np.asarray(masks, bool)[:, ::_SUB, ::_SUB])
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        n = len(sub)
        with self._lock:
            if len(self._ids) and self._masks.shape[1:] != sub.shape[1:]:
                # Working resolution changed (new image size): nothing can be associated.
                self._ids = np.zeros(0, np.int64)
                self._masks = np.zeros((0, *sub.shape[1:]), bool)
                self._boxes = np.zeros((0, 4), np.float32)
                self._missed = np.zeros(0, np.int64)
                self._labels.clear()
            t = len(self._ids)
            assigned = np.full(n, -1, np.int64)  # index into the current tracks
            if n and t:
                gate = box_iou(boxes, self._boxes) > 0
                iou = np.zeros((n, t), np.float32)
                rows = np.flatnonzero(gate.any(axis=1))
                cols = np.flatnonzero(gate.any(axis=0))
                if len(rows) and len(cols):
                    iou[np.ix_(rows, cols)] = mask_iou(sub[rows], self._masks[cols])
                iou[~gate] = 0.0
                cand = np.argwhere(iou >= self.match_iou)
                if len(cand):
                    order = np.argsort(-iou[cand[:, 0], cand[:, 1]], kind="stable")
                    used_t = np.zeros(t, bool)
                    for i, j in cand[order]:
                        if assigned[i] < 0 and not used_t[j]:
                            assigned[i] = j
                            used_t[j] = True
            matched = assigned >= 0
            track_ids = np.empty(n, np.int64)
            track_ids[matched] = self._ids[assigned[matched]]
            new = np.flatnonzero(~matched)
            track_ids[new] = np.arange(self._next_id, self._next_id + len(new))
            self._next_id += len(new)
            # Tracks not seen this frame: one more miss; drop those past max_missed.
            seen = np.zeros(t, bool)
            seen[assigned[matched]] = True
            missed = self._missed + 1
            survive = ~seen & (missed <= self.max_missed)
            for dead in self._ids[~seen & ~survive]:
                self._labels.pop(int(dead), None)
            self._ids = np.concatenate([track_ids, self._ids[survive]])
            self._masks = np.concatenate([sub, self._masks[survive].reshape(-1, *sub.shape[1:])])
            self._boxes = np.concatenate([boxes, self._boxes[survive]])
            self._missed = np.concatenate([np.zeros(n, np.int64), missed[survive]])
            return track_ids

    def scores(self, track_ids: np.ndarray, closed_labels: np.ndarray) -> OpenVocabScores:
        """OpenVocabScores for masks with these track ids and closed-set labels (fresh labels
        only; a label older than ``max_age_s`` is dropped)."""
        n = len(track_ids)
        labels = np.zeros(n, np.int64)
        scores = np.full(n, np.nan, np.float32)
        closed = np.full(n, np.nan, np.float32)
        now = self.clock()
        with self._lock:
            for i, tid in enumerate(np.asarray(track_ids).tolist()):
                entry = self._labels.get(tid)
                if entry is None:
                    continue
                if now - entry.stamp > self.max_age_s:
                    del self._labels[tid]
                    continue
                labels[i] = entry.label
                scores[i] = entry.score
                c = int(closed_labels[i])
                if 0 < c < len(entry.closed_scores):
                    closed[i] = entry.closed_scores[c]
            labelled = int(np.count_nonzero(~np.isnan(scores)))
            self.coverage.masks += n
            self.coverage.labelled += labelled
            self.coverage.last_masks = n
            self.coverage.last_labelled = labelled
        return OpenVocabScores(labels, scores, closed)

    def refresh_order(self, track_ids: np.ndarray) -> np.ndarray:
        """Indices into ``track_ids`` in the order a CLIP pass should score them: tracks
        without a fresh label first (in the given order), then labelled ones, oldest first."""
        track_ids = np.asarray(track_ids, np.int64)
        now = self.clock()
        with self._lock:
            stamps = [self._labels.get(tid) for tid in track_ids.tolist()]
        age = np.array(
            [
                np.inf if e is None or now - e.stamp > self.max_age_s else now - e.stamp
                for e in stamps
            ],
            np.float64,
        )
        return np.argsort(-age, kind="stable")

    # ------------------------------------------------------------------------ from the worker
    def set_labels(self, track_ids: np.ndarray, labels: list[TrackLabel | None]) -> int:
        """Store the worker's labels for tracks that are still alive; returns how many."""
        stored = 0
        with self._lock:
            alive = set(self._ids.tolist())
            for tid, entry in zip(np.asarray(track_ids).tolist(), labels, strict=True):
                if entry is not None and tid in alive:
                    self._labels[tid] = entry
                    stored += 1
        return stored

    def newest_label_age(self) -> float | None:
        """Seconds since the newest stored label was computed (None when there is none)."""
        with self._lock:
            if not self._labels:
                return None
            return self.clock() - max(e.stamp for e in self._labels.values())
