# SPDX-License-Identifier: AGPL-3.0-or-later
"""Input-resolution edges (sfs_ros/edges.py) against the full-resolution references: torch's
bilinear upsampling, ultralytics' ``process_mask_native`` and the per-pixel top class."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sfs_ros import fusion
from sfs_ros.edges import (
    UNSURE,
    ClassMapSampler,
    axis_sampling,
    bilinear_at,
    nonuniform_blocks,
    sharpen_masks,
)
from sfs_ros.models.fastsam import _crop_to_boxes


def _torch_upsample(grid: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """(h, w) or (h, w, C) → the same upsampled by torch (bilinear, align_corners=False)."""
    t = torch.from_numpy(np.ascontiguousarray(grid, np.float32))
    t = t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]
    up = torch.nn.functional.interpolate(t, size=out_hw, mode="bilinear", align_corners=False)
    up = up[0, 0] if grid.ndim == 2 else up[0].permute(1, 2, 0)
    return up.numpy()


def _smooth_logits(rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
    """(n, h, w) blob-shaped logits: positive inside a random ellipse, smooth elsewhere."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for _ in range(n):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(2, h / 2), rng.uniform(2, w / 2)
        d = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
        out.append((1.0 - d) * rng.uniform(2, 8) + rng.normal(0, 0.3, (h, w)))
    return np.asarray(out, np.float32)


@pytest.mark.parametrize(("n_in", "n_out"), [(60, 480), (80, 640), (120, 480), (37, 333), (5, 5)])
def test_bilinear_at_equals_torch_interpolate(n_in, n_out):
    rng = np.random.default_rng(n_in)
    grid = rng.normal(size=(n_in, n_in + 3)).astype(np.float32)
    out_hw = (n_out, n_out + 7)
    ref = _torch_upsample(grid, out_hw)
    ay, ax = axis_sampling(n_in, out_hw[0]), axis_sampling(n_in + 3, out_hw[1])
    ys, xs = np.nonzero(np.ones(out_hw, bool))
    ours = bilinear_at(grid, ys, xs, ay, ax).reshape(out_hw)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-6)
    # channels-last grids: the same per channel
    grid3 = rng.normal(size=(n_in, n_in + 3, 4)).astype(np.float32)
    ref3 = _torch_upsample(grid3, out_hw)
    ours3 = bilinear_at(grid3, ys, xs, ay, ax).reshape(*out_hw, 4)
    np.testing.assert_allclose(ours3, ref3, rtol=0, atol=2e-6)


def test_nonuniform_blocks_marks_every_block_that_holds_two_values():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 3, (9, 11)) * (rng.random((9, 11)) < 0.3)
    got = nonuniform_blocks(values)
    h, w = values.shape
    for r in range(h):
        for c in range(w):
            block = values[r : min(r + 2, h), c : min(c + 2, w)]
            assert got[r, c] == (len(np.unique(block)) > 1), (r, c)


def _retina_instances(logits, boxes, top_first, out_hw):
    """Reference: every mask upsampled and cropped as process_mask_native, painted in order."""
    from ultralytics.utils import ops

    up = torch.nn.functional.interpolate(
        torch.from_numpy(logits)[None], size=out_hw, mode="bilinear", align_corners=False
    )[0]
    masks = ops.crop_mask(up.gt(0).to(torch.uint8), torch.from_numpy(boxes)).numpy() > 0
    inst = np.zeros(out_hw, np.uint16)
    for index in top_first[::-1]:
        inst[masks[index]] = index + 1
    return inst, up.numpy()


@pytest.mark.parametrize(("kind", "n"), [("smooth", 12), ("noise", 12), ("smooth", 80)])
@pytest.mark.parametrize(
    ("work_hw", "image_hw"),
    [((60, 80), (480, 640)), ((120, 160), (480, 640)), ((45, 60), (333, 444))],
)
def test_sharpen_masks_equals_painting_retina_masks(kind, n, work_hw, image_hw):
    """Every pixel equals painting ultralytics' input-resolution masks in the same order, for
    blob-shaped masks, noise masks (every block is an edge) and many overlapping masks."""
    rng = np.random.default_rng(sum(work_hw) + (kind == "noise") + n)
    h, w = work_hw
    if kind == "smooth":
        logits = _smooth_logits(rng, n, h, w)
    else:
        logits = rng.normal(size=(n, h, w)).astype(np.float32)
    big_h, big_w = image_hw
    x1 = rng.uniform(-10, big_w * 0.7, n)
    y1 = rng.uniform(-10, big_h * 0.7, n)
    boxes = np.stack(
        [x1, y1, x1 + rng.uniform(5, big_w, n), y1 + rng.uniform(5, big_h, n)], 1
    ).astype(np.float32)
    boxes[0] = [0, 0, big_w, big_h]  # one full-image box
    boxes[1, :2] = boxes[1, :2].round()  # edges on whole pixels
    masks = logits > 0
    _crop_to_boxes(masks, torch.from_numpy(boxes), image_hw)
    areas = fusion.mask_areas(masks)
    _, inst_work = fusion.paint(masks, np.arange(1, n + 1), np.zeros(work_hw, np.uint16), areas)
    top_first = fusion.stack_order(areas, None, "area")
    ours = sharpen_masks(inst_work, logits, boxes, top_first, image_hw)
    ref, up = _retina_instances(logits, boxes, top_first, image_hw)
    differ = ours != ref
    # a pixel may differ only where the reference's deciding logit is within rounding of 0
    near_zero = (np.abs(up) < 1e-5).any(axis=0)
    assert not (differ & ~near_zero).any(), f"{int((differ & ~near_zero).sum())} pixels differ"
    if kind == "smooth":
        nearest = inst_work.take(axis_sampling(h, big_h).i0, 0).take(axis_sampling(w, big_w).i0, 1)
        assert (nearest != ref).sum() > 100  # the staircase it fixes is really there


def test_class_map_sampler_equals_upsampled_argmax():
    rng = np.random.default_rng(3)
    hl, wl, c = 32, 40, 6
    # smooth class regions: per-class blobs
    logits = np.moveaxis(_smooth_logits(rng, c, hl, wl), 0, -1).copy()
    out_hw = (240, 320)
    up = _torch_upsample(logits, out_hw)
    ref = up.argmax(-1)
    for min_conf in (0.0, 0.4):
        decided = logits.argmax(-1).astype(np.int32)
        if min_conf:
            p = np.exp(logits - logits.max(-1, keepdims=True))
            decided[(1 / p.sum(-1)) < min_conf] = UNSURE
        got = ClassMapSampler(decided, lambda: logits, min_conf)(out_hw)
        want = ref.astype(np.int32)
        if min_conf:
            pu = np.exp(up - up.max(-1, keepdims=True))
            want = np.where(1 / pu.sum(-1) < min_conf, UNSURE, want)
            # the documented exception: blocks of four unsure cells stay unsure
            ay, ax = axis_sampling(hl, out_hw[0]), axis_sampling(wl, out_hw[1])
            all_unsure = np.ones((hl, wl), bool)
            for dy in (0, 1):
                for dx in (0, 1):
                    shifted = decided[np.minimum(np.arange(hl) + dy, hl - 1)][
                        :, np.minimum(np.arange(wl) + dx, wl - 1)
                    ]
                    all_unsure &= shifted == UNSURE
            excused = all_unsure.take(ay.i0, 0).take(ax.i0, 1)
            assert (got[excused] == UNSURE).all()
            want = np.where(excused, UNSURE, want)
            assert (want == UNSURE).any() and (want != UNSURE).any()
        # ties or near-ties of two classes may round either way
        top2 = np.sort(up, -1)[..., -2:]
        close = (top2[..., 1] - top2[..., 0]) < 1e-5
        assert not ((got != want) & ~close).any()
    nearest = (
        logits.argmax(-1).take(axis_sampling(hl, 240).i0, 0).take(axis_sampling(wl, 320).i0, 1)
    )
    assert (nearest != ref).sum() > 100
