"""Tests for sfs_ros.ros.conversions: duck-typed messages (SimpleNamespace), no ROS needed,
plus one test against the real sensor_msgs/msg/Image class when it is importable."""

from __future__ import annotations

import array
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from sfs_ros.ros.conversions import (
    REASONS,
    SUPPORTED_ENCODINGS,
    ImageConversionError,
    compressed_msg_to_rgb,
    image_msg_to_rgb,
    to_image_msg,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
HEADER = SimpleNamespace(stamp=SimpleNamespace(sec=12, nanosec=345), frame_id="cam_optical")

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
ODD = (200, 100, 30)  # asymmetric colour: any channel swap changes it


def reference_rgb() -> np.ndarray:
    """6x8 RGB image with planted red / green / blue / asymmetric patches."""
    img = np.zeros((6, 8, 3), np.uint8)
    img[0:2, 0:2] = RED
    img[0:2, 2:4] = GREEN
    img[0:2, 4:6] = BLUE
    img[2:4, 0:4] = ODD
    img[4:6] = np.arange(8 * 3, dtype=np.uint8).reshape(8, 3) * 10
    return img


def image_msg(
    pixels: np.ndarray,
    encoding: str,
    *,
    step: int | None = None,
    is_bigendian: int = 0,
    data_type=bytes,
    pad_byte: int = 0xAB,
) -> SimpleNamespace:
    """Message whose rows are `pixels` (H x W[xC], raw bytes in the given order), padded to
    `step` bytes with garbage."""
    height, width = pixels.shape[:2]
    row = pixels.reshape(height, -1).view(np.uint8).reshape(height, -1)
    row_bytes = row.shape[1]
    step = row_bytes if step is None else step
    buf = np.full((height, step), pad_byte, np.uint8)
    buf[:, :row_bytes] = row
    return SimpleNamespace(
        header=HEADER,
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=is_bigendian,
        step=step,
        data=data_type(buf.tobytes()),
    )


def reason_of(func, msg) -> str:
    with pytest.raises(ImageConversionError) as info:
        func(msg)
    assert isinstance(info.value, ValueError)
    assert info.value.reason in REASONS
    return info.value.reason


# ---------------------------------------------------------------------------------------------
# raw Image: colour orders


@pytest.mark.parametrize(
    ("encoding", "order"),
    [
        ("rgb8", [0, 1, 2]),
        ("bgr8", [2, 1, 0]),
        ("8UC3", [2, 1, 0]),  # cv_bridge's cvtColorForDisplay guess: BGR
    ],
)
def test_three_channel_orders(encoding, order):
    ref = reference_rgb()
    raw = np.ascontiguousarray(ref[:, :, order])
    out = image_msg_to_rgb(image_msg(raw, encoding))
    assert out.shape == (6, 8, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, ref)
    assert tuple(out[0, 0]) == RED and tuple(out[0, 2]) == GREEN and tuple(out[0, 4]) == BLUE
    assert tuple(out[2, 0]) == ODD


@pytest.mark.parametrize(
    ("encoding", "order"),
    [("rgba8", [0, 1, 2]), ("bgra8", [2, 1, 0]), ("8UC4", [2, 1, 0])],
)
def test_four_channel_orders_drop_alpha(encoding, order):
    ref = reference_rgb()
    alpha = np.full((*ref.shape[:2], 1), 77, np.uint8)
    raw = np.concatenate([ref[:, :, order], alpha], axis=2)
    out = image_msg_to_rgb(image_msg(raw, encoding))
    assert out.shape == (6, 8, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, ref)
    assert tuple(out[0, 0]) == RED and tuple(out[0, 4]) == BLUE


def test_swapped_label_swaps_red_and_blue():
    ref = reference_rgb()
    out = image_msg_to_rgb(image_msg(ref, "bgr8"))  # RGB bytes, labelled BGR
    assert tuple(out[0, 0]) == BLUE and tuple(out[0, 4]) == RED
    assert tuple(out[2, 0]) == ODD[::-1]


@pytest.mark.parametrize("encoding", ["mono8", "8UC1"])
def test_mono8_replicates_gray(encoding):
    gray = np.arange(6 * 8, dtype=np.uint8).reshape(6, 8) * 5
    out = image_msg_to_rgb(image_msg(gray, encoding))
    assert out.shape == (6, 8, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], gray)


def test_rgb8_is_zero_copy_when_unpadded():
    ref = reference_rgb()
    msg = image_msg(ref, "rgb8", data_type=bytearray)
    out = image_msg_to_rgb(msg)
    np.testing.assert_array_equal(out, ref)
    assert np.shares_memory(out, np.frombuffer(msg.data, np.uint8))
    assert out.flags.c_contiguous


def test_accepts_array_array_and_int_list_data():
    ref = reference_rgb()
    msg = image_msg(ref, "bgr8")
    raw = msg.data
    msg.data = array.array("B", raw)  # what rclpy hands out
    np.testing.assert_array_equal(image_msg_to_rgb(msg), ref[:, :, ::-1])
    msg.data = list(raw)
    np.testing.assert_array_equal(image_msg_to_rgb(msg), ref[:, :, ::-1])


# ---------------------------------------------------------------------------------------------
# 16 bit


def expected_8bit(values: np.ndarray) -> np.ndarray:
    """Independent oracle for cv_bridge's convertTo(CV_8U, 255/65535): round to nearest."""
    return np.rint(values.astype(np.float64) * 255.0 / 65535.0).astype(np.uint8)


@pytest.mark.parametrize("encoding", ["mono16", "16UC1"])
def test_mono16_scales_like_cv_bridge(encoding):
    values = np.array([[0, 127, 128, 255], [256, 32767, 32896, 65535]], np.uint16)
    out = image_msg_to_rgb(image_msg(values.astype("<u2"), encoding))
    expected = np.array([[0, 0, 0, 1], [1, 127, 128, 255]], np.uint8)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], expected)
    # Not a plain >> 8: 255 and 256 round up to 1.
    assert out[0, 3, 0] == 1 and (values >> 8)[0, 3] == 0


def test_mono16_full_range_matches_oracle():
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    out = image_msg_to_rgb(image_msg(values.astype("<u2"), "mono16"))
    np.testing.assert_array_equal(out[:, :, 1], expected_8bit(values))


def test_big_endian_mono16_decodes_like_little_endian():
    be = image_msg(np.array([[0x1234, 0xFF00]], ">u2"), "mono16", is_bigendian=1)
    le = image_msg(np.array([[0x1234, 0xFF00]], "<u2"), "mono16", is_bigendian=0)
    assert be.data[:2] == b"\x12\x34" and le.data[:2] == b"\x34\x12"
    out_be, out_le = image_msg_to_rgb(be), image_msg_to_rgb(le)
    np.testing.assert_array_equal(out_be, out_le)
    assert out_be[0, 0, 0] == round(0x1234 * 255 / 65535) == 18
    assert out_be[0, 1, 2] == round(0xFF00 * 255 / 65535) == 254
    # The same bytes read with the wrong flag give the byte-swapped value.
    be.is_bigendian = 0
    assert image_msg_to_rgb(be)[0, 0, 0] == round(0x3412 * 255 / 65535)


@pytest.mark.parametrize("big", [0, 1])
def test_bgr16_and_rgba16(big):
    ref16 = (reference_rgb().astype(np.uint16) * 257).astype(">u2" if big else "<u2")
    out = image_msg_to_rgb(
        image_msg(np.ascontiguousarray(ref16[:, :, ::-1]), "bgr16", is_bigendian=big)
    )
    np.testing.assert_array_equal(out, reference_rgb())
    alpha = np.zeros((*ref16.shape[:2], 1), ref16.dtype)
    rgba = np.concatenate([ref16, alpha], axis=2)
    out = image_msg_to_rgb(image_msg(rgba, "rgba16", is_bigendian=big))
    np.testing.assert_array_equal(out, reference_rgb())


# ---------------------------------------------------------------------------------------------
# step / padding


@pytest.mark.parametrize(
    ("encoding", "raw", "extra"),
    [
        ("rgb8", reference_rgb(), 5),
        ("bgr8", reference_rgb()[:, :, ::-1].copy(), 8),
        ("mono8", reference_rgb()[:, :, 0].copy(), 3),
        ("mono16", reference_rgb()[:, :, 0].astype("<u2") * 257, 1),  # odd step: unaligned rows
        ("mono16", reference_rgb()[:, :, 0].astype("<u2") * 257, 6),
        ("bayer_rggb8", reference_rgb()[:, :, 1].copy(), 4),
    ],
)
def test_padded_step_matches_unpadded(encoding, raw, extra):
    row_bytes = raw.nbytes // raw.shape[0]
    padded = image_msg(raw, encoding, step=row_bytes + extra)
    tight = image_msg(raw, encoding)
    assert len(padded.data) == raw.shape[0] * (row_bytes + extra)
    out_padded, out_tight = image_msg_to_rgb(padded), image_msg_to_rgb(tight)
    assert out_padded.flags.c_contiguous and out_padded.shape == (raw.shape[0], raw.shape[1], 3)
    np.testing.assert_array_equal(out_padded, out_tight)
    if encoding == "rgb8":
        np.testing.assert_array_equal(out_padded, reference_rgb())


def test_longer_data_than_needed_is_accepted():
    ref = reference_rgb()
    msg = image_msg(ref, "rgb8")
    msg.data = msg.data + b"\x00" * 17
    np.testing.assert_array_equal(image_msg_to_rgb(msg), ref)


# ---------------------------------------------------------------------------------------------
# YUV 4:2:2


def yuv_to_rgb_bt601(y: int, u: int, v: int) -> np.ndarray:
    """Independent oracle: BT.601 limited range."""
    c = 1.164 * (y - 16)
    rgb = [c + 1.596 * (v - 128), c - 0.813 * (v - 128) - 0.391 * (u - 128), c + 2.018 * (u - 128)]
    return np.clip(np.rint(rgb), 0, 255)


# (Y, U, V) of roughly red, green, blue, and an arbitrary colour
YUV_COLOURS = [(81, 90, 240), (145, 54, 34), (41, 240, 110), (200, 100, 150)]


def packed_yuv(order: str, colours, height: int = 2) -> np.ndarray:
    """Each colour fills two pixels (one macropixel); order 'uyvy' or 'yuyv'."""
    row = []
    for y, u, v in colours:
        row += [u, y, v, y] if order == "uyvy" else [y, u, y, v]
    return np.tile(np.array(row, np.uint8).reshape(1, -1, 2), (height, 1, 1))


@pytest.mark.parametrize(
    ("encoding", "order"),
    [("yuv422", "uyvy"), ("uyvy", "uyvy"), ("yuv422_yuy2", "yuyv"), ("yuyv", "yuyv")],
)
def test_yuv422_byte_orders(encoding, order):
    raw = packed_yuv(order, YUV_COLOURS)
    assert raw.shape == (2, 8, 2)
    out = image_msg_to_rgb(image_msg(raw, encoding, step=8 * 2 + 4))
    assert out.shape == (2, 8, 3)
    for i, colour in enumerate(YUV_COLOURS):
        expected = yuv_to_rgb_bt601(*colour)
        for x in (2 * i, 2 * i + 1):
            np.testing.assert_allclose(out[1, x], expected, atol=2)
    assert out[0, 0, 0] > 240 and out[0, 0, 1] < 10 and out[0, 0, 2] < 10  # red
    assert out[0, 4, 2] > 240 and out[0, 4, 0] < 10  # blue


def test_yuv_wrong_byte_order_gives_different_colours():
    raw = packed_yuv("uyvy", YUV_COLOURS)
    right = image_msg_to_rgb(image_msg(raw, "yuv422"))
    wrong = image_msg_to_rgb(image_msg(raw, "yuv422_yuy2"))
    assert np.abs(right.astype(int) - wrong.astype(int)).max() > 100


# ---------------------------------------------------------------------------------------------
# Bayer


def mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """Sample an RGB image through a Bayer CFA named the ROS way (first 2x2 block, row major)."""
    channel = {"r": 0, "g": 1, "b": 2}
    out = np.empty(rgb.shape[:2], rgb.dtype)
    for dy in (0, 1):
        for dx in (0, 1):
            c = channel[pattern[2 * dy + dx]]
            out[dy::2, dx::2] = rgb[dy::2, dx::2, c]
    return out


def two_colour_image(height: int = 16, width: int = 16, dtype=np.uint8, scale: int = 1):
    img = np.empty((height, width, 3), dtype)
    img[:, : width // 2] = np.array(ODD) * scale
    img[:, width // 2 :] = np.array((20, 180, 240)) * scale
    return img


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer8_recovers_flat_colours(pattern):
    img = two_colour_image()
    out = image_msg_to_rgb(image_msg(mosaic(img, pattern), f"bayer_{pattern}8"))
    assert out.shape == (16, 16, 3)
    # Interior of each flat half (away from the image border and the colour edge).
    np.testing.assert_array_equal(out[2:-2, 2:6], img[2:-2, 2:6])
    np.testing.assert_array_equal(out[2:-2, 10:-2], img[2:-2, 10:-2])
    assert tuple(out[8, 3]) == ODD and tuple(out[8, 12]) == (20, 180, 240)


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_other_patterns_do_not_recover(pattern):
    """Guards the mapping itself: decoding with any other pattern name gets the colours wrong."""
    img = two_colour_image()
    raw = mosaic(img, pattern)
    for other in {"rggb", "bggr", "gbrg", "grbg"} - {pattern}:
        out = image_msg_to_rgb(image_msg(raw, f"bayer_{other}8"))
        assert tuple(out[8, 3]) != ODD


@pytest.mark.parametrize("big", [0, 1])
def test_bayer16(big):
    img16 = two_colour_image(dtype=np.uint16, scale=257)
    raw = mosaic(img16, "grbg").astype(">u2" if big else "<u2")
    out = image_msg_to_rgb(image_msg(raw, "bayer_grbg16", is_bigendian=big))
    assert out.dtype == np.uint8
    assert tuple(out[8, 3]) == ODD and tuple(out[8, 12]) == (20, 180, 240)


# ---------------------------------------------------------------------------------------------
# bad input


def test_unsupported_encoding_lists_supported():
    msg = image_msg(reference_rgb(), "rgb8")
    msg.encoding = "32FC1"
    with pytest.raises(ImageConversionError) as info:
        image_msg_to_rgb(msg)
    assert info.value.reason == "unsupported_encoding"
    text = str(info.value)
    assert "32FC1" in text and "rgb8" in text and "bayer_rggb8" in text and "yuv422" in text
    msg.encoding = "RGB8"  # encodings are case sensitive, as in ROS
    assert reason_of(image_msg_to_rgb, msg) == "unsupported_encoding"


def test_supported_encodings_constant():
    required = {
        "rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "8UC1", "8UC3", "16UC1",
        "yuv422", "yuv422_yuy2", "bayer_rggb8", "bayer_bggr8", "bayer_gbrg8", "bayer_grbg8",
    }  # fmt: skip
    assert required <= SUPPORTED_ENCODINGS
    assert isinstance(SUPPORTED_ENCODINGS, frozenset)


def test_bad_step():
    msg = image_msg(reference_rgb(), "rgb8")
    msg.step = 8 * 3 - 1
    assert reason_of(image_msg_to_rgb, msg) == "bad_step"
    msg = image_msg(np.zeros((2, 4), "<u2"), "mono16")
    msg.step = 4  # 4 pixels of 2 bytes need 8
    assert reason_of(image_msg_to_rgb, msg) == "bad_step"


def test_short_data():
    msg = image_msg(reference_rgb(), "rgb8")
    msg.data = msg.data[:-1]
    assert reason_of(image_msg_to_rgb, msg) == "short_data"
    msg = image_msg(reference_rgb(), "rgb8", step=30)
    msg.data = msg.data[: 5 * 30 + 24]  # last row holds the pixels but not the padding
    assert reason_of(image_msg_to_rgb, msg) == "short_data"
    msg.data = b""
    assert reason_of(image_msg_to_rgb, msg) == "short_data"


@pytest.mark.parametrize(("height", "width"), [(0, 8), (6, 0), (0, 0)])
def test_empty_image(height, width):
    msg = SimpleNamespace(
        header=HEADER, height=height, width=width, encoding="rgb8", is_bigendian=0,
        step=width * 3, data=b"",
    )  # fmt: skip
    assert reason_of(image_msg_to_rgb, msg) == "empty_image"


@pytest.mark.parametrize("encoding", ["yuv422", "yuv422_yuy2"])
def test_odd_width_yuv(encoding):
    msg = SimpleNamespace(
        header=HEADER, height=2, width=3, encoding=encoding, is_bigendian=0, step=6,
        data=bytes(12),
    )  # fmt: skip
    assert reason_of(image_msg_to_rgb, msg) == "odd_width"


def test_bad_data_type():
    msg = image_msg(reference_rgb(), "rgb8")
    msg.data = "not bytes" * 100
    assert reason_of(image_msg_to_rgb, msg) == "bad_data"
    msg.data = [300] * (6 * 8 * 3)
    assert reason_of(image_msg_to_rgb, msg) == "bad_data"


# ---------------------------------------------------------------------------------------------
# CompressedImage


def flat_patches_bgr() -> np.ndarray:
    """64x64 BGR image: four flat 32x32 quadrants (red, green, blue, ODD in RGB terms)."""
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[:32, :32] = RED
    rgb[:32, 32:] = GREEN
    rgb[32:, :32] = BLUE
    rgb[32:, 32:] = ODD
    return rgb[:, :, ::-1].copy()


def compressed(data: bytes, fmt: str) -> SimpleNamespace:
    return SimpleNamespace(header=HEADER, format=fmt, data=data)


def encode(ext: str, image: np.ndarray, *params: int) -> bytes:
    ok, buf = cv2.imencode(ext, image, list(params))
    assert ok
    return buf.tobytes()


def assert_patches(out: np.ndarray, atol: int) -> None:
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    centres = ((16, 16), (16, 48), (48, 16), (48, 48))
    for (y, x), colour in zip(centres, (RED, GREEN, BLUE, ODD), strict=True):
        patch = out[y - 4 : y + 4, x - 4 : x + 4].astype(int)
        assert np.abs(patch - np.array(colour)).max() <= atol, (colour, patch[4, 4])


@pytest.mark.parametrize(
    "fmt", ["jpeg", "jpg", "JPEG", "rgb8; jpeg compressed bgr8", "bgr8; jpeg compressed bgr8"]
)
def test_jpeg_colour(fmt):
    out = compressed_msg_to_rgb(
        compressed(encode(".jpg", flat_patches_bgr(), cv2.IMWRITE_JPEG_QUALITY, 95), fmt)
    )
    assert_patches(out, atol=12)
    assert out[16, 16, 0] > 230 and out[16, 16, 2] < 25  # red is in channel 0


@pytest.mark.parametrize("fmt", ["png", "bgr8; png compressed bgr8", "rgb8; png compressed bgr8"])
def test_png_colour_is_exact(fmt):
    out = compressed_msg_to_rgb(compressed(encode(".png", flat_patches_bgr()), fmt))
    np.testing.assert_array_equal(out, flat_patches_bgr()[:, :, ::-1])


def test_png_with_alpha_drops_alpha():
    bgra = np.concatenate([flat_patches_bgr(), np.full((64, 64, 1), 9, np.uint8)], axis=2)
    out = compressed_msg_to_rgb(compressed(encode(".png", bgra), "bgra8; png compressed bgra8"))
    np.testing.assert_array_equal(out, flat_patches_bgr()[:, :, ::-1])


def test_grayscale_jpeg_becomes_three_equal_channels():
    gray = np.tile(np.array([30, 120, 220, 90], np.uint8).repeat(16), (64, 1))
    out = compressed_msg_to_rgb(compressed(encode(".jpg", gray), "mono8; jpeg compressed mono8"))
    assert out.shape == (64, 64, 3)
    np.testing.assert_array_equal(out[:, :, 0], out[:, :, 1])
    np.testing.assert_array_equal(out[:, :, 0], out[:, :, 2])
    np.testing.assert_allclose(out[32, [8, 24, 40, 56], 0], [30, 120, 220, 90], atol=6)


def test_png_16bit_scaled_to_8bit():
    values = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16 + 7).astype(np.uint16)
    out = compressed_msg_to_rgb(compressed(encode(".png", values), "mono16; png compressed mono16"))
    expected = expected_8bit(values)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], expected)


@pytest.mark.parametrize(
    ("ext", "fmt"), [(".png", "jpeg"), (".jpg", "png"), (".png", "rgb8; jpeg compressed bgr8")]
)
def test_format_mismatch_decodes_actual_codec(ext, fmt):
    out = compressed_msg_to_rgb(compressed(encode(ext, flat_patches_bgr()), fmt))
    assert_patches(out, atol=12 if ext == ".jpg" else 0)


def test_empty_format_sniffs_codec():
    out = compressed_msg_to_rgb(compressed(encode(".png", flat_patches_bgr()), ""))
    assert_patches(out, atol=0)


def test_jpeg_with_trailing_padding_decodes():
    data = encode(".jpg", flat_patches_bgr(), cv2.IMWRITE_JPEG_QUALITY, 95) + bytes(64)
    assert_patches(compressed_msg_to_rgb(compressed(data, "jpeg")), atol=12)


def test_compressed_accepts_array_array_data():
    data = array.array("B", encode(".png", flat_patches_bgr()))
    assert_patches(compressed_msg_to_rgb(compressed(data, "png")), atol=0)


def test_truncated_jpeg():
    data = encode(".jpg", flat_patches_bgr())
    for cut in (len(data) // 2, len(data) - 2, 10):
        assert reason_of(compressed_msg_to_rgb, compressed(data[:cut], "jpeg")) == "bad_compressed"


def test_truncated_png():
    data = encode(".png", flat_patches_bgr())
    assert reason_of(compressed_msg_to_rgb, compressed(data[: len(data) // 2], "png")) == (
        "bad_compressed"
    )


def test_random_and_empty_bytes():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    assert reason_of(compressed_msg_to_rgb, compressed(noise, "jpeg")) == "bad_compressed"
    assert reason_of(compressed_msg_to_rgb, compressed(noise, "png")) == "bad_compressed"
    assert reason_of(compressed_msg_to_rgb, compressed(b"", "jpeg")) == "bad_compressed"
    # Right magic bytes, garbage after them.
    fake_jpeg = b"\xff\xd8\xff" + noise + b"\xff\xd9"
    assert reason_of(compressed_msg_to_rgb, compressed(fake_jpeg, "jpeg")) == "bad_compressed"
    fake_png = b"\x89PNG\r\n\x1a\n" + noise
    assert reason_of(compressed_msg_to_rgb, compressed(fake_png, "png")) == "bad_compressed"


@pytest.mark.parametrize(
    "fmt", ["bmp", "tiff", "rgb8; tiff compressed bgr8", "16UC1; compressedDepth png", "rgb8"]
)
def test_unsupported_format(fmt):
    data = encode(".png", flat_patches_bgr())
    assert reason_of(compressed_msg_to_rgb, compressed(data, fmt)) == "unsupported_format"


# ---------------------------------------------------------------------------------------------
# to_image_msg


@pytest.mark.parametrize(
    ("encoding", "array_", "channels", "itemsize"),
    [
        ("mono16", np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000, 1, 2),
        ("16UC1", np.arange(12, dtype=np.uint16).reshape(3, 4) + 0x1234, 1, 2),
        ("mono8", np.arange(12, dtype=np.uint8).reshape(3, 4), 1, 1),
        ("rgb8", np.arange(36, dtype=np.uint8).reshape(3, 4, 3), 3, 1),
    ],
)
def test_to_image_msg_fields(encoding, array_, channels, itemsize):
    msg = to_image_msg(array_, encoding, HEADER, msg_cls=SimpleNamespace)
    assert msg.header is HEADER
    assert (msg.height, msg.width) == (3, 4)
    assert msg.encoding == encoding
    assert msg.step == 4 * channels * itemsize
    assert msg.is_bigendian == (1 if sys.byteorder == "big" else 0)
    assert isinstance(msg.data, bytes)
    assert len(msg.data) == msg.step * msg.height
    assert msg.data == array_.tobytes()


def test_to_image_msg_round_trip_and_layouts():
    rgb = reference_rgb()
    msg = to_image_msg(rgb[:, ::2], "rgb8", HEADER, msg_cls=SimpleNamespace)  # non-contiguous
    assert msg.width == 4 and msg.step == 12
    np.testing.assert_array_equal(image_msg_to_rgb(msg), rgb[:, ::2])

    be = (np.arange(6, dtype=np.uint16).reshape(2, 3) * 4000).astype(">u2")
    msg = to_image_msg(be, "mono16", HEADER, msg_cls=SimpleNamespace)
    native = be.astype(np.uint16)
    assert msg.data == native.tobytes()
    np.testing.assert_array_equal(image_msg_to_rgb(msg)[:, :, 0], expected_8bit(native))

    mono = to_image_msg(np.ones((2, 3, 1), np.uint8), "mono8", HEADER, msg_cls=SimpleNamespace)
    assert (mono.height, mono.width, mono.step, mono.data) == (2, 3, 3, bytes([1] * 6))


@pytest.mark.parametrize(
    ("encoding", "array_", "match"),
    [
        ("mono16", np.zeros((3, 4), np.uint8), "dtype"),
        ("mono16", np.zeros((3, 4), np.int16), "dtype"),
        ("16UC1", np.zeros((3, 4), np.float32), "dtype"),
        ("rgb8", np.zeros((3, 4, 3), np.uint16), "dtype"),
        ("mono8", np.zeros((3, 4), np.float64), "dtype"),
        ("rgb8", np.zeros((3, 4), np.uint8), "shape"),
        ("rgb8", np.zeros((3, 4, 4), np.uint8), "shape"),
        ("mono16", np.zeros((3, 4, 3), np.uint16), "shape"),
        ("mono8", np.zeros((0, 4), np.uint8), "empty"),
        ("bgr8", np.zeros((3, 4, 3), np.uint8), "unsupported encoding"),
        ("rgb8", [[1, 2, 3]], "numpy array"),
    ],
)
def test_to_image_msg_rejects_mismatch(encoding, array_, match):
    with pytest.raises(ValueError, match=match):
        to_image_msg(array_, encoding, HEADER, msg_cls=SimpleNamespace)


# ---------------------------------------------------------------------------------------------
# ROS integration


def test_real_sensor_msgs_image():
    msgs = pytest.importorskip("sensor_msgs.msg")
    std_msgs = pytest.importorskip("std_msgs.msg")
    header = std_msgs.Header(frame_id="camera_optical")
    header.stamp.sec, header.stamp.nanosec = 1700000000, 42

    rgb = np.ascontiguousarray(np.broadcast_to(reference_rgb(), (6, 8, 3)))
    msg = to_image_msg(rgb, "rgb8", header)
    assert isinstance(msg, msgs.Image)
    assert msg.header.frame_id == "camera_optical" and msg.header.stamp.nanosec == 42
    assert (msg.height, msg.width, msg.step, msg.encoding) == (6, 8, 24, "rgb8")
    assert bytes(msg.data) == rgb.tobytes()
    np.testing.assert_array_equal(image_msg_to_rgb(msg), rgb)  # data is an array.array here

    depth = np.arange(48, dtype=np.uint16).reshape(6, 8) * 1300
    msg = to_image_msg(depth, "mono16", header)
    assert msg.step == 16 and bytes(msg.data) == depth.tobytes()
    np.testing.assert_array_equal(image_msg_to_rgb(msg)[:, :, 2], expected_8bit(depth))

    # rosidl field checks on: data must go in as array.array('B') (bytes would be checked
    # element by element), with the same content.
    checked = to_image_msg(rgb, "rgb8", header, msg_cls=lambda: msgs.Image(check_fields=True))
    assert isinstance(checked.data, array.array) and bytes(checked.data) == rgb.tobytes()


def test_module_imports_no_ros():
    code = (
        "import sys, sfs_ros.ros.conversions\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'rclpy', 'sensor_msgs', 'std_msgs', 'cv_bridge', 'torch'})\n"
        "print(bad)\n"
        "assert not bad, bad\n"
    )
    env = dict(
        os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
