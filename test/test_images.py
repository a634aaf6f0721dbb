# SPDX-License-Identifier: AGPL-3.0-or-later
"""sfs_ros.images: the one image reader and suffix lists that the CLI, demo and eval share."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from sfs_ros import images, samples
from sfs_ros.cli import inputs
from sfs_ros.errors import EvaluationError, InputError
from sfs_ros.evaluation import datasets


def test_colour_png_is_read_as_rgb(tmp_path: Path):
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0] = 200  # red
    rgb[1, 2] = (10, 20, 30)
    path = tmp_path / "red.png"
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    out = images.read_rgb(path)
    assert out.dtype == np.uint8 and out.shape == (4, 6, 3)
    np.testing.assert_array_equal(out, rgb)


def test_grey_and_16_bit_images_become_rgb_uint8(tmp_path: Path):
    grey = tmp_path / "grey.png"
    assert cv2.imwrite(str(grey), np.full((3, 5), 77, np.uint8))
    deep = tmp_path / "deep.png"
    assert cv2.imwrite(str(deep), np.full((3, 5), 256 * 90, np.uint16))
    assert images.read_rgb(grey).shape == (3, 5, 3)
    assert images.read_rgb(grey)[0, 0].tolist() == [77, 77, 77]
    assert images.read_rgb(deep).dtype == np.uint8 and images.read_rgb(deep)[0, 0, 0] == 90


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "could not be read"),
        (b"", "is empty (0 bytes)"),
        (b"garbage", "could not be decoded"),
    ],
)
def test_bad_files_are_input_errors_naming_the_problem(tmp_path: Path, content, message):
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=re.escape(message)) as err:
        images.read_rgb(path)
    assert str(path) in str(err.value)
    with pytest.raises(EvaluationError, match=f"cannot read image: .*{re.escape(message)}"):
        datasets.read_rgb(path)


def test_one_reader_and_one_suffix_list():
    assert samples.read_rgb is images.read_rgb
    assert inputs.IMAGE_SUFFIXES is samples.IMAGE_SUFFIXES is images.IMAGE_SUFFIXES
    assert inputs.VIDEO_SUFFIXES is samples.VIDEO_SUFFIXES is images.VIDEO_SUFFIXES
    assert not images.IMAGE_SUFFIXES & images.VIDEO_SUFFIXES
