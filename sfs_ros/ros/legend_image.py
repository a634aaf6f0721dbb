# SPDX-License-Identifier: AGPL-3.0-or-later
"""The ``legend_image`` output: an rgb8 picture of colour swatches with class names, so an RViz
user can tell which colour is which class. ROS-free (numpy + OpenCV), tested without DDS."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

ROW_H = 22
WIDTH = 320
SWATCH_W = 36
MAX_ROWS = 40
BACKGROUND = (32, 32, 32)
TEXT = (235, 235, 235)


def draw_legend(
    entries: Sequence[tuple[int, str, Sequence[int]]], width: int = WIDTH, max_rows: int = MAX_ROWS
) -> np.ndarray:
    """Rows of ``[swatch] id name`` for ``entries`` (id, name, (r, g, b)), in the given order.

    At most ``max_rows`` rows; when more classes are given, the last row says how many more.
    An empty list gives one row reading "no classes". Returns an RGB uint8 (H, width, 3) image.
    """
    rows = list(entries)
    more = 0
    if len(rows) > max_rows:
        more = len(rows) - (max_rows - 1)
        rows = rows[: max_rows - 1]
    lines = max(1, len(rows) + (1 if more else 0))
    image = np.empty((lines * ROW_H, width, 3), np.uint8)
    image[:] = BACKGROUND
    font = cv2.FONT_HERSHEY_SIMPLEX
    for row, (class_id, name, color) in enumerate(rows):
        top = row * ROW_H
        image[top + 3 : top + ROW_H - 3, 4 : 4 + SWATCH_W] = [int(c) for c in color[:3]]
        cv2.putText(
            image,
            f"{class_id} {name}",
            (SWATCH_W + 12, top + ROW_H - 7),
            font,
            0.45,
            TEXT,
            1,
            cv2.LINE_AA,
        )
    if more or not rows:
        text = f"... {more} more" if more else "no classes"
        cv2.putText(
            image,
            text,
            (SWATCH_W + 12, (lines - 1) * ROW_H + ROW_H - 7),
            font,
            0.45,
            TEXT,
            1,
            cv2.LINE_AA,
        )
    return image


def swatch_color(image: np.ndarray, row: int) -> tuple[int, int, int]:
    """The colour of the swatch in ``row`` of a :func:`draw_legend` image (for tests/tools)."""
    top = row * ROW_H
    pixel = image[top + ROW_H // 2, 4 + SWATCH_W // 2]
    return int(pixel[0]), int(pixel[1]), int(pixel[2])
