# SPDX-License-Identifier: AGPL-3.0-or-later
"""SegFormer with its all-MLP decode head folded: the same logits for a fraction of the work.

SegFormer's decode head projects each of the four encoder stages to ``D`` channels, upsamples
the three coarser ones bilinearly to the finest stage (1/4 of the input), concatenates the four
maps (coarsest first), mixes them with a 1x1 convolution ``4D -> D`` (no bias), then applies
batch norm, ReLU and the 1x1 classifier. At 1/4 resolution that mixing convolution is the
largest single layer of the network: about half of SegFormer-B0's operations at 512x512, more
for B1-B5 (``D`` = 768).

Every step before the ReLU is linear, and bilinear upsampling acts on each channel separately,
so it commutes with any 1x1 (channel-mixing) map. The head therefore equals

    ReLU( sum_i up(M_i x_i) + c ),    M_i = S W_i P_i,   c = S (sum_i W_i p_i - mean) + beta

where ``P_i, p_i`` is stage ``i``'s projection, ``W_i`` its ``D x D`` slice of the mixing
weights, ``S`` the batch-norm scale ``gamma / sqrt(var + eps)`` and ``mean, beta`` its running
mean and shift (inference mode). Each ``M_i`` runs at its own stage's resolution and the
``4D -> D`` convolution at 1/4 resolution disappears. The result equals transformers' logits up
to float rounding (test/test_segformer_head.py, docs/parity.md); dropout is the identity at
inference, as in transformers' eval mode.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sfs_ros.errors import UnusableWeightsError


class FoldedSegformerHead(nn.Module):
    """Inference-only equivalent of ``transformers``' ``SegformerDecodeHead`` (see module doc)."""

    def __init__(self, head: Any) -> None:
        """Fold the weights of ``head`` (a ``SegformerDecodeHead`` in eval mode)."""
        super().__init__()
        projections = list(head.linear_projections)
        stages = len(projections)
        hidden = head.linear_fuse.out_channels
        with torch.no_grad():
            mix = head.linear_fuse.weight[:, :, 0, 0].float()  # (D, stages * D)
            norm = head.batch_norm
            scale = norm.weight.float() / torch.sqrt(norm.running_var.float() + norm.eps)
            bias = norm.bias.float() - norm.running_mean.float() * scale
            self.stage_maps = nn.ModuleList()
            for index, projection in enumerate(projections):
                block = stages - 1 - index  # concatenated coarsest stage first
                mix_i = mix[:, block * hidden : (block + 1) * hidden] * scale[:, None]
                weight = projection.proj.weight.float()  # (D, C_i)
                conv = nn.Conv2d(weight.shape[1], hidden, kernel_size=1, bias=False)
                conv.weight.copy_((mix_i @ weight)[:, :, None, None].cpu())
                bias += mix_i @ projection.proj.bias.float()
                self.stage_maps.append(conv)
        self.register_buffer("bias", bias[None, :, None, None])
        self.classifier = head.classifier
        reference = head.classifier.weight  # folded in float32 on the CPU: back to the model's
        self.stage_maps.to(device=reference.device, dtype=reference.dtype)
        self.bias = self.bias.to(device=reference.device, dtype=reference.dtype)

    def forward(self, stages: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Logits (N, classes, h/4, w/4) from the encoder's four (N, C_i, h_i, w_i) maps."""
        size = stages[0].shape[2:]
        mixed = self.stage_maps[0](stages[0])
        for stage_map, stage in zip(self.stage_maps[1:], stages[1:], strict=True):
            mixed = mixed + nn.functional.interpolate(
                stage_map(stage), size=size, mode="bilinear", align_corners=False
            )
        return self.classifier(torch.relu(mixed + self.bias))


class FoldedSegformer(nn.Module):
    """``pixel_values -> logits`` of a transformers SegFormer, with the decode head folded."""

    def __init__(self, model: Any) -> None:
        """Wrap ``model`` (``SegformerForSemanticSegmentation``, eval mode; shares its encoder)."""
        super().__init__()
        if not model.config.reshape_last_stage:
            raise UnusableWeightsError(
                "SegFormer with reshape_last_stage=False (the last stage as tokens) is not "
                "supported by the closed-set segmenter"
            )
        self.encoder = model.segformer
        self.head = FoldedSegformerHead(model.decode_head)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Logits (N, classes, h/4, w/4), as ``model(pixel_values=...).logits``."""
        stages = self.encoder(pixel_values, output_hidden_states=True).hidden_states
        return self.head(stages)
