"""Open-vocabulary branch: CLIP adapter, mask tracks, background worker, fusion, CLI sync mode.

Fast tests use planted scorers (scores the test controls) or a tiny open_clip architecture
registered from a JSON config and built with random weights; `models` tests build the real
ViT-B-32 architecture through the production loading path.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from lookup_helpers import label_id, track_label
from planted_parts import FunctionClasses, FunctionMasks

from sfs_ros import fusion
from sfs_ros.labels import SOURCE_OPEN_VOCAB, LabelRegistry
from sfs_ros.open_vocab import OpenVocabBranch, TrackStore
from sfs_ros.open_vocab.captioner import extract_nouns
from sfs_ros.open_vocab.tracks import TrackLabel, box_iou, mask_iou
from sfs_ros.params import OpenVocabConfig, SfsConfig
from sfs_ros.vocabularies import get_vocabulary

H, W = 60, 80  # image size; working resolution is the same here (masks at input pixels)


# ------------------------------------------------------------------------------ helpers
@pytest.fixture
def tiny_scorer(tiny_clip_name: str):
    import torch

    from sfs_ros.open_vocab.clip import ClipScorer

    torch.manual_seed(0)
    return ClipScorer.load(
        tiny_clip_name, "", "cpu", templates=("a photo of a {}.", "a {}."), allow_random=True
    )


def box_mask(x0: int, y0: int, x1: int, y1: int, hw=(H, W)) -> np.ndarray:
    m = np.zeros(hw, bool)
    m[y0:y1, x0:x1] = True
    return m


def mask_set(boxes: list[tuple[int, int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    masks = np.stack([box_mask(*b) for b in boxes]) if boxes else np.zeros((0, H, W), bool)
    return masks, np.array(boxes, np.float32).reshape(-1, 4)


def settings(*, every_frame: bool = False, **values) -> OpenVocabConfig:
    """An ``open_vocab`` group with the branch on; ``every_frame``: the offline schedule (the
    CLIP pass inline on every frame), else the node's background worker."""
    schedule = "every_frame" if every_frame else "background"
    return OpenVocabConfig(enabled=True, schedule=schedule, **values)


def registry() -> LabelRegistry:
    return LabelRegistry([get_vocabulary("cityscapes")])  # 19 names, ids 1..19


class FakeScorer:
    """The non-scoring members of the Scorer protocol (sfs_ros.models.protocols)."""

    is_random = False

    def __init__(self):
        self.cancel = threading.Event()

    def counters(self) -> dict[str, int]:
        return {}


class RedScorer(FakeScorer):
    """Planted CLIP: a mask whose pixels are mostly red scores 0.9 for 'kite', others 0.1."""

    def __init__(self, fail_first: int = 0):
        super().__init__()
        self.calls = 0
        self.fail_first = fail_first

    def score(self, rgb, masks, boxes, names):
        self.calls += 1
        if self.calls <= self.fail_first:
            raise RuntimeError("planted failure")
        out = np.full((len(masks), len(names)), 0.1, np.float32)
        col = [n.lower() for n in names].index("kite")
        for i, m in enumerate(masks):
            if m.any() and (rgb[m][:, 0] > 200).mean() > 0.5:
                out[i, col] = 0.9
        return out


class PlantedScorer(FakeScorer):
    """Returns the rows the test sets by name: {mask index: {name: score}}, default 0."""

    def __init__(self, rows: dict[int, dict[str, float]]):
        super().__init__()
        self.rows = rows

    def score(self, rgb, masks, boxes, names):
        out = np.zeros((len(masks), len(names)), np.float32)
        for i, row in self.rows.items():
            for name, value in row.items():
                out[i, [n.lower() for n in names].index(name)] = value
        return out


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


# ------------------------------------------------------------------------------ CLIP adapter
def test_text_embeddings_are_cached_and_reencoded_once_per_vocabulary_change(tiny_scorer):
    reg = registry()
    branch = OpenVocabBranch(
        tiny_scorer, reg, settings(every_frame=True, vocabulary=["kite"], threshold=1.0)
    )
    rgb = np.full((H, W, 3), 90, np.uint8)
    masks, boxes = mask_set([(5, 5, 30, 30), (40, 10, 70, 50)])
    for _ in range(3):
        branch.frame(rgb, masks, boxes, np.zeros(2, np.int64))
    stats = tiny_scorer.stats
    assert stats.encode_text_calls == 1  # 3 passes, text encoded once
    assert stats.names_encoded == 20  # 19 Cityscapes names + "kite"
    assert stats.encode_image_calls == 3
    branch.apply(replace(branch.settings, vocabulary=("kite", "pallet jack", "forklift")))
    for _ in range(2):
        branch.frame(rgb, masks, boxes, np.zeros(2, np.int64))
    assert stats.encode_text_calls == 2  # the change re-encoded once
    assert stats.names_encoded == 22  # only the two new names
    emb = tiny_scorer.text_embeddings(["kite", "Kite ", "road"])
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(emb[0], emb[1])  # normalised names share one embedding
    assert stats.encode_text_calls == 2


def test_one_image_encoder_call_per_pass_whatever_the_mask_count(tiny_scorer):
    rgb = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
    names = ["kite", "car", "road"]
    for n in (1, 3, 25):
        before = tiny_scorer.stats.encode_image_calls
        boxes = [(i % 10 * 7, i // 10 * 20, i % 10 * 7 + 8, i // 10 * 20 + 15) for i in range(n)]
        masks, b = mask_set(boxes)
        scores = tiny_scorer.score(rgb, masks, b, names)
        assert tiny_scorer.stats.encode_image_calls == before + 1
        assert scores.shape == (n, 3)
        assert np.isfinite(scores).all() and (np.abs(scores) <= 1.0 + 1e-5).all()
    # A mask too small to crop gets a NaN row, without an extra encoder call.
    masks, b = mask_set([(0, 0, 1, 1), (10, 10, 40, 40)])
    scores = tiny_scorer.score(rgb, masks, b, names)
    assert np.isnan(scores[0]).all() and np.isfinite(scores[1]).all()


def test_crops_read_boxes_as_xyxy_and_neutralise_the_background(tiny_scorer):
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[:] = (0, 0, 255)  # blue background
    rgb[20:40, 40:72] = (255, 0, 0)  # red object, box xyxy (40, 20, 72, 40)
    masks, boxes = mask_set([(40, 20, 72, 40)])
    batch, index = tiny_scorer.crops(rgb, masks, boxes)
    assert index.tolist() == [0] and batch.shape == (1, 3, 32, 32)
    mean = np.array(tiny_scorer.mean, np.float32)
    std = np.array(tiny_scorer.std, np.float32)
    img = batch[0].transpose(1, 2, 0) * std + mean  # back to 0..1 RGB
    red = np.array([1.0, 0.0, 0.0])
    is_red = np.abs(img - red).max(axis=2) < 0.02
    is_mean = np.abs(img - mean).max(axis=2) < 0.02
    # 32x20 box + 10 % margin each side → a 40x24 crop; open_clip's preprocessing resizes its
    # short side to 32 (bicubic) and centre-crops: the object spans every column and about
    # 20 * 32 / 24 ≈ 27 rows, centred (read as xywh the crop would reach the bottom edge and
    # the object would sit high); everything else is the CLIP mean colour, never blue.
    cols = np.flatnonzero(is_red.any(axis=0))
    rows = np.flatnonzero(is_red.any(axis=1))
    assert cols[0] <= 1 and cols[-1] >= 30
    assert 23 <= rows[-1] - rows[0] + 1 <= 29 and abs(rows[0] - (31 - rows[-1])) <= 1
    assert (is_red | is_mean).mean() > 0.85
    assert not (np.abs(img - np.array([0.0, 0.0, 1.0])).max(axis=2) < 0.1).any()
    assert is_red[16, 16] and is_mean[0, 16] and is_mean[31, 16]


# ------------------------------------------------------------------------------ tracks
def test_iou_helpers_match_a_direct_computation():
    a = np.array([[0, 0, 10, 10], [5, 5, 15, 15]], np.float32)
    b = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    np.testing.assert_allclose(box_iou(a, b), [[1.0, 0.0], [25 / 175, 0.0]], rtol=1e-6)
    ma, _ = mask_set([(0, 0, 10, 10), (5, 5, 15, 15)])
    mb, _ = mask_set([(0, 0, 10, 10), (20, 20, 30, 30)])
    np.testing.assert_allclose(mask_iou(ma, mb), [[1.0, 0.0], [25 / 175, 0.0]], rtol=1e-6)


def test_moving_object_keeps_its_label_and_loses_it_after_it_leaves():
    clock = FakeClock()
    reg = registry()
    branch = OpenVocabBranch(
        RedScorer(),
        reg,
        settings(
            vocabulary=["kite"], threshold=0.5, rate_hz=0.01, max_missed_frames=3, max_age_s=30.0
        ),
        clock=clock,
    )
    kite = reg.add("kite")
    rev = reg.revision
    closed = np.zeros(2, np.int64)

    def frame(x: int | None):
        rgb = np.zeros((H, W, 3), np.uint8)
        boxes = [(0, 40, 80, 60)]  # static ground mask
        if x is not None:
            rgb[10:26, x : x + 16] = (255, 0, 0)
            boxes.append((x, 10, x + 16, 26))
        masks, b = mask_set(boxes)
        out = branch.frame(rgb, masks, b, closed[: len(boxes)])
        branch.worker.wait_idle(5.0)
        clock.t += 0.1
        return out

    first = frame(4)
    assert branch.stats()["passes"] == 1
    assert first.labels.tolist() == [0, 0]  # the pass ran on this frame; applied from the next
    labels = [frame(4 + 2 * k).labels.tolist() for k in range(1, 12)]  # moves 2 px per frame
    assert all(lab == [0, kite] for lab in labels)
    assert branch.stats()["passes"] == 1  # rate_hz 0.01: no second pass, the track carried it
    scores = frame(28)
    np.testing.assert_allclose(scores.scores[1], 0.9, rtol=1e-6)
    for _ in range(4):  # leaves: 4 frames without it > max_missed_frames=3
        assert frame(None).labels.tolist() == [0]
    assert frame(28).labels.tolist() == [0, 0]  # back at the same place: a new, unlabelled track
    assert reg.revision == rev  # "kite" was already in the legend: no new id


def test_labels_expire_after_max_age_s():
    clock = FakeClock()
    reg = registry()
    branch = OpenVocabBranch(
        RedScorer(),
        reg,
        settings(vocabulary=["kite"], threshold=0.5, rate_hz=0.01, max_age_s=2.0),
        clock=clock,
    )
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[10:26, 4:20] = (255, 0, 0)
    masks, boxes = mask_set([(4, 10, 20, 26)])
    branch.frame(rgb, masks, boxes, np.zeros(1, np.int64))
    assert branch.worker.wait_idle(5.0)
    clock.t += 1.9
    assert branch.frame(rgb, masks, boxes, np.zeros(1, np.int64)).labels.tolist() == [
        label_id(reg, "kite")
    ]
    assert branch.stats()["label_age_s"] == pytest.approx(1.9)
    clock.t += 0.2  # 2.1 s after the snapshot CLIP saw
    assert branch.frame(rgb, masks, boxes, np.zeros(1, np.int64)).labels.tolist() == [0]


class RecordingScorer(FakeScorer):
    """Scores every mask 0.9 for 'kite', records the boxes' x0 (which name the masks) of each
    pass, and advances ``clock`` by ``seconds_per_mask`` per mask (a crop-mode cost)."""

    def __init__(self, clock=None, seconds_per_mask: float = 0.0):
        super().__init__()
        self.clock = clock
        self.seconds_per_mask = seconds_per_mask
        self.passes: list[list[int]] = []

    def score(self, rgb, masks, boxes, names):
        self.passes.append([int(b[0]) for b in boxes])
        if self.clock is not None:
            self.clock.t += self.seconds_per_mask * len(masks)
        out = np.full((len(masks), len(names)), 0.1, np.float32)
        out[:, [n.lower() for n in names].index("kite")] = 0.9
        return out


def test_a_crop_mode_pass_takes_new_tracks_first_then_the_oldest_labels():
    """``max_masks_per_pass`` 2 over 7 static masks: the unlabelled tracks first (frame
    order), then the oldest labels; the coverage counters follow; the budget is live."""
    clock = FakeClock()
    scorer = RecordingScorer()
    branch = OpenVocabBranch(
        scorer,
        registry(),
        settings(vocabulary=["kite"], threshold=0.5, max_masks_per_pass=2, max_age_s=100.0),
        clock=clock,
    )
    rgb = np.zeros((H, W, 3), np.uint8)
    masks, boxes = mask_set([(x, 0, x + 8, 8) for x in (0, 10, 20, 30, 40, 50, 60)])
    closed = np.zeros(7, np.int64)

    def frame() -> list[int]:
        out = branch.frame(rgb, masks, boxes, closed)
        assert branch.worker.wait_idle(5.0)
        clock.t += 1.0  # rate_hz 1: every frame's offer is accepted
        return (~np.isnan(out.scores)).astype(int).tolist()

    assert branch.mask_budget() == 2
    assert frame() == [0] * 7
    assert frame() == [1, 1, 0, 0, 0, 0, 0]
    assert frame() == [1, 1, 1, 1, 0, 0, 0]
    assert frame() == [1, 1, 1, 1, 1, 1, 0]
    assert frame() == [1] * 7
    frame()
    # a snapshot keeps its masks in frame order; equal ages go by frame order too
    assert scorer.passes == [[0, 10], [20, 30], [40, 50], [0, 60], [10, 20], [30, 40]]
    stats = branch.stats()
    assert stats["last_pass_masks"] == 2 and stats["labelled_share"] == 1.0
    assert stats["image_tower"] is None  # a scorer that does not say where its tower runs
    coverage = branch.tracks.coverage
    assert (coverage.masks, coverage.labelled) == (42, 2 + 4 + 6 + 7 + 7)
    branch.apply(replace(branch.settings, max_masks_per_pass=10))  # live
    frame()
    assert scorer.passes[-1] == [0, 10, 20, 30, 40, 50, 60]
    branch.close()


def test_dense_mode_scores_every_mask_in_the_background():
    """One forward whatever the mask count: ``max_masks_per_pass`` does not apply."""
    masks, boxes = mask_set([(x, 0, x + 8, 8) for x in (0, 10, 20, 30, 40, 50)])
    clock = FakeClock()
    scorer = RecordingScorer()
    branch = OpenVocabBranch(
        scorer,
        registry(),
        settings(vocabulary=["kite"], mode="dense", max_masks_per_pass=2),
        clock=clock,
    )
    branch.frame(np.zeros((H, W, 3), np.uint8), masks, boxes, np.zeros(6, np.int64))
    assert branch.worker.wait_idle(5.0)
    branch.close()
    assert branch.mask_budget() is None
    assert scorer.passes == [[0, 10, 20, 30, 40, 50]]


def test_cameras_keep_their_own_tracks():
    """Two cameras through one branch: a mask of one camera never takes the label of the other
    camera's mask at the same place, and a camera with another image size does not reset the
    first camera's tracks (which a shared store would do on every frame)."""
    clock = FakeClock()
    reg = registry()
    branch = OpenVocabBranch(
        RedScorer(), reg, settings(vocabulary=["kite"], threshold=0.5, rate_hz=100.0), clock=clock
    )
    red = np.zeros((H, W, 3), np.uint8)
    red[10:26, 4:20] = (255, 0, 0)
    masks, boxes = mask_set([(4, 10, 20, 26)])
    small = np.zeros((H // 2, W // 2, 3), np.uint8)
    small_masks = np.zeros((1, H // 2, W // 2), bool)
    small_masks[0, 5:13, 2:10] = True
    closed = np.zeros(1, np.int64)

    def frame(sequence: str, rgb=red, m=masks, b=boxes) -> list[int]:
        out = branch.frame(rgb, m, b, closed, sequence)
        assert branch.worker.wait_idle(5.0)
        clock.t += 1.0
        return out.labels.tolist()

    assert "kite" not in [e.name for e in reg.entries()]
    frame("front")  # CLIP names the red square "kite" on the front camera
    kite = label_id(reg, "kite")
    assert frame("front") == [kite]
    grey = np.full((H, W, 3), 128, np.uint8)
    assert frame("rear", grey) == [0]  # same place, rear camera: its own, new track
    assert frame("rear", grey) == [0]  # CLIP saw the rear frame: not red, not a kite
    assert frame("front") == [kite]
    frame("wrist", small, small_masks, np.array([[2, 5, 10, 13]], np.float32))
    assert frame("front") == [kite]  # another image size elsewhere left the front tracks alone
    assert branch.stats()["tracks"] == 3
    branch.reset_sequence()
    assert branch.stats()["tracks"] == 0
    branch.close()


def test_refresh_order_puts_expired_labels_with_the_unlabelled_tracks():
    clock = FakeClock()
    store = TrackStore(max_age_s=5.0, clock=clock)
    masks, boxes = mask_set([(x, 0, x + 8, 8) for x in (0, 15, 30, 45)])
    ids = store.update(masks, boxes)
    label = TrackLabel(1, 0.9, np.zeros(1, np.float32), (), stamp=clock.t)
    store.set_labels(ids, [label, None, replace(label, stamp=clock.t - 4.0), None])
    clock.t += 0.5
    order = store.refresh_order(ids)
    assert order.tolist() == [1, 3, 2, 0]  # unlabelled (mask order), then 4.5 s old, 0.5 s old
    clock.t += 1.0  # the 4 s label is now 5.5 s old: expired, as good as none
    assert store.refresh_order(ids).tolist() == [1, 2, 3, 0]


def test_the_every_frame_schedule_scores_every_mask_whatever_the_budget():
    clock = FakeClock()
    scorer = RecordingScorer(clock, seconds_per_mask=1.0)
    branch = OpenVocabBranch(
        scorer,
        registry(),
        clock=clock,
        settings=settings(every_frame=True, vocabulary=["kite"], max_masks_per_pass=1),
    )
    masks, boxes = mask_set([(x, 0, x + 8, 8) for x in (0, 10, 20, 30, 40, 50)])
    for _ in range(2):
        branch.frame(np.zeros((H, W, 3), np.uint8), masks, boxes, np.zeros(6, np.int64))
    assert scorer.passes == [[0, 10, 20, 30, 40, 50]] * 2


# ------------------------------------------------------------------------------ fusion rules
def test_fusion_rules_on_planted_scores():
    reg = registry()
    road, car = label_id(reg, "road"), label_id(reg, "car")
    scorer = PlantedScorer(
        {
            0: {"road": 0.30, "kite": 0.20},  # closed "road" pure, CLIP agrees → road
            1: {"road": 0.20, "kite": 0.40},  # closed "road" pure, CLIP "kite" higher → kite
            2: {"car": 0.10, "kite": 0.20},  # closed impure, CLIP below threshold 0.25 → 0
            3: {"car": 0.10, "kite": 0.35},  # closed impure, CLIP clears → kite
            4: {"car": 0.28, "kite": 0.27},  # closed pure "car", CLIP "car" best → car
            5: {"road": 0.24},  # closed pure "car", CLIP "road" below threshold → car
        }
    )
    branch = OpenVocabBranch(
        scorer, reg, settings(every_frame=True, vocabulary=["kite"], threshold=0.25)
    )
    rev = reg.revision
    masks, boxes = mask_set([(i * 12, 0, i * 12 + 10, 10) for i in range(6)])
    closed = np.array([road, road, car, car, car, car])
    votes = fusion.MaskVotes(
        labels=closed,
        purity=np.array([0.9, 0.9, 0.2, 0.2, 0.8, 0.8], np.float32),
        areas=np.full(6, 100),
    )
    ov = branch.frame(np.zeros((H, W, 3), np.uint8), masks, boxes, closed)
    kite = label_id(reg, "kite")
    assert kite == 20 and reg.revision == rev + 1  # new name appended with the next id
    assert reg.entries()[kite].source == SOURCE_OPEN_VOCAB
    np.testing.assert_allclose(ov.closed_scores, [0.30, 0.20, 0.10, 0.10, 0.28, 0.0], atol=1e-6)
    out = fusion.fuse(votes, 0.5, ov, branch.settings.threshold)
    assert out.tolist() == [road, kite, 0, kite, car, car]
    # Top-K proposals are kept per track (K = 3), best first.
    track = track_label(branch.tracks, int(branch.tracks._ids[1]))
    assert [p[0] for p in track.proposals[:2]] == ["kite", "road"]
    assert len(track.proposals) == 3


def test_threshold_and_top_k_are_live():
    reg = registry()
    scorer = PlantedScorer({0: {"kite": 0.2}})
    branch = OpenVocabBranch(
        scorer, reg, settings(every_frame=True, vocabulary=["kite"], threshold=0.25, top_k=3)
    )
    masks, boxes = mask_set([(0, 0, 10, 10)])
    rgb = np.zeros((H, W, 3), np.uint8)
    ov = branch.frame(rgb, masks, boxes, np.zeros(1, np.int64))
    assert ov.labels.tolist() == [0] and label_id(reg, "kite") is None  # below: not in the legend
    branch.apply(replace(branch.settings, threshold=0.15, top_k=1))
    ov = branch.frame(rgb, masks, boxes, np.zeros(1, np.int64))
    assert ov.labels.tolist() == [label_id(reg, "kite")]
    assert len(track_label(branch.tracks, int(branch.tracks._ids[0])).proposals) == 1


# ------------------------------------------------------------------------------ worker
def test_worker_survives_an_exception_and_labels_the_next_snapshot():
    clock = FakeClock()
    reg = registry()
    scorer = RedScorer(fail_first=1)
    branch = OpenVocabBranch(
        scorer, reg, settings(vocabulary=["kite"], threshold=0.5, rate_hz=1.0), clock=clock
    )
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[10:26, 4:20] = (255, 0, 0)
    masks, boxes = mask_set([(4, 10, 20, 26)])
    branch.frame(rgb, masks, boxes, np.zeros(1, np.int64))
    assert branch.worker.wait_idle(5.0)
    stats = branch.stats()
    assert (stats["errors"], stats["passes"]) == (1, 0)
    assert "planted failure" in stats["last_error"]
    branch.frame(rgb, masks, boxes, np.zeros(1, np.int64))  # within 1/rate_hz: refused
    assert branch.stats()["accepted"] == 1
    clock.t += 1.0
    branch.frame(rgb, masks, boxes, np.zeros(1, np.int64))
    assert branch.worker.wait_idle(5.0)
    stats = branch.stats()
    assert (stats["errors"], stats["passes"], stats["accepted"]) == (1, 1, 2)
    assert stats["last_pass_ms"] >= 0.0 and branch.worker.stats().running
    out = branch.frame(rgb, masks, boxes, np.zeros(1, np.int64))
    assert out.labels.tolist() == [label_id(reg, "kite")]
    branch.close()
    assert not branch.worker.stats().running


def test_offer_never_blocks_while_a_pass_runs():
    gate = threading.Event()

    class SlowScorer(RedScorer):
        def score(self, *args):
            gate.wait(5.0)
            return super().score(*args)

    clock = FakeClock()
    branch = OpenVocabBranch(SlowScorer(), registry(), settings(vocabulary=["kite"]), clock=clock)
    rgb = np.zeros((H, W, 3), np.uint8)
    masks, boxes = mask_set([(4, 10, 20, 26)])
    import time

    t0 = time.perf_counter()
    for _ in range(20):
        clock.t += 10.0
        branch.frame(rgb, masks, boxes, np.zeros(1, np.int64))
    assert time.perf_counter() - t0 < 1.0
    assert branch.stats()["accepted"] == 1 and branch.stats()["offered"] == 20
    gate.set()
    assert branch.worker.wait_idle(5.0)
    assert branch.stats()["passes"] == 1
    branch.close()


# ------------------------------------------------------------------------------ pipeline
def test_pipeline_fuses_open_vocab_labels_and_grows_the_legend():
    from sfs_ros.models.fastsam import MaskSet
    from sfs_ros.pipeline import Pipeline

    reg = registry()
    road = label_id(reg, "road")
    boxes = [(0, 0, 40, 30), (40, 30, 80, 60)]

    def masker(rgb):
        m, b = mask_set(boxes)
        return MaskSet(m, b, np.ones(2, np.float32), rgb.shape[:2])

    def segmenter(rgb, hw):
        return np.zeros(hw, np.int64)  # cityscapes index 0 = road everywhere

    branch = OpenVocabBranch(
        PlantedScorer({1: {"pallet jack": 0.6, "road": 0.1}}),
        reg,
        settings(every_frame=True, vocabulary=["pallet jack"], threshold=0.25),
    )
    pipe = Pipeline(FunctionMasks(masker), [FunctionClasses(segmenter)], reg, open_vocab=branch)
    assert pipe.min_purity == 0.5 and pipe.config.open_vocab is branch.settings
    rev = reg.revision
    result = pipe.process(np.zeros((H, W, 3), np.uint8))
    jack = label_id(reg, "pallet jack")
    assert result.mask_labels.tolist() == [road, jack]
    assert reg.revision == rev + 1  # the new name was appended to the legend
    assert result.label_map[45, 60] == jack and result.label_map[10, 10] == road
    assert "open_vocab" in result.timings
    assert len(branch.track_store("rear")) == 0
    pipe.process(np.zeros((H, W, 3), np.uint8), sequence="rear")  # a second camera
    assert len(branch.track_store("rear")) == 2 and len(branch.tracks) == 2  # its own tracks
    legend = pipe.legend_dict()
    assert legend["classes"][jack] == {
        "id": jack,
        "name": "pallet jack",
        "color": legend["classes"][jack]["color"],
        "source": SOURCE_OPEN_VOCAB,
    }
    pipe.update("open_vocab.enabled", False)
    assert pipe.process(np.zeros((H, W, 3), np.uint8)).mask_labels.tolist() == [road, road]
    pipe.close()


def test_caption_noun_extraction():
    assert extract_nouns("a brown dog sitting on a couch") == ["dog", "couch"]
    assert extract_nouns("there is a red car parked next to a bed") == ["car", "bed"]
    assert extract_nouns("arafed view of the background") == []


def test_track_store_resets_when_the_working_resolution_changes():
    store = TrackStore()
    m, b = mask_set([(0, 0, 10, 10)])
    first = store.update(m, b)
    again = store.update(m, b)
    assert first.tolist() == again.tolist()
    other = store.update(np.ones((1, 30, 40), bool), np.array([[0, 0, 80, 60]], np.float32))
    assert other[0] != first[0] and len(store) == 1


# ------------------------------------------------------------------------------ loading
def test_missing_clip_weights_offline_is_a_clear_error(monkeypatch):
    from sfs_ros.open_vocab.clip import ClipScorer
    from sfs_ros.weights import WeightsNotFoundError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as err:
        ClipScorer.load("ViT-B-32", "laion2b_s34b_b79k", allow_random=False)
    msg = str(err.value)
    assert "open_vocab.model='ViT-B-32'" in msg
    assert "open_vocab.pretrained='laion2b_s34b_b79k'" in msg
    assert "allow_random_weights" in msg
    with pytest.raises(WeightsNotFoundError, match=r"open_vocab\.model 'ViT-Nope'"):
        ClipScorer.load("ViT-Nope", "openai")


@pytest.mark.models
def test_real_vit_b32_with_random_weights_through_the_production_path(monkeypatch, caplog):
    import torch

    from sfs_ros.open_vocab.clip import ClipScorer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)
    with caplog.at_level("WARNING", logger="sfs_ros"):
        scorer = ClipScorer.load("ViT-B-32", "laion2b_s34b_b79k", allow_random=True)
    assert scorer.is_random and "RANDOM WEIGHTS IN USE for CLIP" in caplog.text
    assert scorer.image_size == 224
    assert sum(p.numel() for p in scorer.model.parameters()) > 80_000_000  # the real B/32
    rgb = np.random.default_rng(1).integers(0, 255, (H, W, 3), dtype=np.uint8)
    masks, boxes = mask_set([(0, 0, 30, 30), (30, 20, 80, 60)])
    s1 = scorer.score(rgb, masks, boxes, ["kite", "road"])
    s2 = scorer.score(rgb, masks, boxes, ["kite", "road"])
    assert s1.shape == (2, 2) and np.isfinite(s1).all()
    np.testing.assert_allclose(s1, s2, rtol=1e-5)  # deterministic, loaded once
    assert scorer.stats.encode_text_calls == 1 and scorer.stats.encode_image_calls == 2


@pytest.mark.models
def test_sfs_segment_runs_the_branch_synchronously(
    tmp_path: Path, test_params_file: Path, tiny_clip_name: str
):
    import cv2

    from sfs_ros.cli.segment import main

    img = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), img)
    out = tmp_path / "out"
    rc = main(
        [
            str(tmp_path / "f0.png"),
            str(tmp_path / "f1.png"),
            "-o",
            str(out),
            "--config",
            str(test_params_file),
            "--allow-random-weights",
            "--no-progress",
            "--set",
            "open_vocab.enabled=true",
            "--set",
            f"open_vocab.model={tiny_clip_name}",
            "--set",
            "open_vocab.pretrained=",
            "--set",
            "open_vocab.threshold=-1.0",
            "--set",
            "open_vocab.vocabulary=[kite, pallet jack]",
        ]
    )
    assert rc == 0
    legend = json.loads((out / "legend.json").read_text())
    ids = {c["id"] for c in legend["classes"]}
    timings = json.loads((out / "timings.json").read_text())
    assert len(timings) == 2 and all("open_vocab" in t for t in timings)
    for i in range(2):
        label = cv2.imread(str(out / f"f{i}_label.png"), cv2.IMREAD_UNCHANGED)
        assert label.dtype == np.uint16 and label.shape == (96, 128)
        assert set(np.unique(label).tolist()) <= ids
    extra = [c for c in legend["classes"] if c["id"] > 150]
    assert all(c["source"] == SOURCE_OPEN_VOCAB for c in extra)
    assert legend["revision"] == 1 + len(extra)


def test_close_cancels_a_running_pass_before_its_next_encoder_call(tiny_scorer):
    from sfs_ros.open_vocab.clip import PassCancelledError

    started, release = threading.Event(), threading.Event()
    calls = []
    original = tiny_scorer.model.encode_text

    def slow_encode_text(tokens):
        calls.append(len(tokens))
        started.set()
        release.wait(5.0)
        return original(tokens)

    tiny_scorer.model.encode_text = slow_encode_text
    names = [f"name {i}" for i in range(200)]  # 400 prompts → several encoder calls
    branch = OpenVocabBranch(tiny_scorer, registry(), settings(vocabulary=names), clock=FakeClock())
    rgb = np.zeros((H, W, 3), np.uint8)
    masks, boxes = mask_set([(4, 10, 20, 26)])
    branch.frame(rgb, masks, boxes, np.zeros(1, np.int64))
    assert started.wait(5.0)
    closer = threading.Thread(target=branch.close)
    closer.start()
    release.set()
    closer.join(10.0)
    assert not closer.is_alive()
    assert not branch.worker.stats().running
    assert len(calls) == 1  # the first chunk finished, no further encoder call was made
    assert branch.stats()["errors"] == 0  # cancellation is not an error
    with pytest.raises(PassCancelledError):
        tiny_scorer.text_embeddings(["another name"])


# ------------------------------------------------------------------------------ dense mode
@pytest.fixture
def tiny_dense_scorer(tiny_clip_name: str):
    """The tiny ViT in ``open_vocab.mode=dense`` (32 px input, 16 px patches: a 2x2 grid)."""
    import torch

    from sfs_ros.open_vocab.clip import ClipScorer

    torch.manual_seed(0)
    return ClipScorer.load(
        tiny_clip_name, "", "cpu", templates=("a photo of a {}.",), allow_random=True, mode="dense"
    )


def count_image_forwards(scorer) -> list[int]:
    """Counts runs of the image tower: its patch embedding runs once per image-encoder call."""
    calls: list[int] = []
    scorer.model.visual.conv1.register_forward_hook(lambda *_: calls.append(1))
    return calls


def test_dense_mode_makes_one_image_encoder_call_per_pass(tiny_dense_scorer):
    scorer = tiny_dense_scorer
    forwards = count_image_forwards(scorer)
    rgb = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
    names = ["kite", "car", "road"]
    for n in (1, 30):
        before, before_stats = len(forwards), scorer.stats.encode_image_calls
        boxes = [(i % 10 * 7, i // 10 * 20, i % 10 * 7 + 8, i // 10 * 20 + 15) for i in range(n)]
        masks, b = mask_set(boxes)
        scores = scorer.score(rgb, masks, b, names)
        assert len(forwards) == before + 1  # one forward of the whole image, whatever n
        assert scorer.stats.encode_image_calls == before_stats + 1
        assert scores.shape == (n, 3) and scores.dtype == np.float32
        assert np.isfinite(scores).all() and (np.abs(scores) <= 1.0 + 1e-5).all()
    # Masks too small to score get NaN rows as in crop mode; none at all → no forward.
    masks, b = mask_set([(0, 0, 1, 1), (10, 10, 40, 40)])
    scores = scorer.score(rgb, masks, b, names)
    assert np.isnan(scores[0]).all() and np.isfinite(scores[1]).all()
    before = len(forwards)
    masks, b = mask_set([(0, 0, 1, 1)])
    assert np.isnan(scorer.score(rgb, masks, b, names)).all() and len(forwards) == before
    assert scorer.score(rgb, *mask_set([]), names).shape == (0, 3)


def test_dense_tokens_are_the_value_path_of_the_last_block(tiny_dense_scorer):
    """MaskCLIP's last block = the real block with every token attending only to itself."""
    import cv2
    import torch

    from sfs_ros.open_vocab.clip import mask_patch_coverage, vit_dense_tokens

    visual = tiny_dense_scorer.model.visual
    rgb = np.random.default_rng(2).integers(0, 255, (H, W, 3), dtype=np.uint8)
    image = tiny_dense_scorer.whole_image(rgb)
    assert image.shape == (1, 3, 32, 32)  # squashed to the input size
    tensor = torch.from_numpy(image)
    with torch.inference_mode():
        tokens = vit_dense_tokens(visual, tensor)
        x = visual._embeds(tensor)
        for block in visual.transformer.resblocks[:-1]:
            x = block(x)
        own = torch.full((x.shape[1], x.shape[1]), float("-inf"))
        own.fill_diagonal_(0.0)
        x = visual.transformer.resblocks[-1](x, attn_mask=own)
        expected = visual.ln_post(x[:, 1:]) @ visual.proj
    assert tokens.shape == (1, 4, 32)
    torch.testing.assert_close(tokens, expected, rtol=1e-5, atol=1e-6)
    # Mask → patch grid coverage is area interpolation (cv2 INTER_AREA), non-integer ratios too.
    masks = np.random.default_rng(3).random((5, 37, 53)) > 0.5
    cover = mask_patch_coverage(masks, (7, 9))
    ref = [cv2.resize(m.astype(np.float32), (9, 7), interpolation=cv2.INTER_AREA) for m in masks]
    np.testing.assert_allclose(cover, np.stack(ref).reshape(5, 63), atol=1e-5)


def test_dense_pooling_on_planted_patch_features(tiny_dense_scorer, monkeypatch):
    """Left half of the patch grid = the text embedding of 'kite', right half = 'road'."""
    scorer = tiny_dense_scorer
    names = ["kite", "road", "car"]
    text = scorer.text_embeddings(names)
    grid = np.empty((4, 6, text.shape[1]), np.float32)
    grid[:, :3] = text[0]
    grid[:, 3:] = text[1]
    monkeypatch.setattr(scorer, "patch_features", lambda batch: grid)
    rgb = np.zeros((H, W, 3), np.uint8)
    # Left quarter, right quarter, and a mask mostly (3/4) on the right half.
    masks, boxes = mask_set([(0, 0, 20, 60), (60, 0, 80, 60), (30, 10, 70, 50)])
    scores = scorer.score(rgb, masks, boxes, names)
    assert scores.argmax(axis=1).tolist() == [0, 1, 1]
    np.testing.assert_allclose(scores[0, 0], 1.0, atol=1e-5)  # pure 'kite' patches
    np.testing.assert_allclose(scores[1, 1], 1.0, atol=1e-5)
    assert scores[2, 1] > scores[2, 0] > scores[2, 2] - 1.0
    # Pooled embedding of the straddling mask: coverage-weighted mean (1/4 kite, 3/4 road).
    pooled = 0.25 * text[0] + 0.75 * text[1]
    pooled /= np.linalg.norm(pooled)
    np.testing.assert_allclose(scores[2], pooled @ text.T, atol=1e-5)


def test_dense_mode_refuses_a_non_vit_tower_at_load(tmp_path: Path):
    import open_clip

    from sfs_ros.open_vocab.clip import ClipScorer
    from sfs_ros.params import ConfigError

    cfg = {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": [1, 1, 1, 1], "width": 8, "head_width": 16},
        "text_cfg": {
            "context_length": 77,
            "vocab_size": 49408,
            "width": 32,
            "heads": 2,
            "layers": 1,
        },
    }
    path = tmp_path / "sfs-test-tiny-resnet-clip.json"
    path.write_text(json.dumps(cfg))
    open_clip.add_model_config(path)
    with pytest.raises(ConfigError, match=r"open_vocab\.mode='dense' needs an open_clip ViT"):
        ClipScorer.load("sfs-test-tiny-resnet-clip", "", allow_random=True, mode="dense")
    scorer = ClipScorer.load("sfs-test-tiny-resnet-clip", "", allow_random=True, mode="crop")
    assert scorer.mode == "crop"  # crop mode works with any tower
    with pytest.raises(ConfigError, match=r"open_vocab\.mode"):
        ClipScorer.load("sfs-test-tiny-resnet-clip", "", allow_random=True, mode="sparse")


def test_dense_mode_through_the_branch_from_config(tiny_clip_name: str):
    from sfs_ros.params import ConfigError, load_config

    root = Path(__file__).resolve().parents[1]
    overrides = [
        f"open_vocab.model={tiny_clip_name}",
        "open_vocab.pretrained=",
        "open_vocab.mode=dense",
        "open_vocab.threshold=-1.0",
        "open_vocab.vocabulary=[kite, pallet jack]",
        "allow_random_weights=true",
    ]
    config = load_config(root / "config" / "sfs.yaml", overrides)
    assert config["open_vocab.mode"] == "dense"
    assert load_config(root / "config" / "sfs.yaml")["open_vocab.mode"] == "crop"  # default
    with pytest.raises(ConfigError, match=r"open_vocab\.mode"):
        load_config(root / "config" / "sfs.yaml", ["open_vocab.mode=sparse"])
    reg = registry()
    branch = OpenVocabBranch.from_config(SfsConfig.from_flat(config).offline(), reg)
    assert branch.scorer.mode == "dense"
    rgb = np.random.default_rng(4).integers(0, 255, (H, W, 3), dtype=np.uint8)
    masks, boxes = mask_set([(5, 5, 30, 30), (40, 10, 70, 50), (0, 0, 1, 1)])
    for _ in range(2):
        scores = branch.frame(rgb, masks, boxes, np.zeros(3, np.int64))
    assert branch.stats()["encode_image_calls"] == 2  # one forward per pass
    # threshold -1: both scoreable masks are named (fresh labels), the 1-pixel mask is not.
    assert (scores.labels[:2] > 0).all() and scores.labels[2] == 0
    assert np.isfinite(scores.scores[:2]).all() and np.isnan(scores.scores[2])
    names = {e.id: e.name for e in reg.entries()}
    assert {names[int(i)] for i in scores.labels[:2]} <= set(branch.candidate_names())
    branch.close()


def test_full_legend_leaves_new_names_unidentified_and_keeps_running(caplog):
    from sfs_ros.labels import LabelRegistry
    from sfs_ros.vocabularies import get_vocabulary

    reg = LabelRegistry([get_vocabulary("cityscapes")], max_classes=21)  # room for one name
    branch = OpenVocabBranch(
        PlantedScorer({0: {"kite": 0.9}, 1: {"pallet jack": 0.8}}),
        reg,
        settings(every_frame=True, vocabulary=["kite", "pallet jack"], threshold=0.25),
        clock=FakeClock(),
    )
    masks, boxes = mask_set([(0, 0, 40, 30), (40, 30, 80, 60)])
    out = branch.frame(np.zeros((H, W, 3), np.uint8), masks, boxes, np.zeros(2, np.int64))
    assert len(reg) == 21
    assert out.labels.tolist() == [label_id(reg, "kite"), 0]
    assert label_id(reg, "pallet jack") is None
    assert branch.stats()["legend_full_drops"] == 1
    assert "legend is full" in caplog.text
    branch.close()


def test_worker_thread_runs_at_lower_cpu_priority():
    import os

    seen = {}

    def run_pass(_snapshot):
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    from sfs_ros.open_vocab.worker import BACKGROUND_NICE, OpenVocabWorker

    worker = OpenVocabWorker(run_pass, rate_hz=100.0)
    worker.start()
    assert worker.offer(lambda: "snapshot")
    assert worker.wait_idle(5.0)
    worker.stop()
    main_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert seen["nice"] == min(19, main_nice + BACKGROUND_NICE)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_nice  # unchanged


# ------------------------------------------------------------------------------ captioner
@pytest.fixture(scope="module")
def blip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BLIP captioner with random weights, saved with save_pretrained (offline tokenizer)."""
    from sfs_ros.weights import build_random_blip

    return build_random_blip(tmp_path_factory.mktemp("w") / "blip-tiny")


def count_generate_calls(captioner) -> list[int]:
    """Wrap the model's generate; the list gets the batch size of every call."""
    calls: list[int] = []
    generate = captioner.model.generate

    def counted(**kwargs):
        calls.append(int(kwargs["pixel_values"].shape[0]))
        return generate(**kwargs)

    captioner.model.generate = counted
    return calls


class ProcessorSpy:
    """Records the images handed to the processor, then delegates to it."""

    def __init__(self, processor):
        self.processor = processor
        self.images: list[np.ndarray] = []

    def __call__(self, images, **kwargs):
        self.images.extend(images)
        return self.processor(images=images, **kwargs)

    def __getattr__(self, name):
        return getattr(self.processor, name)


@pytest.mark.models
def test_random_blip_captions_several_masks_in_one_generate_call(blip_dir: Path, monkeypatch):
    from sfs_ros.open_vocab.captioner import BlipCaptioner

    cap = BlipCaptioner.load(str(blip_dir))
    assert not cap.is_random  # a real (saved) directory, loaded like a hub checkpoint
    tok = cap.processor.tokenizer
    assert tok.bos_token == "[DEC]"  # noqa: S105 (a tokenizer token, not a password)
    assert cap.model.config.text_config.bos_token_id == tok.bos_token_id
    assert cap.model.config.text_config.sep_token_id == tok.sep_token_id
    calls = count_generate_calls(cap)
    rgb = np.random.default_rng(2).integers(0, 255, (H, W, 3), dtype=np.uint8)
    masks, boxes = mask_set([(0, 0, 30, 30), (30, 20, 80, 60), (0, 0, 2, 2), (50, 0, 70, 20)])
    captions = cap.captions(rgb, masks, boxes, [0, 1, 2, 3])
    assert calls == [3]  # one batched forward for the three crops that are large enough
    assert len(captions) == 4 and all(isinstance(c, str) for c in captions)
    assert captions[2] == ""  # 2x2 box: not captioned
    vocab = set(tok.get_vocab())
    for caption in (captions[0], captions[1], captions[3]):
        assert caption and set(caption.split()) <= vocab  # random words from the tiny vocab
    # nouns(): the same single call, then extract_nouns on each caption (deduplicated).
    planted = ["a brown dog sitting on a couch", "a photo of a kite", "a dog"]
    monkeypatch.setattr(cap.processor, "batch_decode", lambda out, **kw: planted[: len(out)])
    assert cap.nouns(rgb, masks, boxes, [0, 1, 3]) == ["dog", "couch", "kite"]
    assert calls == [3, 3] and cap.calls == 2
    assert cap.nouns(rgb, masks, boxes, [2]) == [] and calls == [3, 3]  # nothing to caption


@pytest.mark.models
def test_captioner_crops_read_boxes_as_xyxy_with_a_margin(blip_dir: Path):
    from sfs_ros.open_vocab.captioner import BlipCaptioner

    cap = BlipCaptioner.load(str(blip_dir))
    spy = cap.processor = ProcessorSpy(cap.processor)
    rgb = np.random.default_rng(3).integers(0, 255, (H, W, 3), dtype=np.uint8)
    # xyxy boxes: a wide one and a tall one; 30 % margin per side, clipped to the image.
    boxes = np.array([[10, 5, 30, 25], [50, 10, 60, 50]], np.float32)
    captions = cap.captions(rgb, np.zeros((2, H, W), bool), boxes, [0, 1])
    assert len(captions) == 2 and len(spy.images) == 2
    np.testing.assert_array_equal(spy.images[0], rgb[0:31, 4:36])  # x 4..36, y 0..31
    np.testing.assert_array_equal(spy.images[1], rgb[0:60, 47:63])  # x 47..63, y 0..60


@pytest.mark.models
def test_branch_adds_caption_nouns_of_unnamed_masks_to_the_candidates(blip_dir, monkeypatch):
    from sfs_ros.open_vocab.captioner import BlipCaptioner

    cap = BlipCaptioner.load(str(blip_dir))
    calls = count_generate_calls(cap)
    seen: list[list[int]] = []
    captions = cap.captions

    def spy_captions(rgb, masks, boxes, index):
        seen.append(list(index))
        return captions(rgb, masks, boxes, index)

    monkeypatch.setattr(cap, "captions", spy_captions)
    monkeypatch.setattr(
        cap.processor, "batch_decode", lambda out, **kw: ["a dog on a couch", "a red chair"]
    )
    reg = registry()
    branch = OpenVocabBranch(
        PlantedScorer({0: {"kite": 0.9}, 1: {"kite": 0.1}}),
        reg,
        settings(every_frame=True, vocabulary=["kite"], threshold=0.25),
        captioner=cap,
        clock=FakeClock(),
    )
    before = branch.candidate_names()
    rgb = np.random.default_rng(5).integers(0, 255, (H, W, 3), dtype=np.uint8)
    masks, boxes = mask_set([(0, 0, 30, 30), (30, 20, 80, 60), (40, 0, 70, 20)])
    out = branch.frame(rgb, masks, boxes, np.zeros(3, np.int64))
    assert out.labels.tolist() == [label_id(reg, "kite"), 0, 0]
    assert seen == [[1, 2]] and calls == [2]  # only masks below threshold, in one batch
    assert branch.candidate_names() == [*before, "dog", "couch", "chair"]
    branch.close()


@pytest.mark.models
def test_branch_from_config_runs_a_real_random_blip_on_unnamed_masks(
    blip_dir: Path, tiny_clip_name: str
):
    from sfs_ros.params import load_config

    root = Path(__file__).resolve().parents[1]
    overrides = [
        f"open_vocab.model={tiny_clip_name}",
        "open_vocab.pretrained=",
        "open_vocab.threshold=1.0",  # no random cosine reaches it: masks stay unidentified
        "open_vocab.vocabulary=[kite]",
        f"open_vocab.captioner={blip_dir}",
        "allow_random_weights=true",
    ]
    branch = OpenVocabBranch.from_config(
        SfsConfig.from_flat(load_config(root / "config" / "sfs.yaml", overrides)).offline(),
        registry(),
    )
    cap = branch.captioner
    assert cap is not None and not cap.is_random
    calls = count_generate_calls(cap)
    before = branch.candidate_names()
    rgb = np.random.default_rng(6).integers(0, 255, (H, W, 3), dtype=np.uint8)
    masks, boxes = mask_set([(5, 5, 30, 30), (40, 10, 70, 50)])
    branch.frame(rgb, masks, boxes, np.zeros(2, np.int64))
    assert calls == [2] and cap.calls == 1  # the real BLIP forward, one batch
    added = branch.candidate_names()[len(before) :]
    assert set(added) <= set(cap.processor.tokenizer.get_vocab())  # nouns of random captions
    branch.close()


def test_missing_captioner_offline_is_a_clear_error(monkeypatch, tmp_path: Path):
    from sfs_ros.open_vocab.captioner import BlipCaptioner
    from sfs_ros.weights import WeightsNotFoundError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as err:
        BlipCaptioner.load("sfs-test/no-such-blip-captioner", allow_random=False)
    msg = str(err.value)
    assert "open_vocab.captioner='sfs-test/no-such-blip-captioner'" in msg
    assert "allow_random_weights" in msg
    # A local directory that does not hold a model is an error even with random weights on.
    with pytest.raises(WeightsNotFoundError, match=r"open_vocab\.captioner="):
        BlipCaptioner.load(str(tmp_path), allow_random=True)


@pytest.mark.models
def test_allow_random_builds_a_tiny_blip_instead_of_switching_captions_off(monkeypatch, caplog):
    from sfs_ros.open_vocab.captioner import BlipCaptioner
    from sfs_ros.weights import cache_dir

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with caplog.at_level("WARNING", logger="sfs_ros"):
        cap = BlipCaptioner.load("sfs-test/no-such-blip-captioner", allow_random=True)
    assert cap is not None and cap.is_random
    assert "RANDOM WEIGHTS IN USE for BLIP captioner" in caplog.text
    assert "open_vocab.captioner" in caplog.text
    assert (cache_dir() / "random" / "blip-captioning-tiny-seed0" / "config.json").exists()
    rgb = np.random.default_rng(7).integers(0, 255, (H, W, 3), dtype=np.uint8)
    masks, boxes = mask_set([(0, 0, 40, 40)])
    assert isinstance(cap.nouns(rgb, masks, boxes, [0]), list) and cap.calls == 1


def test_clip_image_tower_on_openvino_matches_torch_and_is_exported_once(
    tiny_clip_name, tmp_path, monkeypatch
):
    """open_vocab.backend openvino: same crop scores as torch (f32), one thread of its own,
    the export cached by a digest of the tower's weights."""
    import torch

    from sfs_ros.open_vocab import clip_openvino
    from sfs_ros.open_vocab.clip import ClipScorer, TorchImageEncoder, resolve_clip_backend
    from sfs_ros.params import ConfigError

    monkeypatch.setenv("SFS_CACHE_DIR", str(tmp_path))
    exports = []
    original = clip_openvino._export
    monkeypatch.setattr(clip_openvino, "_export", lambda *a: exports.append(a[2]) or original(*a))
    rgb = np.random.default_rng(0).integers(0, 255, (H, W, 3), np.uint8)
    masks, boxes = mask_set([(0, 0, 40, 30), (30, 20, 80, 60), (5, 5, 20, 50)])
    names = ["road", "car", "kite"]
    scores = {}
    for backend in ("torch", "openvino", "openvino"):
        torch.manual_seed(0)
        scorer = ClipScorer.load(tiny_clip_name, "", allow_random=True, backend=backend)
        encoder = {"torch": TorchImageEncoder, "openvino": clip_openvino.OpenVinoImageEncoder}
        assert type(scorer.image_encoder) is encoder[backend]
        tower = {"torch": "torch cpu float32", "openvino": "openvino f32, 1 thread(s)"}
        assert scorer.image_tower == tower[backend]
        scores[backend] = scorer.score(rgb, masks, boxes, names)
    np.testing.assert_allclose(scores["openvino"], scores["torch"], atol=1e-4)
    assert len(exports) == 1 and exports[0].name.startswith(f"clip-{tiny_clip_name}-")
    assert resolve_clip_backend("auto", "cpu", "crop") == "openvino"
    assert resolve_clip_backend("auto", "cpu", "dense") == "torch"
    assert resolve_clip_backend("auto", "cuda:0", "crop") == "torch"
    with pytest.raises(ConfigError, match="crop mode on the CPU"):
        resolve_clip_backend("openvino", "cpu", "dense")


def test_clip_tower_precision_auto_is_bf16_only_where_the_cpu_computes_it(caplog):
    """open_vocab.openvino_precision: auto is bf16 on CPUs with native bf16 and f32 elsewhere;
    f32 and bf16 are taken as given; other values are refused; with the torch tower a bf16
    request is a warning, not silence."""
    from sfs_ros.open_vocab.clip import make_image_encoder, resolve_clip_precision
    from sfs_ros.params import ConfigError

    assert resolve_clip_precision("auto", lambda: True) == (
        "bf16",
        "auto: this CPU computes bf16 natively",
    )
    assert resolve_clip_precision("auto", lambda: False)[0] == "f32"
    for given in ("f32", "bf16"):
        assert resolve_clip_precision(given, lambda: False)[0] == given
    with pytest.raises(ConfigError, match="'int8' is not one of auto, f32, bf16"):
        resolve_clip_precision("int8")
    with caplog.at_level("WARNING", logger="sfs_ros"):
        make_image_encoder(
            "torch", None, model_name="m", image_size=8, device="cpu", threads=1,
            openvino_precision="bf16",
        )  # fmt: skip
    assert "applies to the openvino image tower only" in caplog.text
