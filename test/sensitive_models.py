# SPDX-License-Identifier: AGPL-3.0-or-later
"""Random-weight test models that depend on their input, for parity tests.

A FastSAM built from its yaml with random weights keeps batch-norm statistics of 0 / 1, so its
activations saturate: every frame gives the same few scores and every mask equals its box. Here
the batch-norm running statistics are re-estimated on a few real photos (those ultralytics
ships) and the class bias is shifted so that a small share of the anchors clear ``conf`` 0.4.
Scores, boxes and masks then vary with the image, like a trained model's, while the weights
stay random. The result is saved as an ultralytics checkpoint and loads through the real path.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def ultralytics_photos() -> dict[str, np.ndarray]:
    """The sample photos ultralytics ships (RGB): ``bus`` (810x1080), ``zidane`` (1280x720)."""
    from ultralytics.utils import ASSETS

    photos = {}
    for name in ("bus", "zidane"):
        bgr = cv2.imread(str(Path(ASSETS) / f"{name}.jpg"))
        assert bgr is not None, f"ultralytics sample photo {name}.jpg is missing"
        photos[name] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return photos


def odd_sized_photo() -> np.ndarray:
    """An odd-sized RGB crop of bus.jpg (333 x 517), to exercise letterbox rounding."""
    return np.ascontiguousarray(ultralytics_photos()["bus"][101:434, 37:554])


def _letterboxed(rgb: np.ndarray, size: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    resized = cv2.resize(rgb, (round(w * scale), round(h * scale)))
    canvas = np.full((size, size, 3), 114, np.uint8)
    canvas[: resized.shape[0], : resized.shape[1]] = resized
    return canvas


def _calibration_batch(size: int) -> object:
    import torch

    images = []
    for rgb in ultralytics_photos().values():
        for view in (rgb, rgb[:, ::-1], rgb[: rgb.shape[0] // 2], rgb[:, rgb.shape[1] // 3 :]):
            images.append(_letterboxed(np.ascontiguousarray(view), size))
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0
    return batch


def make_fastsam_input_sensitive(
    weights: Path, out: Path, *, imgsz: int = 320, positive_share: float = 0.004
) -> Path:
    """Calibrate a random FastSAM checkpoint so that it depends on its input; save to ``out``.

    1. every batch-norm layer re-estimates its running mean / variance over 8 views of the
       ultralytics sample photos (cumulative average, ``momentum=None``);
    2. the class logits' bias is shifted so that at least ``positive_share`` of the anchors of
       every view score above 0.5, so the shipped ``conf`` 0.4 yields masks.
    """
    import torch
    from ultralytics import YOLO

    if out.exists():
        return out
    wrapper = YOLO(str(weights), task="segment")
    model = wrapper.model
    batch = _calibration_batch(imgsz)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    model.train()
    with torch.no_grad():
        for image in batch:
            model(image[None])
    model.eval()
    head = model.model[-1]
    with torch.no_grad():
        preds = model(batch)[0]
        preds = preds[0] if isinstance(preds, tuple | list) else preds
        logits = torch.logit(preds[:, 4].clamp(1e-6, 1 - 1e-6))  # (views, anchors)
        # the view with the fewest confident anchors still gets its share above 0.5
        shift = -float(torch.quantile(logits, 1.0 - positive_share, dim=1).min())
        for branch in head.cv3:
            branch[-1].bias += shift
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.pt")
    wrapper.save(str(tmp))
    tmp.replace(out)
    return out
