"""Input-resolution labels at working-resolution cost: re-decide only the pixels near edges.

The pipeline votes and paints on the working grid (the FastSAM prototype grid, 1/4 of the
network input). Enlarging that map by nearest neighbour gives staircase edges. Deciding every
pixel at input resolution (ultralytics' ``retina_masks``: every mask's logits bilinearly
upsampled to the image, then cropped to its box) is exact but costs N x H x W work per frame.

Bilinear interpolation is a convex combination of the four grid cells around a pixel (its
*support*), so where those four cells agree, the pixel agrees with them:

* a mask logit whose four support cells are all > 0 (all <= 0) is > 0 (<= 0) at the pixel;
* a class map whose four support cells have the same top class ``c`` has top class ``c`` at
  the pixel (``l_c >= l_j`` at every corner survives any convex combination), and its softmax
  probability is at least the smallest of the four (``1 / p_c`` is convex in the logits).

So this module takes the working-resolution result and re-decides at input resolution only the
pixels whose support is not uniform (the *band* along label, instance and box edges), with the
same arithmetic as torch's ``F.interpolate(mode="bilinear", align_corners=False)``:

* :func:`sharpen_masks` gives the instance map of painting ultralytics' input-resolution masks
  (``process_mask_native``) in the working paint order;
* :class:`ClassMapSampler` gives the closed-set class map at input resolution as transformers'
  post-processing (bilinearly upsampled logits, then the per-pixel top class), with
  ``min_confidence``.

docs/parity.md lists the tests that compare both with the references pixel by pixel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = [
    "AxisSampling",
    "ClassMapSampler",
    "axis_sampling",
    "bilinear_at",
    "nonuniform_blocks",
    "sharpen_masks",
]

UNSURE = -1  # a closed-set pixel below min_confidence (models/closed_set.py uses the same)


@dataclass(frozen=True)
class AxisSampling:
    """torch's bilinear sampling (``align_corners=False``) of one axis, ``n_in`` → ``n_out``.

    Output index ``o`` reads input cells ``i0[o]`` and ``i1[o]`` (equal at the last cell)
    with weights ``w0[o]`` and ``w1[o]`` (float32, as torch computes them on the CPU).
    """

    i0: np.ndarray
    i1: np.ndarray
    w0: np.ndarray
    w1: np.ndarray


@lru_cache(maxsize=64)
def axis_sampling(n_in: int, n_out: int) -> AxisSampling:
    """The sampling of one axis resized from ``n_in`` to ``n_out`` cells (cached)."""
    if n_in < 1 or n_out < 1:
        raise ValueError(f"axis sizes must be >= 1, got {n_in} -> {n_out}")
    f32 = np.float32
    scale = f32(n_in) / f32(n_out)
    # scale * (o + 0.5) - 0.5 rounded once, as torch's CPU build computes it (a fused
    # multiply-add): the same float32 source coordinates and weights, tested
    src = (np.float64(scale) * (np.arange(n_out) + 0.5) - 0.5).astype(f32)
    src = np.maximum(src, f32(0.0))
    i0 = src.astype(np.int64)  # truncation = floor for src >= 0
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = np.clip(src - i0.astype(f32), f32(0.0), f32(1.0)).astype(f32)
    w0 = (f32(1.0) - w1).astype(f32)
    for a in (i0, i1, w0, w1):
        a.setflags(write=False)
    return AxisSampling(i0, i1, w0, w1)


def bilinear_at(
    grid: np.ndarray, ys: np.ndarray, xs: np.ndarray, ay: AxisSampling, ax: AxisSampling
) -> np.ndarray:
    """Bilinear values of ``grid`` ((h, w) or (h, w, C) float32) at output pixels
    ``(ys, xs)``: ``(K,)`` or ``(K, C)``. The same products and sums as torch's kernel:
    ``h0 * (w0 * v00 + w1 * v01) + h1 * (w0 * v10 + w1 * v11)``."""
    y0, y1 = ay.i0[ys], ay.i1[ys]
    x0, x1 = ax.i0[xs], ax.i1[xs]
    wy0, wy1, wx0, wx1 = ay.w0[ys], ay.w1[ys], ax.w0[xs], ax.w1[xs]
    if grid.ndim == 3:
        wy0, wy1, wx0, wx1 = wy0[:, None], wy1[:, None], wx0[:, None], wx1[:, None]
    top = grid[y0, x0] * wx0 + grid[y0, x1] * wx1
    bottom = grid[y1, x0] * wx0 + grid[y1, x1] * wx1
    return top * wy0 + bottom * wy1


def nonuniform_blocks(values: np.ndarray) -> np.ndarray:
    """(h, w) bool: block ``(r, c)`` (cells ``r..r+1`` x ``c..c+1``, clipped at the last row
    and column) holds more than one value of ``values``."""
    h, w = values.shape
    out = np.zeros((h, w), bool)
    if w > 1:
        right = values[:, :-1] != values[:, 1:]  # (h, w-1): cell differs from its right one
        out[:, :-1] |= right
        out[:-1, :-1] |= right[1:]
    if h > 1:
        down = values[:-1] != values[1:]  # (h-1, w)
        out[:-1] |= down
        if w > 1:
            out[:-1, :-1] |= down[:, 1:]
    return out


def _expand(blocks: np.ndarray, ay: AxisSampling, ax: AxisSampling) -> np.ndarray:
    """A block map at output resolution: pixel ``(y, x)`` takes block ``(i0[y], i0[x])``."""
    return blocks.take(ay.i0, axis=0).take(ax.i0, axis=1)


def _block_all(cells: np.ndarray) -> np.ndarray:
    """(..., h, w) bool → whether every cell of block ``(r, c)`` is true."""
    out = cells.copy()
    out[..., :-1] &= cells[..., 1:]
    out[..., :-1, :] &= out[..., 1:, :].copy()
    return out


def _some_positive(
    positive: np.ndarray, ranks: np.ndarray, rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """Whether block ``(rows, cols)`` of mask ``ranks`` holds a positive cell (broadcast
    index arrays into ``positive`` (N, h, w))."""
    h, w = positive.shape[1:]
    down, right = np.minimum(rows + 1, h - 1), np.minimum(cols + 1, w - 1)
    return (
        positive[ranks, rows, cols]
        | positive[ranks, rows, right]
        | positive[ranks, down, cols]
        | positive[ranks, down, right]
    )


def _block_max(values: np.ndarray) -> np.ndarray:
    """(h, w) → the largest value of each block (cells ``r..r+1`` x ``c..c+1``, clipped)."""
    out = values.copy()
    np.maximum(out[:, :-1], values[:, 1:], out=out[:, :-1])
    np.maximum(out[:-1], out[1:].copy(), out=out[:-1])
    return out


@dataclass(frozen=True)
class _BoxAxis:
    """One axis of every box against the blocks of the working grid ((N, n) bool each).

    ``all_in``: every pixel of the block and both of its cells are inside the box;
    ``touch``: some pixel or cell of the block is; ``ambiguous``: neither all in nor all out
    (pixels and cells may disagree: on the working grid a cell is kept when its centre lies in
    the box, at input resolution a pixel when its index does, ultralytics' ``crop_mask``).
    """

    all_in: np.ndarray
    touch: np.ndarray
    ambiguous: np.ndarray

    @classmethod
    def of(cls, low: np.ndarray, high: np.ndarray, axis: AxisSampling, cells: int) -> _BoxAxis:
        """Boxes ``low <= index < high`` (pixels) on an axis of ``cells`` cells."""
        n_px = len(axis.i0)
        index = np.arange(cells)
        first = np.searchsorted(axis.i0, index, side="left")  # pixels of block b
        last = np.searchsorted(axis.i0, index, side="right") - 1  # (none: last < first)
        has_px = last >= first
        low, high = low[:, None], high[:, None]
        px_all = has_px & (first >= low) & (last < high)
        px_any = has_px & (last >= low) & (first < high)
        scale = cells / n_px  # cells per pixel; cell c's centre is c + 0.5 on the cell grid
        centre = index + 0.5
        cell_in = (centre >= low * scale) & (centre <= high * scale)  # (N, cells)
        nxt = np.minimum(index + 1, cells - 1)
        cells_all = cell_in & cell_in[:, nxt]
        cells_any = cell_in | cell_in[:, nxt]
        all_in = px_all & cells_all
        touch = px_any | cells_any
        ambiguous = touch & ~all_in
        # the float32 rounding of the working crop rule: a block next to an ambiguous one too
        ambiguous[:, 1:] |= ambiguous[:, :-1].copy()
        ambiguous[:, :-1] |= ambiguous[:, 1:].copy()
        return cls(all_in, touch | ambiguous, ambiguous)


def sharpen_masks(
    instance_work: np.ndarray,
    logits: np.ndarray,
    crop_boxes: np.ndarray,
    top_first: np.ndarray,
    image_hw: tuple[int, int],
) -> np.ndarray:
    """The instance map at input resolution of the masks painted on the working grid.

    Args:
        instance_work: (h, w) uint16, ``1 + index`` of the mask shown per cell, 0 = none
            (:func:`sfs_ros.fusion.paint` of the working masks).
        logits: (N, h, w) float32 mask logits on the working grid, *not* cropped to boxes.
        crop_boxes: (N, 4) xyxy boxes in input pixels the masks are cropped to (the boxes
            ``process_mask_native`` crops with).
        top_first: (N,) mask indices, the one painted on top first
            (:func:`sfs_ros.fusion.stack_order`: the working paint order).
        image_hw: (H, W) of the input image.

    Returns:
        (H, W) uint16: at every pixel ``1 + index`` of the top mask among those whose
        input-resolution mask (``bilinear logit > 0`` and pixel index inside the box) covers
        it, 0 where none does.
    """
    h, w = instance_work.shape
    ay, ax = axis_sampling(h, int(image_hw[0])), axis_sampling(w, int(image_hw[1]))
    n = len(logits)
    instance = _expand(instance_work, ay, ax)
    if not n:
        return instance
    order = np.asarray(top_first, np.int64)  # rank -> mask index
    positive = (logits > 0)[order]  # (N, h, w) in paint order: rank 0 on top
    boxes = np.asarray(crop_boxes, np.float64)[order]
    box_x = _BoxAxis.of(boxes[:, 0], boxes[:, 2], ax, w)
    box_y = _BoxAxis.of(boxes[:, 1], boxes[:, 3], ay, h)
    rank_of = np.full(n + 1, n, np.int64)  # instance id -> rank; 0 (none) -> n, below all
    rank_of[order + 1] = np.arange(n)
    # Blocks the working paint may have wrong: the shown mask changes inside the block, or a
    # box edge crosses it where its mask is positive and not under a mask above it.
    band = nonuniform_blocks(instance_work)
    open_rank = _block_max(rank_of[instance_work])  # the lowest-ranked mask shown in a block
    ranks, block_cols = np.nonzero(box_x.ambiguous)  # (mask, block column) pairs
    if len(ranks):
        all_rows = np.arange(h)[None, :]
        hit = _some_positive(positive, ranks[:, None], all_rows, block_cols[:, None])
        hit &= box_y.touch[ranks] & (ranks[:, None] <= open_rank[:, block_cols].T)
        pair, r = np.nonzero(hit)
        band[r, block_cols[pair]] = True
    ranks, block_rows = np.nonzero(box_y.ambiguous)
    if len(ranks):
        all_cols = np.arange(w)[None, :]
        hit = _some_positive(positive, ranks[:, None], block_rows[:, None], all_cols)
        hit &= box_x.touch[ranks] & (open_rank[block_rows] >= ranks[:, None])
        pair, c = np.nonzero(hit)
        band[block_rows[pair], c] = True
    rows, cols = np.nonzero(band)
    if not len(rows):
        return instance
    # Per band block: its candidates in paint order; a block whose first candidate covers
    # every pixel of it (all four cells positive, every pixel in the box) is decided whole.
    all_ranks = np.arange(n)[:, None]
    cand = _some_positive(positive, all_ranks, rows[None], cols[None])  # (N, B)
    cand &= box_y.touch[:, rows] & box_x.touch[:, cols]
    every = _block_all(positive[:, rows.min() : rows.max() + 2])
    full = every[:, rows - rows.min(), cols] & box_y.all_in[:, rows] & box_x.all_in[:, cols]
    first = cand.argmax(axis=0)
    has = cand[first, np.arange(len(rows))]
    whole = np.where(has & full[first, np.arange(len(rows))], order[first] + 1, 0)
    block_value = np.zeros((h, w), np.uint16)
    block_value[rows, cols] = whole
    pending = np.zeros((h, w), bool)
    pending[rows, cols] = has & (whole == 0)
    band_px = _expand(band, ay, ax)
    instance[band_px] = _expand(block_value, ay, ax)[band_px]
    ys, xs = np.nonzero(_expand(pending, ay, ax))
    if len(ys):
        instance[ys, xs] = _decide_pixels(
            (ys, xs), cand, band, logits=logits, order=order, boxes=boxes, sampling=(ay, ax)
        )
    return instance


def _decide_pixels(
    pixels: tuple[np.ndarray, np.ndarray],
    cand: np.ndarray,
    band: np.ndarray,
    *,
    logits: np.ndarray,
    order: np.ndarray,
    boxes: np.ndarray,
    sampling: tuple[AxisSampling, AxisSampling],
) -> np.ndarray:
    """``1 + index`` of the top mask covering each pixel ``(ys, xs)`` (0 = none): each pixel
    walks its block's candidates (``cand``, (N, B) over the band blocks in row-major order)
    in paint order until one covers it (its box holds the pixel index and its bilinear logit
    is > 0)."""
    ys, xs = pixels
    ay, ax = sampling
    w = band.shape[1]
    block_number = np.full(band.size, -1, np.int64)
    block_number[np.flatnonzero(band)] = np.arange(cand.shape[1])
    blocks = block_number[ay.i0[ys] * w + ax.i0[xs]]
    # candidate lists: ranks of each block's candidates, concatenated per block
    ranks_by_block = np.nonzero(cand.T)  # (block, rank), rank ascending within a block
    start = np.searchsorted(ranks_by_block[0], np.arange(cand.shape[1]), side="left")
    count = np.bincount(ranks_by_block[0], minlength=cand.shape[1])
    out = np.zeros(len(ys), np.uint16)
    active = np.flatnonzero(count[blocks] > 0)
    depth = 0
    while len(active):
        b = blocks[active]
        rank = ranks_by_block[1][start[b] + depth]
        y, x = ys[active], xs[active]
        x1, y1, x2, y2 = (boxes[rank, k] for k in range(4))
        member = (x >= x1) & (x < x2) & (y >= y1) & (y < y2)
        if member.any():
            m = np.flatnonzero(member)
            value = _bilinear_stack(logits, order[rank[m]], (y[m], x[m]), sampling)
            member[m] = value > 0
        out[active[member]] = order[rank[member]] + 1
        depth += 1
        active = active[~member & (count[b] > depth)]
    return out


def _bilinear_stack(
    logits: np.ndarray,
    index: np.ndarray,
    pixels: tuple[np.ndarray, np.ndarray],
    sampling: tuple[AxisSampling, AxisSampling],
) -> np.ndarray:
    """:func:`bilinear_at` of mask ``index[k]``'s logits at pixel ``(ys[k], xs[k])``."""
    ys, xs = pixels
    ay, ax = sampling
    y0, y1 = ay.i0[ys], ay.i1[ys]
    x0, x1 = ax.i0[xs], ax.i1[xs]
    wx0, wx1 = ax.w0[xs], ax.w1[xs]
    top = logits[index, y0, x0] * wx0 + logits[index, y0, x1] * wx1
    bottom = logits[index, y1, x0] * wx0 + logits[index, y1, x1] * wx1
    return top * ay.w0[ys] + bottom * ay.w1[ys]


class ClassMapSampler:
    """A closed-set class map at input resolution from a logit grid, exact where it decides.

    ``decided``: (hl, wl) int32 top class per logit cell (:data:`UNSURE` below
    ``min_confidence``); ``logits``: (hl, wl, C) float32 (any strides). Pixels whose four
    support cells hold one class keep it; the others get the top class of their bilinearly
    interpolated logits (and :data:`UNSURE` below ``min_confidence``). Blocks whose four cells
    are all unsure stay unsure (the one place this is not the full-resolution computation:
    interpolating four unsure cells can give a pixel above the threshold).
    """

    def __init__(
        self,
        decided: np.ndarray,
        logits: Callable[[], np.ndarray],
        min_confidence: float,
    ) -> None:
        self.decided = decided
        self._logits = logits
        self.min_confidence = float(min_confidence)

    def __call__(self, out_hw: tuple[int, int]) -> np.ndarray:
        """(H, W) int32 class indices (:data:`UNSURE` = below ``min_confidence``)."""
        hl, wl = self.decided.shape
        ay, ax = axis_sampling(hl, int(out_hw[0])), axis_sampling(wl, int(out_hw[1]))
        out = _expand(self.decided, ay, ax)
        ys, xs = np.nonzero(_expand(nonuniform_blocks(self.decided), ay, ax))
        if len(ys):
            out[ys, xs] = decide_classes(
                bilinear_at(self._logits(), ys, xs, ay, ax), self.min_confidence
            )
        return out


def decide_classes(logits: np.ndarray, min_confidence: float) -> np.ndarray:
    """(K,) int32 top class of (K, C) logits, :data:`UNSURE` where its softmax probability
    is below ``min_confidence`` (> 0)."""
    index = logits.argmax(axis=1).astype(np.int32)
    if min_confidence > 0.0 and len(index):
        top = logits.max(axis=1, keepdims=True)
        denominator = np.exp(logits - top).sum(axis=1)
        index[1.0 / denominator < min_confidence] = UNSURE
    return index
