"""Closed-set vocabularies: official class names (in training-index order) and RGB palettes.

Three label spaces ship with the package, each with the palette its dataset's reference
tooling uses, so colour images from this package match the ones people know:

``ade20k``
    ADE20K SceneParsing, 150 classes. Names and palette as in mmsegmentation's
    ``ADE20KDataset.METAINFO`` (the names are the first synonym of the CSAIL
    ``objectInfo150`` list; mmseg's trailing-space typo ``"bed "`` is fixed to ``"bed"``).
    The official palette gives ``road`` (6) and ``skyscraper`` (48) the same colour
    (140, 140, 140); that duplicate is kept on purpose.
``coco``
    COCO panoptic, 133 classes (80 things + 53 stuff) in the contiguous order of detectron2's
    ``COCO_CATEGORIES`` (also the ``id2label`` of the Hugging Face Mask2Former / OneFormer
    COCO-panoptic checkpoints), with detectron2's colours (from panopticapi). ``names`` are
    display names with the ``-merged`` / ``-other`` / ``-stuff`` suffixes removed
    (``"wall-other-merged"`` -> ``"wall"``); ``raw_names`` keeps the official names.
``cityscapes``
    The 19 Cityscapes ``trainId`` classes with the colours of cityscapesScripts'
    ``helpers/labels.py``.

Index ``i`` of a vocabulary is output channel ``i`` of a model trained on that label space.
Colours are RGB (never BGR) everywhere in this package.

This module is pure Python (no numpy, torch or OpenCV) so that any part of the package can
import it cheaply. The palettes are package data (``sfs_ros/data/palettes.json``), read on
first use of :data:`VOCABULARIES`, :func:`builtin_vocabularies` or :func:`get_vocabulary`.
"""

from __future__ import annotations

import colorsys
import functools
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

__all__ = [
    "VOCABULARIES",
    "Vocabulary",
    "builtin_vocabularies",
    "distinct_colors",
    "get_vocabulary",
    "normalize_class_name",
    "vocabulary_from_id2label",
]

RGB = tuple[int, int, int]

#: Suffixes that COCO panoptic uses to mark merged / catch-all stuff classes.
_STRIP_SUFFIXES = ("-merged", "-other", "-stuff")


def normalize_class_name(name: str) -> str:
    """Return the canonical form of a class name, used for look-ups and matching.

    Lower-cases, strips surrounding whitespace, collapses runs of spaces / underscores /
    other whitespace into one space, then removes trailing ``-merged``, ``-other`` and
    ``-stuff`` suffixes (repeatedly, so ``"Sky-Other-Merged"`` -> ``"sky"``). A name that
    would become empty is left with its suffix.

    >>> normalize_class_name("  Traffic__Light ")
    'traffic light'
    >>> normalize_class_name("wall-other-merged")
    'wall'
    """
    text = " ".join(name.replace("_", " ").lower().split())
    stripped = True
    while stripped:
        stripped = False
        for suffix in _STRIP_SUFFIXES:
            if text.endswith(suffix) and len(text) > len(suffix):
                text = text[: -len(suffix)].rstrip()
                stripped = True
    return text


def _check_rgb(color: object) -> RGB:
    """Validate one RGB triple and return it as a tuple of three ints."""
    if not isinstance(color, tuple | list) or len(color) != 3:
        raise ValueError(f"colour must be an (r, g, b) triple, got {color!r}")
    out = []
    for channel in color:
        if isinstance(channel, bool) or not isinstance(channel, int) or not 0 <= channel <= 255:
            raise ValueError(f"colour channels must be ints in 0..255, got {color!r}")
        out.append(channel)
    return (out[0], out[1], out[2])


@dataclass(frozen=True)
class Vocabulary:
    """A closed-set label space: names in model output-index order and an RGB palette.

    Attributes:
        name: Vocabulary identifier: ``"ade20k"``, ``"coco"``, ``"cityscapes"`` or custom.
        names: Display names; index ``i`` is model output channel ``i``.
        colors: RGB colour of each class, same length as ``names``.
        raw_names: Official names where they differ from ``names`` (COCO), else ``None``.
    """

    name: str
    names: tuple[str, ...]
    colors: tuple[RGB, ...]
    raw_names: tuple[str, ...] | None = None
    _lookup: dict[str, int] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.names)
        colors = tuple(_check_rgb(c) for c in self.colors)
        if len(colors) != len(names):
            raise ValueError(
                f"vocabulary {self.name!r}: {len(names)} names but {len(colors)} colours"
            )
        raw = None if self.raw_names is None else tuple(str(n) for n in self.raw_names)
        if raw is not None and len(raw) != len(names):
            raise ValueError(
                f"vocabulary {self.name!r}: {len(names)} names but {len(raw)} raw names"
            )
        # Normalize containers (lists in, tuples stored) without breaking frozenness.
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "colors", colors)
        object.__setattr__(self, "raw_names", raw)
        lookup: dict[str, int] = {}
        # Display names first, then raw names; the lowest index wins on duplicates.
        for group in (names, raw or ()):
            for index, label in enumerate(group):
                lookup.setdefault(normalize_class_name(label), index)
        object.__setattr__(self, "_lookup", lookup)

    def __len__(self) -> int:
        """Number of classes."""
        return len(self.names)

    def index_of(self, name: str) -> int:
        """Return the output index of class ``name``.

        Matching is on :func:`normalize_class_name` of both sides, so it ignores case,
        surrounding / repeated whitespace, underscores and COCO's ``-merged`` / ``-other`` /
        ``-stuff`` suffixes, and accepts both display and raw names. If two classes share a
        normalized name, the lower index is returned.

        Raises:
            KeyError: no class of this vocabulary has that name.
        """
        try:
            return self._lookup[normalize_class_name(name)]
        except KeyError:
            raise KeyError(f"class {name!r} is not in vocabulary {self.name!r}") from None

    def __contains__(self, name: object) -> bool:
        """Whether ``name`` (a string) names a class of this vocabulary."""
        return isinstance(name, str) and normalize_class_name(name) in self._lookup


# The tables themselves, (official name, RGB colour) in model output-index order with the
# source of each, live in the package data file sfs_ros/data/palettes.json.
PALETTES_FILE = ("data", "palettes.json")


def _coco_display_names(raw_names: tuple[str, ...]) -> tuple[str, ...]:
    """Strip COCO's ``-merged`` / ``-other`` / ``-stuff`` suffixes for display.

    Should a stripped name collide with an earlier class's name, the later class keeps its
    raw official name. With the official 133 classes no two names collide
    (``"wall-other-merged"`` -> ``"wall"`` while the other walls are ``"wall-brick"`` etc.;
    ``"table-merged"`` -> ``"table"`` next to the thing ``"dining table"``).
    """
    seen: set[str] = set()
    out: list[str] = []
    for raw in raw_names:
        display = normalize_class_name(raw)
        if display in seen:
            display = raw
        if display in seen:
            raise ValueError(f"COCO class name {raw!r} is not unique")
        seen.add(display)
        out.append(display)
    return tuple(out)


def _vocabulary_of(name: str, entry: Mapping[str, Any]) -> Vocabulary:
    """Build one built-in vocabulary from its entry in the palettes file."""
    try:
        classes = [(str(label), tuple(color)) for label, color in entry["classes"]]
        strip_suffixes = bool(entry.get("strip_suffixes", False))
    except (KeyError, TypeError, ValueError) as err:
        raise RuntimeError(f"{'/'.join(PALETTES_FILE)}: malformed entry {name!r}: {err}") from err
    names = tuple(label for label, _ in classes)
    colors = tuple(color for _, color in classes)
    if strip_suffixes:
        return Vocabulary(name, _coco_display_names(names), colors, names)
    return Vocabulary(name, names, colors)


@functools.cache
def builtin_vocabularies() -> dict[str, Vocabulary]:
    """The built-in closed-set vocabularies by name, read from the package data once."""
    folder, filename = PALETTES_FILE
    text = resources.files(__package__).joinpath(folder).joinpath(filename).read_text("utf-8")
    vocabularies = {name: _vocabulary_of(name, entry) for name, entry in json.loads(text).items()}
    for vocab in vocabularies.values():
        if len(set(vocab.names)) != len(vocab.names):  # pragma: no cover - data invariant
            raise RuntimeError(f"built-in vocabulary {vocab.name!r} has duplicate names")
    return vocabularies


#: The built-in closed-set vocabularies, by name (annotation only: served by ``__getattr__``).
VOCABULARIES: dict[str, Vocabulary]


def __getattr__(name: str) -> Any:
    """``VOCABULARIES``: the built-in vocabularies, loaded on first use (PEP 562)."""
    if name == "VOCABULARIES":
        return builtin_vocabularies()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_vocabulary(name: str) -> Vocabulary:
    """Return the built-in vocabulary called ``name`` (case and surrounding space ignored).

    Raises:
        ValueError: ``name`` is not a built-in vocabulary; the message lists the known ones.
    """
    key = name.strip().lower() if isinstance(name, str) else name
    try:
        return builtin_vocabularies()[key]
    except (KeyError, TypeError):
        known = ", ".join(sorted(builtin_vocabularies()))
        raise ValueError(f"unknown vocabulary {name!r}; known vocabularies: {known}") from None


def vocabulary_from_id2label(name: str, id2label: Mapping[int, str]) -> Vocabulary:
    """Build a vocabulary from a model's ``id2label`` (for models matching no built-in one).

    Keys may be ints or int-like strings (as in a Hugging Face ``config.json``); they must be
    exactly ``0..N-1``. Names are taken in id order with whitespace tidied (the original
    strings are kept in ``raw_names`` where that changed anything); colours come from
    :func:`distinct_colors`.

    Raises:
        ValueError: empty mapping, a key that is not an integer, the same id twice, or ids
            that are not contiguous from 0.
    """
    labels: dict[int, str] = {}
    for key, label in id2label.items():
        if isinstance(key, bool):
            raise ValueError(f"id2label key {key!r} is not an integer id")
        try:
            index = int(key)
        except (TypeError, ValueError):
            raise ValueError(f"id2label key {key!r} is not an integer id") from None
        if isinstance(key, float) and index != key:
            raise ValueError(f"id2label key {key!r} is not an integer id")
        if index in labels:
            raise ValueError(f"id2label gives id {index} twice")
        labels[index] = str(label)
    if not labels:
        raise ValueError("id2label is empty")
    count = len(labels)
    if sorted(labels) != list(range(count)):
        missing = sorted(set(range(count)) - set(labels))
        extra = sorted(i for i in labels if not 0 <= i < count)
        raise ValueError(
            f"id2label ids must be contiguous 0..{count - 1}; missing {missing[:10]}, "
            f"out of range {extra[:10]}"
        )
    raw = tuple(labels[i] for i in range(count))
    names = tuple(" ".join(label.split()) or label for label in raw)
    return Vocabulary(
        name=name,
        names=names,
        colors=tuple(distinct_colors(count)),
        raw_names=raw if raw != names else None,
    )


_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0  # 0.618..., the golden-ratio hue step
#: (saturation, value) levels, one per round of 12 hues: vivid first, then paler / darker.
_SV_LEVELS = ((0.85, 0.95), (0.55, 1.0), (1.0, 0.75), (0.7, 0.85), (0.4, 0.95), (0.9, 0.6))
_HUES_PER_LEVEL = 12
_RGB_CUBE = 1 << 24


def distinct_colors(
    n: int, seed: int = 0, avoid: Iterable[tuple[int, int, int]] = ()
) -> list[tuple[int, int, int]]:
    """Return ``n`` deterministic, visually distinct RGB colours.

    Hues follow a golden-ratio walk around the HSV circle (consecutive colours are far
    apart), bright and saturated first; every 12 colours the saturation / value level
    changes. The sequence depends only on ``seed`` (which shifts the starting hue) and
    ``avoid``; a prefix of ``distinct_colors(n)`` equals ``distinct_colors(m)`` for
    ``m < n``. No colour is black ``(0, 0, 0)``, none equals a colour in ``avoid`` (e.g. a
    closed-set palette when picking colours for open-vocabulary names), and no two are equal.

    Raises:
        ValueError: ``n`` is negative or more colours are asked for than exist.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    used: set[RGB] = {(0, 0, 0)}
    used.update(_check_rgb(tuple(c)) for c in avoid)
    if n > _RGB_CUBE - len(used):
        raise ValueError(f"cannot make {n} distinct colours")
    colors: list[RGB] = []
    start = (0.05 + seed * _GOLDEN * math.pi) % 1.0
    step = 0
    # Phase 1: HSV golden-ratio walk; bounded so that huge n cannot spin here forever.
    budget = 8 * n + 64
    while len(colors) < n and step < budget:
        hue = (start + step * _GOLDEN) % 1.0
        sat, val = _SV_LEVELS[(step // _HUES_PER_LEVEL) % len(_SV_LEVELS)]
        r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
        color = (round(r * 255), round(g * 255), round(b * 255))
        step += 1
        if color not in used:
            used.add(color)
            colors.append(color)
    # Phase 2 (only for thousands of colours): a scrambled walk over the whole RGB cube.
    # 2654435761 is odd, so k -> k * 2654435761 mod 2**24 is a bijection: it terminates.
    k = seed
    while len(colors) < n:
        code = (k * 2654435761) % _RGB_CUBE
        k += 1
        color = (code >> 16, (code >> 8) & 0xFF, code & 0xFF)
        if color not in used:
            used.add(color)
            colors.append(color)
    return colors
