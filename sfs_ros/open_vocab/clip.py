"""CLIP adapter over open_clip: loaded once, cached text embeddings, masked crops in one batch.

CLIP is built once (not per call); names go through prompt templates (averaged per class,
normalised) and their text embeddings are cached per name, so a vocabulary change only encodes
the new names. Every mask of a frame becomes one masked crop (box xyxy + a context margin;
outside the mask CLIP's mean colour or the image, ``open_vocab.crop_background``); each crop
goes through the model's own open_clip preprocessing (for the stock models: bicubic resize of
the short side, centre crop, normalise; docs/parity.md), and all crops go through the image
encoder in ONE batch. The result is a cosine-similarity matrix, from which callers keep a
top-K and apply a threshold instead of a forced softmax/argmax.

``open_vocab.mode``: ``crop`` (default, above) or ``dense`` (beyond the SFS paper, its own
future work "share backbone features"; MaskCLIP-style, Zhou et al. 2022). In dense mode the
image encoder runs ONCE per pass on the whole frame and each mask's embedding is pooled from the
patch tokens, so a pass over 100 masks costs about one forward instead of a 100-crop batch:

* preprocessing: the whole frame is squashed (plain resize, aspect ratio NOT kept, no
  letterbox) to the tower's input size, so every patch sees image content and a mask maps onto
  the patch grid by plain scaling;
* patch tokens (:func:`vit_dense_tokens`, open_clip ``VisionTransformer`` only): all blocks but
  the last run unchanged; in the last block the query-key attention is skipped and every token
  goes through the value embedding path alone (``out_proj(v(ln_1(x)))``, MaskCLIP's trick: it
  keeps the patch tokens local instead of mixing them towards the class token), then the
  block's residual + MLP as MaskCLIP does, then ``ln_post`` and ``proj`` as for the pooled
  embedding, so the tokens live in the joint image-text space;
* pooling: each token is normalised, masks are resized to the patch grid with area
  interpolation (:func:`mask_patch_coverage`, the share of every patch a mask covers), the mask
  embedding is the coverage-weighted average of the tokens (one ``(N, P) @ (P, D)`` matmul),
  normalised; cosine with the cached text embeddings gives the same ``(N, C)`` matrix as crop
  mode, so top-K, threshold, tracks and fusion are unchanged.

Dense mode with a non-ViT tower (ResNet, timm, CoCa attentional pooling) is a ``ConfigError``
at load.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from sfs_ros.params import SPECS, ConfigError
from sfs_ros.runtime import LOG
from sfs_ros.vocabularies import normalize_class_name
from sfs_ros.weights import (
    RANDOM_WEIGHTS_BANNER,
    WeightsNotFoundError,
    quiet_open_clip,
    resolve_clip_pretrained,
)

# Context kept around each box, as a fraction of its width / height on each side.
CROP_MARGIN = 0.1
# Masks with fewer working-resolution pixels than this are not scored (NaN row).
MIN_MASK_PIXELS = 4
# Prompts encoded per text-encoder call (bounds memory for large vocabularies).
TEXT_BATCH = 128  # prompts per text-encoder call; cancellation is checked between calls
# open_vocab.model prefix of a local open_clip folder (config + weights), and its weight files.
LOCAL_DIR_PREFIX = "local-dir:"
LOCAL_WEIGHT_FILES = ("open_clip_pytorch_model.bin", "open_clip_model.safetensors")
# The values of open_vocab.mode (masked crops in one batch, or one whole-image forward + patch
# pooling), open_vocab.crop_background (what a crop shows outside its mask), open_vocab.backend
# and open_vocab.openvino_precision, as the parameter declarations give them.
MODES = SPECS["open_vocab.mode"].choices or ()
CROP_BACKGROUNDS = SPECS["open_vocab.crop_background"].choices or ()
CLIP_BACKENDS = SPECS["open_vocab.backend"].choices or ()
CLIP_PRECISIONS = SPECS["open_vocab.openvino_precision"].choices or ()
# Masks converted to float per chunk when computing their patch coverage (bounds memory).
COVERAGE_CHUNK = 32


class PassCancelledError(RuntimeError):
    """A CLIP pass stopped early because the branch is shutting down."""


@dataclass
class ClipStats:
    """Counters for tests and diagnostics."""

    encode_text_calls: int = 0
    encode_image_calls: int = 0
    names_encoded: int = 0
    crops_encoded: int = 0


@dataclass
class ClipScorer:
    """Scores masks of an RGB frame against class names with an open_clip model.

    Attributes:
        model: an open_clip ``CLIP``-like module (``encode_image``, ``encode_text``).
        tokenizer: callable ``list[str] -> LongTensor`` (open_clip tokenizer).
        image_size: square input side of the image tower.
        mean, std: per-channel normalisation (RGB, 0..1 scale).
        templates: prompt templates, ``{}`` is replaced by the class name.
        device: torch device string.
        is_random: True when the weights are random (allow_random_weights).
        mode: ``crop`` (masked crops, one batch) or ``dense`` (one whole-image forward, patch
            tokens pooled per mask; open_clip ViT towers only).
        preprocess: the model's open_clip image transform (PIL image → normalised tensor),
            as ``open_clip.create_model_and_transforms`` returns it; every crop goes through it.
        crop_background: ``mean`` (pixels outside the mask become the mean colour) or
            ``image`` (they keep the image).
        image_encoder: what runs the image tower on a crop batch (:class:`TorchImageEncoder`
            by default, :class:`~sfs_ros.open_vocab.clip_openvino.OpenVinoImageEncoder` with
            ``open_vocab.backend`` openvino); dense mode reads patch tokens from ``model``.

    Satisfies :class:`sfs_ros.models.protocols.Scorer`.
    """

    model: Any
    tokenizer: Any
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    templates: tuple[str, ...] = ("a photo of a {}.",)
    device: str = "cpu"
    is_random: bool = False
    name: str = "clip"
    mode: str = "crop"
    preprocess: Any = None
    crop_background: str = "mean"
    # What runs the image tower: (M, 3, S, S) → (M, D) features; None = the torch model
    # (a TorchImageEncoder is made for it), or the OpenVINO one (OpenVinoImageEncoder).
    image_encoder: ImageEncoder | None = None
    stats: ClipStats = field(default_factory=ClipStats)
    _text_cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    # Set on shutdown: a running pass stops before its next encoder call (PassCancelledError).
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.image_encoder is None:
            self.image_encoder = TorchImageEncoder(self.model, self.device)

    # ------------------------------------------------------------------------- loading
    @classmethod
    def load(
        cls,
        model_name: str,
        pretrained: str,
        device: str = "cpu",
        *,
        templates: Sequence[str] = ("a photo of a {}.",),
        allow_random: bool = False,
        mode: str = "crop",
        crop_background: str = "mean",
        backend: str = "torch",
        threads: int = 1,
        openvino_precision: str = "f32",
    ) -> ClipScorer:
        """Build ``model_name`` with ``pretrained`` weights through open_clip (once).

        ``backend``: ``torch``, ``openvino`` (the image tower through OpenVINO with ``threads``
        threads, crop mode; :mod:`sfs_ros.open_vocab.clip_openvino`) or ``auto`` (openvino on
        the CPU when installed, else torch). ``openvino_precision`` (``auto``, ``f32``,
        ``bf16``; :func:`resolve_clip_precision`) applies to the OpenVINO tower only.

        Offline with no cached weights → :class:`WeightsNotFoundError` naming
        ``open_vocab.model`` / ``open_vocab.pretrained``; with ``allow_random`` the same
        architecture is built with random weights (``pretrained=None``) and a loud warning.
        ``mode="dense"`` needs an open_clip ViT image tower, else :class:`ConfigError`.
        ``model_name`` may also be ``local-dir:<folder>`` (open_clip's local schema: the
        folder's ``open_clip_config.json`` and weights, e.g. a model trained here;
        ``pretrained`` is not used then).
        """
        import open_clip

        if mode not in MODES:
            raise ConfigError(f"open_vocab.mode: '{mode}' is not one of {', '.join(MODES)}")
        if crop_background not in CROP_BACKGROUNDS:
            raise ConfigError(
                f"open_vocab.crop_background: '{crop_background}' is not one of "
                f"{', '.join(CROP_BACKGROUNDS)}"
            )

        local = local_model_dir(model_name)
        if local is None and model_name not in open_clip.list_models():
            raise WeightsNotFoundError(
                f"open_vocab.model '{model_name}' is not an open_clip architecture "
                f"(e.g. ViT-B-32, ViT-L-14; see open_clip.list_models()) nor a "
                f"'{LOCAL_DIR_PREFIX}<folder>' with open_clip_config.json"
            )
        tag = (pretrained or "").strip()
        is_random = False
        model = None
        reason = "open_vocab.pretrained is empty"
        if local is not None:  # config + weights from the folder; pretrained is not used
            tag = str(local)
            if not any((local / f).is_file() for f in LOCAL_WEIGHT_FILES):
                tag = ""
                reason = f"no {' or '.join(LOCAL_WEIGHT_FILES)} in {local}"
        if tag:
            # a local-dir model: open_clip reads the folder's weights (weights_only) itself
            source, reason = (None, "") if local is not None else resolve_clip_pretrained(
                model_name, tag
            )
            try:
                if source is not None or local is not None:
                    with quiet_open_clip():
                        model, _, preprocess = open_clip.create_model_and_transforms(
                            model_name, pretrained=source, device=device, weights_only=True
                        )
            except (RuntimeError, OSError) as exc:  # unknown tag / download failed / bad file
                reason = str(exc).splitlines()[0]
        if model is None:
            if not allow_random:
                raise WeightsNotFoundError(
                    f"CLIP weights for open_vocab.model='{model_name}' "
                    f"open_vocab.pretrained='{tag}' are not available ({reason}). Point "
                    "open_vocab.pretrained at a local open_clip checkpoint file (CLI: --set "
                    "open_vocab.pretrained=/path/to/open_clip_pytorch_model.bin), run once "
                    "online to download it, or run with allow_random_weights:=true "
                    "(CLI: --allow-random-weights) to test with random weights."
                )
            with quiet_open_clip():
                model, _, preprocess = open_clip.create_model_and_transforms(
                    model_name, pretrained=None, device=device
                )
            is_random = True
            if tag:
                LOG.warning(
                    "CLIP weights %s/%s not available (%s); using random weights because "
                    "allow_random_weights is on",
                    model_name,
                    tag,
                    reason,
                )
            LOG.warning(RANDOM_WEIGHTS_BANNER.format(what="CLIP", param="open_vocab.pretrained"))
        model.eval()
        if mode == "dense":
            check_dense_support(model, model_name)
        with quiet_open_clip():
            tokenizer = open_clip.get_tokenizer(model_name)
        cfg = open_clip.get_model_preprocess_cfg(model)
        size = cfg.get("size", 224)
        size = int(size[0] if isinstance(size, list | tuple) else size)
        encoder = make_image_encoder(
            resolve_clip_backend(backend, device, mode),
            model,
            model_name=model_name,
            image_size=size,
            device=device,
            threads=threads,
            openvino_precision=openvino_precision,
        )
        return cls(
            model=model,
            tokenizer=tokenizer,
            image_size=size,
            mean=tuple(float(v) for v in cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)),
            std=tuple(float(v) for v in cfg.get("std", open_clip.OPENAI_DATASET_STD)),
            templates=tuple(templates) or ("{}",),
            device=device,
            is_random=is_random,
            name=model_name if local is not None and tag else f"{model_name}/{tag or 'random'}",
            mode=mode,
            preprocess=preprocess,
            crop_background=crop_background,
            image_encoder=encoder,
        )

    # ------------------------------------------------------------------------- text
    def text_embeddings(self, names: Sequence[str]) -> np.ndarray:
        """(C, D) float32 unit vectors, one per name (templates averaged, then normalised).

        Embeddings are cached per normalised name: only names not seen before are encoded,
        all of them in one text-encoder call (per ``TEXT_BATCH`` prompts).
        """
        import torch

        keys = [normalize_class_name(n) for n in names]
        with self._lock:
            missing = list(dict.fromkeys(k for k in keys if k not in self._text_cache))
            if missing:
                prompts = [t.format(name) for name in missing for t in self.templates]
                chunks = []
                with torch.inference_mode():
                    for start in range(0, len(prompts), TEXT_BATCH):
                        self._check_cancel()
                        tokens = self.tokenizer(prompts[start : start + TEXT_BATCH])
                        feats = self.model.encode_text(tokens.to(self.device))
                        self.stats.encode_text_calls += 1
                        chunks.append(feats.float().cpu().numpy())
                feats = np.concatenate(chunks).reshape(len(missing), len(self.templates), -1)
                feats /= np.linalg.norm(feats, axis=-1, keepdims=True) + 1e-12
                mean = feats.mean(axis=1)
                mean /= np.linalg.norm(mean, axis=-1, keepdims=True) + 1e-12
                for key, vec in zip(missing, mean, strict=True):
                    self._text_cache[key] = vec.astype(np.float32)
                self.stats.names_encoded += len(missing)
            if not keys:
                return np.zeros((0, 1), np.float32)
            return np.stack([self._text_cache[k] for k in keys])

    # ------------------------------------------------------------------------- images
    def crops(
        self, rgb: np.ndarray, masks: np.ndarray, boxes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Masked crops of every scoreable mask, as one float32 batch (M, 3, S, S).

        Each crop is the mask's xyxy box (input pixels) widened by ``CROP_MARGIN`` on each side;
        with ``crop_background="mean"`` pixels outside the mask become CLIP's mean colour. The
        crop then goes through the model's own open_clip preprocessing (:attr:`preprocess`),
        exactly as ``preprocess(PIL.Image)`` would treat that crop. Returns ``(batch, index)``
        with the mask indices the rows belong to.
        """
        from PIL import Image

        if self.preprocess is None:
            raise ValueError("ClipScorer.preprocess is not set (build it with ClipScorer.load)")
        h_img, w_img = rgb.shape[:2]
        n = len(masks)
        size = self.image_size
        if n == 0:
            return np.zeros((0, 3, size, size), np.float32), np.zeros(0, np.int64)
        h_w, w_w = masks.shape[1:]
        areas = masks.reshape(n, h_w * w_w).sum(axis=1)
        mean255 = np.round(np.array(self.mean, np.float32) * 255.0).astype(np.uint8)
        rows = []
        keep = []
        for i in range(n):
            if areas[i] < MIN_MASK_PIXELS:
                continue
            x0, y0, x1, y1 = (float(v) for v in boxes[i])
            mx, my = CROP_MARGIN * (x1 - x0), CROP_MARGIN * (y1 - y0)
            x0 = int(np.clip(np.floor(x0 - mx), 0, w_img - 1))
            y0 = int(np.clip(np.floor(y0 - my), 0, h_img - 1))
            x1 = int(np.clip(np.ceil(x1 + mx), x0 + 1, w_img))
            y1 = int(np.clip(np.ceil(y1 + my), y0 + 1, h_img))
            crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
            if self.crop_background == "mean":
                # The mask at input pixels for this crop: nearest sample of the mask grid.
                ys = np.minimum(((np.arange(y0, y1) + 0.5) * h_w / h_img).astype(np.int64), h_w - 1)
                xs = np.minimum(((np.arange(x0, x1) + 0.5) * w_w / w_img).astype(np.int64), w_w - 1)
                crop = crop.copy()
                crop[~masks[i][np.ix_(ys, xs)]] = mean255
            rows.append(np.asarray(self.preprocess(Image.fromarray(crop)), np.float32))
            keep.append(i)
        if not keep:
            return np.zeros((0, 3, size, size), np.float32), np.zeros(0, np.int64)
        return np.ascontiguousarray(np.stack(rows)), np.array(keep, np.int64)

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise PassCancelledError("open-vocabulary pass cancelled (shutting down)")

    def image_embeddings(self, batch: np.ndarray) -> np.ndarray:
        """(M, D) float32 unit vectors of a crop batch, in one image-encoder call."""
        self._check_cancel()
        feats = self.image_encoder(batch)
        self.stats.encode_image_calls += 1
        self.stats.crops_encoded += len(batch)
        feats /= np.linalg.norm(feats, axis=-1, keepdims=True) + 1e-12
        return feats

    # ------------------------------------------------------------------------- dense mode
    def input_hw(self) -> tuple[int, int]:
        """(height, width) of the image tower's input."""
        size = getattr(getattr(self.model, "visual", None), "image_size", self.image_size)
        if isinstance(size, list | tuple):
            return int(size[0]), int(size[1])
        return int(size), int(size)

    def whole_image(self, rgb: np.ndarray) -> np.ndarray:
        """The whole RGB frame as a normalised float32 batch of one, (1, 3, H_in, W_in).

        Squashed to the input size (plain resize, aspect ratio not kept, no letterbox): every
        patch sees image content and mask coordinates map onto the patch grid by scaling.
        """
        h_in, w_in = self.input_hw()
        shrink = rgb.shape[0] >= h_in and rgb.shape[1] >= w_in
        interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        img = cv2.resize(rgb, (w_in, h_in), interpolation=interp).astype(np.float32)
        img /= 255.0
        img -= np.array(self.mean, np.float32)
        img /= np.array(self.std, np.float32)
        return np.ascontiguousarray(img.transpose(2, 0, 1)[None])

    def patch_features(self, batch: np.ndarray) -> np.ndarray:
        """(gh, gw, D) float32 unit vectors: the patch tokens of a one-image batch in the joint
        image-text space (:func:`vit_dense_tokens`), in one image-encoder call."""
        import torch

        self._check_cancel()
        visual = self.model.visual
        with torch.inference_mode():
            dtype = next(self.model.parameters()).dtype
            tensor = torch.from_numpy(batch).to(self.device, dtype)
            tokens = vit_dense_tokens(visual, tensor)[0].float().cpu().numpy()
        self.stats.encode_image_calls += 1
        self.stats.crops_encoded += len(batch)
        tokens /= np.linalg.norm(tokens, axis=-1, keepdims=True) + 1e-12
        gh, gw = batch.shape[2] // visual.patch_size[0], batch.shape[3] // visual.patch_size[1]
        return tokens.reshape(gh, gw, -1)

    def dense_embeddings(self, rgb: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """(M, D) float32 unit vectors of masks pooled from one whole-image forward.

        Each mask's embedding is the patch tokens averaged with the share of every patch the
        mask covers (area interpolation to the patch grid), one (M, P) @ (P, D) matmul.
        """
        grid = self.patch_features(self.whole_image(rgb))
        gh, gw, dim = grid.shape
        cover = mask_patch_coverage(masks, (gh, gw))
        pooled = cover @ grid.reshape(gh * gw, dim)
        pooled /= np.linalg.norm(pooled, axis=-1, keepdims=True) + 1e-12
        return pooled

    # ------------------------------------------------------------------------- scoring
    def score(
        self, rgb: np.ndarray, masks: np.ndarray, boxes: np.ndarray, names: Sequence[str]
    ) -> np.ndarray:
        """(N, C) float32 cosine similarity of every mask with every name; NaN rows for masks
        too small to score. One image-encoder call per pass in both modes."""
        n = len(masks)
        text = self.text_embeddings(names)
        out = np.full((n, len(names)), np.nan, np.float32)
        if self.mode == "dense":
            areas = masks.sum(axis=(1, 2)) if n else np.zeros(0, np.int64)
            keep = np.flatnonzero(areas >= MIN_MASK_PIXELS)
            if len(keep) and len(names):
                out[keep] = self.dense_embeddings(rgb, masks[keep]) @ text.T
            return out
        batch, index = self.crops(rgb, masks, boxes)
        if len(index) and len(names):
            out[index] = self.image_embeddings(batch) @ text.T
        return out


    # ------------------------------------------------------------------------- diagnostics
    @property
    def image_tower(self) -> str:
        """Where and how the image tower runs, e.g. ``openvino bf16, 1 thread(s)``."""
        return self.image_encoder.description

    def counters(self) -> dict[str, int]:
        """Encoder calls so far (the branch's diagnostics)."""
        return {
            "encode_text_calls": self.stats.encode_text_calls,
            "encode_image_calls": self.stats.encode_image_calls,
        }


# ----------------------------------------------------------------------------- backends


class ImageEncoder(Protocol):
    """The image tower as the scorer calls it: (M, 3, S, S) float32 → (M, D) float32 features
    (not normalised). ``description`` says where and how it runs (diagnostics)."""

    description: str

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Features of one batch of preprocessed crops, in one call."""
        ...


class TorchImageEncoder:
    """``encode_image`` of an open_clip model in torch, on the model's device and dtype."""

    def __init__(self, model: Any, device: str) -> None:
        self.model = model
        self.device = device
        dtype = "?" if model is None else str(next(model.parameters()).dtype).removeprefix("torch.")
        self.description = f"torch {device} {dtype}"

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """(M, D) float32 image features (not normalised) of a (M, 3, S, S) batch."""
        import torch

        with torch.inference_mode():
            tensor = torch.from_numpy(batch).to(self.device)
            dtype = next(self.model.parameters()).dtype
            return self.model.encode_image(tensor.to(dtype)).float().cpu().numpy()


def make_image_encoder(
    backend: str,
    model: Any,
    *,
    model_name: str,
    image_size: int,
    device: str,
    threads: int,
    openvino_precision: str = "f32",
) -> ImageEncoder:
    """The image encoder for a resolved ``open_vocab.backend`` (:func:`resolve_clip_backend`):
    the torch model, or its tower exported and compiled by OpenVINO with ``threads`` threads
    in the precision :func:`resolve_clip_precision` gives for ``openvino_precision``."""
    if backend == "openvino":
        from sfs_ros.open_vocab.clip_openvino import OpenVinoImageEncoder

        precision, why = resolve_clip_precision(openvino_precision)
        return OpenVinoImageEncoder(
            model, model_name, image_size, threads, precision=precision, why=why
        )
    if openvino_precision not in {"auto", "f32"}:
        LOG.warning(
            "open_vocab.openvino_precision %s applies to the openvino image tower only; "
            "the CLIP tower runs in torch here",
            openvino_precision,
        )
    return TorchImageEncoder(model, device)


def resolve_clip_precision(
    requested: str, native_bf16: Callable[[], bool] | None = None
) -> tuple[str, str]:
    """The OpenVINO inference precision of the CLIP image tower and why.

    ``auto`` is bf16 where the CPU computes it natively (AMX or AVX512-BF16: a ViT-B-32 crop pass
    ran 2.7x faster in it, BENCHMARKS.md) and f32 elsewhere (OpenVINO would emulate bf16);
    the choice was measured on the trained tiny world (docs/tiny_world.md). ``f32`` gives the
    same features as torch; ``bf16`` is taken as asked.
    """
    if requested not in CLIP_PRECISIONS:
        raise ConfigError(
            f"open_vocab.openvino_precision '{requested}' is not one of "
            + ", ".join(CLIP_PRECISIONS)
        )
    if requested != "auto":
        return requested, "set by open_vocab.openvino_precision"
    if native_bf16 is None:
        from sfs_ros.models.backends import cpu_has_native_bf16 as native_bf16
    if native_bf16():
        return "bf16", "auto: this CPU computes bf16 natively"
    return "f32", "auto: no native bf16 on this CPU"


def resolve_clip_backend(backend: str, device: str, mode: str) -> str:
    """The backend the image tower runs on: ``auto`` is openvino on the CPU in crop mode when
    OpenVINO is installed, else torch (dense mode reads patch tokens from the torch model)."""
    import importlib.util

    if backend not in CLIP_BACKENDS:
        raise ConfigError(
            f"open_vocab.backend '{backend}' is not one of {', '.join(CLIP_BACKENDS)}"
        )
    if backend == "openvino":
        if importlib.util.find_spec("openvino") is None:
            raise ConfigError("open_vocab.backend openvino needs the Python package 'openvino'")
        if not device.startswith("cpu") or mode != "crop":
            raise ConfigError(
                "open_vocab.backend openvino runs crop mode on the CPU only; use "
                "open_vocab.backend:=torch (or auto)"
            )
        return "openvino"
    if backend == "auto" and device.startswith("cpu") and mode == "crop":
        return "openvino" if importlib.util.find_spec("openvino") is not None else "torch"
    return "torch"


def local_model_dir(model_name: str) -> Path | None:
    """The folder of a ``local-dir:<folder>`` model name (open_clip's own schema: the folder
    holds ``open_clip_config.json`` and the weights), or None for an architecture name.

    Raises:
        WeightsNotFoundError: the folder or its ``open_clip_config.json`` is missing.
    """
    if not model_name.startswith(LOCAL_DIR_PREFIX):
        return None
    folder = Path(model_name[len(LOCAL_DIR_PREFIX) :]).expanduser()
    if not (folder / "open_clip_config.json").is_file():
        raise WeightsNotFoundError(
            f"open_vocab.model '{model_name}': no open_clip_config.json in {folder} (a "
            f"'{LOCAL_DIR_PREFIX}' folder holds the model config and "
            f"{' or '.join(LOCAL_WEIGHT_FILES)})"
        )
    return folder


# ----------------------------------------------------------------------------- dense helpers
def check_dense_support(model: Any, model_name: str) -> None:
    """Raise :class:`ConfigError` unless ``model`` has an open_clip ViT image tower that
    :func:`vit_dense_tokens` can read (no attentional pooler, known block types)."""
    from open_clip.transformer import (
        CustomResidualAttentionBlock,
        ResidualAttentionBlock,
        VisionTransformer,
    )

    visual = getattr(model, "visual", None)
    ok = (
        isinstance(visual, VisionTransformer)
        and getattr(visual, "attn_pool", None) is None
        and hasattr(visual, "_embeds")
        and all(
            isinstance(b, ResidualAttentionBlock | CustomResidualAttentionBlock)
            for b in visual.transformer.resblocks
        )
    )
    if not ok:
        raise ConfigError(
            f"open_vocab.mode='dense' needs an open_clip ViT image tower (VisionTransformer "
            f"without attentional pooling); open_vocab.model='{model_name}' has "
            f"{type(visual).__name__}. Use open_vocab.mode=crop, or a ViT model such as "
            "ViT-B-32, ViT-B-16 or ViT-L-14."
        )


def _value_path_block(block: Any, x: Any) -> Any:
    """One residual block with its attention replaced by the value path (MaskCLIP): every token
    is ``out_proj(v(ln_1(x)))`` of itself (what attention gives when each token attends only to
    itself), then the block's residual and MLP as usual."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    attn = block.attn
    y = block.ln_1(x)
    dim = y.shape[-1]
    if isinstance(attn, torch.nn.MultiheadAttention):
        weight = attn.in_proj_weight[2 * dim :] if attn.in_proj_weight is not None else None
        if weight is None:
            weight = attn.v_proj_weight
        bias = attn.in_proj_bias[2 * dim :] if attn.in_proj_bias is not None else None
        out = attn.out_proj(F.linear(y, weight, bias))
    else:  # open_clip Attention (CustomResidualAttentionBlock)
        bias = attn.in_proj_bias[2 * dim :] if attn.in_proj_bias is not None else None
        v = F.linear(y, attn.in_proj_weight[2 * dim :], bias)
        if attn.head_scale is not None:
            n, length, _ = v.shape
            v = v.reshape(n, length, attn.num_heads, -1).transpose(1, 2) * attn.head_scale
            v = v.transpose(1, 2).reshape(n, length, dim)
        out = block.ln_attn(attn.out_proj(attn.ln_inner(v)))
    x = x + block.ls_1(out)
    return x + block.ls_2(block.mlp(block.ln_2(x)))


def vit_dense_tokens(visual: Any, images: Any) -> Any:
    """(B, P, D) patch tokens of an open_clip ``VisionTransformer`` in the joint space.

    Blocks 1..L-1 run unchanged; the last block uses the value path only
    (:func:`_value_path_block`); the class token is dropped; ``ln_post`` and ``proj`` are
    applied per token as the pooled embedding gets them.
    """
    x = visual._embeds(images)  # patch + class embeddings, positions, ln_pre: (B, 1 + P, W)
    blocks = visual.transformer.resblocks
    batch_first = getattr(visual.transformer, "batch_first", True)
    if not batch_first:
        x = x.transpose(0, 1)
    for block in blocks[:-1]:
        x = block(x)
    if not batch_first:
        x = x.transpose(0, 1)
    x = _value_path_block(blocks[-1], x)[:, 1:]  # per token: layout-free; drop the class token
    x = visual.ln_post(x)
    return x @ visual.proj if visual.proj is not None else x


def area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) float32 area-interpolation weights: row i holds the share of each input
    pixel in output cell i (cells of n_in / n_out pixels; every row sums to 1)."""
    step = n_in / n_out
    edges = np.arange(n_out + 1, dtype=np.float64) * step
    pix = np.arange(n_in + 1, dtype=np.float64)
    lo = np.maximum(edges[:-1, None], pix[None, :-1])
    hi = np.minimum(edges[1:, None], pix[None, 1:])
    return (np.clip(hi - lo, 0.0, None) / step).astype(np.float32)


def mask_patch_coverage(masks: np.ndarray, grid_hw: tuple[int, int]) -> np.ndarray:
    """(N, gh * gw) float32 share of every patch covered by every mask (N, h, w).

    Area interpolation of the masks to the patch grid (as ``cv2.resize(..., INTER_AREA)``), as
    two matmuls per chunk of ``COVERAGE_CHUNK`` masks: rows x ``area_matrix`` x columns.
    """
    n, h, w = masks.shape
    gh, gw = grid_hw
    rows, cols_t = area_matrix(h, gh), area_matrix(w, gw).T
    out = np.empty((n, gh, gw), np.float32)
    for start in range(0, n, COVERAGE_CHUNK):
        chunk = masks[start : start + COVERAGE_CHUNK].astype(np.float32)
        out[start : start + COVERAGE_CHUNK] = rows @ (chunk @ cols_t)
    return out.reshape(n, gh * gw)
