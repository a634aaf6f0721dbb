"""The id space of the output label image: closed-set ids fixed at start, new names appended.

Id 0 is "unidentified". Closed-set classes get ids 1..N in vocabulary order (several closed-set
models share ids by class name). Open-vocabulary names get the next free ids at run time.
Ids never change meaning for the lifetime of a registry; every change bumps ``revision``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from sfs_ros.errors import (
    ConfigError,
    LegendFullError,  # re-exported: defined with the other errors
)
from sfs_ros.vocabularies import Vocabulary, distinct_colors, normalize_class_name

UNIDENTIFIED = 0
SOURCE_UNIDENTIFIED, SOURCE_CLOSED_SET, SOURCE_OPEN_VOCAB = 0, 1, 2


@dataclass(frozen=True)
class ClassEntry:
    """One class of the legend (mirrors ``sfs_ros/ClassInfo``)."""

    id: int
    name: str
    color: tuple[int, int, int]
    source: int


class LabelRegistry:
    """Thread-safe, append-only mapping between class names and label ids."""

    def __init__(self, vocabularies: Iterable[Vocabulary], max_classes: int = 65535) -> None:
        self._lock = threading.Lock()
        self._entries: list[ClassEntry] = [
            ClassEntry(UNIDENTIFIED, "unidentified", (0, 0, 0), SOURCE_UNIDENTIFIED)
        ]
        self._by_name: dict[str, int] = {}
        self.max_classes = max_classes
        self.revision = 0
        vocabs = list(vocabularies)
        self.vocabulary_name = "+".join(v.name for v in vocabs)
        self._luts: list[np.ndarray] = []
        needed = 1 + len({normalize_class_name(n) for v in vocabs for n in v.names})
        if needed > max_classes:
            raise ConfigError(
                f"legend.max_classes: {max_classes} is below the {needed} classes the closed "
                f"set needs ({self.vocabulary_name}: {needed - 1} names + unidentified); "
                f"use at least {needed}"
            )
        for vocab in vocabs:
            lut = np.empty(len(vocab), np.uint16)
            for index, (name, color) in enumerate(zip(vocab.names, vocab.colors, strict=True)):
                lut[index] = self._add_locked(name, SOURCE_CLOSED_SET, color)
            self._luts.append(lut)
        self.revision = 1  # the closed-set legend as loaded

    # ------------------------------------------------------------------------------ queries
    def closed_set_lut(self, model_index: int = 0) -> np.ndarray:
        """uint16 array mapping closed-set model ``model_index``'s output index → label id."""
        return self._luts[model_index]

    def entries(self) -> list[ClassEntry]:
        """A snapshot of all classes, id 0 first, in id order."""
        with self._lock:
            return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def color_lut(self) -> np.ndarray:
        """(K, 3) uint8 colours indexed by label id (id 0 black)."""
        with self._lock:
            return np.array([e.color for e in self._entries], np.uint8)

    def legend_dict(self) -> dict:
        """The ``legend.json`` document (README.md)."""
        with self._lock:
            return {
                "revision": self.revision,
                "vocabulary": self.vocabulary_name,
                "classes": [{**asdict(e), "color": list(e.color)} for e in self._entries],
            }

    # ------------------------------------------------------------------------------ updates
    def add(self, name: str, source: int = SOURCE_OPEN_VOCAB) -> int:
        """Id of ``name``, appending it (new colour, revision + 1) when it is new."""
        with self._lock:
            return self._add_locked(name, source, None)

    def _add_locked(self, name: str, source: int, color: tuple[int, int, int] | None) -> int:
        key = normalize_class_name(name)
        if key in self._by_name:
            return self._by_name[key]
        if len(self._entries) >= self.max_classes:
            raise LegendFullError(
                f"legend is full ({self.max_classes} classes); cannot add '{name}'"
            )
        if color is None:
            used = {e.color for e in self._entries}
            color = distinct_colors(1, seed=len(self._entries), avoid=used)[0]
        new_id = len(self._entries)
        self._entries.append(ClassEntry(new_id, name.strip(), tuple(int(c) for c in color), source))
        self._by_name[key] = new_id
        self.revision += 1
        return new_id


def legend_msg_to_dict(msg: Any) -> dict[str, Any]:
    """A ``ClassLegend`` message (rclpy's or a bag reader's: any object with its fields) as the
    ``legend.json`` document (README.md)."""
    return {
        "revision": int(msg.revision),
        "vocabulary": str(msg.vocabulary),
        "classes": [
            {
                "id": int(c.id),
                "name": str(c.name),
                "color": [int(v) for v in c.color],
                "source": int(c.source),
            }
            for c in msg.classes
        ],
    }
