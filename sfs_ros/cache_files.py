# SPDX-License-Identifier: AGPL-3.0-or-later
"""Integrity of sfs_ros' own cache: content digests, completion markers, damaged-entry recovery.

A cache entry (an exported network, a random-weight checkpoint or model folder) counts as
complete only when its completion marker exists and the content matches it:

* a single file ``X`` has a sidecar ``X.sha256`` holding the SHA-256 of the whole file,
  written after ``X`` was renamed into place;
* a folder has a marker file :data:`DIR_MARKER` inside it listing every file with its
  SHA-256; the folder is built under a temporary name and renamed into place after the
  marker was written.

Writers use per-process temporary names, so concurrent first starts never share a file.
An entry that fails verification is moved aside (``<name>.damaged-<time>``, kept for
inspection) with one warning line naming it, and the caller rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import time
from pathlib import Path

from sfs_ros.io_safety import atomic_write_text
from sfs_ros.runtime import LOG

DIR_MARKER = ".sfs-complete.json"
_CHUNK = 1 << 22


def file_digest(path: str | Path) -> str:
    """SHA-256 (hex) of the whole file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sidecar(path: Path) -> Path:
    """The digest file that marks ``path`` complete."""
    return path.with_name(path.name + ".sha256")


def temp_sibling(path: Path) -> Path:
    """A per-process, per-call temporary name beside ``path`` (keeps ``path``'s suffix)."""
    return path.with_name(f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp{path.suffix}")


def publish_file(tmp: Path, dest: Path) -> Path:
    """Move the finished file ``tmp`` to ``dest``, then write its digest sidecar (last)."""
    digest = file_digest(tmp)
    os.replace(tmp, dest)
    atomic_write_text(sidecar(dest), digest + "\n")
    return dest


def verify_file(path: Path) -> str | None:
    """None when ``path`` is complete and intact, else why not (for the log line)."""
    if not path.is_file():
        return "missing"
    mark = sidecar(path)
    if not mark.is_file():
        return "no completion marker (interrupted or from an older version)"
    expected = mark.read_text().strip()
    if file_digest(path) != expected:
        return "content does not match its recorded SHA-256 (truncated or overwritten)"
    return None


def _dir_manifest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): file_digest(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != DIR_MARKER
    }


def verify_dir(folder: Path) -> str | None:
    """None when the folder entry is complete and intact, else why not."""
    if not folder.is_dir():
        return "missing"
    marker = folder / DIR_MARKER
    if not marker.is_file():
        return "no completion marker (interrupted or from an older version)"
    try:
        expected = json.loads(marker.read_text())
    except (OSError, ValueError):
        return "unreadable completion marker"
    if _dir_manifest(folder) != expected:
        return "files do not match the completion marker (truncated, missing or changed)"
    return None


def publish_dir(tmp: Path, dest: Path) -> Path:
    """Write the marker into the finished folder ``tmp`` and rename it to ``dest``.

    When another process published ``dest`` first and it verifies, ours is discarded.
    """
    atomic_write_text(tmp / DIR_MARKER, json.dumps(_dir_manifest(tmp), indent=1))
    try:
        os.rename(tmp, dest)
    except OSError:
        if verify_dir(dest) is None:  # a concurrent start won the race: use its copy
            shutil.rmtree(tmp, ignore_errors=True)
            return dest
        move_aside(dest, "incomplete")
        os.rename(tmp, dest)
    return dest


def move_aside(path: Path, reason: str) -> Path | None:
    """Rename a damaged entry (and its sidecar) out of the way, with one warning line."""
    if not path.exists() and not path.is_symlink():
        return None
    target = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    target = target.with_name(f"{target.name}-{secrets.token_hex(2)}")
    try:
        os.replace(path, target)
    except OSError as exc:
        LOG.warning("cache entry %s is damaged (%s) and cannot be moved: %s", path, reason, exc)
        raise
    mark = sidecar(path)
    if mark.exists():
        mark.unlink(missing_ok=True)
    LOG.warning("cache entry %s is damaged (%s): moved to %s, rebuilding it", path, reason, target)
    return target


def new_temp_dir(dest: Path) -> Path:
    """An empty per-process folder beside ``dest`` to build a folder entry in."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    tmp.mkdir(parents=True)
    return tmp
