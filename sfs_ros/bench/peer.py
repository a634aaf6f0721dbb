# SPDX-License-Identifier: AGPL-3.0-or-later
"""The peer pipeline: Semantic-Fast-SAM / SSA closed-set labelling, written plainly.

This is benchmark code, not product code. It does what the reference repositories do
(the Semantic-Fast-SAM / SSA recipe), so that ``sfs-bench pipeline``
(:mod:`sfs_ros.bench.pipeline`) can time it on the same inputs as sfs_ros:

1. ``ultralytics.FastSAM(path).predict(pil_rgb, retina_masks=True, imgsz=1024, conf, iou=0.9)``
   → full-resolution masks;
2. the transformers segmenter through its image processor, logits bilinear-upsampled to the
   image, argmax → class map;
3. for each mask, ``np.bincount`` of the class map inside the mask at full resolution → label;
4. start from the class map, paint masks one by one, largest first (smaller on top).

Fair to the peer: the models are loaded once (SFS re-creates FastSAM per call), the torch
thread count is restored after ultralytics' predictor lowers it (docs/architecture.md, "Build
quirks"), ``max_det`` is set to the same mask budget as ours, and the colour order is RGB
(the peers feed BGR).
"""

from __future__ import annotations

import time

import numpy as np


class PeerPipeline:
    """FastSAM (ultralytics predict, retina masks) + SegFormer (image processor) + Python loops."""

    def __init__(
        self,
        fastsam_path: str,
        segmenter_dir: str,
        *,
        imgsz: int = 1024,
        conf: float = 0.4,
        iou: float = 0.9,
        max_det: int = 300,
        threads: int = 0,
    ) -> None:
        import os

        import torch
        from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation

        from sfs_ros.runtime import import_ultralytics

        import_ultralytics()
        from ultralytics import FastSAM

        self.fastsam = FastSAM(fastsam_path)
        self.processor = AutoImageProcessor.from_pretrained(segmenter_dir)
        self.segmenter = AutoModelForSemanticSegmentation.from_pretrained(segmenter_dir).eval()
        self.imgsz, self.conf, self.iou, self.max_det = imgsz, conf, iou, max_det
        self.threads = threads or (os.cpu_count() or 1)
        self.last_timings: dict[str, float] = {}
        torch.set_num_threads(self.threads)

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, int]:
        """Label map (H, W) int64 and the number of masks; stage times in ``last_timings``."""
        import torch
        from PIL import Image

        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        pil = Image.fromarray(rgb)
        results = self.fastsam.predict(
            pil,
            retina_masks=True,
            imgsz=self.imgsz,
            conf=self.conf,
            iou=self.iou,
            max_det=self.max_det,
            device="cpu",
            verbose=False,
        )
        torch.set_num_threads(self.threads)  # ultralytics sets cpu_count - 1
        masks_obj = results[0].masks
        masks = (
            masks_obj.data.cpu().numpy() > 0.5
            if masks_obj is not None
            else np.zeros((0, *rgb.shape[:2]), bool)
        )
        t1 = time.perf_counter()
        timings["fastsam"] = (t1 - t0) * 1e3

        with torch.no_grad():
            inputs = self.processor(images=pil, return_tensors="pt")
            logits = self.segmenter(**inputs).logits
            logits = torch.nn.functional.interpolate(
                logits, size=rgb.shape[:2], mode="bilinear", align_corners=False
            )
            class_map = logits[0].argmax(0).numpy()
        t2 = time.perf_counter()
        timings["closed_set"] = (t2 - t1) * 1e3

        labels = []
        for mask in masks:
            inside = class_map[mask]
            labels.append(int(np.bincount(inside).argmax()) if inside.size else 0)
        t3 = time.perf_counter()
        timings["vote_fuse"] = (t3 - t2) * 1e3

        painted = class_map.copy()
        areas = [int(m.sum()) for m in masks]
        for index in sorted(range(len(masks)), key=lambda i: -areas[i]):
            painted[masks[index]] = labels[index]
        t4 = time.perf_counter()
        timings["paint"] = (t4 - t3) * 1e3
        self.last_timings = timings
        return painted, len(masks)
