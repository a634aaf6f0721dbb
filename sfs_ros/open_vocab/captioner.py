"""Optional BLIP captioner: proposes nouns for masks that CLIP left unidentified.

Off by default (``open_vocab.captioner: ""``). When set to a transformers image-captioning id
or directory (e.g. ``Salesforce/blip-image-captioning-large``), it runs on the open-vocabulary
worker thread only (never on the per-frame path), on the crops of masks whose best CLIP score
stayed below ``open_vocab.threshold``; the head nouns of the captions become extra CLIP
candidates from the next pass on. Noun extraction is a small heuristic (no spaCy): for every
article-introduced phrase, skip words up to the first function word / verb form and keep the
last remaining word ("a brown dog sitting on a couch" → dog, couch).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass
class Captioner:
    """A transformers image-to-text model that turns mask crops into candidate nouns."""

    model: Any
    processor: Any
    device: str = "cpu"
    max_new_tokens: int = 20
    calls: int = 0

    @classmethod
    def load(
        cls, model_id: str, device: str = "cpu", allow_random: bool = False
    ) -> Captioner | None:
        """Load once. Missing weights: an error naming ``open_vocab.captioner``; with
        ``allow_random_weights`` the captioner is switched off with a warning instead (random
        captions would only add noise words)."""
        from transformers import AutoProcessor, BlipForConditionalGeneration

        try:
            processor = AutoProcessor.from_pretrained(model_id, local_files_only=weights_offline())
            model = BlipForConditionalGeneration.from_pretrained(
                model_id, local_files_only=weights_offline()
            )
        except OSError as exc:
            if allow_random:
                LOG.warning(
                    "captioner '%s' not available (%s); open_vocab.captioner is OFF for this run",
                    model_id,
                    str(exc).splitlines()[0],
                )
                return None
            raise WeightsNotFoundError(
                f"captioner open_vocab.captioner='{model_id}' not found "
                f"({str(exc).splitlines()[0]}). Point open_vocab.captioner at a local "
                'directory, run once online, or set it to "" to switch captions off.'
            ) from exc
        return cls(model.to(device).eval(), processor, device)

    def nouns(
        self, rgb: np.ndarray, masks: np.ndarray, boxes: np.ndarray, index: Sequence[int]
    ) -> list[str]:
        """Caption the box crops (with a margin) of masks ``index`` in one batch; their nouns."""
        import torch

        h, w = rgb.shape[:2]
        crops = []
        for i in index:
            x0, y0, x1, y1 = (float(v) for v in boxes[i])
            mx, my = 0.3 * (x1 - x0), 0.3 * (y1 - y0)
            xa, ya = int(max(0, x0 - mx)), int(max(0, y0 - my))
            xb, yb = int(min(w, x1 + mx)), int(min(h, y1 + my))
            if xb - xa >= 8 and yb - ya >= 8:
                crops.append(rgb[ya:yb, xa:xb])
        if not crops:
            return []
        with torch.inference_mode():
            inputs = self.processor(images=crops, return_tensors="pt").to(self.device)
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens)
        self.calls += 1
        nouns: list[str] = []
        for caption in self.processor.batch_decode(out, skip_special_tokens=True):
            for noun in extract_nouns(caption):
                if noun not in nouns:
                    nouns.append(noun)
        return nouns
