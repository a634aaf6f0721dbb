"""Closed-set semantic segmenters over transformers: one full-image class map per frame.

One class per implementation, chosen by :func:`load_segmenter` from the model type in the
model's config and the backend (:data:`SEGMENTER_REGISTRY`):

:class:`SegFormerSegmenter`
    SegFormer (the real-time default) in torch, with a lean preprocessing equal to its
    transformers image processor (torchvision's antialiased bilinear resize of the uint8 image,
    then rescale and normalise; test/test_parity.py compares the class maps).
:class:`ExportedSegFormerSegmenter`
    the same model exported to ONNX Runtime or OpenVINO (a network object,
    :mod:`sfs_ros.models.networks`); same pre- and post-processing.
:class:`UniversalSegmenter`
    Mask2Former / OneFormer / MaskFormer (the paper's choice) through their processors'
    semantic post-processing, in torch.

The shared pieces are functions: :func:`match_vocabulary` (the output vocabulary) and
:func:`class_index_map` (argmax with the ``closed_set.min_confidence`` softmax floor). Input is
always RGB.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sfs_ros.edges import ClassMapSampler
from sfs_ros.errors import ConfigError
from sfs_ros.hub_cache import load_hub_files
from sfs_ros.models.backends import BACKENDS, InputNormalisation
from sfs_ros.models.networks import ExportedTensors, Network, TorchSegFormer
from sfs_ros.params import ClosedSetConfig
from sfs_ros.runtime import LOG, DeviceChoice
from sfs_ros.vocabularies import (
    Vocabulary,
    builtin_vocabularies,
    get_vocabulary,
    normalize_class_name,
    vocabulary_from_id2label,
)
from sfs_ros.weight_checks import check_finite_weights, guard_first_output
from sfs_ros.weights import resolve_hf_model

UNSURE = -1  # class index of a pixel below closed_set.min_confidence (label 0 in the pipeline)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Backends that run an exported network (everything but torch; ``auto`` is resolved before).
EXPORTED_BACKENDS = tuple(b for b in BACKENDS if b not in ("auto", "torch"))


def match_vocabulary(requested: str, id2label: dict[int, str], model_id: str) -> Vocabulary:
    """The vocabulary of a model's output channels.

    ``requested`` = ``auto`` recognises the built-in vocabularies by their names; a named
    vocabulary must have as many classes as the model has outputs.
    """
    labels = {int(k): v for k, v in id2label.items()}
    if requested and requested != "auto":
        vocab = get_vocabulary(requested)
        if len(vocab) != len(labels):
            raise ConfigError(
                f"closed_set.vocabulary '{requested}' has {len(vocab)} classes but model "
                f"'{model_id}' has {len(labels)} outputs; use closed_set.vocabulary:=auto"
            )
        return vocab
    names = [normalize_class_name(labels[i]) for i in sorted(labels)]
    for vocab in builtin_vocabularies().values():
        if len(vocab) == len(names):
            known = [normalize_class_name(n) for n in vocab.names]
            raw = [normalize_class_name(n) for n in (vocab.raw_names or vocab.names)]
            hits = sum(a in (b, c) for a, b, c in zip(names, known, raw, strict=True))
            if hits >= 0.8 * len(names):
                return vocab
    return vocabulary_from_id2label(Path(model_id).name, labels)


def class_index_map(logits: object, min_confidence: float) -> np.ndarray:
    """Class-index map (h, w) int32 of per-pixel logits (C, h, w): the top class, or
    :data:`UNSURE` where its softmax probability is below ``min_confidence`` (> 0).

    ``logits`` is overwritten: it is scratch, the caller's upsampled copy (a new tensor even at
    the same size, so the network's raw output stays intact). The top class's probability is
    ``1 / sum_c exp(l_c - l_max)``, so the floor needs the per-pixel maximum and one in-place
    ``exp`` pass instead of a full softmax tensor and a second reduction: the same classes and
    probabilities as ``logits.softmax(0).max(0)`` up to the rounding of the sum, with less
    memory traffic. Both are tested in test/test_class_map.py.
    """
    import torch

    top, index = logits.max(0)
    if min_confidence > 0.0:
        denominator = logits.sub_(top).exp_().sum(0)
        index[denominator.reciprocal_() < min_confidence] = UNSURE
    return index.to(torch.int32).cpu().numpy()


@dataclass(frozen=True)
class ClosedSetSource:
    """A closed-set model resolved before loading: where its files are and what it outputs.

    Attributes:
        model_id: ``closed_set.model`` as given (hub id or directory).
        source: the local directory or hub id to load from.
        config: its transformers config (``model_type``, ``id2label``).
        vocabulary: the vocabulary of its output channels (:func:`match_vocabulary`).
        is_random: random weights were built (``allow_random_weights``).
    """

    model_id: str
    source: str
    config: Any
    vocabulary: Vocabulary
    is_random: bool

    @property
    def model_type(self) -> str:
        """The transformers ``model_type`` (``segformer``, ``mask2former``, ...)."""
        return str(self.config.model_type)

    @classmethod
    def resolve(cls, model_id: str, vocabulary: str, allow_random: bool) -> ClosedSetSource:
        """Find the model's files (random weights only with ``allow_random``), read its config
        and match its outputs to ``vocabulary`` (``auto`` recognises the built-in ones)."""
        from transformers import AutoConfig

        default_vocab = "ade20k" if vocabulary in ("", "auto") else vocabulary
        source, is_random = resolve_hf_model(
            model_id, dict(enumerate(get_vocabulary(default_vocab).names)), allow_random
        )
        config = load_hub_files(
            lambda: AutoConfig.from_pretrained(source), source, "closed_set.model"
        )
        vocab = match_vocabulary(vocabulary, config.id2label, model_id)
        return cls(model_id, source, config, vocab, is_random)


class ClosedSetSegmenter:
    """Base of the closed-set segmenters: a transformers model loaded once and checked.

    Subclasses load their model (:meth:`_load_model`) and implement ``__call__``; they satisfy
    :class:`sfs_ros.models.protocols.Segmenter`. Build one with :func:`load_segmenter`, which
    picks the class for the model type and backend from :data:`SEGMENTER_CLASSES`.

    Attributes:
        model_types / backends: what the class runs (the registry's keys).
    """

    model_types: tuple[str, ...] = ()
    backends: tuple[str, ...] = ("torch",)

    def __init__(
        self,
        spec: ClosedSetSource,
        device: DeviceChoice,
        *,
        min_confidence: float = 0.0,
        backend: str = "torch",
        threads: int = 0,
        openvino_precision: str = "f32",
    ) -> None:
        import torch

        if backend not in self.backends:
            raise ConfigError(
                f"{type(self).__name__} runs on {', '.join(self.backends)}, not '{backend}' "
                "(load_segmenter picks the class for a backend)"
            )
        self.model_id = spec.model_id
        self.model_type = spec.model_type
        self.device = device
        self.vocabulary = spec.vocabulary
        self.is_random = spec.is_random
        self.min_confidence = float(min_confidence)
        dtype = torch.float16 if device.half else torch.float32
        self.model = self._load_model(spec.source, dtype).to(device.device).eval()
        self._check_options(min_confidence, backend)
        check_finite_weights(self.model, "closed_set.model", self.model_id)  # damaged files
        self._prepare(spec.source, backend, threads, openvino_precision)
        LOG.info(
            "closed-set %s (%s, %d classes, vocabulary %s) loaded on %s",
            self.model_id,
            self.model_type,
            len(self.vocabulary),
            self.vocabulary.name,
            device.device,
        )

    def _load_model(self, source: str, dtype: object) -> Any:
        """The torch module of the model at ``source`` (on the CPU, not yet in eval mode)."""
        raise NotImplementedError

    def apply(self, settings: ClosedSetConfig) -> None:
        """Take the live settings of a changed ``closed_set`` section (``min_confidence``),
        used from the next call on; the model and vocabulary are fixed at load."""
        self.min_confidence = settings.min_confidence

    def _check_options(self, min_confidence: float, backend: str) -> None:
        """Log the options this class cannot honour (the base class honours all)."""

    def _prepare(self, source: str, backend: str, threads: int, openvino_precision: str) -> None:
        """Set up what ``__call__`` needs beyond the model (preprocessing, network)."""

    def infer(self, rgb: np.ndarray) -> Any:
        """The network half of a call on one RGB image: the model's raw outputs."""
        raise NotImplementedError

    def class_map(self, raw: Any, out_hw: tuple[int, int]) -> np.ndarray:
        """The decoding half: class-index map (h, w) int32 at ``out_hw`` from :meth:`infer`'s
        outputs, with the ``min_confidence`` in force now."""
        raise NotImplementedError

    def __call__(self, rgb: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
        """Class-index map (h, w) int32 at ``out_hw`` (the working resolution) for one RGB
        image; :data:`UNSURE` (-1) where the model is below ``min_confidence``."""
        return self.class_map(self.infer(rgb), out_hw)


class SegFormerSegmenter(ClosedSetSegmenter):
    """SegFormer in torch with a lean preprocessing equal to its image processor.

    With ``min_confidence`` > 0, pixels whose top class has a softmax probability below it are
    :data:`UNSURE` (-1): the pipeline maps them to 0.
    """

    model_types = ("segformer",)
    backends = ("torch",)

    def _load_model(self, source: str, dtype: object) -> Any:
        from transformers import AutoModelForSemanticSegmentation

        return load_hub_files(
            lambda: AutoModelForSemanticSegmentation.from_pretrained(source, dtype=dtype),
            source,
            "closed_set.model",
        )

    def _prepare(self, source: str, backend: str, threads: int, openvino_precision: str) -> None:
        self._load_preprocessing(source)
        self.network = self._make_network(source, backend, threads, openvino_precision)

    def _make_network(
        self, source: str, backend: str, threads: int, openvino_precision: str
    ) -> Network:
        """What runs the network: here the torch model, its decode head folded."""
        return TorchSegFormer(self.model, "closed_set.model", self.model_id, self.to_tensor)

    def _load_preprocessing(self, source: str) -> None:
        from transformers import AutoImageProcessor

        try:
            proc = AutoImageProcessor.from_pretrained(source)
            size = proc.size
            self.input_hw = (int(size["height"]), int(size["width"]))
            mean, std = proc.image_mean, proc.image_std
        except (OSError, KeyError, TypeError):
            self.input_hw, mean, std = (512, 512), IMAGENET_MEAN, IMAGENET_STD
        import torch

        # in 0-255 units, float32 as the processor's constants times 255 (one source for the
        # torch input and the exported network's, which converts inside the compiled model)
        mean_255 = torch.tensor(mean, dtype=torch.float32) * 255.0
        std_255 = torch.tensor(std, dtype=torch.float32) * 255.0
        self.normalisation = InputNormalisation(
            tuple(mean_255.tolist()), tuple(std_255.tolist())
        )
        self.mean_t = mean_255.view(3, 1, 1)
        self.std_t = std_255.view(3, 1, 1)

    def preprocess(self, rgb: np.ndarray) -> object:
        """RGB uint8 (H, W, 3) → normalised (1, 3, h, w) tensor (:meth:`network_image` then
        :meth:`to_tensor`: what the torch network computes on)."""
        return self.to_tensor(self.network_image(rgb))

    def network_image(self, rgb: np.ndarray) -> np.ndarray:
        """RGB uint8 (H, W, 3) → the uint8 image at the network's input size, (h, w, 3).

        Resized as the transformers image processor does: bilinear with antialiasing on the
        uint8 image (a plain bilinear resize aliases on down-scaled photos and changes the
        class of 3-17 % of the pixels, docs/parity.md).
        """
        import torch
        from torchvision.transforms.v2 import InterpolationMode
        from torchvision.transforms.v2 import functional as tvf

        if tuple(rgb.shape[:2]) == self.input_hw:
            return rgb
        if not rgb.flags.writeable:  # e.g. a zero-copy view of a ROS message buffer
            rgb = rgb.copy()
        image = tvf.resize(
            torch.from_numpy(rgb).permute(2, 0, 1),
            list(self.input_hw),
            interpolation=InterpolationMode.BILINEAR,
            antialias=True,
        )
        return image.permute(1, 2, 0).numpy()  # channels-last memory: usually no copy

    def to_tensor(self, image: np.ndarray) -> object:
        """The resized uint8 image → the torch network's normalised (1, 3, h, w) input,
        ``(x - mean) / std`` in float32, then in the model's dtype on its device."""
        import torch

        if not image.flags.writeable:
            image = image.copy()
        # Contiguous channels-first before the arithmetic (on a channels-last layout these
        # element-wise steps are much slower); same values, in place.
        pixels = torch.from_numpy(image).permute(2, 0, 1).contiguous()
        normed = pixels.float().sub_(self.mean_t).div_(self.std_t)
        return normed[None].to(self.device.device, dtype=self.model.dtype)

    def forward(self, image: np.ndarray) -> object:
        """Network pass on the resized uint8 image (:meth:`network_image`): logits
        (1, C, h/4, w/4)."""
        return self.network(image)[0]

    def infer(self, rgb: np.ndarray) -> object:
        """Logits (1, C, h/4, w/4) of one RGB image (resize and network pass)."""
        import torch

        with torch.inference_mode():
            return self.forward(self.network_image(rgb))

    def class_map(self, raw: object, out_hw: tuple[int, int]) -> np.ndarray:
        """Class-index map (h, w) int32 at ``out_hw`` (the working resolution) from the logits.

        With ``min_confidence`` > 0, pixels whose top class has a softmax probability below it
        are :data:`UNSURE` (-1): the pipeline maps them to 0.
        """
        import torch

        with torch.inference_mode():
            logits = torch.nn.functional.interpolate(
                raw.float(), size=out_hw, mode="bilinear", align_corners=False
            )
            return class_index_map(logits[0], self.min_confidence)

    def class_sampler(self, raw: object) -> ClassMapSampler:
        """The class maps of these logits at any size: the top class of the logits bilinearly
        upsampled there (transformers' ``post_process_semantic_segmentation``), with
        ``min_confidence``; decided once on the logit grid and re-decided only where a pixel's
        four logit cells disagree (:class:`sfs_ros.edges.ClassMapSampler`: the classes of
        :meth:`class_map` at that size except in blocks of four unsure cells, which stay
        unsure)."""
        decided = self.class_map(raw, tuple(raw.shape[-2:]))

        def logits() -> np.ndarray:  # (hl, wl, C) float32; a view of channels-last logits
            return raw[0].permute(1, 2, 0).float().cpu().numpy()

        return ClassMapSampler(decided, logits, self.min_confidence)


class ExportedSegFormerSegmenter(SegFormerSegmenter):
    """SegFormer exported once per input shape and run by ONNX Runtime or OpenVINO on the CPU
    (:class:`sfs_ros.models.backends.ExportedNetwork`); same pre- and post-processing.

    Registered for every exported backend; :func:`sfs_ros.models.backends.check_backend` says
    which of them can run here (``tensorrt`` is refused in this build)."""

    backends = EXPORTED_BACKENDS

    def _make_network(
        self, source: str, backend: str, threads: int, openvino_precision: str
    ) -> Network:
        """The export of the torch model, run by ``backend``."""
        from sfs_ros.models import backends

        backends.check_backend(backend, self.device.device)
        return ExportedTensors(
            backends.ExportedNetwork(
                backend,
                lambda: backends.segformer_export_module(self.model),
                # "nhwc": the export's logits are channels-last (a layout of its own, so an
                # export of another layout in the cache is never read as this one)
                f"{Path(source).name}-{backends.weights_key(source)}-nhwc",
                "pixel_values",
                ("logits",),
                threads=threads,
                openvino_precision=openvino_precision,
                to_input=lambda rgb: np.ascontiguousarray(self.network_image(rgb))[None],
                normalisation=self.normalisation,
            ),
            channels_last=True,
        )


class UniversalSegmenter(ClosedSetSegmenter):
    """Mask2Former / OneFormer / MaskFormer through their processors' semantic
    post-processing, in torch. Every pixel gets a class (``min_confidence`` does not apply)."""

    model_types = ("mask2former", "oneformer", "maskformer")
    backends = ("torch",)

    def _load_model(self, source: str, dtype: object) -> Any:
        from transformers import AutoModelForUniversalSegmentation

        return load_hub_files(
            lambda: AutoModelForUniversalSegmentation.from_pretrained(source, dtype=dtype),
            source,
            "closed_set.model",
        )

    def _check_options(self, min_confidence: float, backend: str) -> None:
        if min_confidence > 0.0:
            LOG.warning(
                "closed_set.min_confidence applies to SegFormer models only: %s (%s) labels "
                "every pixel",
                self.model_id,
                self.model_type,
            )

    def _prepare(self, source: str, backend: str, threads: int, openvino_precision: str) -> None:
        from transformers import AutoProcessor

        self.processor = AutoProcessor.from_pretrained(source)
        # NaN/inf logits on the warm-up frame: broken weights (SegFormer's network objects
        # check their own first output, models/networks.py and models/backends.py)
        guard_first_output(self.model, "closed_set.model", self.model_id)

    def infer(self, rgb: np.ndarray) -> Any:
        """The model's outputs for one RGB image (processor and forward pass)."""
        import torch

        kwargs = {"task_inputs": ["semantic"]} if self.model_type == "oneformer" else {}
        with torch.inference_mode():
            inputs = self.processor(images=rgb, return_tensors="pt", **kwargs).to(
                self.device.device
            )
            return self.model(**inputs)

    def class_map(self, raw: Any, out_hw: tuple[int, int]) -> np.ndarray:
        """Class-index map (h, w) int32 at ``out_hw`` (every pixel labelled): the processor's
        semantic post-processing of :meth:`infer`'s outputs."""
        import torch

        with torch.inference_mode():
            seg = self.processor.post_process_semantic_segmentation(raw, target_sizes=[out_hw])
            return seg[0].to(torch.int32).cpu().numpy()


# The implementations load_segmenter chooses from, by (model type, backend).
SEGMENTER_CLASSES: tuple[type[ClosedSetSegmenter], ...] = (
    SegFormerSegmenter,
    ExportedSegFormerSegmenter,
    UniversalSegmenter,
)
SEGMENTER_REGISTRY: dict[tuple[str, str], type[ClosedSetSegmenter]] = {
    (model_type, backend): cls
    for cls in SEGMENTER_CLASSES
    for model_type in cls.model_types
    for backend in cls.backends
}


def supported_model_types() -> list[str]:
    """The transformers model types a closed-set segmenter exists for."""
    return list(dict.fromkeys(model_type for model_type, _ in SEGMENTER_REGISTRY))


def segmenter_class(model_type: str, backend: str, model_id: str = "") -> type[ClosedSetSegmenter]:
    """The class that runs a closed-set model of ``model_type`` on ``backend``.

    A model type without an implementation on an exported backend runs in torch, with a
    warning (the backend parameter applies to FastSAM and SegFormer only).

    Raises:
        ConfigError: no implementation for ``model_type``, or ``backend`` is not a backend.
    """
    if backend not in BACKENDS or backend == "auto":
        raise ConfigError(
            f"backend '{backend}' is not a concrete backend (one of "
            f"{', '.join(b for b in BACKENDS if b != 'auto')}; resolve 'auto' first with "
            "sfs_ros.models.backends.resolve_backend)"
        )
    if (model_type, "torch") not in SEGMENTER_REGISTRY:
        raise ConfigError(
            f"closed-set model '{model_id}' is a '{model_type}'; supported: "
            f"{', '.join(supported_model_types())}"
        )
    cls = SEGMENTER_REGISTRY.get((model_type, backend))
    if cls is None:
        LOG.warning(
            "backend %s applies to FastSAM and SegFormer only: closed-set model %s (%s) "
            "runs in torch",
            backend,
            model_id,
            model_type,
        )
        cls = SEGMENTER_REGISTRY[(model_type, "torch")]
    return cls


def load_segmenter(
    model_id: str,
    device: DeviceChoice,
    vocabulary: str = "auto",
    allow_random: bool = False,
    *,
    backend: str = "torch",
    threads: int = 0,
    openvino_precision: str = "f32",
    min_confidence: float = 0.0,
) -> ClosedSetSegmenter:
    """Load a closed-set model once, as the implementation for its type and ``backend``.

    Args:
        model_id: hub id or local directory (``closed_set.model``).
        device: where the torch model runs.
        vocabulary: ``auto`` or a built-in vocabulary name (``closed_set.vocabulary``).
        allow_random: build random weights when none are found (``allow_random_weights``).
        backend: the resolved backend (``torch``, ``onnx``, ``openvino``).
        threads: CPU threads of an exported network (0 = all cores).
        openvino_precision: ``f32``, ``bf16`` or ``int8`` (OpenVINO only).
        min_confidence: the softmax floor (``closed_set.min_confidence``, SegFormer only).

    Raises:
        ConfigError: unknown model type, a vocabulary that does not fit, a backend that
            cannot run here.
    """
    spec = ClosedSetSource.resolve(model_id, vocabulary, allow_random)
    cls = segmenter_class(spec.model_type, backend, model_id)
    return cls(
        spec,
        device,
        min_confidence=min_confidence,
        backend=backend if backend in cls.backends else "torch",  # torch: warned above
        threads=threads,
        openvino_precision=openvino_precision,
    )
