# SPDX-License-Identifier: AGPL-3.0-or-later
"""open_clip's image tower through OpenVINO, with its own CPU thread budget.

The crop batch of an open-vocabulary pass goes through ``encode_image`` once. On a CPU robot
that pass competes with the per-frame networks for the same cores, so here the image tower is
exported once to ONNX (dynamic batch) into the sfs_ros cache, compiled by OpenVINO with
``open_vocab.num_threads`` threads (1 by default: the per-frame path keeps the other cores) in
the precision of ``open_vocab.openvino_precision``: f32 gives the same features as torch
(test/test_open_vocab.py); bf16, the default on CPUs that compute it natively, runs the tower
several times faster (BENCHMARKS.md) at no measured cost in labels (docs/tiny_world.md).

The export's file name carries a digest of the tower's weights, so other weights never reuse
it; a damaged export is moved aside and rebuilt (:mod:`sfs_ros.cache_files`).
"""

from __future__ import annotations

import hashlib
import re
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from sfs_ros.models.backends import OPENVINO_COMPILE_LOCK
from sfs_ros.runtime import LOG


def tower_digest(visual: Any) -> str:
    """Short SHA-256 over every tensor of the image tower (names, shapes and bytes)."""
    digest = hashlib.sha256()
    for name, tensor in visual.state_dict().items():
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _export(model: Any, image_size: int, path: Path) -> None:
    import torch

    from sfs_ros import cache_files

    class _Tower(torch.nn.Module):
        def __init__(self, clip: Any) -> None:
            super().__init__()
            self.clip = clip

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return self.clip.encode_image(images)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_files.temp_sibling(path)
    example = torch.zeros(2, 3, image_size, image_size)
    LOG.info("exporting the CLIP image tower to %s (once per model)", path)
    start = time.perf_counter()
    # The fused attention fast path (aten::_native_multi_head_attention) has no ONNX export.
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _onnx_export(_Tower(model).eval(), example, tmp)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    cache_files.publish_file(tmp, path)
    LOG.info("exported the CLIP image tower in %.1f s", time.perf_counter() - start)


def _onnx_export(tower: Any, example: Any, tmp: Path) -> None:
    import torch

    torch.onnx.export(
        tower,
        (example,),
        str(tmp),
        dynamo=False,
        opset_version=17,
        input_names=["images"],
        output_names=["features"],
        dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
    )


class OpenVinoImageEncoder:
    """``encode_image`` of an open_clip model, run by OpenVINO on the CPU.

    Args:
        model: the open_clip model (its weights are exported once).
        name: model name for the cache file (e.g. ``ViT-B-32``).
        image_size: square input side of the tower.
        threads: OpenVINO inference threads (the open-vocabulary branch's own budget).
        precision: OpenVINO inference precision, ``f32`` or ``bf16``
            (:func:`sfs_ros.open_vocab.clip.resolve_clip_precision`).
        why: why that precision, for the start-up log.
    """

    def __init__(
        self,
        model: Any,
        name: str,
        image_size: int,
        threads: int,
        *,
        precision: str = "f32",
        why: str = "",
    ) -> None:
        import openvino as ov

        from sfs_ros import cache_files
        from sfs_ros.weights import cache_dir

        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        path = cache_dir() / "backends" / f"clip-{safe}-{tower_digest(model.visual)}.onnx"
        problem = cache_files.verify_file(path)
        if problem is not None:
            if path.exists():
                cache_files.move_aside(path, problem)
            _export(model, image_size, path)
        self.path = path
        self.threads = max(1, int(threads))
        self.precision = precision
        core = ov.Core()
        with OPENVINO_COMPILE_LOCK:  # not beside another compilation (see its docstring)
            compiled = core.compile_model(
                str(path),
                "CPU",
                {
                    "INFERENCE_NUM_THREADS": self.threads,
                    "PERFORMANCE_HINT": "LATENCY",
                    "INFERENCE_PRECISION_HINT": precision,
                },
            )
        self._request = compiled.create_infer_request()
        self._output = compiled.output(0)
        self.description = f"openvino {precision}, {self.threads} thread(s)"
        LOG.info("CLIP image tower: %s%s", self.description, f" ({why})" if why else "")

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """(M, D) float32 image features (not normalised) of a (M, 3, S, S) batch."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        result = self._request.infer({0: batch})
        return np.asarray(result[self._output], dtype=np.float32)
