"""CLIP adapter over open_clip: loaded once, cached text embeddings, masked crops in one batch.

What the anchors do wrong and this module does not (anchors.md Part A): CLIP is built once (not
per call), names go through prompt templates (averaged per class, normalised) and their text
embeddings are cached per name, so a vocabulary change only encodes the new names; every mask
of a frame becomes one masked crop (box xyxy + a context margin, pixels outside the mask set to
CLIP's mean colour) and all crops go through the image encoder in ONE batch; the result is a
cosine-similarity matrix, from which callers keep a top-K and apply a threshold instead of a
forced softmax/argmax.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from sfs_ros.runtime import LOG
from sfs_ros.vocabularies import normalize_class_name
from sfs_ros.weights import RANDOM_WEIGHTS_BANNER, WeightsNotFoundError

# Context kept around each box, as a fraction of its width / height on each side.
CROP_MARGIN = 0.1
# Masks with fewer working-resolution pixels than this are not scored (NaN row).
MIN_MASK_PIXELS = 4
# Prompts encoded per text-encoder call (bounds memory for large vocabularies).
TEXT_BATCH = 128  # prompts per text-encoder call; cancellation is checked between calls


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
    stats: ClipStats = field(default_factory=ClipStats)
    _text_cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    # Set on shutdown: a running pass stops before its next encoder call (PassCancelledError).
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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
    ) -> ClipScorer:
        """Build ``model_name`` with ``pretrained`` weights through open_clip (once).

        Offline with no cached weights → :class:`WeightsNotFoundError` naming
        ``open_vocab.model`` / ``open_vocab.pretrained``; with ``allow_random`` the same
        architecture is built with random weights (``pretrained=None``) and a loud warning.
        """
        import open_clip

        if model_name not in open_clip.list_models():
            raise WeightsNotFoundError(
                f"open_vocab.model '{model_name}' is not an open_clip architecture "
                f"(e.g. ViT-B-32, ViT-L-14; see open_clip.list_models())"
            )
        tag = (pretrained or "").strip()
        is_random = False
        model = None
        reason = "open_vocab.pretrained is empty"
        if tag:
            try:
                model, _, _ = open_clip.create_model_and_transforms(
                    model_name, pretrained=tag, device=device
                )
            except RuntimeError as exc:  # open_clip: unknown tag / download failed / offline
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
            model, _, _ = open_clip.create_model_and_transforms(
                model_name, pretrained=None, device=device
            )
            is_random = True
            LOG.warning(RANDOM_WEIGHTS_BANNER.format(what="CLIP", param="open_vocab.pretrained"))
        model.eval()
        cfg = open_clip.get_model_preprocess_cfg(model)
        size = cfg.get("size", 224)
        size = int(size[0] if isinstance(size, list | tuple) else size)
        return cls(
            model=model,
            tokenizer=open_clip.get_tokenizer(model_name),
            image_size=size,
            mean=tuple(float(v) for v in cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)),
            std=tuple(float(v) for v in cfg.get("std", open_clip.OPENAI_DATASET_STD)),
            templates=tuple(templates) or ("{}",),
            device=device,
            is_random=is_random,
            name=f"{model_name}/{tag or 'random'}",
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

    def set_templates(self, templates: Sequence[str]) -> None:
        """New prompt templates: the text cache is dropped (re-encoded on next use)."""
        with self._lock:
            self.templates = tuple(templates) or ("{}",)
            self._text_cache.clear()

    # ------------------------------------------------------------------------- images
    def crops(
        self, rgb: np.ndarray, masks: np.ndarray, boxes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Masked crops of every scoreable mask, as one float32 batch (M, 3, S, S).

        Each crop is the mask's xyxy box (input pixels) widened by ``CROP_MARGIN`` on each side;
        pixels outside the mask become CLIP's mean colour, the crop is letterboxed (mean colour)
        to S x S keeping its aspect ratio, then normalised. Returns ``(batch, index)`` with the
        mask indices the rows belong to.
        """
        h_img, w_img = rgb.shape[:2]
        n = len(masks)
        if n == 0:
            return np.zeros((0, 3, self.image_size, self.image_size), np.float32), np.zeros(
                0, np.int64
            )
        h_w, w_w = masks.shape[1:]
        areas = masks.reshape(n, -1).sum(axis=1)
        size = self.image_size
        mean255 = np.array(self.mean, np.float32) * 255.0
        out = np.empty((n, size, size, 3), np.float32)
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
            crop = rgb[y0:y1, x0:x1].astype(np.float32)
            # Mask at input pixels for this crop: nearest sample of the working-res mask.
            ys = np.minimum(((np.arange(y0, y1) + 0.5) * h_w / h_img).astype(np.int64), h_w - 1)
            xs = np.minimum(((np.arange(x0, x1) + 0.5) * w_w / w_img).astype(np.int64), w_w - 1)
            inside = masks[i][np.ix_(ys, xs)]
            crop[~inside] = mean255
            ch, cw = crop.shape[:2]
            scale = size / max(ch, cw)
            nh, nw = max(1, round(ch * scale)), max(1, round(cw * scale))
            resized = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_AREA)
            canvas = out[len(keep)]
            canvas[:] = mean255
            top, left = (size - nh) // 2, (size - nw) // 2
            canvas[top : top + nh, left : left + nw] = resized
            keep.append(i)
        batch = out[: len(keep)]
        batch /= 255.0
        batch -= np.array(self.mean, np.float32)
        batch /= np.array(self.std, np.float32)
        return np.ascontiguousarray(batch.transpose(0, 3, 1, 2)), np.array(keep, np.int64)

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise PassCancelledError("open-vocabulary pass cancelled (shutting down)")

    def image_embeddings(self, batch: np.ndarray) -> np.ndarray:
        """(M, D) float32 unit vectors of a crop batch, in one image-encoder call."""
        import torch

        self._check_cancel()
        with torch.inference_mode():
            tensor = torch.from_numpy(batch).to(self.device)
            dtype = next(self.model.parameters()).dtype
            feats = self.model.encode_image(tensor.to(dtype)).float().cpu().numpy()
        self.stats.encode_image_calls += 1
        self.stats.crops_encoded += len(batch)
        feats /= np.linalg.norm(feats, axis=-1, keepdims=True) + 1e-12
        return feats

    def score(
        self, rgb: np.ndarray, masks: np.ndarray, boxes: np.ndarray, names: Sequence[str]
    ) -> np.ndarray:
        """(N, C) float32 cosine similarity of every mask with every name; NaN rows for masks
        too small to score."""
        n = len(masks)
        text = self.text_embeddings(names)
        out = np.full((n, len(names)), np.nan, np.float32)
        batch, index = self.crops(rgb, masks, boxes)
        if len(index) and len(names):
            out[index] = self.image_embeddings(batch) @ text.T
        return out
