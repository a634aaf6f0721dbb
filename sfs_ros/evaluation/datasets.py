"""Readers for the Cityscapes and ADE20K validation layouts.

Cityscapes (``--root`` = the folder holding ``leftImg8bit/`` and ``gtFine/``)::

    leftImg8bit/val/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    gtFine/val/<city>/<city>_<seq>_<frame>_gtFine_labelTrainIds.png

The ``labelTrainIds`` files hold trainIds 0..18 and 255 (ignore); the official download only
has ``labelIds``, the trainId files come from cityscapesScripts'
``csCreateTrainIdLabelImgs`` (the layout mmseg also expects).

ADE20K SceneParsing (``--root`` = ``ADEChallengeData2016/``)::

    images/validation/ADE_val_XXXXXXXX.jpg
    annotations/validation/ADE_val_XXXXXXXX.png

Annotations hold 0 (other/unlabelled) and classes 1..150; reduce-zero-label applies, exactly
as mmseg: 0 -> 255 (ignored), ``v`` -> ``v - 1``, 255 stays 255.

Tiny world (``--root`` = a folder written by ``sfs-world generate``)::

    images/<stem>.png
    labels/<stem>.png         (uint8 class index of sfs_ros.world.classes.CLASSES, no ignore)
    instances/<stem>.png      (uint16 instance ids; not read here)

Samples are sorted by path, so ``--limit N`` always takes the same N images.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from sfs_ros import images
from sfs_ros.errors import EvaluationError, InputError
from sfs_ros.vocabularies import Vocabulary, get_vocabulary

__all__ = [
    "DATASETS",
    "IGNORE_INDEX",
    "EvaluationError",
    "Sample",
    "SegmentationDataset",
    "dataset_vocabulary",
    "open_dataset",
    "read_label_png",
    "read_rgb",
]

#: Ground-truth value that marks pixels excluded from evaluation.
IGNORE_INDEX = 255
#: Dataset layouts understood by :func:`open_dataset`.
DATASETS = ("cityscapes", "ade20k", "tiny-world")
_MAX_LISTED = 5


@dataclass(frozen=True)
class Sample:
    """One image / ground-truth pair.

    Attributes:
        stem: the image file's stem (the ``<stem>`` of ``sfs-segment``'s ``<stem>_label.png``).
        image_path: the input image.
        gt_path: the ground-truth label PNG.
    """

    stem: str
    image_path: Path
    gt_path: Path


def read_label_png(path: Path) -> np.ndarray:
    """Read a single-channel 8- or 16-bit label PNG unchanged.

    Raises:
        EvaluationError: the file is missing, unreadable or not single-channel integer.
    """
    if not path.is_file():
        raise EvaluationError(f"missing file: {path}")
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise EvaluationError(f"cannot read label image {path}")
    if data.ndim == 3 and data.shape[2] == 1:
        data = data[:, :, 0]
    if data.ndim != 2 or data.dtype not in (np.uint8, np.uint16):
        raise EvaluationError(
            f"{path}: expected a single-channel 8/16-bit label image, got shape {data.shape} "
            f"dtype {data.dtype} (colour or palette PNGs are not label maps)"
        )
    return data


def read_rgb(path: Path) -> np.ndarray:
    """Read an image as RGB ``uint8`` (H, W, 3).

    Raises:
        EvaluationError: the file is missing or unreadable.
    """
    try:
        return images.read_rgb(path)
    except InputError as exc:
        raise EvaluationError(f"cannot read image: {exc}") from exc


@dataclass(frozen=True)
class SegmentationDataset:
    """A validation split: sorted samples plus how to read their ground truth.

    Attributes:
        name: ``"cityscapes"``, ``"ade20k"`` or ``"tiny-world"``.
        root: the dataset root given by the user.
        class_names: dataset class names in index order.
        reduce_zero_label: ADE-style ground truth (0 ignored, others minus 1).
        samples: the image / ground-truth pairs, sorted by image path.
    """

    name: str
    root: Path
    class_names: tuple[str, ...]
    reduce_zero_label: bool
    samples: tuple[Sample, ...]

    def __len__(self) -> int:
        """Number of samples."""
        return len(self.samples)

    def load_gt(self, sample: Sample) -> np.ndarray:
        """Ground truth of ``sample`` as ``uint8`` class indices with 255 = ignore.

        Raises:
            EvaluationError: unreadable file or a value that is no class of this dataset.
        """
        raw = read_label_png(sample.gt_path)
        num = len(self.class_names)
        if self.reduce_zero_label:
            valid = (raw != 0) & (raw != IGNORE_INDEX)
            gt = np.full(raw.shape, IGNORE_INDEX, dtype=np.uint8)
            values = raw[valid].astype(np.int64) - 1
        else:
            valid = raw != IGNORE_INDEX
            gt = np.full(raw.shape, IGNORE_INDEX, dtype=np.uint8)
            values = raw[valid].astype(np.int64)
        if values.size and int(values.max()) >= num:
            bad = int(values.max()) + (1 if self.reduce_zero_label else 0)
            raise EvaluationError(
                f"{sample.gt_path}: label value {bad} is no {self.name} class "
                f"(expected {'1..' + str(num) if self.reduce_zero_label else '0..' + str(num - 1)}"
                f" or {IGNORE_INDEX}); is this the right dataset layout?"
            )
        gt[valid] = values.astype(np.uint8)
        return gt

    def __iter__(self) -> Iterator[tuple[str, Path, np.ndarray]]:
        """Yield ``(stem, image_path, ground truth)`` for every sample, in order."""
        for sample in self.samples:
            yield sample.stem, sample.image_path, self.load_gt(sample)

    def limited(self, limit: int | None) -> SegmentationDataset:
        """The first ``limit`` samples (all of them for ``None``)."""
        if limit is None:
            return self
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        return SegmentationDataset(
            self.name, self.root, self.class_names, self.reduce_zero_label, self.samples[:limit]
        )


def _listing(paths: list[Path]) -> str:
    shown = ", ".join(str(p) for p in paths[:_MAX_LISTED])
    more = len(paths) - _MAX_LISTED
    return shown + (f" (and {more} more)" if more > 0 else "")


def _require_dir(path: Path, what: str) -> None:
    if not path.is_dir():
        raise EvaluationError(f"{what} folder not found: {path}")


def _pair(
    images: list[Path],
    gt_files: list[Path],
    gt_for: dict[Path, Path],
    image_pattern: Path,
    gt_pattern: Path,
) -> tuple[Sample, ...]:
    """Check that images and ground truth pair up one to one."""
    if not images:
        raise EvaluationError(f"no images found: expected {image_pattern}")
    missing_gt = [gt_for[image] for image in images if not gt_for[image].is_file()]
    if missing_gt:
        raise EvaluationError(
            f"{len(missing_gt)} image(s) have no ground truth ({gt_pattern}); "
            f"expected {_listing(missing_gt)}"
        )
    expected = set(gt_for.values())
    orphans = [gt for gt in gt_files if gt not in expected]
    if orphans:
        raise EvaluationError(
            f"{len(orphans)} ground-truth file(s) have no image ({image_pattern}): "
            f"{_listing(orphans)}"
        )
    return tuple(Sample(image.stem, image, gt_for[image]) for image in images)


def _cityscapes(root: Path) -> tuple[Sample, ...]:
    image_dir = root / "leftImg8bit" / "val"
    gt_dir = root / "gtFine" / "val"
    _require_dir(image_dir, "Cityscapes image")
    _require_dir(gt_dir, "Cityscapes ground-truth")
    suffix = "_leftImg8bit"
    images = sorted(p for p in image_dir.glob(f"*/*{suffix}.png") if p.is_file())
    gt_files = sorted(gt_dir.glob("*/*_gtFine_labelTrainIds.png"))
    gt_for = {
        image: gt_dir / image.parent.name / f"{image.stem[: -len(suffix)]}_gtFine_labelTrainIds.png"
        for image in images
    }
    return _pair(
        images,
        gt_files,
        gt_for,
        image_dir / "*" / f"*{suffix}.png",
        gt_dir / "*" / "*_gtFine_labelTrainIds.png",
    )


def _ade20k(root: Path) -> tuple[Sample, ...]:
    image_dir = root / "images" / "validation"
    gt_dir = root / "annotations" / "validation"
    _require_dir(image_dir, "ADE20K image")
    _require_dir(gt_dir, "ADE20K annotation")
    images = sorted(p for p in image_dir.glob("*.jpg") if p.is_file())
    gt_files = sorted(gt_dir.glob("*.png"))
    gt_for = {image: gt_dir / f"{image.stem}.png" for image in images}
    return _pair(images, gt_files, gt_for, image_dir / "*.jpg", gt_dir / "*.png")


def _tiny_world(root: Path) -> tuple[Sample, ...]:
    image_dir = root / "images"
    gt_dir = root / "labels"
    _require_dir(image_dir, "tiny-world image")
    _require_dir(gt_dir, "tiny-world label")
    images = sorted(p for p in image_dir.glob("*.png") if p.is_file())
    gt_files = sorted(gt_dir.glob("*.png"))
    gt_for = {image: gt_dir / image.name for image in images}
    return _pair(images, gt_files, gt_for, image_dir / "*.png", gt_dir / "*.png")


def dataset_vocabulary(name: str) -> Vocabulary:
    """The class names (and colours) a dataset's ground truth indexes.

    Raises:
        ValueError: unknown dataset name.
    """
    if name == "tiny-world":
        from sfs_ros.world.classes import tiny_world_vocabulary

        return tiny_world_vocabulary()
    return get_vocabulary(name)


def open_dataset(name: str, root: str | Path) -> SegmentationDataset:
    """Index the validation split of dataset ``name`` under ``root``.

    Args:
        name: ``"cityscapes"``, ``"ade20k"`` or ``"tiny-world"``.
        root: the dataset root (see the module docstring for the expected layout).

    Raises:
        EvaluationError: unknown dataset, missing folders, no images, or images and ground
            truth that do not pair up (the message names the expected paths).
    """
    root = Path(root)
    if name not in DATASETS:
        raise EvaluationError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if not root.is_dir():
        raise EvaluationError(f"dataset root not found: {root}")
    readers = {"cityscapes": _cityscapes, "ade20k": _ade20k, "tiny-world": _tiny_world}
    samples = readers[name](root)
    return SegmentationDataset(
        name=name,
        root=root,
        class_names=dataset_vocabulary(name).names,
        reduce_zero_label=name == "ade20k",
        samples=samples,
    )
