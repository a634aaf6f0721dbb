# SPDX-License-Identifier: AGPL-3.0-or-later
"""Rendering: palette tables, colour maps, overlays, instance colours and label resizing.

Expected values come from plain per-pixel Python loops, independent of ``sfs_ros.render``.
"""

from __future__ import annotations

import numpy as np
import pytest

from sfs_ros.render import (
    colorize,
    instance_colors,
    overlay,
    palette_lut,
    resize_keeps_every_pixel,
    resize_labels,
)

PALETTE = {1: (255, 0, 0), 2: (0, 255, 0), 3: (0, 0, 255), 7: (10, 20, 30)}


def naive_colorize(label_map, colors):
    h, w = label_map.shape
    out = np.zeros((h, w, 3), np.uint8)
    for y in range(h):
        for x in range(w):
            i = int(label_map[y, x])
            if i != 0 and i in colors:
                out[y, x] = colors[i]
    return out


# ----------------------------------------------------------------------------- palette_lut


def test_palette_lut_from_mapping():
    lut = palette_lut({**PALETTE, 0: (9, 9, 9)})
    assert lut.dtype == np.uint8
    assert lut.shape == (8, 3)
    assert lut[0].tolist() == [0, 0, 0]  # unidentified is black whatever was given
    assert lut[1].tolist() == [255, 0, 0]
    assert lut[7].tolist() == [10, 20, 30]
    assert lut[4].tolist() == [0, 0, 0]  # ids not given are black


def test_palette_lut_from_sequence_and_size():
    lut = palette_lut([(1, 2, 3), (4, 5, 6), (7, 8, 9)], size=6)
    assert lut.tolist() == [[0, 0, 0], [4, 5, 6], [7, 8, 9], [0, 0, 0], [0, 0, 0], [0, 0, 0]]
    arr = palette_lut(np.array([[0, 0, 0], [200, 100, 50]], np.uint8))
    assert arr.tolist() == [[0, 0, 0], [200, 100, 50]]
    assert palette_lut({}).tolist() == [[0, 0, 0]]


def test_palette_lut_errors():
    with pytest.raises(ValueError, match="does not fit"):
        palette_lut(PALETTE, size=5)
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        palette_lut({1: (256, 0, 0)})
    with pytest.raises(ValueError, match="three values"):
        palette_lut({1: (1, 2)})
    with pytest.raises(ValueError, match=">= 0"):
        palette_lut({-1: (1, 2, 3)})


# ----------------------------------------------------------------------------- colorize


@pytest.mark.parametrize("dtype", [np.uint16, np.uint8, np.int32, np.int64, np.uint32])
def test_colorize_matches_naive(dtype):
    rng = np.random.default_rng(0)
    label_map = rng.integers(0, 12, (9, 13)).astype(dtype)  # ids 8..11 are beyond the table
    lut = palette_lut(PALETTE)
    out = colorize(label_map, lut)
    assert out.dtype == np.uint8
    assert out.shape == (9, 13, 3)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, naive_colorize(label_map, PALETTE))


@pytest.mark.parametrize("dtype", [np.uint16, np.int64])
@pytest.mark.parametrize("size_hw", [(36, 52), (37, 50), (9, 13), (5, 7), (20, 8)])
def test_colorize_to_a_size_equals_colouring_the_resized_map(dtype, size_hw):
    """Colouring the small map and resizing the colours is the same image as colouring the
    resized map, up-scaled, down-scaled or at the same size (ids beyond the table included)."""
    rng = np.random.default_rng(4)
    label_map = rng.integers(0, 12, (9, 13)).astype(dtype)
    lut = palette_lut(PALETTE)
    out = colorize(label_map, lut, size_hw)
    assert out.shape == (*size_hw, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, colorize(resize_labels(label_map, size_hw), lut))


@pytest.mark.parametrize(
    "src_hw, dst_hw",
    [
        ((9, 13), (36, 52)),
        ((9, 13), (10, 14)),
        ((9, 13), (9, 13)),
        ((120, 160), (480, 640)),
        ((203, 270), (810, 1080)),
        ((7, 3), (8, 100)),
    ],
)
def test_resize_keeps_every_pixel_when_nothing_shrinks(src_hw, dst_hw):
    ids = np.arange(src_hw[0] * src_hw[1], dtype=np.int64).reshape(src_hw)
    assert resize_keeps_every_pixel(src_hw, dst_hw)
    assert np.unique(resize_labels(ids, dst_hw)).size == ids.size
    # shrinking either side loses pixels
    smaller = (src_hw[0] - 1, dst_hw[1]) if src_hw[0] > 1 else (dst_hw[0], src_hw[1] - 1)
    assert not resize_keeps_every_pixel(src_hw, smaller)
    assert np.unique(resize_labels(ids, smaller)).size < ids.size


def test_colorize_known_pixels_and_out_of_range():
    lut = palette_lut(PALETTE)
    label_map = np.array([[0, 1, 2], [3, 7, 8], [65535, 4, 1]], np.uint16)
    out = colorize(label_map, lut)
    assert out[0, 0].tolist() == [0, 0, 0]
    assert out[0, 1].tolist() == [255, 0, 0]
    assert out[0, 2].tolist() == [0, 255, 0]
    assert out[1, 0].tolist() == [0, 0, 255]
    assert out[1, 1].tolist() == [10, 20, 30]
    assert out[1, 2].tolist() == [0, 0, 0]  # id 8 >= len(lut)
    assert out[2, 0].tolist() == [0, 0, 0]  # id 65535
    assert out[2, 1].tolist() == [0, 0, 0]  # id without a colour
    assert out[2, 2].tolist() == [255, 0, 0]


def test_colorize_negative_ids_black_and_full_size_lut():
    lut = palette_lut(PALETTE)
    out = colorize(np.array([[-1, 1]], np.int16), lut)
    assert out.tolist() == [[[0, 0, 0], [255, 0, 0]]]
    big = palette_lut({65535: (1, 2, 3), 1: (4, 5, 6)})
    assert big.shape == (65536, 3)
    out = colorize(np.array([[65535, 1, 0]], np.uint16), big)
    assert out.tolist() == [[[1, 2, 3], [4, 5, 6], [0, 0, 0]]]
    out8 = colorize(np.array([[255, 1]], np.uint8), big)
    assert out8.tolist() == [[[0, 0, 0], [4, 5, 6]]]


def test_colorize_errors():
    with pytest.raises(ValueError, match="lut"):
        colorize(np.zeros((2, 2), np.uint16), np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        colorize(np.zeros((2, 2), np.uint16), np.zeros((4, 3), np.int64))
    with pytest.raises(ValueError, match="label_map"):
        colorize(np.zeros((2, 2, 1), np.uint16), palette_lut(PALETTE))


# ----------------------------------------------------------------------------- overlay


def _scene(seed=0, h=10, w=15):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    label_map = rng.integers(0, 9, (h, w)).astype(np.uint16)
    label_map[0, :] = 0
    return rgb, label_map


def test_overlay_alpha_zero_is_input():
    rgb, label_map = _scene()
    before = rgb.copy()
    out = overlay(rgb, label_map, palette_lut(PALETTE), 0.0)
    np.testing.assert_array_equal(out, rgb)
    assert out is not rgb
    np.testing.assert_array_equal(rgb, before)


def test_overlay_alpha_one_is_colour_on_labelled_pixels():
    rgb, label_map = _scene(1)
    before = rgb.copy()
    out = overlay(rgb, label_map, palette_lut(PALETTE), 1.0)
    labelled = label_map != 0
    expected = naive_colorize(label_map, PALETTE)
    np.testing.assert_array_equal(out[labelled], expected[labelled])
    np.testing.assert_array_equal(out[~labelled], rgb[~labelled])
    np.testing.assert_array_equal(rgb, before)  # input untouched


@pytest.mark.parametrize("alpha", [0.25, 0.5, 0.6])
def test_overlay_blend_matches_formula(alpha):
    rgb, label_map = _scene(2)
    out = overlay(rgb, label_map, palette_lut(PALETTE), alpha)
    assert out.dtype == np.uint8
    assert out.shape == rgb.shape
    color = naive_colorize(label_map, PALETTE)
    h, w = label_map.shape
    for y in range(h):
        for x in range(w):
            for c in range(3):
                if label_map[y, x] == 0:
                    assert out[y, x, c] == rgb[y, x, c]
                else:
                    want = (1 - alpha) * int(rgb[y, x, c]) + alpha * int(color[y, x, c])
                    assert abs(int(out[y, x, c]) - want) <= 0.5 + 1e-6


def test_overlay_with_given_colour_image_is_the_same():
    rgb, label_map = _scene(2)
    lut = palette_lut(PALETTE)
    color = colorize(label_map, lut)
    np.testing.assert_array_equal(
        overlay(rgb, label_map, lut, 0.4, color), overlay(rgb, label_map, lut, 0.4)
    )
    with pytest.raises(ValueError, match="color must be"):
        overlay(rgb, label_map, lut, 0.4, color[:, :, :2])


@pytest.mark.parametrize("alpha", [-0.1, 1.01, float("nan")])
def test_overlay_rejects_bad_alpha(alpha):
    rgb, label_map = _scene()
    with pytest.raises(ValueError, match="alpha"):
        overlay(rgb, label_map, palette_lut(PALETTE), alpha)


def test_overlay_shape_errors():
    rgb, label_map = _scene()
    with pytest.raises(ValueError, match="differ in size"):
        overlay(rgb, label_map[:-1], palette_lut(PALETTE), 0.5)
    with pytest.raises(ValueError, match="uint8"):
        overlay(rgb.astype(np.float32), label_map, palette_lut(PALETTE), 0.5)


# ----------------------------------------------------------------------------- instance colours


def test_instance_colors_black_background_deterministic_and_distinct():
    ids = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    out = instance_colors(ids)
    assert out.dtype == np.uint8
    assert out.shape == (256, 256, 3)
    assert out[0, 0].tolist() == [0, 0, 0]
    flat = out.reshape(-1, 3)
    assert len({tuple(c) for c in flat.tolist()}) == 65536  # all distinct
    assert flat[1:].max(axis=1).min() >= 64  # no near-black instance colour
    # deterministic: the same id always gets the same colour, whatever else is in the map
    small = instance_colors(np.array([[3, 0], [3, 17]], np.uint16))
    assert small[0, 0].tolist() == small[1, 0].tolist() == flat[3].tolist()
    assert small[1, 1].tolist() == flat[17].tolist()
    assert small[0, 1].tolist() == [0, 0, 0]
    np.testing.assert_array_equal(instance_colors(ids), out)


def test_instance_colors_other_dtypes_and_empty():
    ref = instance_colors(np.array([[1, 2, 0]], np.uint16))
    for dtype in (np.int32, np.int64, np.uint8):
        np.testing.assert_array_equal(instance_colors(np.array([[1, 2, 0]], dtype)), ref)
    assert instance_colors(np.zeros((0, 4), np.uint16)).shape == (0, 4, 3)
    assert instance_colors(np.zeros((2, 2), np.uint16)).tolist() == [[[0, 0, 0]] * 2] * 2
    big = instance_colors(np.array([[100_000, 1, 0, -5]], np.int64))
    assert big[0, 1].tolist() == ref[0, 0].tolist()
    assert big[0, 2].tolist() == [0, 0, 0]
    assert big[0, 3].tolist() == [0, 0, 0]
    assert big[0, 0].max() >= 64


# ----------------------------------------------------------------------------- resize_labels


def naive_resize(label_map, out_h, out_w):
    h, w = label_map.shape
    out = np.empty((out_h, out_w), label_map.dtype)
    for y in range(out_h):
        for x in range(out_w):
            # the input pixel containing the output pixel's centre
            sy = int((y + 0.5) * h / out_h)
            sx = int((x + 0.5) * w / out_w)
            out[y, x] = label_map[sy, sx]
    return out


@pytest.mark.parametrize("dtype", [np.uint16, np.uint8, np.int32, np.int64, np.bool_])
@pytest.mark.parametrize("size_hw", [(12, 20), (3, 5), (7, 13), (1, 1), (25, 9)])
def test_resize_labels_matches_naive(dtype, size_hw):
    rng = np.random.default_rng(3)
    label_map = rng.integers(
        0, 2 if dtype is np.bool_ else 60000 if dtype is not np.uint8 else 250, (6, 10)
    ).astype(dtype)
    out = resize_labels(label_map, size_hw)
    assert out.dtype == label_map.dtype
    assert out.shape == size_hw
    np.testing.assert_array_equal(out, naive_resize(label_map, *size_hw))


def test_resize_labels_integer_upscale_replicates_and_keeps_ids():
    label_map = np.array([[0, 65535, 3], [1000, 7, 0]], np.uint16)
    out = resize_labels(label_map, (8, 12))
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, np.repeat(np.repeat(label_map, 4, axis=0), 4, axis=1))
    assert set(np.unique(out).tolist()) == {0, 3, 7, 1000, 65535}


def test_resize_labels_non_integer_scale_invents_no_ids():
    rng = np.random.default_rng(5)
    label_map = rng.choice(np.array([0, 5, 150, 40000], np.uint16), (45, 80))
    out = resize_labels(label_map, (720, 1280))
    assert out.dtype == np.uint16
    assert set(np.unique(out).tolist()) <= {0, 5, 150, 40000}
    np.testing.assert_array_equal(out[::97, ::131], naive_resize(label_map, 720, 1280)[::97, ::131])


def test_resize_labels_same_size_and_errors():
    label_map = np.array([[1, 2]], np.uint16)
    assert resize_labels(label_map, (1, 2)) is label_map
    with pytest.raises(ValueError, match="positive"):
        resize_labels(label_map, (0, 2))
    with pytest.raises(ValueError, match="label_map"):
        resize_labels(np.zeros((2, 2, 2), np.uint16), (4, 4))


def test_instance_colors_huge_ids_never_black():
    ids = np.array([[2**21, 2**21 - 1, 2**22, 1]], np.int64)
    out = instance_colors(ids)
    assert out.max(axis=2).min() >= 64
    # ids fold with period 2**21 - 1: 2**21 shows like 1
    assert out[0, 0].tolist() == out[0, 3].tolist()
