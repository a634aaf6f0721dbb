"""Closed-set semantic segmenters over transformers: one full-image class map per frame.

SegFormer (the real-time default) runs with a lean preprocessing equal to its transformers image
processor (torchvision's antialiased bilinear resize of the uint8 image, then rescale and
normalise; test/test_parity.py compares the class maps); Mask2Former / OneFormer (the paper's
choice) go through their processors' semantic post-processing. Input is always RGB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sfs_ros.errors import ConfigError
from sfs_ros.hub_cache import load_hub_files
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


class ClosedSetSegmenter:
    """A transformers semantic segmenter, loaded once; ``__call__`` gives a class-index map."""

    def __init__(
        self,
        model_id: str,
        device: DeviceChoice,
        vocabulary: str = "auto",
        allow_random: bool = False,
        *,
        backend: str = "torch",
        threads: int = 0,
        openvino_precision: str = "f32",
        min_confidence: float = 0.0,
    ) -> None:
        import torch
        from transformers import AutoConfig

        self.min_confidence = float(min_confidence)
        default_vocab = "ade20k" if vocabulary in ("", "auto") else vocabulary
        source, self.is_random = resolve_hf_model(
            model_id, dict(enumerate(get_vocabulary(default_vocab).names)), allow_random
        )
        config = load_hub_files(
            lambda: AutoConfig.from_pretrained(source), source, "closed_set.model"
        )
        self.model_type = config.model_type
        self.model_id = model_id
        self.device = device
        self.vocabulary = match_vocabulary(vocabulary, config.id2label, model_id)
        dtype = torch.float16 if device.half else torch.float32
        if self.model_type == "segformer":
            from transformers import AutoModelForSemanticSegmentation

            self.model = load_hub_files(
                lambda: AutoModelForSemanticSegmentation.from_pretrained(source, dtype=dtype),
                source,
                "closed_set.model",
            )
            self._load_segformer_preprocessing(source)
            self.processor = None
        elif self.model_type in ("mask2former", "oneformer", "maskformer"):
            from transformers import AutoModelForUniversalSegmentation, AutoProcessor

            self.model = load_hub_files(
                lambda: AutoModelForUniversalSegmentation.from_pretrained(source, dtype=dtype),
                source,
                "closed_set.model",
            )
            self.processor = AutoProcessor.from_pretrained(source)
        else:
            raise ConfigError(
                f"closed-set model '{model_id}' is a '{self.model_type}'; supported: segformer, "
                "mask2former, oneformer, maskformer"
            )
        self.model = self.model.to(device.device).eval()
        if self.min_confidence > 0.0 and self.model_type != "segformer":
            LOG.warning(
                "closed_set.min_confidence applies to SegFormer models only: %s (%s) labels "
                "every pixel",
                model_id,
                self.model_type,
            )
        check_finite_weights(self.model, "closed_set.model", model_id)  # damaged files
        guard_first_output(self.model, "closed_set.model", model_id)  # NaN logits at warm-up
        self.runner = None  # SegFormer through onnx / openvino (Mask2Former/OneFormer: torch)
        if backend != "torch" and self.model_type != "segformer":
            LOG.warning(
                "backend %s applies to FastSAM and SegFormer only: closed-set model %s (%s) "
                "runs in torch",
                backend,
                model_id,
                self.model_type,
            )
        if backend != "torch" and self.model_type == "segformer":
            from sfs_ros.models import backends

            backends.check_backend(backend, device.device)
            self.runner = backends.ExportedNetwork(
                backend,
                lambda: backends.segformer_export_module(self.model),
                f"{Path(source).name}-{backends.weights_key(source)}",
                "pixel_values",
                ("logits",),
                threads=threads,
                openvino_precision=openvino_precision,
                to_input=lambda rgb: self.preprocess(rgb).float().numpy(),
            )
        LOG.info(
            "closed-set %s (%s, %d classes, vocabulary %s) loaded on %s",
            model_id,
            self.model_type,
            len(self.vocabulary),
            self.vocabulary.name,
            device.device,
        )

    def _load_segformer_preprocessing(self, source: str) -> None:
        from transformers import AutoImageProcessor

        try:
            proc = AutoImageProcessor.from_pretrained(source)
            size = proc.size
            self.input_hw = (int(size["height"]), int(size["width"]))
            mean, std = proc.image_mean, proc.image_std
        except (OSError, KeyError, TypeError):
            self.input_hw, mean, std = (512, 512), IMAGENET_MEAN, IMAGENET_STD
        import torch

        self.mean_t = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1) * 255.0
        self.std_t = torch.tensor(std, dtype=torch.float32).view(3, 1, 1) * 255.0

    def preprocess(self, rgb: np.ndarray) -> object:
        """RGB uint8 (H, W, 3) → normalised (1, 3, h, w) tensor (SegFormer path).

        Resized as the transformers image processor does: bilinear with antialiasing on the
        uint8 image (a plain bilinear resize aliases on down-scaled photos and changes the
        class of 3-17 % of the pixels, docs/parity.md).
        """
        import torch
        from torchvision.transforms.v2 import InterpolationMode
        from torchvision.transforms.v2 import functional as tvf

        if not rgb.flags.writeable:  # e.g. a zero-copy view of a ROS message buffer
            rgb = rgb.copy()
        image = torch.from_numpy(rgb).permute(2, 0, 1)
        if tuple(image.shape[1:]) != self.input_hw:
            image = tvf.resize(
                image, list(self.input_hw), interpolation=InterpolationMode.BILINEAR, antialias=True
            )
        normed = (image.float() - self.mean_t) / self.std_t
        return normed[None].to(self.device.device, dtype=self.model.dtype)

    def apply(self, settings: ClosedSetConfig) -> None:
        """Take the live settings of a changed ``closed_set`` section (``min_confidence``),
        used from the next call on; the model and vocabulary are fixed at load."""
        self.min_confidence = settings.min_confidence

    def __call__(self, rgb: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
        """Class-index map (h, w) int32 at ``out_hw`` (the working resolution) for one RGB image.

        With ``min_confidence`` > 0 (SegFormer), pixels whose top class has a softmax
        probability below it are :data:`UNSURE` (-1): the pipeline maps them to 0.
        """
        import torch

        with torch.inference_mode():
            if self.processor is None:
                if self.runner is not None:
                    logits = torch.from_numpy(self.runner(self.preprocess(rgb).numpy())[0])
                else:
                    logits = self.model(pixel_values=self.preprocess(rgb)).logits
                logits = torch.nn.functional.interpolate(
                    logits.float(), size=out_hw, mode="bilinear", align_corners=False
                )
                if self.min_confidence <= 0.0:
                    return logits[0].argmax(0).to(torch.int32).cpu().numpy()
                prob, index = logits[0].softmax(0).max(0)
                index[prob < self.min_confidence] = UNSURE
                return index.to(torch.int32).cpu().numpy()
            kwargs = {"task_inputs": ["semantic"]} if self.model_type == "oneformer" else {}
            inputs = self.processor(images=rgb, return_tensors="pt", **kwargs).to(
                self.device.device
            )
            outputs = self.model(**inputs)
            seg = self.processor.post_process_semantic_segmentation(outputs, target_sizes=[out_hw])
            return seg[0].to(torch.int32).cpu().numpy()
