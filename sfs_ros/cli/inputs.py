"""Input discovery for the CLI: images, folders of images, and videos, as RGB frames.

Every input gets an output stem that no other input of the same run shares (see
:func:`assign_stems`), so no output file is ever written twice in one run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from sfs_ros.errors import InputError  # re-exported: defined with the other errors
from sfs_ros.images import IMAGE_SUFFIXES, VIDEO_SUFFIXES, read_rgb


@dataclass(frozen=True)
class Frame:
    """One RGB frame and the output stem it is saved under."""

    stem: str
    rgb: np.ndarray


@dataclass(frozen=True)
class InputItem:
    """One input file and the output stem its frames are saved under."""

    path: Path
    stem: str

    @property
    def is_video(self) -> bool:
        """True for video containers (frames saved as ``<stem>_<frame:06d>``)."""
        return self.path.suffix.lower() in VIDEO_SUFFIXES


def expand_inputs(paths: list[str]) -> list[Path]:
    """Files named directly plus the images and videos inside named folders (sorted).

    A file reached twice (named directly and through its folder) is listed once.
    """
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
    seen: set[Path] = set()
    unique = []
    for file in files:
        key = file.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(file)
    return unique


def _plain_stem(path: Path) -> str:
    return path.stem


def _qualified_stem(path: Path, root: Path) -> str:
    """``a/x.png`` under ``root`` → ``a__x_png``: folders and the extension made part of it."""
    rel = Path(os.path.relpath(path.resolve(), root))
    parts = [p for p in rel.parent.parts if p not in ("", ".")]
    name = f"{rel.stem}_{rel.suffix.lstrip('.').lower()}" if rel.suffix else rel.stem
    return "__".join([*[p.replace("..", "up") for p in parts], name])


def _clashes(stems: Sequence[str], videos: Sequence[bool]) -> set[int]:
    """Indices of inputs whose output names would collide with another input's."""
    clash: set[int] = set()
    first: dict[str, int] = {}
    for i, stem in enumerate(stems):
        if stem in first:
            clash.update((i, first[stem]))
        first.setdefault(stem, i)
    frame_name = re.compile(r"^(.*)_\d{6}$")
    for i, stem in enumerate(stems):  # an image named like a frame of a video
        match = frame_name.match(stem)
        if match and not videos[i]:
            for j, other in enumerate(stems):
                if videos[j] and other == match.group(1):
                    clash.update((i, j))
    return clash


def assign_stems(files: Sequence[Path]) -> list[InputItem]:
    """Give every input a unique output stem.

    The stem is the file name without its extension (``photos/x.png`` → ``x``; video frames
    add ``_<frame:06d>``). Inputs whose outputs would collide (``a/x.png`` and ``b/x.png``,
    ``y.png`` and ``y.jpg``, ``clip.avi`` and ``clip_000000.png``) are all named instead by
    their path relative to the common folder of the inputs, folders joined with ``__`` and
    the extension kept: ``a__x_png``, ``b__x_png``, ``y_png``, ``y_jpg``, ``clip_avi``.

    Raises:
        InputError: two inputs would still share a name; the message names both.
    """
    files = list(files)
    videos = [f.suffix.lower() in VIDEO_SUFFIXES for f in files]
    stems = [_plain_stem(f) for f in files]
    clash = _clashes(stems, videos)
    if clash:
        root = Path(os.path.commonpath([str(f.resolve().parent) for f in files]))
        for i in clash:
            stems[i] = _qualified_stem(files[i], root)
        remaining = _clashes(stems, videos)
        if remaining:
            i, j = sorted(remaining)[:2]
            raise InputError(
                f"inputs '{files[i]}' and '{files[j]}' would write the same output files "
                f"('{stems[i]}_*'); rename one of them"
            )
    return [InputItem(f, s) for f, s in zip(files, stems, strict=True)]


def count_frames(path: Path) -> int:
    """Frames an input yields (videos: as reported by the container, may be approximate)."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return 1
    cap = cv2.VideoCapture(str(path))
    try:
        return max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
    finally:
        cap.release()


def iter_frames(
    path: Path, max_frames: int | None = None, stride: int = 1, stem: str | None = None
) -> Iterator[Frame]:
    """RGB frames of an image (one) or a video (``<stem>_<frame:06d>``).

    ``stem`` is the output stem (default: the file name without extension).

    Raises:
        InputError: the file cannot be read or decoded (frames already yielded stay valid).
    """
    stem = path.stem if stem is None else stem
    if path.suffix.lower() in IMAGE_SUFFIXES:
        yield Frame(stem, read_rgb(path))
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
                yield Frame(f"{stem}_{index:06d}", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                emitted += 1
            index += 1
        if index == 0:
            raise InputError(f"'{path}': no frame could be decoded")
    finally:
        cap.release()
