"""Pipeline parts for tests that plant their masks or class maps with a plain function.

The pipeline calls each part in two halves (``infer`` on the network thread, then
``decode`` / ``class_map``); these wrappers keep the image for the second half and call the
function there, so a test states only what the part returns.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


class FunctionMasks:
    """A mask generator whose masks are ``fn(rgb)`` (a MaskSet)."""

    is_random = False

    def __init__(self, fn: Callable[[np.ndarray], object]) -> None:
        self.fn = fn

    def infer(self, rgb: np.ndarray) -> np.ndarray:
        return rgb

    def decode(self, rgb: np.ndarray) -> object:
        return self.fn(rgb)

    def __call__(self, rgb: np.ndarray) -> object:
        return self.decode(self.infer(rgb))

    def output_hw(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        return self.fn(np.zeros((*image_hw, 3), np.uint8)).work_hw

    def apply(self, settings: object) -> None:
        pass


class FunctionClasses:
    """A closed-set segmenter whose class-index map is ``fn(rgb, out_hw)``."""

    is_random = False
    min_confidence = 0.0

    def __init__(
        self, fn: Callable[[np.ndarray, tuple[int, int]], np.ndarray], vocabulary: object = None
    ) -> None:
        self.fn = fn
        self.vocabulary = vocabulary

    def infer(self, rgb: np.ndarray) -> np.ndarray:
        return rgb

    def class_map(self, rgb: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
        return self.fn(rgb, out_hw)

    def __call__(self, rgb: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
        return self.class_map(self.infer(rgb), out_hw)

    def apply(self, settings: object) -> None:
        pass
