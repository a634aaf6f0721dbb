# SPDX-License-Identifier: AGPL-3.0-or-later
"""Checked, atomic file writes for every output sfs_ros produces.

Rules, shared by ``sfs-segment``, ``sfs-eval`` and the model caches:

* every write goes to a temporary file in the destination folder (unique per process and
  call, created with ``O_EXCL | O_NOFOLLOW``) and is then renamed over the destination with
  :func:`os.replace`, so a reader sees the old file or the whole new one, never a prefix;
* the rename replaces a symlink at the destination instead of writing through it, so a link
  planted in an output folder can never redirect a write outside it;
* every failure (disk full, read-only folder, an image the encoder refuses) raises
  :class:`OutputWriteError` naming the file, and the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "OutputWriteError",
    "atomic_write_bytes",
    "atomic_write_image",
    "atomic_write_json",
    "atomic_write_text",
    "encode_image",
    "ensure_writable_dir",
    "temp_path_for",
]


# Pixel types each format stores without conversion.
_ENCODER_DTYPES = {".png": (np.uint8, np.uint16), ".tif": (np.uint8, np.uint16)}
_ENCODER_DTYPES[".tiff"] = _ENCODER_DTYPES[".tif"]


class OutputWriteError(OSError):
    """An output file or folder could not be written; the message names it and says why."""


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return exc.strerror or str(exc)


def temp_path_for(path: Path) -> Path:
    """A temporary name beside ``path``, unique to this process and call (hidden, ``.tmp``)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def ensure_writable_dir(path: str | Path) -> Path:
    """Create the folder ``path`` if needed and prove it writable by writing a probe file.

    Called before any model loads, so a bad output folder costs seconds, not a whole run.

    Raises:
        OutputWriteError: ``path`` is a file, cannot be created, or refuses writes.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise OutputWriteError(f"output folder '{folder}' exists and is not a folder")
    try:
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
        probe = temp_path_for(folder / ".sfs-write-probe")  # own name: runs may share a folder
        atomic_write_bytes(probe, b"")
        probe.unlink()
    except OutputWriteError as exc:
        raise OutputWriteError(f"output folder '{folder}' is not writable: {exc}") from exc
    except OSError as exc:
        raise OutputWriteError(
            f"output folder '{folder}' cannot be created or written: {_reason(exc)}"
        ) from exc
    return folder


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder + rename).

    A symlink at ``path`` is replaced, not followed. Nothing is left behind on failure.

    Raises:
        OutputWriteError: the file could not be written completely (message names it).
    """
    path = Path(path)
    tmp = temp_path_for(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(tmp, flags, 0o666)  # the umask applies, as for an ordinary file
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):  # never created, renamed, or a read-only folder
            tmp.unlink()
        raise OutputWriteError(f"could not write '{path}': {_reason(exc)}") from exc


def atomic_write_text(path: str | Path, text: str) -> None:
    """UTF-8 text, written with :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, *, indent: int = 1) -> None:
    """JSON (no NaN/inf: they are not JSON), written with :func:`atomic_write_bytes`."""
    atomic_write_text(path, json.dumps(obj, indent=indent, allow_nan=False) + "\n")


def encode_image(path: str | Path, image: np.ndarray) -> bytes:
    """Encode ``image`` in the format of ``path``'s suffix with OpenCV, checking the result.

    Raises:
        OutputWriteError: OpenCV refused the image or the format (``cv2.imencode`` → False).
    """
    import cv2

    suffix = Path(path).suffix.lower() or ".png"
    allowed = _ENCODER_DTYPES.get(suffix, (np.uint8,))
    if image.size == 0 or image.dtype not in allowed:
        # OpenCV would silently convert other depths to 8 bits (class ids > 255 lost).
        raise OutputWriteError(
            f"could not encode '{path}': {image.dtype} {image.shape} is not a non-empty "
            f"{' or '.join(np.dtype(d).name for d in allowed)} image"
        )
    try:
        ok, buf = cv2.imencode(suffix, image)
    except cv2.error as exc:
        raise OutputWriteError(f"could not encode '{path}': {exc}") from exc
    if not ok:
        raise OutputWriteError(
            f"could not encode '{path}' ({image.dtype} {image.shape} as {suffix})"
        )
    return buf.tobytes()


def atomic_write_image(path: str | Path, image: np.ndarray) -> None:
    """Encode (checked) and write an image atomically; replaces ``cv2.imwrite``.

    Raises:
        OutputWriteError: encoding or writing failed.
    """
    atomic_write_bytes(path, encode_image(path, image))
