# SPDX-License-Identifier: AGPL-3.0-or-later
"""vote / fuse / paint against a deliberately naive, independent oracle.

The oracle uses plain Python loops over masks and pixels, a ``Counter`` per mask and a painting
loop sorted by area (largest first), i.e. the SSA reference procedure. It shares no code with
``sfs_ros.fusion``.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from sfs_ros.fusion import MaskVotes, OpenVocabScores, fuse, paint, stack_order, vote

# ----------------------------------------------------------------------------- naive oracle


def oracle_vote(masks, class_map):
    """Per mask: (label, purity, area) from a Counter over its pixels."""
    n, h, w = masks.shape
    out = []
    for i in range(n):
        counter = Counter()
        for y in range(h):
            for x in range(w):
                if masks[i, y, x]:
                    counter[int(class_map[y, x])] += 1
        area = sum(counter.values())
        if area == 0:
            out.append((0, 0.0, 0))
            continue
        best_count = max(counter.values())
        label = min(c for c, k in counter.items() if k == best_count)
        out.append((label, best_count / area, area))
    return out


def oracle_fuse(
    closed, purity, min_purity, *, open_labels=None, scores=None, closed_scores=None, threshold=0.0
):
    """Per mask, the fusion rule written out with if/else (docs/architecture.md, "Fusion")."""
    if open_labels is None:  # branch off: the majority class wins whatever its purity
        return [int(c) for c in closed]
    result = []
    for i in range(len(closed)):
        c = int(closed[i])
        has_open = False
        o = 0
        if open_labels is not None:
            o = int(open_labels[i])
            s = float(scores[i])
            has_open = o != 0 and not math.isnan(s) and s >= threshold
        contradicted = False
        if has_open and o != c:
            cs = float(closed_scores[i])
            contradicted = math.isnan(cs) or s > cs
        if c != 0 and purity[i] >= min_purity and not contradicted:
            result.append(c)
        elif has_open:
            result.append(o)
        else:
            result.append(0)
    return result


def oracle_paint(masks, labels, class_map):
    """SSA: start from the class map, paint masks largest area first (equal areas: the higher
    index first, so the lower index ends on top)."""
    n, h, w = masks.shape
    label_map = [[int(class_map[y, x]) for x in range(w)] for y in range(h)]
    instance_map = [[0] * w for _ in range(h)]
    areas = [int(masks[i].sum()) for i in range(n)]
    for i in sorted(range(n), key=lambda j: (-areas[j], -j)):
        for y in range(h):
            for x in range(w):
                if masks[i, y, x]:
                    label_map[y][x] = int(labels[i])
                    instance_map[y][x] = i + 1
    return np.array(label_map, dtype=np.int64), np.array(instance_map, dtype=np.int64)


# ----------------------------------------------------------------------------- synthetic data


def random_scene(seed, n=12, h=18, w=23, num_classes=7):
    """Overlapping rectangles and random blobs, plus an empty mask and a full-image mask.

    The class map is made of a few constant regions plus noise, so votes have real majorities
    as well as close calls.
    """
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, h, w), dtype=bool)
    for i in range(n):
        if i % 3 == 0:
            masks[i] = rng.random((h, w)) < rng.uniform(0.05, 0.4)
        else:
            y0, x0 = rng.integers(0, h), rng.integers(0, w)
            masks[i, y0 : y0 + rng.integers(1, h), x0 : x0 + rng.integers(1, w)] = True
    masks[n // 2] = False  # empty mask
    masks[n - 1] = True  # full-image mask
    # two equal-area masks at different places (tie in the paint order)
    masks[1] = False
    masks[2] = False
    masks[1, 2:6, 3:8] = True
    masks[2, 4:8, 5:10] = True
    class_map = np.zeros((h, w), dtype=np.int64)
    class_map[: h // 2] = rng.integers(0, num_classes)
    class_map[h // 2 :, : w // 2] = rng.integers(0, num_classes)
    noise = rng.random((h, w)) < 0.3
    class_map[noise] = rng.integers(0, num_classes, noise.sum())
    return masks, class_map


SEEDS = [0, 1, 2, 3, 4, 5]

# ----------------------------------------------------------------------------- vote


@pytest.mark.parametrize("seed", SEEDS)
def test_vote_matches_oracle(seed):
    masks, class_map = random_scene(seed)
    votes = vote(masks, class_map, num_classes=7)
    expected = oracle_vote(masks, class_map)
    assert votes.labels.tolist() == [e[0] for e in expected]
    assert votes.areas.tolist() == [e[2] for e in expected]
    np.testing.assert_allclose(votes.purity, [e[1] for e in expected], rtol=1e-6)
    assert votes.labels.dtype == np.int64
    assert votes.purity.dtype == np.float32
    assert votes.areas.dtype == np.int64


def test_vote_many_masks_matches_oracle():
    rng = np.random.default_rng(11)
    n, h, w = 75, 13, 15  # several blocks of masks; a pixel count no multiple of the lanes
    masks = rng.random((n, h, w)) < rng.uniform(0.0, 0.7, (n, 1, 1))
    class_map = rng.integers(0, 9, (h, w))
    votes = vote(masks, class_map, num_classes=9)
    expected = oracle_vote(masks, class_map)
    assert votes.labels.tolist() == [e[0] for e in expected]
    assert votes.areas.tolist() == [e[2] for e in expected]
    np.testing.assert_allclose(votes.purity, [e[1] for e in expected], rtol=1e-6)


def test_vote_one_class_everywhere_counts_every_pixel_once():
    """A frame of one class (each mask's pixels hit the same counter back to back): the
    interleaved partial histograms still add up to each mask's area, all for that class."""
    rng = np.random.default_rng(5)
    masks = rng.random((21, 37, 41)) < 0.6
    class_map = np.full((37, 41), 4)
    votes = vote(masks, class_map, num_classes=151)
    assert votes.labels.tolist() == [4] * 21
    assert votes.areas.tolist() == masks.sum(axis=(1, 2)).tolist()
    np.testing.assert_array_equal(votes.purity, np.ones(21, np.float32))


def test_vote_empty_and_full_masks():
    class_map = np.array([[1, 1, 2], [3, 1, 2]])
    masks = np.zeros((2, 2, 3), dtype=bool)
    masks[1] = True
    votes = vote(masks, class_map, num_classes=4)
    assert votes.labels.tolist() == [0, 1]
    assert votes.purity.tolist() == [0.0, 0.5]
    assert votes.areas.tolist() == [0, 6]


def test_vote_no_masks():
    class_map = np.array([[1, 2], [3, 0]])
    votes = vote(np.zeros((0, 2, 2), dtype=bool), class_map, num_classes=4)
    assert votes.labels.shape == (0,)
    assert votes.purity.shape == (0,)
    assert votes.areas.shape == (0,)
    assert votes.labels.dtype == np.int64
    assert votes.purity.dtype == np.float32


def test_vote_tie_goes_to_smallest_id():
    class_map = np.array([[5, 5, 3, 3], [9, 9, 0, 0]])
    masks = np.zeros((2, 2, 4), dtype=bool)
    masks[0, 0] = True  # two 5s, two 3s
    masks[1, 1] = True  # two 9s, two 0s
    votes = vote(masks, class_map, num_classes=10)
    assert votes.labels.tolist() == [3, 0]
    assert votes.purity.tolist() == [0.5, 0.5]


def test_vote_overlapping_masks_count_shared_pixels_for_each():
    class_map = np.array([[1, 1, 2, 2]])
    masks = np.array([[[1, 1, 1, 0]], [[0, 1, 1, 1]]], dtype=bool)
    votes = vote(masks, class_map, num_classes=3)
    assert votes.labels.tolist() == [1, 2]
    np.testing.assert_allclose(votes.purity, [2 / 3, 2 / 3], rtol=1e-6)
    assert votes.areas.tolist() == [3, 3]


def test_vote_accepts_uint8_masks_and_small_class_dtypes():
    masks, class_map = random_scene(7)
    ref = vote(masks, class_map, num_classes=7)
    other = vote(masks.astype(np.uint8), class_map.astype(np.uint8), num_classes=7)
    assert other.labels.tolist() == ref.labels.tolist()
    assert other.purity.tolist() == ref.purity.tolist()
    assert other.areas.tolist() == ref.areas.tolist()


@pytest.mark.parametrize("bad", [7, -1, 100])
def test_vote_class_id_out_of_range(bad):
    masks, class_map = random_scene(0)
    class_map[3, 4] = bad
    with pytest.raises(ValueError, match="class_map ids"):
        vote(masks, class_map, num_classes=7)


def test_vote_shape_errors():
    with pytest.raises(ValueError, match="differ in size"):
        vote(np.zeros((1, 3, 3), bool), np.zeros((3, 4), np.int64), 2)
    with pytest.raises(ValueError, match="num_classes"):
        vote(np.zeros((1, 3, 3), bool), np.zeros((3, 3), np.int64), 0)
    with pytest.raises(ValueError, match="integer"):
        vote(np.zeros((1, 3, 3), bool), np.zeros((3, 3), np.float32), 2)


# ----------------------------------------------------------------------------- fuse


def _votes(labels, purity):
    labels = np.asarray(labels, dtype=np.int64)
    return MaskVotes(
        labels=labels,
        purity=np.asarray(purity, dtype=np.float32),
        areas=np.ones(len(labels), np.int64),
    )


def _open(labels, scores, closed_scores):
    return OpenVocabScores(
        labels=np.asarray(labels, dtype=np.int64),
        scores=np.asarray(scores, dtype=np.float32),
        closed_scores=np.asarray(closed_scores, dtype=np.float32),
    )


def test_fuse_closed_only_majority_wins_whatever_the_purity():
    """The paper's closed-set mode: with the open-vocabulary branch off min_purity is unused."""
    votes = _votes([4, 4, 4, 0], [0.5, 0.49, 0.05, 1.0])
    for min_purity in (0.0, 0.5, 1.0):
        out = fuse(votes, min_purity=min_purity)
        assert out.dtype == np.uint16
        assert out.tolist() == [4, 4, 4, 0]


def test_fuse_purity_threshold_inclusive_decides_when_open_vocab_is_consulted():
    votes = _votes([4, 4, 4, 0], [0.5, 0.49, 0.75, 1.0])
    no_result = _open([0, 0, 0, 0], [np.nan] * 4, [np.nan] * 4)
    # exactly at the threshold keeps; below asks the open vocabulary (no result here → 0);
    # a closed label 0 is never kept
    assert fuse(votes, 0.5, no_result, threshold=0.2).tolist() == [4, 0, 4, 0]
    named = _open([9, 9, 9, 9], [0.3] * 4, [0.4, np.nan, 0.4, np.nan])
    assert fuse(votes, 0.5, named, threshold=0.2).tolist() == [4, 9, 4, 9]


def test_fuse_purity_exactly_at_threshold_from_vote():
    class_map = np.array([[2, 2, 2, 5]])
    masks = np.ones((1, 1, 4), dtype=bool)
    votes = vote(masks, class_map, num_classes=6)
    assert votes.purity.tolist() == [0.75]
    no_result = _open([0], [np.nan], [np.nan])
    assert fuse(votes, 0.75, no_result).tolist() == [2]
    assert fuse(votes, 0.7500001, no_result).tolist() == [0]
    assert fuse(votes, 0.7500001).tolist() == [2]  # branch off: majority wins


def test_fuse_open_vocab_cases():
    nan = float("nan")
    votes = _votes(
        [3, 3, 3, 3, 3, 3, 0, 3, 3, 3, 3],
        [0.9, 0.9, 0.9, 0.9, 0.9, 0.2, 1.0, 0.2, 0.2, 0.9, 0.9],
    )
    open_vocab = _open(
        labels=[200, 200, 200, 200, 3, 200, 200, 200, 0, 200, 200],
        scores=[0.30, 0.30, 0.30, 0.10, 0.40, 0.30, 0.30, 0.10, 0.9, nan, 0.30],
        closed_scores=[0.20, 0.35, 0.30, 0.05, 0.10, nan, nan, nan, nan, 0.1, nan],
    )
    out = fuse(votes, min_purity=0.5, open_vocab=open_vocab, threshold=0.25)
    assert out.tolist() == [
        200,  # contradiction with a higher score: open label wins
        3,  # open score lower than the closed name's score: closed kept
        3,  # equal scores are no contradiction
        3,  # open score below threshold: ignored, closed kept
        3,  # open agrees with closed
        200,  # impure closed label: open label clears the threshold
        200,  # closed label 0 is never kept: open label
        0,  # impure closed and open below threshold: unidentified
        0,  # open label 0 is "no result" whatever its score
        3,  # NaN open score: no result, closed kept
        200,  # NaN closed_scores counts as lower: contradiction
    ]


@pytest.mark.parametrize("seed", SEEDS)
def test_fuse_matches_oracle(seed):
    rng = np.random.default_rng(100 + seed)
    n = 200
    closed = rng.integers(0, 6, n)
    purity = rng.choice(np.array([0.0, 0.25, 0.5, 0.75, 1.0], np.float32), n)
    open_labels = rng.choice(np.array([0, 1, 2, 3, 4, 5, 300, 301]), n)
    scores = rng.choice(np.array([np.nan, 0.1, 0.2, 0.3, 0.4], np.float32), n)
    closed_scores = rng.choice(np.array([np.nan, 0.1, 0.2, 0.3, 0.4], np.float32), n)
    votes = _votes(closed, purity)
    open_vocab = _open(open_labels, scores, closed_scores)
    got = fuse(votes, 0.5, open_vocab, threshold=0.2)
    assert got.tolist() == oracle_fuse(
        closed,
        purity,
        0.5,
        open_labels=open_labels,
        scores=scores,
        closed_scores=closed_scores,
        threshold=0.2,
    )
    got_closed_only = fuse(votes, 0.5)
    assert got_closed_only.tolist() == oracle_fuse(closed, purity, 0.5)


def test_fuse_empty_and_errors():
    empty = _votes([], [])
    assert fuse(empty, 0.5).shape == (0,)
    assert fuse(empty, 0.5, _open([], [], []), 0.1).dtype == np.uint16
    with pytest.raises(ValueError, match=r"open_vocab\.scores"):
        fuse(_votes([1, 2], [1.0, 1.0]), 0.5, _open([1, 2], [0.3], [0.1, 0.1]))
    with pytest.raises(ValueError, match="65535"):
        fuse(_votes([70000], [1.0]), 0.5)


# ----------------------------------------------------------------------------- paint


@pytest.mark.parametrize("seed", SEEDS)
def test_paint_matches_oracle(seed):
    masks, class_map = random_scene(seed)
    labels = np.random.default_rng(seed).integers(0, 400, masks.shape[0])
    label_map, instance_map = paint(masks, labels, class_map)
    exp_label, exp_instance = oracle_paint(masks, labels, class_map)
    assert label_map.dtype == np.uint16
    assert instance_map.dtype == np.uint16
    np.testing.assert_array_equal(label_map, exp_label)
    np.testing.assert_array_equal(instance_map, exp_instance)
    # passing the known areas gives the same result
    areas = masks.sum(axis=(1, 2))
    label_map2, instance_map2 = paint(masks, labels, class_map, areas=areas)
    np.testing.assert_array_equal(label_map2, exp_label)
    np.testing.assert_array_equal(instance_map2, exp_instance)


def test_paint_many_masks_spanning_several_blocks():
    rng = np.random.default_rng(42)
    n, h, w = 75, 12, 14
    masks = rng.random((n, h, w)) < rng.uniform(0.02, 0.6, (n, 1, 1))
    class_map = rng.integers(0, 50, (h, w))
    labels = rng.integers(0, 1000, n)
    label_map, instance_map = paint(masks, labels, class_map)
    exp_label, exp_instance = oracle_paint(masks, labels, class_map)
    np.testing.assert_array_equal(label_map, exp_label)
    np.testing.assert_array_equal(instance_map, exp_instance)


def test_paint_smaller_mask_wins_and_uncovered_keep_class():
    class_map = np.full((3, 4), 7)
    masks = np.zeros((2, 3, 4), dtype=bool)
    masks[0, :2, :3] = True  # small, index 0
    masks[1, :, :3] = True  # large, index 1
    label_map, instance_map = paint(masks, np.array([1, 2]), class_map)
    assert label_map.tolist() == [[1, 1, 1, 7], [1, 1, 1, 7], [2, 2, 2, 7]]
    assert instance_map.tolist() == [[1, 1, 1, 0], [1, 1, 1, 0], [2, 2, 2, 0]]


def test_paint_equal_areas_lower_index_on_top():
    class_map = np.zeros((1, 4), dtype=np.int64)
    masks = np.array([[[0, 1, 1, 0]], [[1, 1, 0, 0]], [[0, 0, 1, 1]]], dtype=bool)
    label_map, instance_map = paint(masks, np.array([10, 20, 30]), class_map)
    assert label_map.tolist() == [[20, 10, 10, 30]]
    assert instance_map.tolist() == [[2, 1, 1, 3]]


def test_paint_unidentified_mask_overrides_closed_class():
    class_map = np.full((2, 2), 5, dtype=np.uint8)
    masks = np.zeros((1, 2, 2), dtype=bool)
    masks[0, 0, 0] = True
    label_map, instance_map = paint(masks, np.array([0], np.uint16), class_map)
    assert label_map.tolist() == [[0, 5], [5, 5]]
    assert instance_map.tolist() == [[1, 0], [0, 0]]


def test_paint_full_image_mask_and_empty_mask():
    class_map = np.arange(6).reshape(2, 3)
    masks = np.zeros((2, 2, 3), dtype=bool)
    masks[1] = True
    label_map, instance_map = paint(masks, np.array([9, 4]), class_map)
    assert label_map.tolist() == [[4, 4, 4], [4, 4, 4]]
    assert instance_map.tolist() == [[2, 2, 2], [2, 2, 2]]


def test_paint_no_masks():
    class_map = np.array([[3, 0], [1, 2]], dtype=np.int32)
    label_map, instance_map = paint(np.zeros((0, 2, 2), bool), np.zeros(0, np.uint16), class_map)
    assert label_map.dtype == np.uint16
    assert label_map.tolist() == [[3, 0], [1, 2]]
    assert instance_map.dtype == np.uint16
    assert instance_map.tolist() == [[0, 0], [0, 0]]
    # the result does not alias the input
    label_map[0, 0] = 99
    assert class_map[0, 0] == 3


def test_paint_errors():
    masks = np.ones((2, 2, 2), dtype=bool)
    with pytest.raises(ValueError, match="mask_labels"):
        paint(masks, np.array([1]), np.zeros((2, 2), np.int64))
    with pytest.raises(ValueError, match="differ in size"):
        paint(masks, np.array([1, 2]), np.zeros((2, 3), np.int64))
    with pytest.raises(ValueError, match="class_map"):
        paint(masks, np.array([1, 2]), np.full((2, 2), -1))


@pytest.mark.parametrize("seed", SEEDS)
def test_vote_fuse_paint_end_to_end(seed):
    masks, class_map = random_scene(seed, n=15)
    votes = vote(masks, class_map, num_classes=7)
    labels = fuse(votes, min_purity=0.4)
    label_map, _ = paint(masks, labels, class_map, areas=votes.areas)
    expected_votes = oracle_vote(masks, class_map)
    exp_labels = oracle_fuse(
        [e[0] for e in expected_votes], [np.float32(e[1]) for e in expected_votes], 0.4
    )
    exp_map, _ = oracle_paint(masks, exp_labels, class_map)
    np.testing.assert_array_equal(label_map, exp_map)


# ----------------------------------------------------------------------------- paint order
def test_paint_confidence_order_puts_higher_score_on_top():
    masks = np.zeros((2, 4, 4), bool)
    masks[0, :, :] = True  # large, low score
    masks[1, 1:3, 1:3] = True  # small, high score... then swapped below
    labels = np.array([5, 7])
    class_map = np.zeros((4, 4), np.int64)
    by_area, _ = paint(masks, labels, class_map, order="area")
    assert by_area[1, 1] == 7  # smaller on top
    by_conf, inst = paint(masks, labels, class_map, order="confidence", scores=np.array([0.9, 0.5]))
    assert by_conf[1, 1] == 5 and inst[1, 1] == 1  # higher score on top, even though larger
    by_conf2, _ = paint(masks, labels, class_map, order="confidence", scores=np.array([0.5, 0.9]))
    assert by_conf2[1, 1] == 7
    # equal scores: the lower index ends on top
    tie, _ = paint(masks, labels, class_map, order="confidence", scores=np.array([0.5, 0.5]))
    assert tie[1, 1] == 5


def test_stack_order_errors():
    with pytest.raises(ValueError, match="scores"):
        stack_order(np.array([1, 2]), None, "confidence")
    with pytest.raises(ValueError, match="not one of"):
        stack_order(np.array([1, 2]), np.array([0.1, 0.2]), "random")


@pytest.mark.parametrize("seed", SEEDS)
def test_paint_confidence_matches_oracle(seed):
    masks, class_map = random_scene(seed)
    n = masks.shape[0]
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 400, n)
    scores = rng.choice(np.array([0.2, 0.4, 0.6, 0.8], np.float32), n)  # with ties
    label_map, instance_map = paint(masks, labels, class_map, order="confidence", scores=scores)
    h, w = class_map.shape
    exp = class_map.astype(np.int64).copy()
    exp_inst = np.zeros((h, w), np.int64)
    # paint lowest score first; among equal scores the higher index first (lower ends on top)
    for i in sorted(range(n), key=lambda j: (scores[j], -j)):
        exp[masks[i]] = labels[i]
        exp_inst[masks[i]] = i + 1
    np.testing.assert_array_equal(label_map, exp)
    np.testing.assert_array_equal(instance_map, exp_inst)


# ----------------------------------------------------------------------------- SSA parity
def _ssa_recipe(masks: np.ndarray, class_map: np.ndarray) -> np.ndarray:
    """Semantic-Segment-Anything's closed-set fusion, written with torch as SSA does: start
    from the semantic map, visit the masks by area (largest first, stable), and paint each
    with the top-1 class of ``torch.bincount`` over its pixels."""
    import torch

    classes = torch.from_numpy(class_map.astype(np.int64))
    out = classes.clone()
    order = sorted(range(len(masks)), key=lambda i: -int(masks[i].sum()))
    for i in order:
        valid = torch.from_numpy(masks[i])
        top1 = torch.bincount(classes[valid].flatten()).topk(1).indices
        out[valid] = top1
    return out.numpy()


@pytest.mark.parametrize("seed", SEEDS)
def test_vote_fuse_paint_equals_ssa_recipe(seed):
    """Our vectorised vote → fuse (branch off) → paint(area, closed-set fallback) gives the
    same map as SSA's per-mask loop (scenes without count ties or equal areas, where SSA's
    choice depends on torch's topk/sort internals)."""
    rng = np.random.default_rng(500 + seed)
    h, w, n = 48, 64, 12
    class_map = rng.integers(0, 6, (h, w))
    class_map[:24, :] = rng.choice([1, 1, 1, 2], (24, w))  # regions with clear majorities
    masks = np.zeros((n, h, w), bool)
    for i in range(n):
        y0, x0 = rng.integers(0, h - 8), rng.integers(0, w - 8)
        masks[i, y0 : y0 + rng.integers(4, h - y0), x0 : x0 + rng.integers(4, w - x0)] = True
    areas = masks.sum(axis=(1, 2))
    counts = np.stack([np.bincount(class_map[m], minlength=6) for m in masks])
    top2 = np.sort(counts, axis=1)[:, -2:]
    usable = (top2[:, 1] > top2[:, 0]) & (np.unique(areas).size == n)
    masks = masks[usable] if np.unique(areas).size == n else masks[:0]
    votes = vote(masks, class_map, num_classes=6)
    labels = fuse(votes, min_purity=0.5)
    ours, _ = paint(masks, labels, class_map, areas=votes.areas, order="area")
    ssa = _ssa_recipe(masks, class_map)
    assert len(masks) >= 3
    np.testing.assert_array_equal(ours, ssa)


@pytest.mark.parametrize("shape", [(5, 12, 16), (4, 7, 9), (3, 8, 8), (0, 12, 16)])
def test_mask_areas_count_the_pixels_of_every_mask(shape):
    """The word-popcount path (rows of a multiple of 8 bytes) and the fallback agree with a
    plain count; a non-contiguous view takes the fallback; non-bool masks count ``!= 0``
    (a popcount of 0/255 bytes would count 8 per pixel)."""
    from sfs_ros.fusion import mask_areas

    masks = np.random.default_rng(sum(shape)).random(shape) > 0.6
    expected = np.count_nonzero(masks.reshape(shape[0], shape[1] * shape[2]), axis=1)
    got = mask_areas(masks)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(mask_areas(masks.astype(np.uint8) * 255), expected)
    if shape[0] > 1:
        np.testing.assert_array_equal(mask_areas(masks[::2]), expected[::2])
