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
import it cheaply.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "VOCABULARIES",
    "Vocabulary",
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


# --------------------------------------------------------------------------------------
# Data: (official name, RGB colour), in model output-index order.
# --------------------------------------------------------------------------------------

# ADE20K-150: mmsegmentation mmseg/datasets/ade.py (ADE20KDataset.METAINFO), 1.x.
_ADE20K: tuple[tuple[str, RGB], ...] = (
    ("wall", (120, 120, 120)),  # 0
    ("building", (180, 120, 120)),  # 1
    ("sky", (6, 230, 230)),  # 2
    ("floor", (80, 50, 50)),  # 3
    ("tree", (4, 200, 3)),  # 4
    ("ceiling", (120, 120, 80)),  # 5
    ("road", (140, 140, 140)),  # 6
    ("bed", (204, 5, 255)),  # 7
    ("windowpane", (230, 230, 230)),  # 8
    ("grass", (4, 250, 7)),  # 9
    ("cabinet", (224, 5, 255)),  # 10
    ("sidewalk", (235, 255, 7)),  # 11
    ("person", (150, 5, 61)),  # 12
    ("earth", (120, 120, 70)),  # 13
    ("door", (8, 255, 51)),  # 14
    ("table", (255, 6, 82)),  # 15
    ("mountain", (143, 255, 140)),  # 16
    ("plant", (204, 255, 4)),  # 17
    ("curtain", (255, 51, 7)),  # 18
    ("chair", (204, 70, 3)),  # 19
    ("car", (0, 102, 200)),  # 20
    ("water", (61, 230, 250)),  # 21
    ("painting", (255, 6, 51)),  # 22
    ("sofa", (11, 102, 255)),  # 23
    ("shelf", (255, 7, 71)),  # 24
    ("house", (255, 9, 224)),  # 25
    ("sea", (9, 7, 230)),  # 26
    ("mirror", (220, 220, 220)),  # 27
    ("rug", (255, 9, 92)),  # 28
    ("field", (112, 9, 255)),  # 29
    ("armchair", (8, 255, 214)),  # 30
    ("seat", (7, 255, 224)),  # 31
    ("fence", (255, 184, 6)),  # 32
    ("desk", (10, 255, 71)),  # 33
    ("rock", (255, 41, 10)),  # 34
    ("wardrobe", (7, 255, 255)),  # 35
    ("lamp", (224, 255, 8)),  # 36
    ("bathtub", (102, 8, 255)),  # 37
    ("railing", (255, 61, 6)),  # 38
    ("cushion", (255, 194, 7)),  # 39
    ("base", (255, 122, 8)),  # 40
    ("box", (0, 255, 20)),  # 41
    ("column", (255, 8, 41)),  # 42
    ("signboard", (255, 5, 153)),  # 43
    ("chest of drawers", (6, 51, 255)),  # 44
    ("counter", (235, 12, 255)),  # 45
    ("sand", (160, 150, 20)),  # 46
    ("sink", (0, 163, 255)),  # 47
    ("skyscraper", (140, 140, 140)),  # 48
    ("fireplace", (250, 10, 15)),  # 49
    ("refrigerator", (20, 255, 0)),  # 50
    ("grandstand", (31, 255, 0)),  # 51
    ("path", (255, 31, 0)),  # 52
    ("stairs", (255, 224, 0)),  # 53
    ("runway", (153, 255, 0)),  # 54
    ("case", (0, 0, 255)),  # 55
    ("pool table", (255, 71, 0)),  # 56
    ("pillow", (0, 235, 255)),  # 57
    ("screen door", (0, 173, 255)),  # 58
    ("stairway", (31, 0, 255)),  # 59
    ("river", (11, 200, 200)),  # 60
    ("bridge", (255, 82, 0)),  # 61
    ("bookcase", (0, 255, 245)),  # 62
    ("blind", (0, 61, 255)),  # 63
    ("coffee table", (0, 255, 112)),  # 64
    ("toilet", (0, 255, 133)),  # 65
    ("flower", (255, 0, 0)),  # 66
    ("book", (255, 163, 0)),  # 67
    ("hill", (255, 102, 0)),  # 68
    ("bench", (194, 255, 0)),  # 69
    ("countertop", (0, 143, 255)),  # 70
    ("stove", (51, 255, 0)),  # 71
    ("palm", (0, 82, 255)),  # 72
    ("kitchen island", (0, 255, 41)),  # 73
    ("computer", (0, 255, 173)),  # 74
    ("swivel chair", (10, 0, 255)),  # 75
    ("boat", (173, 255, 0)),  # 76
    ("bar", (0, 255, 153)),  # 77
    ("arcade machine", (255, 92, 0)),  # 78
    ("hovel", (255, 0, 255)),  # 79
    ("bus", (255, 0, 245)),  # 80
    ("towel", (255, 0, 102)),  # 81
    ("light", (255, 173, 0)),  # 82
    ("truck", (255, 0, 20)),  # 83
    ("tower", (255, 184, 184)),  # 84
    ("chandelier", (0, 31, 255)),  # 85
    ("awning", (0, 255, 61)),  # 86
    ("streetlight", (0, 71, 255)),  # 87
    ("booth", (255, 0, 204)),  # 88
    ("television receiver", (0, 255, 194)),  # 89
    ("airplane", (0, 255, 82)),  # 90
    ("dirt track", (0, 10, 255)),  # 91
    ("apparel", (0, 112, 255)),  # 92
    ("pole", (51, 0, 255)),  # 93
    ("land", (0, 194, 255)),  # 94
    ("bannister", (0, 122, 255)),  # 95
    ("escalator", (0, 255, 163)),  # 96
    ("ottoman", (255, 153, 0)),  # 97
    ("bottle", (0, 255, 10)),  # 98
    ("buffet", (255, 112, 0)),  # 99
    ("poster", (143, 255, 0)),  # 100
    ("stage", (82, 0, 255)),  # 101
    ("van", (163, 255, 0)),  # 102
    ("ship", (255, 235, 0)),  # 103
    ("fountain", (8, 184, 170)),  # 104
    ("conveyer belt", (133, 0, 255)),  # 105
    ("canopy", (0, 255, 92)),  # 106
    ("washer", (184, 0, 255)),  # 107
    ("plaything", (255, 0, 31)),  # 108
    ("swimming pool", (0, 184, 255)),  # 109
    ("stool", (0, 214, 255)),  # 110
    ("barrel", (255, 0, 112)),  # 111
    ("basket", (92, 255, 0)),  # 112
    ("waterfall", (0, 224, 255)),  # 113
    ("tent", (112, 224, 255)),  # 114
    ("bag", (70, 184, 160)),  # 115
    ("minibike", (163, 0, 255)),  # 116
    ("cradle", (153, 0, 255)),  # 117
    ("oven", (71, 255, 0)),  # 118
    ("ball", (255, 0, 163)),  # 119
    ("food", (255, 204, 0)),  # 120
    ("step", (255, 0, 143)),  # 121
    ("tank", (0, 255, 235)),  # 122
    ("trade name", (133, 255, 0)),  # 123
    ("microwave", (255, 0, 235)),  # 124
    ("pot", (245, 0, 255)),  # 125
    ("animal", (255, 0, 122)),  # 126
    ("bicycle", (255, 245, 0)),  # 127
    ("lake", (10, 190, 212)),  # 128
    ("dishwasher", (214, 255, 0)),  # 129
    ("screen", (0, 204, 255)),  # 130
    ("blanket", (20, 0, 255)),  # 131
    ("sculpture", (255, 255, 0)),  # 132
    ("hood", (0, 153, 255)),  # 133
    ("sconce", (0, 41, 255)),  # 134
    ("vase", (0, 255, 204)),  # 135
    ("traffic light", (41, 0, 255)),  # 136
    ("tray", (41, 255, 0)),  # 137
    ("ashcan", (173, 0, 255)),  # 138
    ("fan", (0, 245, 255)),  # 139
    ("pier", (71, 0, 255)),  # 140
    ("crt screen", (122, 0, 255)),  # 141
    ("plate", (0, 255, 184)),  # 142
    ("monitor", (0, 92, 255)),  # 143
    ("bulletin board", (184, 255, 0)),  # 144
    ("shower", (0, 133, 255)),  # 145
    ("radiator", (255, 214, 0)),  # 146
    ("glass", (25, 194, 194)),  # 147
    ("clock", (102, 255, 0)),  # 148
    ("flag", (92, 0, 255)),  # 149
)


# COCO panoptic 133: detectron2 detectron2/data/datasets/builtin_meta.py
# (COCO_CATEGORIES, colours from cocodataset/panopticapi panoptic_coco_categories.json).
_COCO_PANOPTIC: tuple[tuple[str, RGB], ...] = (
    ("person", (220, 20, 60)),  # 0
    ("bicycle", (119, 11, 32)),  # 1
    ("car", (0, 0, 142)),  # 2
    ("motorcycle", (0, 0, 230)),  # 3
    ("airplane", (106, 0, 228)),  # 4
    ("bus", (0, 60, 100)),  # 5
    ("train", (0, 80, 100)),  # 6
    ("truck", (0, 0, 70)),  # 7
    ("boat", (0, 0, 192)),  # 8
    ("traffic light", (250, 170, 30)),  # 9
    ("fire hydrant", (100, 170, 30)),  # 10
    ("stop sign", (220, 220, 0)),  # 11
    ("parking meter", (175, 116, 175)),  # 12
    ("bench", (250, 0, 30)),  # 13
    ("bird", (165, 42, 42)),  # 14
    ("cat", (255, 77, 255)),  # 15
    ("dog", (0, 226, 252)),  # 16
    ("horse", (182, 182, 255)),  # 17
    ("sheep", (0, 82, 0)),  # 18
    ("cow", (120, 166, 157)),  # 19
    ("elephant", (110, 76, 0)),  # 20
    ("bear", (174, 57, 255)),  # 21
    ("zebra", (199, 100, 0)),  # 22
    ("giraffe", (72, 0, 118)),  # 23
    ("backpack", (255, 179, 240)),  # 24
    ("umbrella", (0, 125, 92)),  # 25
    ("handbag", (209, 0, 151)),  # 26
    ("tie", (188, 208, 182)),  # 27
    ("suitcase", (0, 220, 176)),  # 28
    ("frisbee", (255, 99, 164)),  # 29
    ("skis", (92, 0, 73)),  # 30
    ("snowboard", (133, 129, 255)),  # 31
    ("sports ball", (78, 180, 255)),  # 32
    ("kite", (0, 228, 0)),  # 33
    ("baseball bat", (174, 255, 243)),  # 34
    ("baseball glove", (45, 89, 255)),  # 35
    ("skateboard", (134, 134, 103)),  # 36
    ("surfboard", (145, 148, 174)),  # 37
    ("tennis racket", (255, 208, 186)),  # 38
    ("bottle", (197, 226, 255)),  # 39
    ("wine glass", (171, 134, 1)),  # 40
    ("cup", (109, 63, 54)),  # 41
    ("fork", (207, 138, 255)),  # 42
    ("knife", (151, 0, 95)),  # 43
    ("spoon", (9, 80, 61)),  # 44
    ("bowl", (84, 105, 51)),  # 45
    ("banana", (74, 65, 105)),  # 46
    ("apple", (166, 196, 102)),  # 47
    ("sandwich", (208, 195, 210)),  # 48
    ("orange", (255, 109, 65)),  # 49
    ("broccoli", (0, 143, 149)),  # 50
    ("carrot", (179, 0, 194)),  # 51
    ("hot dog", (209, 99, 106)),  # 52
    ("pizza", (5, 121, 0)),  # 53
    ("donut", (227, 255, 205)),  # 54
    ("cake", (147, 186, 208)),  # 55
    ("chair", (153, 69, 1)),  # 56
    ("couch", (3, 95, 161)),  # 57
    ("potted plant", (163, 255, 0)),  # 58
    ("bed", (119, 0, 170)),  # 59
    ("dining table", (0, 182, 199)),  # 60
    ("toilet", (0, 165, 120)),  # 61
    ("tv", (183, 130, 88)),  # 62
    ("laptop", (95, 32, 0)),  # 63
    ("mouse", (130, 114, 135)),  # 64
    ("remote", (110, 129, 133)),  # 65
    ("keyboard", (166, 74, 118)),  # 66
    ("cell phone", (219, 142, 185)),  # 67
    ("microwave", (79, 210, 114)),  # 68
    ("oven", (178, 90, 62)),  # 69
    ("toaster", (65, 70, 15)),  # 70
    ("sink", (127, 167, 115)),  # 71
    ("refrigerator", (59, 105, 106)),  # 72
    ("book", (142, 108, 45)),  # 73
    ("clock", (196, 172, 0)),  # 74
    ("vase", (95, 54, 80)),  # 75
    ("scissors", (128, 76, 255)),  # 76
    ("teddy bear", (201, 57, 1)),  # 77
    ("hair drier", (246, 0, 122)),  # 78
    ("toothbrush", (191, 162, 208)),  # 79
    ("banner", (255, 255, 128)),  # 80
    ("blanket", (147, 211, 203)),  # 81
    ("bridge", (150, 100, 100)),  # 82
    ("cardboard", (168, 171, 172)),  # 83
    ("counter", (146, 112, 198)),  # 84
    ("curtain", (210, 170, 100)),  # 85
    ("door-stuff", (92, 136, 89)),  # 86
    ("floor-wood", (218, 88, 184)),  # 87
    ("flower", (241, 129, 0)),  # 88
    ("fruit", (217, 17, 255)),  # 89
    ("gravel", (124, 74, 181)),  # 90
    ("house", (70, 70, 70)),  # 91
    ("light", (255, 228, 255)),  # 92
    ("mirror-stuff", (154, 208, 0)),  # 93
    ("net", (193, 0, 92)),  # 94
    ("pillow", (76, 91, 113)),  # 95
    ("platform", (255, 180, 195)),  # 96
    ("playingfield", (106, 154, 176)),  # 97
    ("railroad", (230, 150, 140)),  # 98
    ("river", (60, 143, 255)),  # 99
    ("road", (128, 64, 128)),  # 100
    ("roof", (92, 82, 55)),  # 101
    ("sand", (254, 212, 124)),  # 102
    ("sea", (73, 77, 174)),  # 103
    ("shelf", (255, 160, 98)),  # 104
    ("snow", (255, 255, 255)),  # 105
    ("stairs", (104, 84, 109)),  # 106
    ("tent", (169, 164, 131)),  # 107
    ("towel", (225, 199, 255)),  # 108
    ("wall-brick", (137, 54, 74)),  # 109
    ("wall-stone", (135, 158, 223)),  # 110
    ("wall-tile", (7, 246, 231)),  # 111
    ("wall-wood", (107, 255, 200)),  # 112
    ("water-other", (58, 41, 149)),  # 113
    ("window-blind", (183, 121, 142)),  # 114
    ("window-other", (255, 73, 97)),  # 115
    ("tree-merged", (107, 142, 35)),  # 116
    ("fence-merged", (190, 153, 153)),  # 117
    ("ceiling-merged", (146, 139, 141)),  # 118
    ("sky-other-merged", (70, 130, 180)),  # 119
    ("cabinet-merged", (134, 199, 156)),  # 120
    ("table-merged", (209, 226, 140)),  # 121
    ("floor-other-merged", (96, 36, 108)),  # 122
    ("pavement-merged", (96, 96, 96)),  # 123
    ("mountain-merged", (64, 170, 64)),  # 124
    ("grass-merged", (152, 251, 152)),  # 125
    ("dirt-merged", (208, 229, 228)),  # 126
    ("paper-merged", (206, 186, 171)),  # 127
    ("food-other-merged", (152, 161, 64)),  # 128
    ("building-other-merged", (116, 112, 0)),  # 129
    ("rock-merged", (0, 114, 143)),  # 130
    ("wall-other-merged", (102, 102, 156)),  # 131
    ("rug-merged", (250, 141, 255)),  # 132
)


# Cityscapes 19 trainIds: cityscapesScripts cityscapesscripts/helpers/labels.py.
_CITYSCAPES: tuple[tuple[str, RGB], ...] = (
    ("road", (128, 64, 128)),  # 0
    ("sidewalk", (244, 35, 232)),  # 1
    ("building", (70, 70, 70)),  # 2
    ("wall", (102, 102, 156)),  # 3
    ("fence", (190, 153, 153)),  # 4
    ("pole", (153, 153, 153)),  # 5
    ("traffic light", (250, 170, 30)),  # 6
    ("traffic sign", (220, 220, 0)),  # 7
    ("vegetation", (107, 142, 35)),  # 8
    ("terrain", (152, 251, 152)),  # 9
    ("sky", (70, 130, 180)),  # 10
    ("person", (220, 20, 60)),  # 11
    ("rider", (255, 0, 0)),  # 12
    ("car", (0, 0, 142)),  # 13
    ("truck", (0, 0, 70)),  # 14
    ("bus", (0, 60, 100)),  # 15
    ("train", (0, 80, 100)),  # 16
    ("motorcycle", (0, 0, 230)),  # 17
    ("bicycle", (119, 11, 32)),  # 18
)


def _split(table: tuple[tuple[str, RGB], ...]) -> tuple[tuple[str, ...], tuple[RGB, ...]]:
    """Split a ``(name, colour)`` table into a names tuple and a colours tuple."""
    return tuple(n for n, _ in table), tuple(c for _, c in table)


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


def _build() -> dict[str, Vocabulary]:
    ade_names, ade_colors = _split(_ADE20K)
    coco_raw, coco_colors = _split(_COCO_PANOPTIC)
    city_names, city_colors = _split(_CITYSCAPES)
    vocabularies = {
        "ade20k": Vocabulary("ade20k", ade_names, ade_colors),
        "coco": Vocabulary("coco", _coco_display_names(coco_raw), coco_colors, coco_raw),
        "cityscapes": Vocabulary("cityscapes", city_names, city_colors),
    }
    for vocab in vocabularies.values():
        if len(set(vocab.names)) != len(vocab.names):  # pragma: no cover - data invariant
            raise RuntimeError(f"built-in vocabulary {vocab.name!r} has duplicate names")
    return vocabularies


#: The built-in closed-set vocabularies, by name.
VOCABULARIES: dict[str, Vocabulary] = _build()


def get_vocabulary(name: str) -> Vocabulary:
    """Return the built-in vocabulary called ``name`` (case and surrounding space ignored).

    Raises:
        ValueError: ``name`` is not a built-in vocabulary; the message lists the known ones.
    """
    key = name.strip().lower() if isinstance(name, str) else name
    try:
        return VOCABULARIES[key]
    except (KeyError, TypeError):
        known = ", ".join(sorted(VOCABULARIES))
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
