# SPDX-License-Identifier: AGPL-3.0-or-later
"""What the pipeline and the open-vocabulary branch need from each kind of model.

The pipeline (:mod:`sfs_ros.pipeline`) and the branch (:mod:`sfs_ros.open_vocab.branch`) are
typed with these protocols, never with a concrete class, so a new implementation plugs in
without touching them. Each implementation is one class (docs/architecture.md, "Adding a
model"); a model whose network can also run exported (ONNX Runtime, OpenVINO) calls a network
object (:mod:`sfs_ros.models.networks`) instead of branching on the backend.

Every part states whether it runs with random weights (``is_random``): the pipeline lists those
parts in its ``random_weights`` and the start-up banner, so the attribute is part of each
protocol rather than something probed for.

The protocols are ``runtime_checkable``: ``isinstance(part, Segmenter)`` checks that the members
exist (not their signatures); test/test_model_registry.py does that for every implementation.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from sfs_ros.models.fastsam import MaskSet
    from sfs_ros.params import ClosedSetConfig, FastSAMConfig
    from sfs_ros.vocabularies import Vocabulary

__all__ = ["Captioner", "MaskGenerator", "Scorer", "Segmenter"]


@runtime_checkable
class MaskGenerator(Protocol):
    """Class-agnostic masks of one frame (e.g. FastSAM, :mod:`sfs_ros.models.fastsam`).

    Attributes:
        is_random: the weights are random (``allow_random_weights``).
    """

    is_random: bool

    def infer(self, rgb: np.ndarray) -> Any:
        """The network half of a call on one RGB uint8 image (H, W, 3): whatever
        :meth:`decode` needs. It reads no live parameter, so it may run on one thread while
        :meth:`decode` of the previous frame runs on another (``overlap_frames``)."""
        ...

    def decode(self, raw: Any) -> MaskSet:
        """Masks of an :meth:`infer` result, at the working resolution, in score order, with
        the live parameters in force now."""
        ...

    def __call__(self, rgb: np.ndarray) -> MaskSet:
        """Masks of one RGB uint8 image: ``decode(infer(rgb))``."""
        ...

    def output_hw(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        """(h, w) of the masks returned for an image of ``image_hw`` (the working resolution);
        known before the call, so the closed-set models can run at the same time."""
        ...

    def apply(self, settings: FastSAMConfig) -> None:
        """Take a changed ``fastsam`` group (its live parameters) from the next call on."""
        ...


@runtime_checkable
class Segmenter(Protocol):
    """A closed-set semantic segmenter (e.g. :mod:`sfs_ros.models.closed_set`).

    Attributes:
        vocabulary: the names of its output classes; class index ``i`` is ``vocabulary.names[i]``.
        is_random: the weights are random (``allow_random_weights``).
        min_confidence: pixels whose top-class probability is below it are ``-1`` (unsure);
            0 labels every pixel. Set live by the pipeline (``closed_set.min_confidence``);
            a model that cannot honour it logs so at load and labels every pixel.
    """

    vocabulary: Vocabulary
    is_random: bool
    min_confidence: float

    def infer(self, rgb: np.ndarray) -> Any:
        """The network half of a call on one RGB uint8 image: its raw outputs (no live
        parameter is read, see :meth:`MaskGenerator.infer`)."""
        ...

    def class_map(self, raw: Any, out_hw: tuple[int, int]) -> np.ndarray:
        """Class-index map (h, w) int32 at ``out_hw`` of an :meth:`infer` result (-1 = unsure),
        with ``min_confidence`` in force now."""
        ...

    def __call__(self, rgb: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
        """Class-index map of one RGB uint8 image: ``class_map(infer(rgb), out_hw)``."""
        ...

    def apply(self, settings: ClosedSetConfig) -> None:
        """Take a changed ``closed_set`` group (``min_confidence``) from the next call on."""
        ...


@runtime_checkable
class Scorer(Protocol):
    """An open-vocabulary scorer (CLIP-style; e.g. :class:`sfs_ros.open_vocab.clip.ClipScorer`).

    Attributes:
        is_random: the weights are random (``allow_random_weights``).
        cancel: set when the branch shuts down; a running :meth:`score` stops before its next
            encoder call (it may raise).
    """

    is_random: bool
    cancel: threading.Event

    def score(
        self, rgb: np.ndarray, masks: np.ndarray, boxes: np.ndarray, names: Sequence[str]
    ) -> np.ndarray:
        """(N, C) float32 similarity of each mask (N, h, w; boxes xyxy in input pixels) with
        each name; a NaN row for a mask it did not score."""
        ...

    def counters(self) -> dict[str, int]:
        """Work counters for diagnostics (e.g. encoder calls); empty when it keeps none."""
        ...


@runtime_checkable
class Captioner(Protocol):
    """Proposes candidate names for masks the scorer left unnamed (e.g. a BLIP captioner,
    :class:`sfs_ros.open_vocab.captioner.BlipCaptioner`).

    Attributes:
        is_random: the weights are random (``allow_random_weights``).
    """

    is_random: bool

    def captions(
        self, rgb: np.ndarray, masks: np.ndarray, boxes: np.ndarray, index: Sequence[int]
    ) -> list[str]:
        """One caption per mask of ``index`` (``""`` where the mask cannot be captioned)."""
        ...

    def nouns(
        self, rgb: np.ndarray, masks: np.ndarray, boxes: np.ndarray, index: Sequence[int]
    ) -> list[str]:
        """Candidate names (caption nouns, deduplicated) for the masks of ``index``."""
        ...
