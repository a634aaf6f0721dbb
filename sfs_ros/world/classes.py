# SPDX-License-Identifier: AGPL-3.0-or-later
"""The tiny world's classes: three background ("stuff") classes and ten object classes.

Ground-truth label maps hold the index of a class in :data:`CLASSES`. The closed-set model is
trained on :data:`CLOSED_SET_NAMES` only; the classes in :data:`OPEN_ONLY_NAMES` are drawn in
the scenes but are deliberately left out of the closed-set vocabulary, so that only the
open-vocabulary branch can name them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sfs_ros.vocabularies import Vocabulary

__all__ = [
    "CLASSES",
    "CLASS_NAMES",
    "CLOSED_SET_NAMES",
    "GENERATOR_VERSION",
    "OBJECT_NAMES",
    "OPEN_ONLY_NAMES",
    "WorldClass",
    "class_index",
    "tiny_world_vocabulary",
]

#: Bumped whenever the drawn pixels for a given seed change; trained models are cached per
#: version, so a new version retrains instead of reusing models of a different world.
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class WorldClass:
    """One class of the tiny world.

    Attributes:
        name: class name (also the closed-set / open-vocabulary name).
        kind: ``"stuff"`` (background region) or ``"object"`` (countable, has instances).
        closed_set: whether the closed-set model is trained on it.
        color: legend colour (RGB) for rendering label maps.
    """

    name: str
    kind: str
    closed_set: bool
    color: tuple[int, int, int]


CLASSES: tuple[WorldClass, ...] = (
    WorldClass("floor", "stuff", True, (140, 140, 140)),
    WorldClass("wall", "stuff", True, (230, 220, 190)),
    WorldClass("sky", "stuff", True, (110, 170, 240)),
    WorldClass("ball", "object", True, (220, 30, 40)),
    WorldClass("box", "object", True, (180, 130, 80)),
    WorldClass("cone", "object", True, (250, 120, 20)),
    WorldClass("barrel", "object", True, (40, 90, 200)),
    WorldClass("tire", "object", True, (50, 50, 50)),
    WorldClass("bottle", "object", True, (40, 190, 190)),
    WorldClass("tree", "object", True, (40, 130, 40)),
    WorldClass("duck", "object", False, (245, 215, 40)),
    WorldClass("star", "object", False, (130, 50, 200)),
    WorldClass("kite", "object", False, (255, 130, 180)),
)
CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in CLASSES)
OBJECT_NAMES: tuple[str, ...] = tuple(c.name for c in CLASSES if c.kind == "object")
CLOSED_SET_NAMES: tuple[str, ...] = tuple(c.name for c in CLASSES if c.closed_set)
OPEN_ONLY_NAMES: tuple[str, ...] = tuple(c.name for c in CLASSES if not c.closed_set)


def class_index(name: str) -> int:
    """Index of class ``name`` in :data:`CLASSES` (the ground-truth value).

    Raises:
        KeyError: no tiny-world class has that name.
    """
    try:
        return CLASS_NAMES.index(name)
    except ValueError:
        raise KeyError(f"{name!r} is no tiny-world class ({', '.join(CLASS_NAMES)})") from None


def tiny_world_vocabulary() -> Vocabulary:
    """All tiny-world classes as a :class:`~sfs_ros.vocabularies.Vocabulary` named
    ``tiny-world`` (the ground-truth index space, closed-set and open-only classes alike)."""
    from sfs_ros.vocabularies import Vocabulary

    return Vocabulary("tiny-world", CLASS_NAMES, tuple(c.color for c in CLASSES))
