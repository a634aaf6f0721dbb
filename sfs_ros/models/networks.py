# SPDX-License-Identifier: AGPL-3.0-or-later
"""The network objects the model adapters call: one class per way of running a network.

An adapter (FastSAM, SegFormer) does its own pre- and post-processing and calls a network in
between: a :class:`Network` takes the uint8 image at the network's input size and returns the
output tensors in a fixed order, whatever runs them. :class:`TorchFastSAM` and
:class:`TorchSegFormer` run the torch module; :class:`ExportedTensors` runs the same network
exported to ONNX Runtime or OpenVINO (:class:`sfs_ros.models.backends.ExportedNetwork`). The
adapter never asks which backend it has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from sfs_ros.models.backends import ExportedNetwork


class Network(Protocol):
    """A network on the RGB uint8 image at its input size, (H, W, 3) → its outputs (torch
    tensors), in a fixed order. It makes its float input itself: the torch networks with the
    adapter's ``to_tensor``, the exported ones inside the compiled model
    (:class:`~sfs_ros.models.backends.InputNormalisation`)."""

    def __call__(self, image: np.ndarray) -> tuple[object, ...]:
        """Run one forward pass (no gradients)."""
        ...


class TorchFastSAM:
    """An ultralytics YOLOv8-seg / FastSAM module run in torch → (predictions, prototypes).

    Args:
        net: the module.
        to_tensor: the letterboxed image → the module's (1, 3, h, w) input (the adapter's).
    """

    def __init__(self, net: object, to_tensor: Callable[[np.ndarray], object]) -> None:
        self.net = net
        self.to_tensor = to_tensor

    def __call__(self, image: np.ndarray) -> tuple[object, object]:
        import torch

        with torch.inference_mode():
            out = self.net(self.to_tensor(image))
        preds, proto = out[0] if isinstance(out[0], tuple | list) else out
        return preds, proto


class TorchSegFormer:
    """A transformers SegFormer run in torch with its decode head folded
    (:mod:`sfs_ros.models.segformer_head`: the same logits for less work)
    → (logits (1, C, h/4, w/4),).

    Attributes:
        module: the folded module (shares the model's weights); its first output is checked
            for NaN/inf (broken weights) on the warm-up frame.
        to_tensor: the resized image → the module's normalised (1, 3, h, w) input.
    """

    def __init__(
        self, model: object, param: str, source: str, to_tensor: Callable[[np.ndarray], object]
    ) -> None:
        from sfs_ros.models.segformer_head import FoldedSegformer
        from sfs_ros.weight_checks import guard_first_output

        self.module = FoldedSegformer(model)
        self.to_tensor = to_tensor
        guard_first_output(self.module, param, source)

    def __call__(self, image: np.ndarray) -> tuple[object]:
        import torch

        with torch.inference_mode():
            return (self.module(self.to_tensor(image)),)


class ExportedTensors:
    """An :class:`ExportedNetwork` that takes the uint8 image (its ``normalisation`` makes the
    float input inside the compiled model), with the outputs as torch tensors in the export's
    output order.

    Attributes:
        exported: the exported network (its compiled models and export cache).
        channels_last: the export's outputs are (N, H, W, C) arrays; each comes back as an
            (N, C, H, W) tensor in channels-last memory (a view, no copy), which torch's
            ``interpolate`` and per-pixel reductions over C read along contiguous memory.
    """

    def __init__(self, exported: ExportedNetwork, channels_last: bool = False) -> None:
        if exported.normalisation is None:
            raise ValueError(f"{exported.name}: ExportedTensors needs an input normalisation")
        self.exported = exported
        self.channels_last = channels_last

    @property
    def backend(self) -> str:
        """``onnx`` or ``openvino``."""
        return self.exported.backend

    def __call__(self, image: np.ndarray) -> tuple[object, ...]:
        import torch

        outputs = (torch.from_numpy(out) for out in self.exported(image[None]))
        if self.channels_last:
            return tuple(out.permute(0, 3, 1, 2) for out in outputs)
        return tuple(outputs)
