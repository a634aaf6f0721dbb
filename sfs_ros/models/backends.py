"""Inference backends for the networks: torch (default), ONNX Runtime and OpenVINO on the CPU.

A network is exported once per input shape with ``torch.onnx.export`` (static shapes: the
FastSAM input is the letterboxed frame, so one camera gives one shape) into
``<cache_dir>/backends/<name>-<weights hash>-<h>x<w>.onnx`` and reused by later starts. ONNX
Runtime runs that file; OpenVINO compiles it (its compiled blobs are cached beside it).
TensorRT is not available in this build (no GPU to test it on): asking for it is a
:class:`~sfs_ros.params.ConfigError`, never a silent fallback.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from sfs_ros.params import ConfigError
from sfs_ros.runtime import LOG

BACKENDS = ("torch", "onnx", "openvino", "tensorrt")
_MODULES = {"onnx": "onnxruntime", "openvino": "openvino"}
OPENVINO_PRECISIONS = ("f32", "bf16")  # values of the openvino_precision parameter


def available_backends() -> list[str]:
    """Backends that can run here (torch always; onnx/openvino when their package imports)."""
    found = ["torch"]
    found += [b for b, mod in _MODULES.items() if importlib.util.find_spec(mod) is not None]
    return found


def check_backend(backend: str, device: str) -> None:
    """Raise ConfigError when ``backend`` cannot run on ``device`` in this build."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend '{backend}' is not one of {', '.join(BACKENDS)}")
    if backend == "torch":
        return
    if backend == "tensorrt":
        raise ConfigError(
            "backend 'tensorrt' is not available in this build: it is untested (no GPU was "
            "available to develop it); use backend:=torch on CUDA, or onnx/openvino on the CPU"
        )
    if importlib.util.find_spec(_MODULES[backend]) is None:
        raise ConfigError(
            f"backend '{backend}' needs the Python package '{_MODULES[backend]}' "
            f"(pip install {_MODULES[backend]}); or use backend:=torch"
        )
    if not device.startswith("cpu"):
        raise ConfigError(
            f"backend '{backend}' runs on the CPU only in this build, but device is '{device}'; "
            "use device:=cpu, or backend:=torch on CUDA"
        )


def weights_key(path: str | Path) -> str:
    """Short content hash of a weights file or directory (names the exported files)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        stat = file.stat()
        digest.update(f"{file.name}:{stat.st_size}".encode())
        with open(file, "rb") as handle:  # head + tail: fast for large checkpoints
            digest.update(handle.read(1 << 20))
            handle.seek(max(0, stat.st_size - (1 << 20)))
            digest.update(handle.read())
    return digest.hexdigest()[:12]


def export_onnx(
    module: object,
    input_shape: Sequence[int],
    path: Path,
    input_name: str,
    output_names: Sequence[str],
) -> Path:
    """Export a torch module with a fixed input shape to ONNX (atomic write)."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    example = torch.zeros(*input_shape)
    start = time.perf_counter()
    LOG.info(
        "exporting %s for input %s to %s (once per input shape)",
        path.stem,
        tuple(input_shape),
        path,
    )
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            str(tmp),
            dynamo=False,
            opset_version=17,
            input_names=[input_name],
            output_names=list(output_names),
        )
    tmp.replace(path)
    LOG.info("exported %s in %.1f s", path.name, time.perf_counter() - start)
    return path


class ExportedNetwork:
    """A torch network run through ONNX Runtime or OpenVINO, one compiled model per input shape.

    Args:
        backend: ``onnx`` or ``openvino``.
        make_module: returns the torch module to export (called only when exporting).
        name: file-name stem of the exports (model name + weights hash).
        input_name / output_names: graph names; ``__call__`` returns outputs in this order.
        threads: CPU threads (0 = all cores).
        openvino_precision: ``f32`` or ``bf16``, set explicitly as OpenVINO's inference
            precision hint. Without a hint OpenVINO runs bf16 on CPUs with AMX / AVX512-bf16,
            which moves FastSAM masks away from torch's (docs/parity.md); f32 matches torch.
    """

    def __init__(
        self,
        backend: str,
        make_module: Callable[[], object],
        name: str,
        input_name: str,
        output_names: Sequence[str],
        *,
        threads: int = 0,
        openvino_precision: str = "f32",
    ) -> None:
        check_backend(backend, "cpu")
        if openvino_precision not in OPENVINO_PRECISIONS:
            raise ConfigError(
                f"openvino_precision '{openvino_precision}' is not one of "
                f"{', '.join(OPENVINO_PRECISIONS)}"
            )
        self.openvino_precision = openvino_precision
        if backend == "torch":
            raise ValueError("ExportedNetwork is for exported backends; run torch directly")
        self.backend = backend
        self.make_module = make_module
        self.name = name
        self.input_name = input_name
        self.output_names = list(output_names)
        self.threads = int(threads) or (os.cpu_count() or 1)
        self._compiled: dict[tuple[int, ...], Callable[[np.ndarray], list[np.ndarray]]] = {}

    def onnx_path(self, shape: Sequence[int]) -> Path:
        """Cache location of the export for one input shape."""
        from sfs_ros.weights import cache_dir

        dims = "x".join(str(int(d)) for d in shape[2:])
        return cache_dir() / "backends" / f"{self.name}-{dims}.onnx"

    def prepare(self, shape: Sequence[int]) -> None:
        """Export (if not cached) and compile for ``shape``; later calls with it are fast."""
        shape = tuple(int(d) for d in shape)
        if shape in self._compiled:
            return
        path = self.onnx_path(shape)
        if not path.exists():
            export_onnx(self.make_module(), shape, path, self.input_name, self.output_names)
        start = time.perf_counter()
        self._compiled[shape] = (
            self._load_onnxruntime(path) if self.backend == "onnx" else self._load_openvino(path)
        )
        LOG.info(
            "%s: %s model ready for input %s (%.1f s)",
            self.name,
            self.backend,
            shape,
            time.perf_counter() - start,
        )

    def _load_onnxruntime(self, path: Path) -> Callable[[np.ndarray], list[np.ndarray]]:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        names, inp = self.output_names, self.input_name
        return lambda x: session.run(names, {inp: x})

    def _load_openvino(self, path: Path) -> Callable[[np.ndarray], list[np.ndarray]]:
        import openvino as ov

        core = ov.Core()
        core.set_property({"CACHE_DIR": str(path.parent / "openvino_cache")})
        compiled = core.compile_model(
            str(path),
            "CPU",
            {
                "INFERENCE_NUM_THREADS": self.threads,
                "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_PRECISION_HINT": self.openvino_precision,
            },
        )
        request = compiled.create_infer_request()
        outputs = [compiled.output(n) for n in self.output_names]

        def run(x: np.ndarray) -> list[np.ndarray]:
            result = request.infer({self.input_name: x})
            return [np.asarray(result[o]) for o in outputs]

        return run

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        """Run on a float32 array of a fixed shape (exported and compiled on first use)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.shape not in self._compiled:
            self.prepare(x.shape)
        return self._compiled[x.shape](x)


# ------------------------------------------------------------------------------ networks
def fastsam_export_module(net: object) -> object:
    """Wrap an ultralytics YOLOv8-seg model so it traces to (preds (1, 4+nc+32, A), proto)."""
    import copy

    import torch

    class _FastSAMExport(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = self.model(x)
            preds, proto = out[0] if isinstance(out[0], tuple | list) else out
            return preds, proto

    model = copy.deepcopy(net).float().cpu().eval()
    head = model.model[-1]
    head.export = True  # return (preds, proto) only
    head.shape = None  # anchors made under inference_mode cannot be traced: rebuild them
    return _FastSAMExport(model).eval()


def segformer_export_module(model: object) -> object:
    """Wrap a transformers SegFormer so it traces to its logits (1, C, h/4, w/4)."""
    import copy

    import torch

    class _SegFormerExport(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(pixel_values=x).logits

    return _SegFormerExport(copy.deepcopy(model).float().cpu().eval()).eval()
