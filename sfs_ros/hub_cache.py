# SPDX-License-Identifier: AGPL-3.0-or-later
"""Damaged Hugging Face cache entries: named, moved aside and (online) downloaded again."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sfs_ros.runtime import LOG
from sfs_ros.weights import UnusableWeightsError, weights_offline

T = TypeVar("T")


def load_hub_files(load: Callable[[], T], source: str, param: str) -> T:
    """Run ``load()`` (a transformers ``from_pretrained``) and recover a damaged hub cache.

    When ``source`` is a hub id served from the local Hugging Face cache and loading fails
    (a truncated, garbage or 0-byte file), the cached snapshot and the files it points to are
    moved aside with one line naming them; online the model is downloaded again and loaded
    once more, offline the error says what happened. A local directory is never touched.

    Raises:
        UnusableWeightsError: one line naming ``param``, the files and the cause.
    """
    try:
        return load()
    except Exception as exc:  # transformers / safetensors / torch raise many types
        detail = _first_error_line(exc)
        failure = exc
    local = Path(source).expanduser()
    if local.is_dir():
        raise UnusableWeightsError(
            f"{param}: '{source}' cannot be loaded ({detail}); the files in that folder are "
            f"damaged or incomplete: point {param} at an intact copy"
        ) from failure
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(source, "config.json")
    if not isinstance(config, str):
        raise UnusableWeightsError(f"{param}: '{source}' cannot be loaded ({detail})") from failure
    snapshot = Path(config).parent
    _move_snapshot_aside(snapshot, detail)
    if weights_offline():
        raise UnusableWeightsError(
            f"{param}: the cached copy of '{source}' in {snapshot} was damaged ({detail}) and "
            f"has been moved aside; run once online to download it again, or point {param} "
            "at a local copy"
        ) from failure
    from huggingface_hub import snapshot_download

    LOG.info("downloading %s again from the Hugging Face hub", source)
    snapshot_download(source)
    try:
        return load()
    except Exception as exc:  # the fresh download is broken too: give up with one line
        raise UnusableWeightsError(
            f"{param}: '{source}' cannot be loaded even after a fresh download "
            f"({_first_error_line(exc)})"
        ) from exc


def _first_error_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def _move_snapshot_aside(snapshot: Path, reason: str) -> None:
    """Move a hub snapshot and the blobs its links point to aside (one warning line)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for link in snapshot.rglob("*"):
        if link.is_symlink():
            blob = link.resolve()
            if blob.is_file():
                os.replace(blob, blob.with_name(f"{blob.name}.damaged-{stamp}"))
    target = snapshot.with_name(f"{snapshot.name}.damaged-{stamp}")
    os.replace(snapshot, target)
    LOG.warning(
        "cache entry %s is damaged (%s): moved to %s (with the files it links to)",
        snapshot,
        reason,
        target,
    )
