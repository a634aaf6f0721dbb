"""Inference backends for the networks: torch (default), ONNX Runtime and OpenVINO on the CPU.

A network is exported once per input shape with ``torch.onnx.export`` (static shapes: the
FastSAM input is the letterboxed frame, so one camera gives one shape) into
``<cache_dir>/backends/<name>-<weights hash>-<h>x<w>.onnx`` and reused by later starts. ONNX
Runtime runs that file; OpenVINO compiles it (its compiled blobs are cached beside it).
The weights hash covers every byte of the weights. Exports carry a digest sidecar; a damaged
one is moved aside and rebuilt. Compiled models per network and the cache on disk are
bounded, least recently used first (``backend_cache.max_shapes``, ``backend_cache.max_mb``).
TensorRT is not available in this build (no GPU to test it on): asking for it is a
:class:`~sfs_ros.params.ConfigError`, never a silent fallback.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sfs_ros.errors import BackendError
from sfs_ros.params import ConfigError
from sfs_ros.runtime import LOG

BACKENDS = ("auto", "torch", "onnx", "openvino", "tensorrt")
_MODULES = {"onnx": "onnxruntime", "openvino": "openvino"}
EXPORT_REVISION = 2
"""Names the exported files: raise it when an export module changes what it computes or how
(revision 2: SegFormer exported with its decode head folded), so older exports are not reused."""
OPENVINO_PRECISIONS = ("f32", "bf16", "int8")  # values of the openvino_precision parameter
OPENVINO_COMPILE_LOCK = threading.Lock()
"""Held around every OpenVINO compilation (and INT8 quantisation) in this process.

OpenVINO switches the process locale to "C" and back while it reads or writes its compiled-
model cache (``CACHE_DIR``), with no lock of its own: two compilations at once on different
threads can leave the whole process in the "C" locale, and Python's text encoding becomes ASCII
for every later ``open`` and subprocess (test/test_cache_integrity.py reproduces it with two
threads). Compilations happen once per model and input shape, so serialising them costs
nothing per frame."""
# Frames the INT8 post-training quantisation is calibrated on (sfs_ros.samples).
INT8_CALIBRATION_FRAMES = 12


@dataclass(frozen=True)
class InputNormalisation:
    """How a network's float input is made from an RGB uint8 image: per channel
    ``(pixel - mean) / std`` (in 0-255 units), channels first.

    An :class:`ExportedNetwork` with one takes the uint8 image itself, (N, H, W, 3): OpenVINO
    does the conversion inside the compiled model (its preprocessing steps, fused with the first
    layer), ONNX Runtime gets it from :meth:`apply`. The torch adapters compute the same values
    with the same constants.
    """

    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def apply(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 → (N, 3, H, W) float32: the same float32 arithmetic (a subtraction
        then a division) as the torch adapters'."""
        x = images.transpose(0, 3, 1, 2).astype(np.float32)
        x -= np.asarray(self.mean, np.float32)[:, None, None]
        x /= np.asarray(self.std, np.float32)[:, None, None]
        return x

    def add_to_openvino(self, model: object) -> object:
        """``model`` (float NCHW input) with this conversion from a uint8 NHWC input prepended."""
        import openvino as ov
        from openvino.preprocess import PrePostProcessor

        ppp = PrePostProcessor(model)
        ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
        ppp.input().model().set_layout(ov.Layout("NCHW"))
        steps = ppp.input().preprocess().convert_element_type(ov.Type.f32)
        steps.mean(list(self.mean)).scale(list(self.std))
        return ppp.build()


def available_backends() -> list[str]:
    """Backends that can run here (torch always; onnx/openvino when their package imports)."""
    found = ["torch"]
    found += [b for b, mod in _MODULES.items() if importlib.util.find_spec(mod) is not None]
    return found


def resolve_backend(backend: str, device: str, half: bool) -> tuple[str, bool, str]:
    """``(backend, half, why)`` to run with: ``auto`` becomes a concrete backend.

    On the CPU ``auto`` picks OpenVINO, else ONNX Runtime (whichever is installed), else torch.
    On CUDA it picks torch in fp16 (TensorRT is not part of this build). Any other backend is
    returned as given, with ``half``.
    """
    if backend != "auto":
        return backend, half, "set by the backend parameter"
    if device.startswith("cuda"):
        return "torch", True, "auto on CUDA: torch in fp16 (tensorrt is not in this build)"
    installed = available_backends()
    for choice in ("openvino", "onnx"):
        if choice in installed:
            return choice, False, f"auto on the CPU: {choice} is installed"
    return "torch", False, "auto on the CPU: neither openvino nor onnxruntime is installed"


@dataclass(frozen=True)
class NetworkPrecisions:
    """OpenVINO inference precision of each network, resolved from ``openvino_precision``."""

    fastsam: str
    closed_set: str
    why: str


def cpu_has_native_bf16() -> bool:
    """Whether OpenVINO's CPU plugin computes bf16 natively here (AMX or AVX512-BF16)."""
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def resolve_openvino_precisions(
    requested: str, open_vocab: bool, native_bf16: Callable[[], bool] = cpu_has_native_bf16
) -> NetworkPrecisions:
    """Per-network OpenVINO precision for the ``openvino_precision`` parameter.

    ``auto`` is the combination measured best on the tiny world (docs/tiny_world.md,
    "Options"): FastSAM in INT8 with the open-vocabulary branch off (no mIoU loss; with it on,
    INT8 masks cost the open vocabulary about 4 points, so FastSAM then runs in bf16); the
    closed set in bf16 (no loss, about twice as fast). bf16 is chosen only on CPUs that compute
    it natively; elsewhere those networks run in f32. ``int8-fastsam`` is FastSAM in INT8 and
    the closed set in f32; ``f32``, ``bf16`` and ``int8`` apply to both networks.
    """
    if requested == "auto":
        bf16 = native_bf16()
        wide = "bf16" if bf16 else "f32"
        fastsam = wide if open_vocab else "int8"
        cpu = "this CPU computes bf16 natively" if bf16 else "no native bf16 on this CPU"
        branch = "on" if open_vocab else "off"
        return NetworkPrecisions(
            fastsam, wide, f"auto: open vocabulary {branch}, {cpu} (docs/tiny_world.md)"
        )
    if requested == "int8-fastsam":
        return NetworkPrecisions("int8", "f32", "set by openvino_precision")
    if requested not in OPENVINO_PRECISIONS:
        raise ConfigError(
            f"openvino_precision '{requested}' is not one of auto, int8-fastsam, "
            + ", ".join(OPENVINO_PRECISIONS)
        )
    return NetworkPrecisions(requested, requested, "set by openvino_precision")


def network_precisions(backend: str, requested: str, open_vocab: bool) -> NetworkPrecisions:
    """The precisions the networks run in with ``backend`` (logged): OpenVINO resolves
    ``openvino_precision`` (:func:`resolve_openvino_precisions`); other backends run f32 (or
    fp16 on CUDA through ``half``) and a non-default ``openvino_precision`` is pointed out."""
    if backend != "openvino":
        if requested not in ("auto", "f32"):
            LOG.warning(
                "openvino_precision %s applies to backend openvino only; backend is %s",
                requested,
                backend,
            )
        return NetworkPrecisions("f32", "f32", f"backend {backend}")
    precisions = resolve_openvino_precisions(requested, open_vocab)
    LOG.info(
        "openvino precision: FastSAM %s, closed set %s (%s)",
        precisions.fastsam,
        precisions.closed_set,
        precisions.why,
    )
    if precisions.fastsam == "int8" and open_vocab:
        LOG.warning(
            "openvino_precision %s: INT8 FastSAM masks cost the open-vocabulary branch about "
            "4 mIoU points on the tiny world (docs/tiny_world.md); openvino_precision:=auto "
            "for its best quality",
            requested,
        )
    return precisions


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


@dataclass
class CacheLimits:
    """Bounds of the export cache (parameters ``backend_cache.max_shapes`` / ``.max_mb``)."""

    max_shapes: int = 4  # compiled models kept in memory per network (least recently used go)
    max_mb: int = 1024  # exports + compiled blobs on disk (least recently used files go)


CACHE_LIMITS = CacheLimits()


@dataclass
class Int8Calibration:
    """Where INT8 post-training quantisation takes its frames (``openvino_int8_calibration``):
    a folder of the user's own images, or ``None`` for the bundled sample photos."""

    folder: Path | None = None

    def key(self) -> str:
        """Names the INT8 models quantised on these frames (a changed folder gives a new key,
        so a model calibrated on other frames is never reused)."""
        return "samples" if self.folder is None else f"cal{weights_key(self.folder)[:10]}"


INT8_CALIBRATION = Int8Calibration()


def set_int8_calibration(folder: str) -> None:
    """Apply ``openvino_int8_calibration``: '' = the bundled sample photos, else a folder that
    must hold at least one image (checked now, not at the first INT8 export)."""
    from sfs_ros.images import IMAGE_SUFFIXES

    if not folder:
        INT8_CALIBRATION.folder = None
        return
    path = Path(folder).expanduser()
    found = path.iterdir() if path.is_dir() else ()
    images = [p for p in found if p.suffix.lower() in IMAGE_SUFFIXES]
    if not images:
        raise ConfigError(
            f"openvino_int8_calibration: '{folder}' is not a folder with images "
            f"({', '.join(sorted(IMAGE_SUFFIXES))}); leave it empty for the bundled sample photos"
        )
    INT8_CALIBRATION.folder = path


def set_cache_limits(max_shapes: int, max_mb: int) -> None:
    """Apply the ``backend_cache.*`` parameters to every :class:`ExportedNetwork`."""
    CACHE_LIMITS.max_shapes = max(1, int(max_shapes))
    CACHE_LIMITS.max_mb = max(1, int(max_mb))


def _file_digest_memo(file: Path) -> str:
    """Full SHA-256 of ``file``, remembered under the cache keyed by path, size, mtime, ctime.

    The ctime cannot be set back by users (unlike the mtime), so any rewrite of the file
    invalidates the memo; the first start after a change pays for one full read.
    """
    from sfs_ros import cache_files
    from sfs_ros.io_safety import OutputWriteError, atomic_write_text
    from sfs_ros.weights import cache_dir

    stat = file.stat()
    ident = f"{file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ctime_ns}|{stat.st_ino}"
    memo = cache_dir() / "digests" / (hashlib.sha256(ident.encode()).hexdigest()[:32] + ".txt")
    try:
        remembered = memo.read_text().split()
        if len(remembered) == 2 and remembered[0] == hashlib.sha256(ident.encode()).hexdigest():
            return remembered[1]
    except OSError:
        pass  # not remembered yet
    digest = cache_files.file_digest(file)
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(memo, f"{hashlib.sha256(ident.encode()).hexdigest()} {digest}\n")
    except (OSError, OutputWriteError) as exc:  # a read-only cache only costs speed
        LOG.debug("cannot remember the digest of %s: %s", file, exc)
    return digest


def weights_key(path: str | Path) -> str:
    """Short content hash of a weights file or directory (names the exported files).

    Every byte counts (a change anywhere in the weights gives a new key, so a stale export is
    never reused); full digests are remembered per file, see :func:`_file_digest_memo`.
    """
    path = Path(path)
    if not path.exists():  # a hub id: hash its snapshot in the local Hugging Face cache
        from huggingface_hub import try_to_load_from_cache

        config = try_to_load_from_cache(str(path), "config.json")
        if not isinstance(config, str):
            raise FileNotFoundError(f"weights '{path}' are neither a path nor in the hub cache")
        path = Path(config).parent
    digest = hashlib.sha256()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    else:
        files = [path]
    for file in files:
        name = file.relative_to(path) if path.is_dir() else ""  # a file: its content only
        digest.update(f"{name}:{_file_digest_memo(file)}\n".encode())
    return digest.hexdigest()[:16]


def export_onnx(
    module: object,
    input_shape: Sequence[int],
    path: Path,
    input_name: str,
    output_names: Sequence[str],
) -> Path:
    """Export a torch module with a fixed input shape to ONNX.

    Written to a per-process temporary file, renamed into place, then marked complete with a
    digest sidecar (see :mod:`sfs_ros.cache_files`), so concurrent starts never share a file.
    """
    import torch

    from sfs_ros import cache_files

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_files.temp_sibling(path)
    example = torch.zeros(*input_shape)
    start = time.perf_counter()
    LOG.info(
        "exporting %s for input %s to %s (once per input shape)",
        path.stem,
        tuple(input_shape),
        path,
    )
    try:
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
        cache_files.publish_file(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    LOG.info("exported %s in %.1f s", path.name, time.perf_counter() - start)
    return path


def prune_cache(folder: Path, max_bytes: int, keep: set[Path]) -> list[Path]:
    """Delete the least recently used exports and compiled blobs until ``folder`` fits.

    An export and its digest sidecar go together; files in ``keep`` (in use by this process)
    are never deleted. Returns the deleted files.
    """
    from sfs_ros import cache_files

    entries = []  # (last use, size, files)
    for file in folder.rglob("*"):
        if not file.is_file() or file.name.endswith(".sha256") or ".tmp" in file.name:
            continue
        if ".damaged-" in file.name:
            continue
        group = [file, cache_files.sidecar(file)]
        size = sum(f.stat().st_size for f in group if f.exists())
        entries.append((file.stat().st_mtime, size, group))
    total = sum(size for _, size, _ in entries)
    deleted: list[Path] = []
    for _, size, group in sorted(entries, key=lambda e: e[0]):
        if total <= max_bytes:
            break
        if group[0] in keep:
            continue
        for f in group:
            f.unlink(missing_ok=True)
        deleted.append(group[0])
        total -= size
    if deleted:
        LOG.info(
            "export cache over %d MB: removed %d least recently used file(s), e.g. %s",
            max_bytes >> 20,
            len(deleted),
            deleted[0].name,
        )
    return deleted


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
            ``int8``: the export is quantised once per input shape with NNCF's post-training
            quantisation, calibrated on :data:`INT8_CALIBRATION_FRAMES` sample frames, and
            cached beside the export (``<export>-int8.xml/.bin``).
        to_input: RGB uint8 frame at the network's input size → the network's input array
            (needed for ``int8`` calibration only).
        normalisation: the network takes the RGB uint8 image, (1, H, W, 3), and makes its
            float input itself (:class:`InputNormalisation`); the export and its INT8 model
            keep the float (1, 3, H, W) input, so neither depends on it. None: the float input.
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
        to_input: Callable[[np.ndarray], np.ndarray] | None = None,
        normalisation: InputNormalisation | None = None,
    ) -> None:
        check_backend(backend, "cpu")
        if openvino_precision not in OPENVINO_PRECISIONS:
            raise ConfigError(
                f"openvino_precision '{openvino_precision}' is not one of "
                f"{', '.join(OPENVINO_PRECISIONS)}"
            )
        self.openvino_precision = openvino_precision
        if openvino_precision == "int8" and backend == "openvino" and to_input is None:
            raise ConfigError(
                f"openvino_precision int8: {name} cannot be calibrated (FastSAM and SegFormer "
                "can)"
            )
        self.to_input = to_input
        self.normalisation = normalisation
        if backend == "torch":
            raise ValueError("ExportedNetwork is for exported backends; run torch directly")
        self.backend = backend
        self.make_module = make_module
        self.name = name
        self.input_name = input_name
        self.output_names = list(output_names)
        self.threads = int(threads) or (os.cpu_count() or 1)
        # Least recently used first; bounded by CACHE_LIMITS.max_shapes.
        self._compiled: OrderedDict[tuple[int, ...], Callable] = OrderedDict()
        self._output_checked = False

    def onnx_path(self, shape: Sequence[int]) -> Path:
        """Cache location of the export for one input shape."""
        from sfs_ros.weights import cache_dir

        dims = "x".join(str(int(d)) for d in shape[2:])
        return cache_dir() / "backends" / f"{self.name}-{dims}-r{EXPORT_REVISION}.onnx"

    def prepare(self, shape: Sequence[int]) -> None:
        """Export (if not cached) and compile for ``shape``; later calls with it are fast.

        A cached export that is incomplete, fails its digest check or does not load is moved
        aside with one line naming it, then exported again (once per call).
        """
        from sfs_ros import cache_files

        shape = tuple(int(d) for d in shape)
        if shape in self._compiled:
            self._compiled.move_to_end(shape)
            return
        path = self.onnx_path(shape)
        problem = cache_files.verify_file(path)
        if problem is not None and path.exists():
            cache_files.move_aside(path, problem)
        if problem is not None:
            export_onnx(self.make_module(), shape, path, self.input_name, self.output_names)
            start = time.perf_counter()
            runner = self._load_fresh(path)
        else:
            start = time.perf_counter()
            try:
                runner = self._load(path)
            except Exception as exc:  # onnxruntime / OpenVINO raise their own error types
                cache_files.move_aside(path, f"{self.backend} cannot load it: {_first_line(exc)}")
                self._drop_compiled_blobs(path)
                export_onnx(self.make_module(), shape, path, self.input_name, self.output_names)
                runner = self._load_fresh(path)
        self._compiled[shape] = runner
        while len(self._compiled) > CACHE_LIMITS.max_shapes:
            old, _ = self._compiled.popitem(last=False)
            LOG.info(
                "%s: released the %s model for input %s (backend_cache.max_shapes = %d)",
                self.name,
                self.backend,
                old,
                CACHE_LIMITS.max_shapes,
            )
        os.utime(path)  # last use, for the least-recently-used disk bound
        keep = {self.onnx_path(s) for s in self._compiled}
        prune_cache(path.parent, CACHE_LIMITS.max_mb << 20, keep)
        LOG.info(
            "%s: %s model ready for input %s (%.1f s)",
            self.name,
            self.backend,
            shape,
            time.perf_counter() - start,
        )

    def _load(self, path: Path) -> Callable[[np.ndarray], list[np.ndarray]]:
        if self.backend == "onnx":
            return self._load_onnxruntime(path)
        return self._load_openvino(path)

    def _load_fresh(self, path: Path) -> Callable[[np.ndarray], list[np.ndarray]]:
        """Load a model exported just now: if that fails, the backend cannot run this model."""
        try:
            return self._load(path)
        except Exception as exc:  # onnxruntime / OpenVINO raise their own error types
            raise BackendError(
                f"{self.name}: {self.backend} cannot load the model exported just now to "
                f"'{path}': {_first_line(exc)}"
            ) from exc

    @staticmethod
    def _drop_compiled_blobs(path: Path) -> None:
        """Remove OpenVINO's compiled-model cache beside ``path`` (it may hold a bad blob)."""
        blobs = path.parent / "openvino_cache"
        if blobs.is_dir():
            shutil.rmtree(blobs, ignore_errors=True)

    def _load_onnxruntime(self, path: Path) -> Callable[[np.ndarray], list[np.ndarray]]:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        names, inp = self.output_names, self.input_name
        if self.normalisation is not None:
            normalise = self.normalisation.apply
            return lambda x: session.run(names, {inp: normalise(x)})
        return lambda x: session.run(names, {inp: x})

    def int8_path(self, onnx_path: Path) -> Path:
        """Cache location of the INT8-quantised model of one export (per calibration set)."""
        return onnx_path.with_name(f"{onnx_path.stem}-int8-{INT8_CALIBRATION.key()}.xml")

    def _quantized(self, core: object, path: Path) -> Path:
        """The INT8 model of the export at ``path``: quantised once, cached beside it.

        The ``.bin`` is written first and the ``.xml`` renamed into place last, so an ``.xml``
        on disk always has its weights.
        """
        import nncf
        import openvino as ov

        from sfs_ros import cache_files
        from sfs_ros.samples import calibration_frames

        xml = self.int8_path(path)
        if xml.exists() and xml.with_suffix(".bin").exists():
            return xml
        model = core.read_model(str(path))
        shape = tuple(int(d) for d in model.input(0).get_shape())
        folder = INT8_CALIBRATION.folder
        frames = calibration_frames(shape[3], shape[2], INT8_CALIBRATION_FRAMES, folder)
        LOG.info(
            "%s: INT8 quantisation for input %s on %d frames from %s (once per input shape)",
            self.name,
            shape,
            len(frames),
            folder or "the bundled sample photos",
        )
        start = time.perf_counter()
        items = [self._float_input(self.to_input(f)) for f in frames]
        quantized = nncf.quantize(
            model,
            nncf.Dataset(items),
            subset_size=len(items),
            preset=nncf.QuantizationPreset.MIXED,
        )
        tmp = cache_files.temp_sibling(xml)
        ov.save_model(quantized, str(tmp), compress_to_fp16=False)
        tmp.with_suffix(".bin").replace(xml.with_suffix(".bin"))
        tmp.replace(xml)
        LOG.info("%s: INT8 model saved to %s (%.1f s)", self.name, xml, time.perf_counter() - start)
        return xml

    def _load_openvino(self, path: Path) -> Callable[[np.ndarray], list[np.ndarray]]:
        import openvino as ov

        core = ov.Core()
        core.set_property({"CACHE_DIR": str(path.parent / "openvino_cache")})
        int8 = self.openvino_precision == "int8"
        with OPENVINO_COMPILE_LOCK:
            source = self._quantized(core, path) if int8 else path
            model = core.read_model(str(source))
            if self.normalisation is not None:
                model = self.normalisation.add_to_openvino(model)
            compiled = core.compile_model(
                model,
                "CPU",
                {
                    "INFERENCE_NUM_THREADS": self.threads,
                    "PERFORMANCE_HINT": "LATENCY",
                    # int8: the quantised layers run in INT8, the rest in f32
                    "INFERENCE_PRECISION_HINT": "f32" if int8 else self.openvino_precision,
                },
            )
        request = compiled.create_infer_request()
        outputs = [compiled.output(n) for n in self.output_names]

        def run(x: np.ndarray) -> list[np.ndarray]:
            result = request.infer({self.input_name: x})
            return [np.asarray(result[o]) for o in outputs]

        return run

    def _float_input(self, x: np.ndarray) -> np.ndarray:
        """The export's float32 (N, 3, H, W) input of what :meth:`__call__` takes."""
        if self.normalisation is not None:
            return self.normalisation.apply(self._image_input(x))
        return np.ascontiguousarray(x, dtype=np.float32)

    @staticmethod
    def _image_input(x: np.ndarray) -> np.ndarray:
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[3] != 3:
            raise ValueError(f"expected RGB uint8 images (N, H, W, 3), got {x.dtype} {x.shape}")
        return np.ascontiguousarray(x)

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        """Run on an input of a fixed shape (exported and compiled on first use): a float32
        (N, 3, H, W) array, or with :attr:`normalisation` the RGB uint8 images (N, H, W, 3)."""
        if self.normalisation is not None:
            x = self._image_input(x)
            shape = (x.shape[0], 3, x.shape[1], x.shape[2])  # the export's input
        else:
            x = np.ascontiguousarray(x, dtype=np.float32)
            shape = x.shape
        if shape not in self._compiled:
            self.prepare(shape)
        else:
            self._compiled.move_to_end(shape)
        outputs = self._compiled[shape](x)
        if not self._output_checked:  # the warm-up frame: broken weights show here
            self._output_checked = True
            if not all(np.isfinite(o).all() for o in outputs):
                from sfs_ros.errors import UnusableWeightsError

                raise UnusableWeightsError(
                    f"{self.name}: the {self.backend} model gives NaN/inf outputs on the warm-up "
                    "frame: the weights it was exported from are broken"
                )
        return outputs


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


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
    """A transformers SegFormer as ``pixel_values -> logits`` for tracing, with its decode head
    folded (:mod:`sfs_ros.models.segformer_head`), the logits channels-last: (1, h/4, w/4, C).

    Channels-last is the layout the class map reads fastest: torch's bilinear resize and the
    per-pixel maximum over the classes then run along contiguous memory, and OpenVINO writes
    this layout straight from its internal one. The segmenter sees the usual (1, C, h/4, w/4)
    shape: :class:`sfs_ros.models.networks.ExportedTensors` hands the array back as a
    channels-last view (``channels_last=True``).
    """
    import copy

    import torch

    from sfs_ros.models.segformer_head import FoldedSegformer

    class _ChannelsLastLogits(torch.nn.Module):
        def __init__(self, folded: torch.nn.Module) -> None:
            super().__init__()
            self.folded = folded

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            return self.folded(pixel_values).permute(0, 2, 3, 1)

    folded = FoldedSegformer(copy.deepcopy(model).float().cpu().eval()).eval()
    return _ChannelsLastLogits(folded).eval()
