# SPDX-License-Identifier: AGPL-3.0-or-later
"""Broken weights found at start: NaN/inf tensors at load, NaN/inf outputs on the warm-up frame.

Both end the start with one :class:`~sfs_ros.errors.UnusableWeightsError` line naming the
parameter (``fastsam.model``, ``closed_set.model``) and the file.
"""

from __future__ import annotations

from collections.abc import Iterator

from sfs_ros.errors import UnusableWeightsError


def nonfinite_tensors(module: object) -> list[str]:
    """Names of the parameters and buffers of a torch module that hold NaN or inf values."""
    import torch

    named = list(module.named_parameters()) + list(module.named_buffers())
    return [
        name
        for name, tensor in named
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]


def check_finite_weights(module: object, param: str, source: str) -> None:
    """Refuse weights that hold NaN/inf values (damaged or bit-flipped files).

    Raises:
        UnusableWeightsError: one line naming ``param``, the file and the first tensors.
    """
    bad = nonfinite_tensors(module)
    if bad:
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise UnusableWeightsError(
            f"{param}: '{source}' holds NaN/inf values in {len(bad)} tensor(s) ({shown}): the "
            f"file is damaged; point {param} at intact weights"
        )


def _tensors_in(value: object) -> Iterator[object]:
    """Every tensor inside nested tuples, lists and dicts."""
    if isinstance(value, tuple | list):
        for item in value:
            yield from _tensors_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors_in(item)
    else:
        yield value


def guard_first_output(module: object, param: str, source: str) -> None:
    """Check the module's first output (the warm-up frame) for NaN/inf, once.

    Finite but absurd weights (a flipped exponent bit) load fine and then produce NaN/inf
    logits; the warm-up frame reports them as broken weights instead of a model that
    silently paints nothing. The hook removes itself after the first call.
    """
    import torch

    def hook(_module: object, _inputs: object, output: object) -> None:
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return  # exporting (tracing a copy of the module): not a real frame
        handle.remove()
        logits = getattr(output, "logits", None)  # transformers ModelOutput
        flat = [logits] if logits is not None else list(_tensors_in(output))
        broken = [
            t
            for t in flat
            if isinstance(t, torch.Tensor) and t.is_floating_point() and not t.isfinite().all()
        ]
        if broken:
            raise UnusableWeightsError(
                f"{param}: '{source}' gives NaN/inf outputs on the warm-up frame: the "
                f"weights are broken; point {param} at intact weights"
            )

    handle = module.register_forward_hook(hook)
