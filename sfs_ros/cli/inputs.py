"""Input discovery for the CLI: images, folders of images, and videos, as RGB frames."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"})


class InputError(ValueError):
    """An input path that is missing, unreadable or of an unknown kind."""


@dataclass(frozen=True)
class Frame:
    """One RGB frame and the output stem it is saved under."""

    stem: str
    rgb: np.ndarray


def expand_inputs(paths: list[str]) -> list[Path]:
    """Files named directly plus the images and videos inside named folders (sorted)."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES
            )
            if not found:
                raise InputError(f"folder '{path}' holds no images or videos")
            files.extend(found)
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
                raise InputError(
                    f"'{path}': unknown file type (images: {sorted(IMAGE_SUFFIXES)}, "
                    f"videos: {sorted(VIDEO_SUFFIXES)})"
                )
            files.append(path)
        else:
            raise InputError(f"input '{path}' does not exist")
    return files


def read_image(path: Path) -> np.ndarray:
    """RGB uint8 image (grey and 16-bit images converted)."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"'{path}' could not be decoded as an image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def count_frames(path: Path) -> int:
    """Frames an input yields (videos: as reported by the container, may be approximate)."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return 1
    cap = cv2.VideoCapture(str(path))
    try:
        return max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
    finally:
        cap.release()


def iter_frames(path: Path, max_frames: int | None = None, stride: int = 1) -> Iterator[Frame]:
    """RGB frames of an image (one) or a video (``<stem>_<frame:06d>``)."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        yield Frame(path.stem, read_image(path))
        return
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise InputError(f"'{path}' could not be opened as a video")
    try:
        index = emitted = 0
        while max_frames is None or emitted < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            if index % stride == 0:
                yield Frame(f"{path.stem}_{index:06d}", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                emitted += 1
            index += 1
        if index == 0:
            raise InputError(f"'{path}': no frame could be decoded")
    finally:
        cap.release()
