# SPDX-License-Identifier: AGPL-3.0-or-later
"""Look-ups that only tests need, written against the public state of the core classes."""

from __future__ import annotations

from sfs_ros.labels import UNIDENTIFIED, LabelRegistry
from sfs_ros.open_vocab.tracks import TrackLabel, TrackStore
from sfs_ros.vocabularies import normalize_class_name


def label_id(registry: LabelRegistry, name: str) -> int | None:
    """Label id of class ``name`` (normalised, first id wins), or None when not in the legend."""
    key = normalize_class_name(name)
    for entry in registry.entries():
        if entry.id != UNIDENTIFIED and normalize_class_name(entry.name) == key:
            return entry.id
    return None


def track_label(store: TrackStore, track_id: int) -> TrackLabel | None:
    """The label stored for one mask track, or None."""
    with store._lock:
        return store._labels.get(int(track_id))
