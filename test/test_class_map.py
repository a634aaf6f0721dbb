# SPDX-License-Identifier: AGPL-3.0-or-later
"""The closed-set class map: top class and softmax floor, against the plain softmax."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sfs_ros.models.closed_set import UNSURE, class_index_map


def reference(logits: torch.Tensor, min_confidence: float) -> np.ndarray:
    """The textbook map: softmax over classes, top class, the floor on its probability."""
    prob, index = logits.softmax(0).max(0)
    if min_confidence > 0.0:
        index[prob < min_confidence] = UNSURE
    return index.to(torch.int32).numpy()


def clear_median(logits: torch.Tensor) -> float:
    """A floor near the median top-class probability, midway between two pixels' probabilities
    that differ by far more than rounding (the two ways to compute them agree to ~1e-6)."""
    probs = np.sort(logits.softmax(0).max(0).values.numpy().ravel())
    k = probs.size // 2
    while probs[k + 1] - probs[k] < 1e-4 * probs[k]:
        k += 1
    return float((probs[k] + probs[k + 1]) / 2)


def channels_last(logits: torch.Tensor) -> torch.Tensor:
    """The same (C, h, w) values with the classes contiguous per pixel (the exported
    SegFormer's layout, upsampled)."""
    view = logits.permute(1, 2, 0).contiguous().permute(2, 0, 1)
    assert view.stride()[0] == 1 and torch.equal(view, logits)
    return view


@pytest.mark.parametrize("layout", ["planar", "channels_last"])
@pytest.mark.parametrize("floor", ["off", "median", "fixed"])
@pytest.mark.parametrize("classes", [2, 19, 150])
def test_class_map_equals_softmax_floor(classes: int, floor: str, layout: str) -> None:
    generator = torch.Generator().manual_seed(classes)
    logits = torch.randn(classes, 120, 160, generator=generator) * 2.5
    # "median": about half the pixels fall below the floor; "fixed": the shipped 0.1
    min_confidence = {"off": 0.0, "median": clear_median(logits), "fixed": 0.1}[floor]
    expected = reference(logits, min_confidence)
    scratch = logits.clone() if layout == "planar" else channels_last(logits)
    got = class_index_map(scratch, min_confidence)
    assert got.dtype == np.int32 and got.shape == (120, 160)
    np.testing.assert_array_equal(got, expected)
    if floor == "median":
        assert 0.4 < float((expected == UNSURE).mean()) < 0.6


def test_floor_probabilities_match_softmax_within_1e_5():
    """Per pixel, a floor just under its softmax maximum keeps the class and one just over it
    drops it: the probability the floor sees is the softmax's within 1e-5 relative."""
    logits = torch.randn(150, 4, 5, generator=torch.Generator().manual_seed(1)) * 4
    prob, index = logits.softmax(0).max(0)
    for y in range(4):
        for x in range(5):
            pixel = logits[:, y : y + 1, x : x + 1]
            p = float(prob[y, x])
            assert class_index_map(pixel.clone(), p * (1 - 1e-5))[0, 0] == int(index[y, x])
            assert class_index_map(pixel.clone(), p * (1 + 1e-5))[0, 0] == UNSURE


def test_segformer_class_map_leaves_the_network_output_intact(pipeline):
    """class_index_map works in place on the upsampled copy, never on the raw logits (also
    when the working size equals the logits' size)."""
    segmenter = pipeline.segmenters[0]
    rgb = np.random.default_rng(2).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    raw = segmenter.infer(rgb)
    before = raw.clone()
    for out_hw in ((12, 16), tuple(raw.shape[2:])):
        segmenter.class_map(raw, out_hw)
        assert torch.equal(raw, before)


def test_exact_floor_boundary() -> None:
    """Two equal logits: probability exactly 0.5 is kept at a floor of 0.5, dropped above it."""
    logits = torch.zeros(2, 1, 3)
    logits[1, 0, 2] = 10.0  # last pixel: class 1, sure
    assert class_index_map(logits.clone(), 0.5).tolist() == [[0, 0, 1]]
    assert class_index_map(logits.clone(), 0.51).tolist() == [[UNSURE, UNSURE, 1]]


def test_no_floor_is_plain_argmax() -> None:
    logits = torch.tensor([[[1.0, 3.0]], [[2.0, -1.0]], [[0.5, 2.9]]])
    assert class_index_map(logits.clone(), 0.0).tolist() == [[1, 0]]
