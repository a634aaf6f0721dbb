"""Image message conversions with cv_bridge semantics, without cv_bridge.

Everything here works on duck-typed message objects: anything with the fields of
``sensor_msgs/msg/Image`` (``header, height, width, encoding, is_bigendian, step, data``) or
``sensor_msgs/msg/CompressedImage`` (``header, format, data``) will do, e.g. a
:class:`types.SimpleNamespace`. Neither rclpy nor any ROS package is imported at module level;
:func:`to_image_msg` imports ``sensor_msgs.msg.Image`` lazily when no message class is given.

Decoding decisions (cv_bridge references are to ``cv_bridge/src/cv_bridge.cpp``):

* 16-bit data is scaled to 8 bit exactly like ``toCvCopy(msg, "rgb8")``:
  ``convertTo(..., 255.0 / 65535.0)``, i.e. ``round(v * 255 / 65535)`` (== ``(v + 128) // 257``).
  This is not ``v >> 8``: the two differ by at most 1 (e.g. ``255 -> 1`` here, ``0`` with a
  shift; ``65535 -> 255`` in both).
* ``8UC1`` / ``8UC3`` / ``8UC4`` / ``16UC1`` carry no colour order; they are read as ``mono8`` /
  ``bgr8`` / ``bgra8`` / ``mono16``, the guess of cv_bridge's ``cvtColorForDisplay`` (its
  ``toCvCopy`` refuses these conversions outright).
* ``yuv422`` (deprecated alias of ``uyvy``) is UYVY, ``yuv422_yuy2`` (alias of ``yuyv``) is YUYV;
  both decode with OpenCV's BT.601 conversions as cv_bridge does.
* Bayer: OpenCV names a pattern after the 2x2 block starting at the *second* row and column,
  ROS after the first one, so (exactly as cv_bridge maps them)
  ``bayer_rggb* -> COLOR_BayerBG2RGB``, ``bayer_bggr* -> COLOR_BayerRG2RGB``,
  ``bayer_gbrg* -> COLOR_BayerGR2RGB``, ``bayer_grbg* -> COLOR_BayerGB2RGB`` (bilinear
  demosaicing; 16-bit Bayer is demosaiced first and scaled afterwards, also like cv_bridge).
  ``test/test_conversions.py`` checks this on synthetic mosaics.
* ``data`` must hold at least ``height * step`` bytes (longer is accepted, the tail ignored).
"""

from __future__ import annotations

import array as _pyarray
import re
import sys
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

__all__ = [
    "REASONS",
    "SUPPORTED_COMPRESSED_FORMATS",
    "SUPPORTED_ENCODINGS",
    "ImageConversionError",
    "compressed_msg_to_rgb",
    "image_msg_to_rgb",
    "to_image_msg",
]


class ImageConversionError(ValueError):
    """Input that cannot be decoded.

    ``reason`` is a short, stable snake_case code for drop accounting (one of :data:`REASONS`):
    ``unsupported_encoding``, ``empty_image``, ``odd_width``, ``bad_step``, ``short_data``,
    ``bad_data`` (``data`` is not bytes-like / not byte values), ``conversion_failed`` (OpenCV
    refused the colour conversion), ``unsupported_format``, ``bad_compressed``.
    """

    reason: str

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


REASONS: frozenset[str] = frozenset(
    {
        "unsupported_encoding",
        "empty_image",
        "odd_width",
        "bad_step",
        "short_data",
        "bad_data",
        "conversion_failed",
        "unsupported_format",
        "bad_compressed",
    }
)
"""Every ``ImageConversionError.reason`` this module raises."""


@dataclass(frozen=True, slots=True)
class _Layout:
    channels: int  # values per pixel in the message
    itemsize: int  # bytes per value (1 or 2)
    to_rgb: int | None  # cv2 colour conversion to RGB; None: already RGB
    demosaic: bool = False
    yuv: bool = False


_ENCODINGS: dict[str, _Layout] = {
    "rgb8": _Layout(3, 1, None),
    "bgr8": _Layout(3, 1, cv2.COLOR_BGR2RGB),
    "rgba8": _Layout(4, 1, cv2.COLOR_RGBA2RGB),
    "bgra8": _Layout(4, 1, cv2.COLOR_BGRA2RGB),
    "mono8": _Layout(1, 1, cv2.COLOR_GRAY2RGB),
    "rgb16": _Layout(3, 2, None),
    "bgr16": _Layout(3, 2, cv2.COLOR_BGR2RGB),
    "rgba16": _Layout(4, 2, cv2.COLOR_RGBA2RGB),
    "bgra16": _Layout(4, 2, cv2.COLOR_BGRA2RGB),
    "mono16": _Layout(1, 2, cv2.COLOR_GRAY2RGB),
    # Generic OpenCV types: read the way cv_bridge's cvtColorForDisplay guesses them.
    "8UC1": _Layout(1, 1, cv2.COLOR_GRAY2RGB),
    "8UC3": _Layout(3, 1, cv2.COLOR_BGR2RGB),
    "8UC4": _Layout(4, 1, cv2.COLOR_BGRA2RGB),
    "16UC1": _Layout(1, 2, cv2.COLOR_GRAY2RGB),
    # Packed 4:2:2 YUV. ROS "yuv422" is UYVY (U0 Y0 V0 Y1), "yuv422_yuy2" is YUYV (Y0 U0 Y1 V0).
    "yuv422": _Layout(2, 1, cv2.COLOR_YUV2RGB_UYVY, yuv=True),
    "uyvy": _Layout(2, 1, cv2.COLOR_YUV2RGB_UYVY, yuv=True),
    "yuv422_yuy2": _Layout(2, 1, cv2.COLOR_YUV2RGB_YUY2, yuv=True),
    "yuyv": _Layout(2, 1, cv2.COLOR_YUV2RGB_YUY2, yuv=True),
    # Bayer: OpenCV's pattern names are offset by one row and column from ROS' (see module doc).
    "bayer_rggb8": _Layout(1, 1, cv2.COLOR_BayerBG2RGB, demosaic=True),
    "bayer_bggr8": _Layout(1, 1, cv2.COLOR_BayerRG2RGB, demosaic=True),
    "bayer_gbrg8": _Layout(1, 1, cv2.COLOR_BayerGR2RGB, demosaic=True),
    "bayer_grbg8": _Layout(1, 1, cv2.COLOR_BayerGB2RGB, demosaic=True),
    "bayer_rggb16": _Layout(1, 2, cv2.COLOR_BayerBG2RGB, demosaic=True),
    "bayer_bggr16": _Layout(1, 2, cv2.COLOR_BayerRG2RGB, demosaic=True),
    "bayer_gbrg16": _Layout(1, 2, cv2.COLOR_BayerGR2RGB, demosaic=True),
    "bayer_grbg16": _Layout(1, 2, cv2.COLOR_BayerGB2RGB, demosaic=True),
}

SUPPORTED_ENCODINGS: frozenset[str] = frozenset(_ENCODINGS)
"""``sensor_msgs/Image.encoding`` values :func:`image_msg_to_rgb` decodes."""

SUPPORTED_COMPRESSED_FORMATS: frozenset[str] = frozenset({"jpeg", "jpg", "png"})
"""Codec names accepted in ``sensor_msgs/CompressedImage.format``."""

_SCALE_16_TO_8 = 255.0 / 65535.0
_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_EOI = b"\xff\xd9"
# A complete JPEG ends with EOI; cameras may pad a little after it, so look in the tail only.
_JPEG_EOI_WINDOW = 1024
_FORMAT_SPLIT = re.compile(r"[\s,/]+")

# Encodings accepted by to_image_msg: encoding -> (channels, itemsize).
_OUTPUT_ENCODINGS: dict[str, tuple[int, int]] = {
    "mono8": (1, 1),
    "mono16": (1, 2),
    "16UC1": (1, 2),
    "rgb8": (3, 1),
}


def _scale_16_to_8(values: np.ndarray) -> np.ndarray:
    """Native uint16 (any shape cv2 accepts) -> uint8 as ``round(v * 255 / 65535)``.

    ``cv2.convertScaleAbs`` rounds to nearest like cv_bridge's ``convertTo``; ``v / 257`` is
    never exactly halfway, so this matches ``(v + 128) // 257`` for every 16-bit value (tested).
    """
    return cv2.convertScaleAbs(values, alpha=_SCALE_16_TO_8)


def _byte_buffer(data: Any) -> np.ndarray:
    """``data`` (bytes, bytearray, array.array, memoryview, ndarray or int sequence) as a flat
    uint8 array, zero-copy whenever ``data`` exposes a contiguous buffer."""
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError, BufferError):
        pass
    if isinstance(data, str):
        raise ImageConversionError("bad_data", "image data is a str, expected bytes")
    try:
        return np.asarray(data, dtype=np.uint8).reshape(-1)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ImageConversionError(
            "bad_data", f"image data ({type(data).__name__}) is not a sequence of bytes: {exc}"
        ) from exc


def _cvt(image: np.ndarray, code: int, what: str) -> np.ndarray:
    try:
        return cv2.cvtColor(image, code)
    except cv2.error as exc:
        raise ImageConversionError(
            "conversion_failed", f"OpenCV could not convert {what}: {exc}"
        ) from exc


def image_msg_to_rgb(msg: Any) -> np.ndarray:
    """Decode a ``sensor_msgs/Image``-like message to an ``(H, W, 3)`` uint8 RGB array.

    Supported encodings: :data:`SUPPORTED_ENCODINGS` (see the module docstring for 16-bit
    scaling, the ``8UC*``/``16UC1`` guesses, YUV byte orders and the Bayer mapping). Row padding
    (``step`` > ``width * bytes_per_pixel``) is honoured, and ``is_bigendian`` is honoured for
    16-bit data.

    The result is C-contiguous. For ``rgb8`` with ``step == width * 3`` it is a zero-copy view
    of ``msg.data``: it may be read-only (``bytes``) or alias the message buffer
    (``array.array``), so callers must not write into it (copy first if needed).

    Raises:
        ImageConversionError: ``reason`` is ``unsupported_encoding``, ``empty_image``,
            ``odd_width`` (packed YUV 4:2:2), ``bad_step``, ``short_data``, ``bad_data`` or
            ``conversion_failed``.
    """
    encoding = str(msg.encoding)
    layout = _ENCODINGS.get(encoding)
    if layout is None:
        raise ImageConversionError(
            "unsupported_encoding",
            f"unsupported image encoding {encoding!r}; supported: "
            + ", ".join(sorted(SUPPORTED_ENCODINGS)),
        )
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageConversionError("empty_image", f"empty image ({width}x{height})")
    if layout.yuv and width % 2:
        raise ImageConversionError(
            "odd_width", f"{encoding} packs two pixels per 4 bytes; width {width} is odd"
        )
    row_bytes = width * layout.channels * layout.itemsize
    if step < row_bytes:
        raise ImageConversionError(
            "bad_step",
            f"step {step} < width * bytes_per_pixel = {width} * "
            f"{layout.channels * layout.itemsize} = {row_bytes} ({encoding})",
        )
    buf = _byte_buffer(msg.data)
    needed = height * step
    if buf.size < needed:
        raise ImageConversionError(
            "short_data",
            f"data has {buf.size} bytes, height * step = {height} * {step} = {needed}",
        )

    # Zero-copy view of the pixels: rows of `step` bytes, padding sliced off.
    pixels = buf[:needed].reshape(height, step)[:, :row_bytes]
    if layout.itemsize == 2:
        dtype = np.dtype(">u2" if msg.is_bigendian else "<u2")
        pixels = pixels.view(dtype)
        if not dtype.isnative or step % 2 or not pixels.flags.aligned:
            # Byte swap, or realign: OpenCV misreads rows whose stride is not a multiple of 2.
            pixels = pixels.astype(np.uint16)
    shape = (height, width) if layout.channels == 1 else (height, width, layout.channels)
    pixels = pixels.reshape(shape)

    if layout.demosaic:  # demosaic at full depth, then scale (cv_bridge order)
        rgb = _cvt(pixels, layout.to_rgb, encoding)
        return _scale_16_to_8(rgb) if layout.itemsize == 2 else rgb
    if layout.itemsize == 2:
        # Scaling commutes with the channel shuffles below; doing it first touches less data.
        pixels = _scale_16_to_8(pixels)
    if layout.to_rgb is None:
        return pixels if pixels.flags.c_contiguous else np.ascontiguousarray(pixels)
    return _cvt(pixels, layout.to_rgb, encoding)


def _codec_from_format(fmt: str) -> str | None:
    """Codec named by a CompressedImage ``format`` string; None when the string is empty.

    image_transport writes ``"<encoding>; <codec> compressed <encoding>"`` (e.g.
    ``"rgb8; jpeg compressed bgr8"``); plain ``"jpeg"`` / ``"png"`` are common too.
    """
    text = fmt.strip().lower()
    if not text:
        return None
    if "compresseddepth" in text:
        raise ImageConversionError(
            "unsupported_format",
            f"compressed format {fmt!r} (compressedDepth) is a depth encoding, not a camera image",
        )
    # With a ';' the part before it is the original encoding, the codec follows it.
    codec_part = text.split(";", 1)[1] if ";" in text else text
    tokens = set(_FORMAT_SPLIT.split(codec_part.strip()))
    if tokens & {"jpeg", "jpg"}:
        return "jpeg"
    if "png" in tokens:
        return "png"
    raise ImageConversionError(
        "unsupported_format",
        f"unsupported compressed format {fmt!r}; supported codecs: jpeg, png",
    )


def _sniff(buf: np.ndarray) -> str | None:
    head = buf[:8].tobytes()
    if head.startswith(_JPEG_MAGIC):
        return "jpeg"
    if head.startswith(_PNG_MAGIC):
        return "png"
    return None


def compressed_msg_to_rgb(msg: Any) -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage``-like message (JPEG or PNG) to ``(H, W, 3)``
    uint8 RGB, C-contiguous.

    ``format`` may be any string image_transport writes (``"jpeg"``, ``"png"``,
    ``"rgb8; jpeg compressed bgr8"``, ``"mono8; png compressed mono8"``, ...); an empty
    ``format`` is accepted and the codec is taken from the data. The codec actually decoded is
    the one the data's magic bytes say, so JPEG data labelled ``png`` (or vice versa) still
    decodes. Grayscale becomes 3 equal channels, alpha is dropped, 16-bit PNG is scaled to 8 bit
    like :func:`image_msg_to_rgb` does.

    Raises:
        ImageConversionError: ``reason`` is ``unsupported_format`` (a codec other than
            jpeg/jpg/png, or compressedDepth) or ``bad_compressed`` (empty, truncated, corrupt
            or not JPEG/PNG data), ``bad_data`` (``data`` not bytes-like).
    """
    fmt = str(getattr(msg, "format", "") or "")
    declared = _codec_from_format(fmt)
    buf = _byte_buffer(msg.data)
    if buf.size == 0:
        raise ImageConversionError("bad_compressed", f"empty compressed data (format {fmt!r})")
    actual = _sniff(buf)
    if actual is None:
        raise ImageConversionError(
            "bad_compressed",
            f"compressed data ({buf.size} bytes, format {fmt!r}) starts with neither the JPEG "
            "nor the PNG signature",
        )
    if actual == "jpeg" and buf[-_JPEG_EOI_WINDOW:].tobytes().rfind(_JPEG_EOI) < 0:
        raise ImageConversionError(
            "bad_compressed", f"truncated JPEG ({buf.size} bytes, no end-of-image marker)"
        )
    try:
        image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageConversionError(
            "bad_compressed", f"could not decode {actual} data ({buf.size} bytes): {exc}"
        ) from exc
    if image is None or image.size == 0:
        mislabel = f" (format says {declared})" if declared not in (None, actual) else ""
        raise ImageConversionError(
            "bad_compressed",
            f"corrupt or truncated {actual} data ({buf.size} bytes){mislabel}",
        )
    if image.dtype == np.uint16:
        image = _scale_16_to_8(image)
    elif image.dtype != np.uint8:
        raise ImageConversionError(
            "bad_compressed", f"decoded {actual} has unsupported depth {image.dtype}"
        )
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return _cvt(image, cv2.COLOR_GRAY2RGB, actual)
    if image.shape[2] == 3:
        return _cvt(image, cv2.COLOR_BGR2RGB, actual)
    if image.shape[2] == 4:
        return _cvt(image, cv2.COLOR_BGRA2RGB, actual)
    raise ImageConversionError("bad_compressed", f"decoded {actual} has {image.shape[2]} channels")


def to_image_msg(array: np.ndarray, encoding: str, header: Any, msg_cls: Any = None) -> Any:
    """Build a ``sensor_msgs/msg/Image`` from ``array``.

    Args:
        array: ``(H, W)`` (or ``(H, W, 1)``) uint16 for ``mono16`` / ``16UC1``, uint8 for
            ``mono8``; ``(H, W, 3)`` uint8 for ``rgb8``. Any memory layout or byte order; the
            message gets native byte order, ``is_bigendian`` set from :data:`sys.byteorder`.
        encoding: ``mono16``, ``16UC1``, ``mono8`` or ``rgb8``.
        header: assigned as given (same stamp and frame_id as the input it came from).
        msg_cls: message class to instantiate; defaults to ``sensor_msgs.msg.Image`` (imported
            here, lazily). Anything constructible without arguments whose attributes can be set
            works (e.g. ``types.SimpleNamespace``).

    ``step = width * channels * itemsize`` and ``data = array.tobytes()`` (bytes: assigning the
    ndarray itself costs ~700 ms for 1080p). A rosidl message with field checks on
    (``ROS_PYTHON_CHECK_FIELDS=1``) would validate bytes element by element, so it gets an
    ``array.array('B')`` with the same bytes instead.

    Raises:
        ValueError: unknown encoding, or dtype / shape not matching the encoding, or an empty
            array.
    """
    spec = _OUTPUT_ENCODINGS.get(encoding)
    if spec is None:
        raise ValueError(
            f"to_image_msg: unsupported encoding {encoding!r}; supported: "
            + ", ".join(sorted(_OUTPUT_ENCODINGS))
        )
    channels, itemsize = spec
    if not isinstance(array, np.ndarray):
        raise ValueError(f"to_image_msg: expected a numpy array, got {type(array).__name__}")
    if array.dtype.kind != "u" or array.dtype.itemsize != itemsize:
        raise ValueError(
            f"to_image_msg: encoding {encoding!r} needs dtype uint{8 * itemsize}, got {array.dtype}"
        )
    if channels == 1 and array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    expected_ndim = 2 if channels == 1 else 3
    if array.ndim != expected_ndim or (channels > 1 and array.shape[2] != channels):
        want = "(H, W)" if channels == 1 else f"(H, W, {channels})"
        raise ValueError(
            f"to_image_msg: encoding {encoding!r} needs shape {want}, got {array.shape}"
        )
    height, width = int(array.shape[0]), int(array.shape[1])
    if height == 0 or width == 0:
        raise ValueError(f"to_image_msg: empty array of shape {array.shape}")
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))

    if msg_cls is None:
        from sensor_msgs.msg import Image  # lazy: no ROS import at module level

        msg_cls = Image
    msg = msg_cls()
    msg.header = header
    msg.height = height
    msg.width = width
    msg.encoding = encoding
    msg.is_bigendian = 1 if sys.byteorder == "big" else 0
    msg.step = width * channels * itemsize
    data: bytes | _pyarray.array = array.tobytes()
    if getattr(msg, "_check_fields", False):
        data = _pyarray.array("B", data)
    msg.data = data
    return msg
