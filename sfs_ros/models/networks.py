# SPDX-License-Identifier: AGPL-3.0-or-later
"""The network objects the model adapters call: one class per way of running a network.

An adapter (FastSAM, SegFormer) does its own pre- and post-processing in torch and calls a
network in between: a :class:`Network` takes the input tensor and returns the output tensors in
a fixed order, whatever runs them. :class:`TorchFastSAM` and :class:`TorchSegFormer` run the
torch module; :class:`ExportedTensors` runs the same network exported to ONNX Runtime or
OpenVINO (:class:`sfs_ros.models.backends.ExportedNetwork`). The adapter never asks which
backend it has.
"""

from __future__ import annotations

from typing import Protocol

from sfs_ros.models.backends import ExportedNetwork


class Network(Protocol):
    """A network on torch tensors: input (1, 3, h, w) → its outputs, in a fixed order."""

    def __call__(self, x: object) -> tuple[object, ...]:
        """Run one forward pass (no gradients)."""
        ...


class TorchFastSAM:
    """An ultralytics YOLOv8-seg / FastSAM module run in torch → (predictions, prototypes)."""

    def __init__(self, net: object) -> None:
        self.net = net

    def __call__(self, x: object) -> tuple[object, object]:
        import torch

        with torch.inference_mode():
            out = self.net(x)
        preds, proto = out[0] if isinstance(out[0], tuple | list) else out
        return preds, proto


class TorchSegFormer:
    """A transformers SegFormer run in torch with its decode head folded
    (:mod:`sfs_ros.models.segformer_head`: the same logits for less work)
    → (logits (1, C, h/4, w/4),).

    Attributes:
        module: the folded module (shares the model's weights); its first output is checked
            for NaN/inf (broken weights) on the warm-up frame.
    """

    def __init__(self, model: object, param: str, source: str) -> None:
        from sfs_ros.models.segformer_head import FoldedSegformer
        from sfs_ros.weight_checks import guard_first_output

        self.module = FoldedSegformer(model)
        guard_first_output(self.module, param, source)

    def __call__(self, x: object) -> tuple[object]:
        import torch

        with torch.inference_mode():
            return (self.module(x),)


class ExportedTensors:
    """An :class:`ExportedNetwork` (numpy in and out) called with torch tensors.

    The CPU input tensor is handed over as a float32 array; the outputs come back as tensors in
    the export's output order.

    Attributes:
        exported: the exported network (its compiled models and export cache).
        channels_last: the export's outputs are (N, H, W, C) arrays; each comes back as an
            (N, C, H, W) tensor in channels-last memory (a view, no copy), which torch's
            ``interpolate`` and per-pixel reductions over C read along contiguous memory.
    """

    def __init__(self, exported: ExportedNetwork, channels_last: bool = False) -> None:
        self.exported = exported
        self.channels_last = channels_last

    @property
    def backend(self) -> str:
        """``onnx`` or ``openvino``."""
        return self.exported.backend

    def __call__(self, x: object) -> tuple[object, ...]:
        import torch

        outputs = (torch.from_numpy(out) for out in self.exported(x.numpy()))
        if self.channels_last:
            return tuple(out.permute(0, 3, 1, 2) for out in outputs)
        return tuple(outputs)
