"""Optional BLIP captioner: proposes nouns for masks that CLIP left unidentified.

Off by default (``open_vocab.captioner: ""``). When set to a transformers image-captioning id
or directory (e.g. ``Salesforce/blip-image-captioning-large``), it runs on the open-vocabulary
worker thread only (never on the per-frame path), on the crops of masks whose best CLIP score
stayed below ``open_vocab.threshold``; the head nouns of the captions become extra CLIP
candidates from the next pass on. With ``allow_random_weights`` and no weights available, a
small random-weight BLIP is built (:func:`sfs_ros.weights.build_random_blip`) so the path runs
offline; its nouns are random words. Noun extraction is a small heuristic (no spaCy): for every
article-introduced phrase, skip words up to the first function word / verb form and keep the
last remaining word ("a brown dog sitting on a couch" → dog, couch).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sfs_ros.runtime import LOG
from sfs_ros.weights import WeightsNotFoundError, weights_offline

_ARTICLES = {"a", "an", "the", "some", "two", "three", "several", "many"}
_STOP = {
    "a",
    "an",
    "the",
    "and",
    "or",
    "of",
    "on",
    "in",
    "at",
    "with",
    "without",
    "by",
    "to",
    "from",
    "for",
    "over",
    "under",
    "near",
    "next",
    "behind",
    "into",
    "onto",
    "is",
    "are",
    "was",
    "were",
    "be",
    "has",
    "have",
    "that",
    "which",
    "who",
    "while",
    "it",
    "its",
    "this",
    "there",
    "their",
    "his",
    "her",
    "up",
    "down",
    "out",
    "off",
    "front",
    "top",
    "side",
    "background",
    "photo",
    "picture",
    "image",
    "close",
    "view",
    "arafed",
    "araffe",
    "blurry",
    "white",
    "black",
}
_CAPTION_NOISE = {"photo", "picture", "image", "view", "background", "close"}


def _verb_form(word: str) -> bool:
    """-ing / -ed forms (sitting, parked) end a noun phrase; short words (red, bed) do not."""
    return len(word) > 4 and (word.endswith("ing") or word.endswith("ed"))


def extract_nouns(caption: str, max_nouns: int = 3) -> list[str]:
    """Head nouns of a caption's article-introduced phrases (lower case, deduplicated)."""
    words = re.findall(r"[a-z][a-z\-]*", caption.lower())
    nouns: list[str] = []
    i = 0
    while i < len(words):
        if words[i] in _ARTICLES:
            j = i + 1
            phrase = []
            while j < len(words) and words[j] not in _STOP and not _verb_form(words[j]):
                phrase.append(words[j])
                j += 1
            if phrase:
                head = phrase[-1]
                if head not in _CAPTION_NOISE and len(head) > 2 and head not in nouns:
                    nouns.append(head)
            i = j
        else:
            i += 1
    return nouns[:max_nouns]


def crop_box(
    box: Sequence[float], h: int, w: int, margin: float = 0.3
) -> tuple[int, int, int, int] | None:
    """Pixel window ``(x0, y0, x1, y1)`` of an xyxy ``box`` grown by ``margin`` of its size on
    every side and clipped to the ``h`` x ``w`` image; None when smaller than 8 x 8 pixels."""
    x0, y0, x1, y1 = (float(v) for v in box)
    mx, my = margin * (x1 - x0), margin * (y1 - y0)
    xa, ya = int(max(0, x0 - mx)), int(max(0, y0 - my))
    xb, yb = int(min(w, x1 + mx)), int(min(h, y1 + my))
    if xb - xa < 8 or yb - ya < 8:
        return None
    return xa, ya, xb, yb


def _load_blip(source: str, local_only: bool) -> tuple[Any, Any]:
    from transformers import AutoProcessor, BlipForConditionalGeneration

    processor = AutoProcessor.from_pretrained(source, local_files_only=local_only)
    model = BlipForConditionalGeneration.from_pretrained(source, local_files_only=local_only)
    return processor, model


@dataclass
class BlipCaptioner:
    """A transformers image-to-text model that turns mask crops into candidate nouns.

    Satisfies :class:`sfs_ros.models.protocols.Captioner`.
    """

    model: Any
    processor: Any
    device: str = "cpu"
    max_new_tokens: int = 20
    calls: int = 0
    is_random: bool = False

    @classmethod
    def load(
        cls, model_id: str, device: str = "cpu", allow_random: bool = False
    ) -> BlipCaptioner:
        """Load once (a hub id, from the local cache when offline, or a local directory).

        Missing weights: a :class:`WeightsNotFoundError` naming ``open_vocab.captioner``. With
        ``allow_random_weights`` a small BLIP with random weights is built instead (see
        :func:`sfs_ros.weights.build_random_blip`), loaded through the same path and announced
        loudly: its captions are random words, so the nouns it adds are noise. A local
        directory that exists but does not load is always an error.
        """
        from sfs_ros.weights import RANDOM_WEIGHTS_BANNER, build_random_blip

        local_dir = Path(model_id).expanduser().is_dir()
        try:
            processor, model = _load_blip(model_id, local_only=weights_offline() or local_dir)
            is_random = False
        except (OSError, ValueError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if not allow_random or local_dir:
                raise WeightsNotFoundError(
                    f"captioner open_vocab.captioner='{model_id}' not found ({reason}). Point "
                    "open_vocab.captioner at a local directory (CLI: --set "
                    'open_vocab.captioner=/path/to/blip), run once online, set it to "" to '
                    "switch captions off"
                    + ("" if local_dir else ", or run with allow_random_weights:=true")
                    + "."
                ) from exc
            LOG.warning(
                "captioner '%s' not available (%s); building a random-weight BLIP", model_id, reason
            )
            processor, model = _load_blip(str(build_random_blip()), local_only=True)
            is_random = True
            LOG.warning(
                RANDOM_WEIGHTS_BANNER.format(
                    what="BLIP captioner (caption nouns are random words)",
                    param="open_vocab.captioner",
                )
            )
        return cls(model.to(device).eval(), processor, device, is_random=is_random)

    def captions(
        self, rgb: np.ndarray, masks: np.ndarray, boxes: np.ndarray, index: Sequence[int]
    ) -> list[str]:
        """One caption per mask of ``index`` ("" where the crop is under 8 x 8 pixels): the
        box crops (xyxy, with a margin) are captioned with ONE batched ``generate`` call."""
        import torch

        h, w = rgb.shape[:2]
        windows = [crop_box(boxes[i], h, w) for i in index]
        crops = [rgb[y0:y1, x0:x1] for x0, y0, x1, y1 in filter(None, windows)]
        if not crops:
            return [""] * len(windows)
        with torch.inference_mode():
            inputs = self.processor(images=crops, return_tensors="pt").to(self.device)
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens)
        self.calls += 1
        texts = iter(self.processor.batch_decode(out, skip_special_tokens=True))
        return ["" if win is None else next(texts).strip() for win in windows]

    def nouns(
        self, rgb: np.ndarray, masks: np.ndarray, boxes: np.ndarray, index: Sequence[int]
    ) -> list[str]:
        """Caption masks ``index`` in one batch (:meth:`captions`); their nouns, deduplicated."""
        nouns: list[str] = []
        for caption in self.captions(rgb, masks, boxes, index):
            for noun in extract_nouns(caption):
                if noun not in nouns:
                    nouns.append(noun)
        return nouns


# The name of the class before the captioner protocol existed (sfs_ros.models.protocols).
Captioner = BlipCaptioner
