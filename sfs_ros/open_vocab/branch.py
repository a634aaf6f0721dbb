"""The open-vocabulary branch as the pipeline sees it: tracks + CLIP scorer + worker.

Per frame (:meth:`OpenVocabBranch.frame`, called by :meth:`sfs_ros.pipeline.Pipeline.process`):
the frame's masks are associated with the mask tracks, the newest frame is offered to the
background worker (accepted at most ``rate_hz`` times a second, never waited on; in crop mode
with at most ``max_masks_per_pass`` masks, tracks without a fresh label first, then the oldest
labels, so that on a slow CPU a pass over many masks does not outlast the labels it makes), and
the fresh labels of the matched tracks come back as :class:`~sfs_ros.fusion.OpenVocabScores`
for :func:`sfs_ros.fusion.fuse`. In sync mode (``sfs-segment``) the CLIP pass runs inline on every
frame instead, over every mask (``open_vocab.schedule``, set by those tools through
:meth:`sfs_ros.params.SfsConfig.offline`).

One CLIP pass (:meth:`OpenVocabBranch.label_snapshot`): candidate names = the closed-set names
of the registry + ``open_vocab.vocabulary`` (+ caption nouns when a captioner is on); the
snapshot's masks are scored against the cached text embeddings with one image-encoder call
(``open_vocab.mode``: a batch of masked crops, or one whole-image forward pooled per mask); each
mask keeps its top-K names; the best name is registered in the legend (``registry.add``,
append-only) when it clears ``threshold``; labels are stored per track.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sfs_ros.fusion import OpenVocabScores
from sfs_ros.labels import SOURCE_CLOSED_SET, LabelRegistry, LegendFullError
from sfs_ros.models.protocols import Captioner, Scorer
from sfs_ros.open_vocab.tracks import TrackLabel, TrackStore
from sfs_ros.open_vocab.worker import OpenVocabWorker
from sfs_ros.params import SCHEDULE_EVERY_FRAME, OpenVocabConfig, SfsConfig, as_config
from sfs_ros.runtime import LOG
from sfs_ros.vocabularies import normalize_class_name

# Caption nouns kept as extra candidates (oldest dropped first).
MAX_CAPTION_NOUNS = 256


@dataclass(frozen=True)
class Snapshot:
    """One frame handed to the worker: RGB image, masks (working res), boxes, track ids, and
    the track store (of the frame's camera) the labels go to."""

    rgb: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray
    track_ids: np.ndarray
    stamp: float
    tracks: TrackStore


class OpenVocabBranch:
    """Open-vocabulary naming of masks (see module docstring).

    ``scorer`` is a :class:`~sfs_ros.models.protocols.Scorer` (``score(rgb, masks, boxes,
    names) -> (N, C) float32``, cosine, NaN rows for unscored masks), e.g.
    :class:`sfs_ros.open_vocab.clip.ClipScorer`. ``captioner`` (optional) is a
    :class:`~sfs_ros.models.protocols.Captioner` (``nouns(rgb, masks, boxes, index)``).
    ``settings`` is the ``open_vocab`` group of the configuration (None: the defaults, switched
    on); :meth:`apply` takes a changed one.
    """

    def __init__(
        self,
        scorer: Scorer,
        registry: LabelRegistry,
        settings: OpenVocabConfig | None = None,
        *,
        captioner: Captioner | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.scorer = scorer
        self.registry = registry
        self.settings = OpenVocabConfig(enabled=True) if settings is None else settings
        self.captioner = captioner
        self.clock = clock
        self.worker = OpenVocabWorker(self.label_snapshot, self.settings.rate_hz, clock=clock)
        self._nouns: dict[str, None] = {}  # insertion-ordered set of caption nouns
        self._lock = threading.Lock()
        self._stores: dict[str, TrackStore] = {}  # per image sequence (camera)
        self._latest_store = self.track_store()
        self._legend_full_warned = False
        self._legend_full_drops = 0
        self._last_pass_masks: int | None = None
        closed = [e for e in registry.entries() if e.source == SOURCE_CLOSED_SET]
        self._closed_names = [e.name for e in closed]
        self._closed_ids = np.array([e.id for e in closed], np.int64)
        self._closed_len = int(self._closed_ids.max()) + 1 if closed else 1

    @classmethod
    def from_config(
        cls, config: SfsConfig | Mapping[str, Any], registry: LabelRegistry, device: str = "cpu"
    ) -> OpenVocabBranch:
        """CLIP (and the captioner when set) from a validated config (the typed tree or
        dotted names), loaded once."""
        from sfs_ros.open_vocab.clip import ClipScorer

        config = as_config(config)
        settings = config.open_vocab
        allow_random = config.allow_random_weights
        scorer = ClipScorer.load(
            settings.model,
            settings.pretrained,
            device,
            templates=list(settings.templates),
            allow_random=allow_random,
            mode=settings.mode,
            crop_background=settings.crop_background,
            backend=settings.backend,
            threads=settings.num_threads,
            openvino_precision=settings.openvino_precision,
        )
        captioner: Captioner | None = None
        if settings.captioner:
            from sfs_ros.open_vocab.captioner import BlipCaptioner

            captioner = BlipCaptioner.load(settings.captioner, device, allow_random)
        return cls(scorer, registry, settings, captioner=captioner)

    # ------------------------------------------------------------------------ settings
    @property
    def enabled(self) -> bool:
        """Whether frames are labelled (``open_vocab.enabled``, live)."""
        return self.settings.enabled

    def apply(self, settings: OpenVocabConfig) -> None:
        """Take a changed ``open_vocab`` section: ``enabled`` (off forgets the tracks),
        ``vocabulary``, ``rate_hz``, ``max_masks_per_pass``, ``top_k``, ``threshold`` (the live
        parameters) and the track settings ``max_age_s``, ``max_missed_frames``, ``match_iou``
        (read at start by the node; the core takes them too). Models, mode, templates, captioner
        and schedule are fixed at load."""
        with self._lock:
            self.settings = settings
            self.worker.rate_hz = settings.rate_hz
            for store in self._stores.values():
                store.max_age_s = settings.max_age_s
                store.max_missed = settings.max_missed_frames
                store.match_iou = settings.match_iou
                if not settings.enabled:
                    store.reset()

    def reset_sequence(self) -> None:
        """Forget every mask track: the next frame does not continue the previous one (a new
        image of a batch, a new video). Labels never travel between unrelated images."""
        with self._lock:
            stores = list(self._stores.values())
        for store in stores:
            store.reset()

    def track_store(self, sequence: str = "") -> TrackStore:
        """The mask tracks of one image sequence (a camera; made on first use). Masks are only
        matched against tracks of their own sequence, so frames of several cameras through one
        branch never hand labels to each other."""
        with self._lock:
            store = self._stores.get(sequence)
            if store is None:
                store = TrackStore(
                    match_iou=self.settings.match_iou,
                    max_missed=self.settings.max_missed_frames,
                    max_age_s=self.settings.max_age_s,
                    clock=self.clock,
                )
                self._stores[sequence] = store
            return store

    @property
    def tracks(self) -> TrackStore:
        """The mask tracks of the default sequence (``""``: one camera, one input)."""
        return self.track_store()

    def candidate_names(self) -> list[str]:
        """Closed-set names, then ``open_vocab.vocabulary``, then caption nouns (deduplicated)."""
        with self._lock:
            extra = [*self.settings.vocabulary, *self._nouns]
        seen = {normalize_class_name(n) for n in self._closed_names}
        names = list(self._closed_names)
        for name in extra:
            key = normalize_class_name(name)
            if key and key not in seen:
                seen.add(key)
                names.append(name.strip())
        return names

    # ------------------------------------------------------------------------ per frame
    def frame(
        self,
        rgb: np.ndarray,
        masks: np.ndarray,
        boxes: np.ndarray,
        closed_labels: np.ndarray,
        sequence: str = "",
    ) -> OpenVocabScores:
        """Track this frame's masks, hand a snapshot to CLIP (inline with the ``every_frame``
        schedule, with every mask; else the :meth:`mask_budget` first of them), and return the
        open-vocabulary scores of its masks for :func:`sfs_ros.fusion.fuse`. ``sequence`` names
        the image sequence (camera) the frame belongs to (:meth:`track_store`)."""
        store = self.track_store(sequence)
        self._latest_store = store
        track_ids = store.update(masks, boxes)
        if self.settings.schedule == SCHEDULE_EVERY_FRAME:
            self.label_snapshot(Snapshot(rgb, masks, boxes, track_ids, self.clock(), store))
        elif len(track_ids):
            self.worker.offer(lambda: self._snapshot(rgb, masks, boxes, track_ids, store))
        return store.scores(track_ids, closed_labels)

    def mask_budget(self) -> int | None:
        """How many masks a background pass may score (None: every mask): crop mode costs one
        crop per mask, ``max_masks_per_pass``; dense mode one forward whatever the count."""
        return self.settings.max_masks_per_pass if self.settings.mode == "crop" else None

    def _snapshot(
        self,
        rgb: np.ndarray,
        masks: np.ndarray,
        boxes: np.ndarray,
        track_ids: np.ndarray,
        store: TrackStore,
    ) -> Snapshot:
        """A copy of this frame for the worker, with at most :meth:`mask_budget` masks: the
        tracks :meth:`TrackStore.refresh_order` puts first."""
        budget = self.mask_budget()
        now = self.clock()
        if budget is None or len(track_ids) <= budget:
            return Snapshot(rgb.copy(), masks.copy(), boxes.copy(), track_ids, now, store)
        chosen = np.sort(store.refresh_order(track_ids)[:budget])
        return Snapshot(rgb.copy(), masks[chosen], boxes[chosen], track_ids[chosen], now, store)

    # ------------------------------------------------------------------------ one CLIP pass
    def label_snapshot(self, snap: Snapshot) -> None:
        """Score the masks of a snapshot and store the labels on their tracks."""
        settings = self.settings  # one consistent set for the whole pass
        names = self.candidate_names()
        scores = np.asarray(self.scorer.score(snap.rgb, snap.masks, snap.boxes, names))
        n = len(snap.track_ids)
        self._last_pass_masks = n
        if scores.shape != (n, len(names)):
            raise ValueError(f"scorer returned {scores.shape}, expected {(n, len(names))}")
        k = min(settings.top_k, len(names))
        threshold = settings.threshold
        nc = len(self._closed_names)
        entries: list[TrackLabel | None] = [None] * n
        unnamed = []
        for i in range(n):
            row = scores[i]
            if not len(names) or np.isnan(row).all():
                continue
            top = np.argsort(-row, kind="stable")[:k]
            best = int(top[0])
            best_score = float(row[best])
            label = 0
            if best_score >= threshold:
                label = self._register(names[best])
            else:
                unnamed.append(i)
            closed_scores = np.full(self._closed_len, np.nan, np.float32)
            closed_scores[self._closed_ids] = row[:nc]
            entries[i] = TrackLabel(
                label=label,
                score=best_score,
                closed_scores=closed_scores,
                proposals=tuple((names[j], float(row[j])) for j in top),
                stamp=snap.stamp,
            )
        snap.tracks.set_labels(snap.track_ids, entries)
        if self.captioner is not None and unnamed:
            self._add_nouns(self.captioner.nouns(snap.rgb, snap.masks, snap.boxes, unnamed))

    def _register(self, name: str) -> int:
        """Legend id of ``name`` (appended when new); 0 once the legend is full."""
        try:
            return self.registry.add(name)
        except LegendFullError as exc:
            if not self._legend_full_warned:
                LOG.warning("%s: further new names stay unidentified", exc)
                self._legend_full_warned = True
            self._legend_full_drops += 1
            return 0

    def _add_nouns(self, nouns: Sequence[str]) -> None:
        with self._lock:
            for noun in nouns:
                self._nouns[noun] = None
            while len(self._nouns) > MAX_CAPTION_NOUNS:
                self._nouns.pop(next(iter(self._nouns)))

    # ------------------------------------------------------------------------ diagnostics
    def stats(self) -> dict[str, Any]:
        """passes, errors, last pass ms and masks, newest label's age (s), share of the latest
        frame's masks with a fresh label, tracks (all sequences), where the CLIP image tower
        runs (``image_tower``, None for scorers that do not say), scorer counters."""
        w = self.worker.stats()
        with self._lock:
            stores = list(self._stores.values())
        ages = [a for a in (store.newest_label_age() for store in stores) if a is not None]
        out: dict[str, Any] = {
            "enabled": self.enabled,
            "passes": w.passes,
            "errors": w.errors,
            "last_error": w.last_error,
            "last_pass_ms": w.last_pass_ms,
            "offered": w.offered,
            "accepted": w.accepted,
            "label_age_s": min(ages) if ages else None,
            "labelled_share": self._latest_store.coverage.last_share,
            "last_pass_masks": self._last_pass_masks,
            "tracks": sum(len(store) for store in stores),
            "legend_full_drops": self._legend_full_drops,
            "candidates": len(self.candidate_names()),
            "random_weights": bool(self.scorer.is_random),
            "image_tower": getattr(self.scorer, "image_tower", None),
        }
        out.update(self.scorer.counters())
        return out

    def close(self) -> None:
        """Stop the worker thread: a running pass is cancelled before its next encoder call,
        then the thread is joined (so no CLIP work outlives the branch)."""
        self.scorer.cancel.set()
        self.worker.stop(timeout=None)
