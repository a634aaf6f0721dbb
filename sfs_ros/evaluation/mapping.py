"""Map our class ids (a legend) to a dataset's class indices.

Our label maps hold ids whose meaning is given by a legend (``legend.json`` from
``sfs-segment``, or :meth:`Pipeline.legend_dict`): ``{"classes": [{"id", "name", ...}]}``,
id 0 = unidentified. A dataset scores its own class indices (Cityscapes trainIds 0..18,
ADE20K-150 0..149). :func:`build_mapping` turns the legend into a look-up table
``lut[our_id] -> dataset index`` by class **name**:

1. the name itself, matched with :meth:`Vocabulary.index_of` (normalized: case, spaces,
   underscores and COCO ``-merged``/``-other``/``-stuff`` suffixes do not matter);
2. for a name with comma-separated synonyms (``"sofa, couch, lounge"``), each part in turn;
3. the small per-dataset synonym table below (:data:`SYNONYMS`).

Everything else - id 0 (unidentified), names of no dataset class, ids missing from the legend -
is **ignored**: ``lut`` gives :data:`IGNORED` (255). An ignored prediction is scored as a wrong
prediction of no class: the pixel adds to its ground-truth class's union (a miss) but to no
predicted class's area (no false positive anywhere). This is what mmseg does with any predicted
value outside ``[0, num_classes)``, it neither rewards nor punishes another class, and it
keeps "we could not name it" distinct from "we named it wrong". The alternative (drop those
pixels like ground-truth ignore) would let a method raise its score by declaring hard pixels
unidentified, so it is not used. The report lists the ignored classes by name with their pixel
counts.

Synonyms are deliberately few: only names whose every instance belongs to one dataset class by
that dataset's own class definition. Cityscapes (definitions from cityscapes-dataset.com):
``vegetation`` = "trees, hedges, all kinds of vertical vegetation", ``terrain`` = "grass, all
kinds of horizontal vegetation, soil or sand", ``rider`` = a person riding a bicycle,
motorbike, ..., ``train`` = "train, tram", ``traffic sign`` = signs for traffic (so COCO's
``stop sign``). ADE20K-150 (``objectInfo150`` synonym lists):
``minibike`` = "minibike, motorbike", ``signboard`` = "signboard, sign", ``windowpane`` =
"windowpane, window", ``sofa`` = "sofa, couch, lounge", ``television receiver`` = "...,
television, tv, ...", ``streetlight`` = "streetlight, street lamp", ``ashcan`` = "ashcan,
trash can, garbage can, ...", ``plaything`` = "plaything, toy", ``washer`` = "washer,
automatic washer, washing machine"; ADE has no rider class and labels riders ``person``.

Left out on purpose because they are ambiguous: ``van`` (Cityscapes puts vans with a
continuous body under car and box vans under truck), ``signboard`` -> ``traffic sign`` (most
signs are not traffic signs), ``streetlight`` -> ``pole``, ``pavement`` -> ``sidewalk``
(COCO's pavement also covers squares and paths), ``earth``/``dirt`` -> ``terrain``,
``vegetation`` -> ``tree``/``plant``/``grass``, ``potted plant`` -> ``plant`` (ADE often
labels the pot), ``bike`` (bicycle or motorbike).
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sfs_ros.vocabularies import Vocabulary, normalize_class_name

__all__ = ["IGNORED", "SYNONYMS", "ClassMapping", "IgnoredClass", "MappedClass", "build_mapping"]

#: Dataset index given to our ids that map to no dataset class ("ignored prediction").
IGNORED = 255

#: Per dataset: our (normalized) class name -> the dataset's class name. See the module
#: docstring for why each entry is unambiguous and which obvious candidates are left out.
SYNONYMS: dict[str, dict[str, str]] = {
    "cityscapes": {
        "tree": "vegetation",
        "palm": "vegetation",
        "plant": "vegetation",
        "hedge": "vegetation",
        "grass": "terrain",
        "lawn": "terrain",
        "sand": "terrain",
        "pedestrian": "person",
        "cyclist": "rider",
        "bicyclist": "rider",
        "motorcyclist": "rider",
        "motorbike": "motorcycle",
        "minibike": "motorcycle",
        "tram": "train",
        "stop sign": "traffic sign",
    },
    "ade20k": {
        "pedestrian": "person",
        "rider": "person",
        "motorcycle": "minibike",
        "motorbike": "minibike",
        "traffic sign": "signboard",
        "stop sign": "signboard",
        "window": "windowpane",
        "couch": "sofa",
        "tv": "television receiver",
        "television": "television receiver",
        "dining table": "table",
        "street light": "streetlight",
        "street lamp": "streetlight",
        "trash can": "ashcan",
        "garbage can": "ashcan",
        "toy": "plaything",
        "washing machine": "washer",
    },
}


@dataclass(frozen=True)
class MappedClass:
    """One of our classes that scores as a dataset class.

    Attributes:
        id: our class id.
        name: our class name (from the legend).
        dataset_index: the dataset class index it counts as.
        dataset_name: that dataset class's name.
        via: ``"name"`` (direct match) or ``"synonym"`` (from :data:`SYNONYMS`).
    """

    id: int
    name: str
    dataset_index: int
    dataset_name: str
    via: str


@dataclass(frozen=True)
class IgnoredClass:
    """One of our classes that maps to no dataset class.

    Attributes:
        id: our class id.
        name: our class name (from the legend).
        reason: ``"unidentified"`` (id 0) or ``"no dataset class"``.
    """

    id: int
    name: str
    reason: str


@dataclass(frozen=True)
class ClassMapping:
    """A legend mapped onto a dataset's classes.

    Attributes:
        dataset: dataset name (``"cityscapes"`` / ``"ade20k"``).
        lut: ``lut[our_id]`` = dataset index or :data:`IGNORED`; ids past the end are ignored.
        mapped: our classes that score, in id order.
        ignored: our classes that map to nothing, in id order.
        legend_names: our id -> name for every class in the legend.
    """

    dataset: str
    lut: np.ndarray
    mapped: tuple[MappedClass, ...]
    ignored: tuple[IgnoredClass, ...]
    legend_names: dict[int, str] = field(default_factory=dict)

    def apply(self, label_map: np.ndarray) -> np.ndarray:
        """Translate a label map of our ids into dataset indices (``IGNORED`` = no class).

        Args:
            label_map: non-negative integer ids, any shape.

        Returns:
            A ``uint8`` array of the same shape.
        """
        ids = np.asarray(label_map)
        if ids.size == 0:
            return np.zeros(ids.shape, dtype=np.uint8)
        if ids.dtype.kind not in "ui":
            raise ValueError(f"label map must hold integer ids, got dtype {ids.dtype}")
        ids = ids.astype(np.int64, copy=False)
        if int(ids.min()) < 0:
            raise ValueError("label map holds negative ids")
        top = int(ids.max())
        lut = self.lut
        if top >= lut.size:
            lut = np.concatenate([lut, np.full(top + 1 - lut.size, IGNORED, dtype=np.uint8)])
        return lut[ids]

    def name_of(self, class_id: int) -> str:
        """Our name for ``class_id``, or a placeholder for an id missing from the legend."""
        return self.legend_names.get(int(class_id), f"<id {int(class_id)} not in legend>")


def _lookup(name: str, vocab: Vocabulary, dataset: str) -> tuple[int, str] | None:
    """Dataset index and how it was found, or ``None``."""
    candidates = [name]
    if "," in name:
        candidates += [part for part in name.split(",") if part.strip()]
    for candidate in candidates:
        try:
            return vocab.index_of(candidate), "name"
        except KeyError:
            pass
    synonyms = SYNONYMS.get(dataset, {})
    for candidate in candidates:
        target = synonyms.get(normalize_class_name(candidate))
        if target is not None:
            return vocab.index_of(target), "synonym"
    return None


def build_mapping(legend: MappingABC[str, Any], vocab: Vocabulary, dataset: str) -> ClassMapping:
    """Build the our-id -> dataset-index look-up table for a legend.

    Args:
        legend: a legend dict (``{"classes": [{"id": int, "name": str, ...}, ...]}``).
        vocab: the dataset's vocabulary (class names in dataset index order).
        dataset: dataset name, selects the synonym table.

    Returns:
        The mapping; id 0 is always ignored (unidentified).

    Raises:
        ValueError: the legend is malformed (no ``classes`` list, an entry without an integer
            ``id`` >= 0 or a string ``name``, or the same id twice).
    """
    classes = legend.get("classes") if isinstance(legend, MappingABC) else None
    if not isinstance(classes, list):
        raise ValueError("legend has no 'classes' list")
    if len(vocab) >= IGNORED:
        raise ValueError(f"vocabulary {vocab.name!r} has too many classes for a uint8 table")
    names: dict[int, str] = {}
    for entry in classes:
        if not isinstance(entry, MappingABC):
            raise ValueError(f"legend class entry is not an object: {entry!r}")
        class_id, name = entry.get("id"), entry.get("name")
        if isinstance(class_id, bool) or not isinstance(class_id, int) or class_id < 0:
            raise ValueError(f"legend class entry has no valid 'id': {entry!r}")
        if not isinstance(name, str):
            raise ValueError(f"legend class entry has no 'name' string: {entry!r}")
        if class_id in names:
            raise ValueError(f"legend gives id {class_id} twice")
        names[class_id] = name
    size = max(names, default=0) + 1
    lut = np.full(size, IGNORED, dtype=np.uint8)
    mapped: list[MappedClass] = []
    ignored: list[IgnoredClass] = []
    for class_id in sorted(names):
        name = names[class_id]
        if class_id == 0:
            ignored.append(IgnoredClass(0, name, "unidentified"))
            continue
        found = _lookup(name, vocab, dataset)
        if found is None:
            ignored.append(IgnoredClass(class_id, name, "no dataset class"))
            continue
        index, via = found
        lut[class_id] = index
        mapped.append(MappedClass(class_id, name, index, vocab.names[index], via))
    return ClassMapping(dataset, lut, tuple(mapped), tuple(ignored), names)
