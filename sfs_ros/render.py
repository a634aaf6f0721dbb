# SPDX-License-Identifier: AGPL-3.0-or-later
"""Colour images from label maps: palette lookup tables, colour maps, overlays, instance colours.

Everything here is RGB and ``uint8``. Label id 0 ("unidentified") is always black, and so is any
id the lookup table does not cover, so a legend that grew since the table was built never makes
rendering fail. Per-frame functions use a packed ``uint32`` lookup (one gather per pixel) and
OpenCV for blending, which keeps a 1080p frame at a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np

__all__ = ["colorize", "instance_colors", "overlay", "palette_lut", "resize_labels"]

_MAX_LUT = 1 << 16


def palette_lut(
    colors: Mapping[int, tuple[int, int, int]] | Sequence[tuple[int, int, int]],
    size: int | None = None,
) -> np.ndarray:
    """Lookup table of RGB colours indexed by label id.

    Args:
        colors: either a mapping ``id -> (r, g, b)`` or a sequence (or ``(K, 3)`` array) whose
            entry ``i`` is the colour of id ``i``.
        size: number of rows of the table; default: largest id + 1. Ids not given are black.

    Returns:
        ``(K, 3)`` uint8 table with ``K >= 1``. Row 0 (unidentified) is always black, whatever
        ``colors`` says for id 0.

    Raises:
        ValueError: on a negative id, an id ``>= size``, a colour that is not three values in
            ``[0, 255]`` or ``size < 1``.
    """
    if isinstance(colors, Mapping):
        ids = np.fromiter((int(k) for k in colors), dtype=np.int64, count=len(colors))
        values = [colors[k] for k in colors]
    else:
        values = list(colors) if not isinstance(colors, np.ndarray) else colors
        ids = np.arange(len(values), dtype=np.int64)
    rgb = np.asarray(values, dtype=np.int64) if len(values) else np.zeros((0, 3), np.int64)
    if rgb.shape != (ids.shape[0], 3):
        raise ValueError("every colour must be three values (r, g, b)")
    if rgb.size and (rgb.min() < 0 or rgb.max() > 255):
        raise ValueError("colour components must lie in [0, 255]")
    if ids.size and ids.min() < 0:
        raise ValueError(f"label ids must be >= 0, got {int(ids.min())}")
    needed = int(ids.max()) + 1 if ids.size else 1
    if size is None:
        size = needed
    size = int(size)
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if needed > size:
        raise ValueError(f"label id {needed - 1} does not fit a table of size {size}")
    lut = np.zeros((size, 3), np.uint8)
    lut[ids] = rgb
    lut[0] = 0
    return lut


def _gather_rgb(
    index: np.ndarray, lut: np.ndarray, size_hw: tuple[int, int] | None = None
) -> np.ndarray:
    """``lut[index]`` as a contiguous ``(H, W, 3)`` uint8 image; ``index`` already in range.
    With ``size_hw`` the colours are resized (:func:`resize_labels`) before unpacking."""
    packed = np.zeros((lut.shape[0], 4), np.uint8)
    packed[:, :3] = lut
    rgba = np.take(packed.view(np.uint32).reshape(-1), index)
    if size_hw is not None:
        rgba = resize_labels(rgba, size_hw)  # one uint32 per pixel: the colours move whole
    return cv2.cvtColor(rgba.view(np.uint8).reshape(*rgba.shape, 4), cv2.COLOR_RGBA2RGB)


def _check_lut(lut: np.ndarray) -> np.ndarray:
    lut = np.asarray(lut)
    if lut.ndim != 2 or lut.shape[1] != 3 or lut.shape[0] < 1:
        raise ValueError(f"lut must have shape (K, 3) with K >= 1, got {lut.shape}")
    if lut.dtype != np.uint8:
        raise ValueError(f"lut must be uint8, got {lut.dtype}")
    return lut


def _check_label_map(label_map: np.ndarray, name: str = "label_map") -> np.ndarray:
    label_map = np.asarray(label_map)
    if label_map.ndim != 2:
        raise ValueError(f"{name} must have shape (H, W), got {label_map.shape}")
    if not (np.issubdtype(label_map.dtype, np.integer) or label_map.dtype == np.bool_):
        raise ValueError(f"{name} must hold integer ids, got {label_map.dtype}")
    return label_map


def colorize(
    label_map: np.ndarray, lut: np.ndarray, size_hw: tuple[int, int] | None = None
) -> np.ndarray:
    """Colour image of a label map.

    Args:
        label_map: ``(H, W)`` integer label ids.
        lut: ``(K, 3)`` uint8 table from :func:`palette_lut`.
        size_hw: colour image size; default the map's. Otherwise the result equals
            ``colorize(resize_labels(label_map, size_hw), lut)`` (a nearest-neighbour resize
            commutes with a per-pixel table), made by colouring the smaller map first: on a
            working-resolution map a fraction of the table lookups.

    Returns:
        ``(H, W, 3)`` uint8 RGB (``size_hw`` when given). Ids ``>= K`` (and negative ids) are
        black.
    """
    label_map = _check_label_map(label_map)
    lut = _check_lut(lut)
    k = lut.shape[0]
    # One extra black row at index k takes every id the table does not cover.
    ext = np.zeros((k + 1, 3), np.uint8)
    ext[:k] = lut
    if label_map.dtype == np.bool_:
        label_map = label_map.view(np.uint8)
    if np.issubdtype(label_map.dtype, np.unsignedinteger):
        # Clamp ids >= k onto the black row; no clamp needed when the dtype cannot reach k.
        fits = int(np.iinfo(label_map.dtype).max) < k
        index = label_map if fits else np.minimum(label_map, label_map.dtype.type(k))
    else:
        index = np.where((label_map >= 0) & (label_map < k), label_map, np.int64(k))
    if size_hw is not None and tuple(size_hw) == label_map.shape:
        size_hw = None
    return _gather_rgb(index, ext, size_hw)


def resize_keeps_every_pixel(src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> bool:
    """Whether :func:`resize_labels` from ``src_hw`` to ``dst_hw`` shows every source pixel at
    least once (then both maps hold the same set of ids): true when neither side shrinks. The
    source row of output row ``y`` grows by at most 1 per row, starts at 0 and ends at
    ``h - 1`` when ``H >= h``; the same for columns."""
    return dst_hw[0] >= src_hw[0] and dst_hw[1] >= src_hw[1]


def overlay(
    rgb: np.ndarray,
    label_map: np.ndarray,
    lut: np.ndarray,
    alpha: float,
    color: np.ndarray | None = None,
) -> np.ndarray:
    """Blend the label colours into an RGB image.

    ``out = (1 - alpha) * rgb + alpha * colour`` (rounded, uint8) where ``label_map != 0``;
    unidentified pixels (id 0) keep the input. Ids the table does not cover blend with black.

    Args:
        rgb: ``(H, W, 3)`` uint8 RGB image (not modified).
        label_map: ``(H, W)`` integer label ids.
        lut: ``(K, 3)`` uint8 table from :func:`palette_lut`.
        alpha: colour weight in ``[0, 1]``.
        color: ``colorize(label_map, lut)`` when the caller has made it already (it is then
            used as given).

    Returns:
        ``(H, W, 3)`` uint8 RGB, a new array.

    Raises:
        ValueError: when ``alpha`` is outside ``[0, 1]`` or the shapes do not match.
    """
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    rgb = np.asarray(rgb)
    label_map = _check_label_map(label_map)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    if rgb.shape[:2] != label_map.shape:
        raise ValueError(f"rgb {rgb.shape[:2]} and label_map {label_map.shape} differ in size")
    if alpha == 0.0:
        return rgb.copy()
    if color is None:
        color = colorize(label_map, lut)
    elif color.shape != rgb.shape or color.dtype != np.uint8:
        raise ValueError(f"color must be (H, W, 3) uint8 like rgb, got {color.shape} {color.dtype}")
    out = cv2.addWeighted(rgb, 1.0 - alpha, color, alpha, 0.0)
    unidentified = (label_map == 0).view(np.uint8)
    cv2.copyTo(rgb, unidentified, out)
    return out


def _instance_lut(size: int) -> np.ndarray:
    """``(size, 3)`` uint8 colours for instance ids ``0 .. size-1``; id 0 black.

    Each id goes through a bijective 21-bit integer hash (odd multiplications and xor-shifts
    modulo 2**21), whose three 7-bit groups become the channels, spread over ``[64, 255]``. So
    ids below 2**21 get pairwise distinct, reasonably bright colours, the same on every run.
    """
    mask = np.uint64((1 << 21) - 1)
    x = np.arange(size, dtype=np.uint64)
    x = (x * np.uint64(0x0C2B2AE3D)) & mask
    x ^= x >> np.uint64(11)
    x = (x * np.uint64(0x165667B1)) & mask
    x ^= x >> np.uint64(10)
    seven = np.uint64(0x7F)
    groups = np.stack([x & seven, (x >> np.uint64(7)) & seven, (x >> np.uint64(14)) & seven], 1)
    lut = (64 + (groups.astype(np.int64) * 191 + 63) // 127).astype(np.uint8)
    lut[0] = 0
    return lut


def instance_colors(instance_map: np.ndarray) -> np.ndarray:
    """Colour image of an instance map: a deterministic, distinct colour per instance id.

    Args:
        instance_map: ``(H, W)`` integer instance ids (0 = no instance), e.g. from
            :func:`sfs_ros.fusion.paint`.

    Returns:
        ``(H, W, 3)`` uint8 RGB; id 0 is black, ids below 2**21 get pairwise distinct colours
        (the same id always gets the same colour; larger ids repeat them with period
        2**21 - 1). Negative ids are black.
    """
    instance_map = _check_label_map(instance_map, "instance_map")
    if instance_map.size == 0:
        return np.zeros((*instance_map.shape, 3), np.uint8)
    top = int(instance_map.max())
    if top < _MAX_LUT:
        return colorize(instance_map, _instance_lut(max(top, 0) + 1))
    # Larger ids (wide dtypes): fold them onto 1 .. 2**21 - 1, where the hash is a bijection.
    period = (1 << 21) - 1
    folded = np.where(instance_map > 0, (instance_map - 1) % period + 1, 0)
    return colorize(folded, _instance_lut(int(folded.max()) + 1))


def resize_labels(label_map: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label (or instance) map; never invents new ids.

    Output pixel ``(y, x)`` takes the input pixel whose area contains the output pixel's centre:
    row ``((2y + 1) * h) // (2H)``, column ``((2x + 1) * w) // (2W)``, in exact integer
    arithmetic (OpenCV's ``INTER_NEAREST`` uses ``floor(y * h / H)`` in floating point, which is
    biased towards the top-left and off by one for some sizes). An integer up-scaling therefore
    replicates every pixel. Two 1-D gathers (``np.take``) do the work for any dtype.

    Args:
        label_map: ``(h, w)`` array of any dtype (uint16 label ids, instance ids, bool, ...).
        size_hw: target ``(H, W)``.

    Returns:
        ``(H, W)`` array of the same dtype. When the size already matches, ``label_map`` itself
        is returned (no copy).

    Raises:
        ValueError: on a non-2-D map, an empty map or a non-positive target size.
    """
    label_map = np.asarray(label_map)
    if label_map.ndim != 2 or label_map.size == 0:
        raise ValueError(f"label_map must be a non-empty (h, w) array, got {label_map.shape}")
    out_h, out_w = (int(v) for v in size_hw)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"size_hw must be positive, got {size_hw}")
    h, w = label_map.shape
    if (out_h, out_w) == (h, w):
        return label_map
    rows = ((2 * np.arange(out_h, dtype=np.int64) + 1) * h) // (2 * out_h)
    cols = ((2 * np.arange(out_w, dtype=np.int64) + 1) * w) // (2 * out_w)
    return np.take(np.take(label_map, rows, axis=0), cols, axis=1)
