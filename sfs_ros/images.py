# SPDX-License-Identifier: AGPL-3.0-or-later
"""Image and video files: the suffixes the package recognises and the one still-image reader.

The CLI (``sfs_ros.cli.inputs``), the demo frame source (``sfs_ros.samples``) and the
evaluation datasets (``sfs_ros.evaluation.datasets``) all read images through
:func:`read_rgb`, so they agree on what an image file is and how it decodes.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from sfs_ros.errors import InputError

__all__ = ["IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "read_rgb"]

#: File suffixes (lower case) read as still images.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
#: File suffixes (lower case) read as videos.
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"})


def read_rgb(path: Path) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3); grey and 16-bit images are converted.

    Raises:
        InputError: the file cannot be read, is empty, or does not decode as an image (the
            message says which).
    """
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as exc:
        raise InputError(f"'{path}' could not be read: {exc.strerror or exc}") from exc
    if data.size == 0:
        raise InputError(f"'{path}' is empty (0 bytes)")
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise InputError(f"'{path}' could not be decoded as an image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
