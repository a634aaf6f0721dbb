# SPDX-License-Identifier: AGPL-3.0-or-later
"""Training recipes for the tiny world: FastSAM (YOLOv8n-seg), SegFormer and a tiny CLIP.

One command trains all three (``sfs-world train`` or ``python -m sfs_ros.world.train``):

* **FastSAM architecture**: a YOLOv8n-seg with one class ("object"), built from ultralytics'
  yaml and trained from scratch with ultralytics' own trainer on the instance masks of
  :data:`RECIPE` ``["fastsam"]["scenes"]`` training scenes (polygons of each visible instance's
  largest part, YOLO segment format). Saved as ``fastsam.pt`` (ultralytics' fp16 checkpoint,
  loads through ``FastSAM(path)`` = ``fastsam.model``).
* **SegFormer** (a small SegFormer config: four stages, 16..128 channels) on the semantic maps
  of the closed-set classes; the open-vocabulary-only classes are ignored by the loss (255).
  Saved with ``save_pretrained`` in fp16, plus an image-processor config, in ``segformer/``
  (= ``closed_set.model``).
* **CLIP**: a tiny open_clip model (ViT image tower, 8x8 patches at 64x64; 2-layer text
  transformer) trained contrastively on masked object crops, made exactly as
  :meth:`sfs_ros.open_vocab.clip.ClipScorer.crops` makes them, against the prompt-averaged text
  embeddings of every tiny-world class name (the prompt templates of ``open_vocab.templates``).
  Saved in open_clip's local-folder layout (``clip/open_clip_config.json`` +
  ``open_clip_pytorch_model.bin`` in fp16), loaded with ``open_vocab.model:
  local-dir:<folder>``.

Training scenes come from world seed :data:`TRAIN_SEED`; metrics are measured on scenes of
:data:`VAL_SEED`; ``sfs-world eval`` defaults to yet another seed. Every random number is
seeded, so a recipe gives the same data; the trained weights are reproducible up to torch's CPU
non-determinism. Models are cached under ``<sfs_ros cache>/tiny_world/v<generator version>/``;
``metrics/<part>.json`` next to them records each part's recipe, its key (a hash of the part's
recipe, the seeds, the training size and :data:`~sfs_ros.world.classes.GENERATOR_VERSION`),
the metrics and the training time. A part whose recorded key differs from the current recipe's
is trained again; the other parts are kept.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from sfs_ros.params import DEFAULT_TEMPLATES
from sfs_ros.world.classes import (
    CLASS_NAMES,
    CLOSED_SET_NAMES,
    GENERATOR_VERSION,
    OPEN_ONLY_NAMES,
)
from sfs_ros.world.scene import TRAIN_SIZE, Scene, generate_scene

__all__ = [
    "MODEL_PARTS",
    "RECIPE",
    "TRAIN_SEED",
    "VAL_SEED",
    "TinyWorldModels",
    "ensure_models",
    "main",
    "recipe_key",
]

#: World seed of the training scenes, and of the scenes training metrics are measured on.
TRAIN_SEED = 1
VAL_SEED = 2
MODEL_PARTS = ("fastsam", "segformer", "clip")

RECIPE: dict[str, Any] = {
    "train_size": list(TRAIN_SIZE),
    "fastsam": {
        "arch": "yolov8n-seg.yaml",
        # rendered at the evaluation / demo frame size and letterboxed to imgsz by the trainer,
        # as the mask generator letterboxes a 640x480 camera frame at run time
        "scene_size": [480, 640],
        "scenes": 600,
        "val_scenes": 60,
        "imgsz": 320,
        "epochs": 30,
        "close_mosaic": 5,
        "batch": 16,
        "mosaic": 1.0,
        "warmup_epochs": 1.0,
        "seed": 0,
    },
    "segformer": {
        "hidden_sizes": [16, 32, 64, 128],
        "depths": [2, 2, 2, 2],
        "num_attention_heads": [1, 1, 2, 4],
        "decoder_hidden_size": 128,
        # network input (h, w) for a 640x480 frame: logits on a 128x96 grid (1/5 of the
        # frame's width), like SegFormer-B0 at 512 on a 640x480 camera; scenes rendered at the
        # frame size and resized to the input as the segmenter resizes a camera frame
        "input_size": [384, 512],
        "scene_size": [480, 640],
        "scenes": 400,
        "val_scenes": 40,
        "epochs": 12,
        "batch": 8,
        "lr": 2e-3,
        "class_weighting": "inv_sqrt_freq",
        "seed": 0,
    },
    "clip": {
        "model_cfg": {
            "embed_dim": 64,
            "vision_cfg": {
                "image_size": 64,
                "layers": 4,
                "width": 128,
                "patch_size": 8,
                "head_width": 32,
                "mlp_ratio": 2.0,
            },
            "text_cfg": {
                "context_length": 16,
                "vocab_size": 49408,
                "width": 32,
                "heads": 2,
                "layers": 2,
            },
        },
        "templates": list(DEFAULT_TEMPLATES),
        # crops of frame-sized scenes, as the open-vocabulary branch crops a 640x480 camera
        # frame (crops of 320x240 scenes named 640x480 barrels and bottles "sky")
        "scene_size": [480, 640],
        "scenes": 400,
        "val_scenes": 60,
        "steps": 600,
        "batch": 64,
        "lr": 1e-3,
        "seed": 0,
    },
}


def recipe_key(part: str) -> str:
    """Cache key of one part's recipe (with the seeds, training size and generator version)."""
    doc = {
        "part": RECIPE[part],
        "train_size": RECIPE["train_size"],
        "seeds": [TRAIN_SEED, VAL_SEED],
        "generator": GENERATOR_VERSION,
    }
    text = json.dumps(doc, sort_keys=True)
    return f"{part}-v{GENERATOR_VERSION}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


@dataclass(frozen=True)
class TinyWorldModels:
    """Where the three trained models of one recipe live.

    Attributes:
        root: the folder (``fastsam.pt``, ``segformer/``, ``clip/``, ``metrics/<part>.json``).
    """

    root: Path

    @property
    def fastsam(self) -> Path:
        """The YOLOv8n-seg checkpoint (``fastsam.model``)."""
        return self.root / "fastsam.pt"

    @property
    def segformer(self) -> Path:
        """The SegFormer ``save_pretrained`` folder (``closed_set.model``)."""
        return self.root / "segformer"

    @property
    def clip(self) -> Path:
        """The open_clip local folder (``open_vocab.model: local-dir:<folder>``)."""
        return self.root / "clip"

    def metrics(self) -> dict[str, Any]:
        """``{part: contents of metrics/<part>.json}`` for the parts that have one."""
        out = {}
        for part in MODEL_PARTS:
            path = self.root / "metrics" / f"{part}.json"
            if path.is_file():
                out[part] = json.loads(path.read_text())
        return out

    def missing(self) -> list[str]:
        """The model files of this folder that are not there (any recipe)."""
        files = (self.fastsam, self.segformer / "config.json", self.clip / "open_clip_config.json")
        return [str(f) for f in files if not f.is_file()]

    def has(self, part: str) -> bool:
        """Whether ``part`` (``fastsam``, ``segformer`` or ``clip``) is saved and was trained
        with the current recipe."""
        if part not in MODEL_PARTS:
            raise ValueError(f"unknown model part {part!r}; choose from {', '.join(MODEL_PARTS)}")
        files = {
            "fastsam": self.fastsam,
            "segformer": self.segformer / "config.json",
            "clip": self.clip / "open_clip_pytorch_model.bin",
        }
        recorded = self.metrics().get(part, {}).get("recipe_key")
        return files[part].is_file() and recorded == recipe_key(part)

    def overrides(self, open_vocab: bool = False) -> dict[str, Any]:
        """Configuration overrides (``load_config``) that load these models through the real
        loading paths; ``open_vocab`` also switches the open-vocabulary branch on with the
        tiny CLIP and the open-vocabulary-only class names."""
        out: dict[str, Any] = {
            "fastsam.model": str(self.fastsam),
            "fastsam.imgsz": RECIPE["fastsam"]["imgsz"],
            "closed_set.model": str(self.segformer),
            # INT8 calibrated on frames of the tiny world, not on the bundled photos
            "openvino_int8_calibration": str(calibration_images()),
        }
        if open_vocab:
            out.update(
                {
                    "open_vocab.enabled": True,
                    "open_vocab.model": f"local-dir:{self.clip}",
                    "open_vocab.pretrained": "",
                    "open_vocab.vocabulary": list(OPEN_ONLY_NAMES),
                    "open_vocab.templates": list(RECIPE["clip"]["templates"]),
                }
            )
        return out


CALIBRATION_SCENES = 12
"""Training-world scenes the tiny-world models' INT8 quantisation is calibrated on."""


def calibration_images(root: Path | None = None) -> Path:
    """A folder of :data:`CALIBRATION_SCENES` training-world scenes (PNG, 640x480) for
    ``openvino_int8_calibration``: INT8 quantisation of the tiny-world models on frames of
    their own world, as a user calibrates on their own camera's frames (the bundled sample
    photos are another world to these models). Written once under ``root`` (default: the
    sfs_ros cache), complete or not at all."""
    import tempfile

    from sfs_ros.weights import cache_dir

    base = root or cache_dir() / "tiny_world"
    folder = base / f"calibration-v{GENERATOR_VERSION}-seed{TRAIN_SEED}-n{CALIBRATION_SCENES}"
    if folder.is_dir():
        return folder
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".calibration-", dir=base))
    for index in range(CALIBRATION_SCENES):
        rgb = generate_scene(TRAIN_SEED, 10_000 + index).rgb  # not among the training scenes
        cv2.imwrite(str(staging / f"scene_{index:02d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    try:
        staging.rename(folder)
    except OSError:  # another process finished first: theirs is as good
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def default_models_dir() -> Path:
    """``<sfs_ros cache>/tiny_world/v<generator version>``."""
    from sfs_ros.weights import cache_dir

    return cache_dir() / "tiny_world" / f"v{GENERATOR_VERSION}"


# ----------------------------------------------------------------------------- data
def _scenes(seed: int, count: int, desc: str, size: Sequence[int] | None = None) -> Iterator[Scene]:
    """Scenes ``0 .. count - 1`` of world ``seed`` at ``size`` (default: the training size),
    drawn one at a time."""
    h, w = size or RECIPE["train_size"]
    for i in tqdm(range(count), desc=f"scenes ({desc})", file=sys.stderr, leave=False):
        yield generate_scene(seed, i, (h, w))


def _largest_polygon(mask: np.ndarray) -> np.ndarray | None:
    """(P, 2) float pixel polygon of the largest outer contour of a mask, or None."""
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    if not contours:
        return None
    best = max(contours, key=cv2.contourArea)
    if len(best) < 3:
        return None
    return best[:, 0, :].astype(np.float64)


def write_yolo_split(scenes: Iterable[Scene], folder: Path) -> None:
    """Images and YOLO segment labels (class 0, normalised polygon) of ``scenes``."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    for i, scene in enumerate(scenes):
        h, w = scene.semantic.shape
        image = folder / "images" / f"{i:05d}.png"
        if not cv2.imwrite(str(image), scene.rgb[:, :, ::-1]):
            raise OSError(f"could not write {image}")
        lines = []
        for mask in scene.instance_masks():
            poly = _largest_polygon(mask)
            if poly is None:
                continue
            coords = (poly / np.array([w, h])).clip(0, 1).ravel()
            lines.append("0 " + " ".join(f"{v:.5f}" for v in coords))
        (folder / "labels" / f"{i:05d}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))


# ----------------------------------------------------------------------------- FastSAM
def train_fastsam(out: Path, work: Path) -> dict[str, Any]:
    """Train the YOLOv8n-seg (1 class) with ultralytics' trainer; save ``out`` (fp16 .pt)."""
    import torch

    from sfs_ros.runtime import import_ultralytics

    import_ultralytics()
    import ultralytics.data.utils as data_utils
    from ultralytics import YOLO

    data_utils.check_font = lambda *a, **k: None  # plots are off: no font download
    r = RECIPE["fastsam"]
    if work.exists():
        shutil.rmtree(work)
    size = r["scene_size"]
    write_yolo_split(_scenes(TRAIN_SEED, r["scenes"], "fastsam train", size), work / "train")
    write_yolo_split(_scenes(VAL_SEED, r["val_scenes"], "fastsam val", size), work / "val")
    data_yaml = work / "data.yaml"
    data_yaml.write_text(
        f"path: {work}\ntrain: train/images\nval: val/images\nnames:\n  0: object\n"
    )
    threads = torch.get_num_threads()
    model = YOLO(r["arch"], task="segment")
    model.train(
        data=str(data_yaml),
        epochs=r["epochs"],
        imgsz=r["imgsz"],
        batch=r["batch"],
        device="cpu",
        workers=0,
        seed=r["seed"],
        deterministic=True,
        mosaic=r["mosaic"],
        close_mosaic=r["close_mosaic"],
        warmup_epochs=r["warmup_epochs"],
        pretrained=False,
        amp=False,
        plots=False,
        val=False,
        project=str(work),
        name="run",
        exist_ok=True,
        verbose=False,
    )
    torch.set_num_threads(threads)
    run = work / "run" / "weights"
    best = run / "best.pt" if (run / "best.pt").is_file() else run / "last.pt"
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(best, out)
    metrics = {}
    csv = work / "run" / "results.csv"
    if csv.is_file():
        rows = [line.split(",") for line in csv.read_text().splitlines()]
        header = [h.strip() for h in rows[0]]
        last = [v.strip() for v in rows[-1]]
        for key in ("metrics/mAP50(M)", "metrics/mAP50-95(M)", "metrics/mAP50(B)"):
            if key in header:
                metrics[key] = float(last[header.index(key)])
    return metrics


# ----------------------------------------------------------------------------- SegFormer
def _closed_lut() -> np.ndarray:
    """Tiny-world class index -> closed-set class index (255 for open-only classes)."""
    lut = np.full(256, 255, np.uint8)
    for i, name in enumerate(CLASS_NAMES):
        if name in CLOSED_SET_NAMES:
            lut[i] = CLOSED_SET_NAMES.index(name)
    return lut


_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32) * 255


def _segformer_data(
    scenes: Iterable[Scene], size_hw: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, h, w, 3) resized to the network input as the segmenter resizes a
    camera frame (antialiased bilinear, ``SegFormerSegmenter.network_image``) and their
    closed-set class maps (N, h, w) (nearest; 255 = ignored)."""
    import torch
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as tvf

    h, w = int(size_hw[0]), int(size_hw[1])
    lut = _closed_lut()
    xs, ys = [], []
    for s in scenes:
        image = tvf.resize(
            torch.from_numpy(s.rgb).permute(2, 0, 1),
            [h, w],
            interpolation=InterpolationMode.BILINEAR,
            antialias=True,
        )
        xs.append(image.permute(1, 2, 0).numpy())
        ys.append(lut[cv2.resize(s.semantic, (w, h), interpolation=cv2.INTER_NEAREST)])
    return np.stack(xs), np.stack(ys)


def _normalise(images: np.ndarray) -> np.ndarray:
    """uint8 (N, h, w, 3) → ImageNet-normalised float32 (N, 3, h, w)."""
    return ((images.astype(np.float32) - _IMAGENET_MEAN) / _IMAGENET_STD).transpose(0, 3, 1, 2)


def train_segformer(out: Path) -> dict[str, Any]:
    """Train the small SegFormer on closed-set semantic maps; ``save_pretrained`` to ``out``
    with an image processor of the recipe's input size."""
    import torch
    from transformers import (
        SegformerConfig,
        SegformerForSemanticSegmentation,
        SegformerImageProcessor,
    )

    r = RECIPE["segformer"]
    torch.manual_seed(r["seed"])
    rng = np.random.default_rng(r["seed"])
    size_hw = r["input_size"]
    scene_size = r["scene_size"]
    x, y = _segformer_data(_scenes(TRAIN_SEED, r["scenes"], "segformer train", scene_size), size_hw)
    vx, vy = _segformer_data(
        _scenes(VAL_SEED, r["val_scenes"], "segformer val", scene_size), size_hw
    )
    id2label = dict(enumerate(CLOSED_SET_NAMES))
    config = SegformerConfig(
        hidden_sizes=r["hidden_sizes"],
        depths=r["depths"],
        num_attention_heads=r["num_attention_heads"],
        decoder_hidden_size=r["decoder_hidden_size"],
        num_labels=len(id2label),
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
        semantic_loss_ignore_index=255,
    )
    model = SegformerForSemanticSegmentation(config)
    weight = None
    if r.get("class_weighting") == "inv_sqrt_freq":  # small objects count, not just stuff
        freq = np.bincount(y[y != 255].ravel(), minlength=len(id2label)).astype(np.float64)
        w = 1.0 / np.sqrt(np.maximum(freq, 1.0))
        weight = torch.tensor(w / w.mean(), dtype=torch.float32)
    steps_per_epoch = len(x) // r["batch"]
    total = steps_per_epoch * r["epochs"]
    opt = torch.optim.AdamW(model.parameters(), lr=r["lr"], weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=r["lr"], total_steps=total)
    model.train()
    bar = tqdm(total=total, desc="segformer", file=sys.stderr, dynamic_ncols=True)
    for _ in range(r["epochs"]):
        order = rng.permutation(len(x))
        for b in range(steps_per_epoch):
            idx = order[b * r["batch"] : (b + 1) * r["batch"]]
            xb = torch.from_numpy(_normalise(x[idx]))
            yb = torch.from_numpy(y[idx].astype(np.int64))
            if rng.random() < 0.5:
                xb, yb = xb.flip(-1), yb.flip(-1)
            logits = model(pixel_values=xb).logits
            logits = torch.nn.functional.interpolate(
                logits, size=yb.shape[-2:], mode="bilinear", align_corners=False
            )
            loss = torch.nn.functional.cross_entropy(logits, yb, weight=weight, ignore_index=255)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    model.eval()
    correct = valid = 0
    with torch.inference_mode():
        for b in range(0, len(vx), 8):
            logits = model(pixel_values=torch.from_numpy(_normalise(vx[b : b + 8]))).logits
            up = torch.nn.functional.interpolate(
                logits, size=tuple(size_hw), mode="bilinear", align_corners=False
            )
            pred = up.argmax(1).numpy()
            gt = vy[b : b + 8]
            keep = gt != 255
            correct += int((pred[keep] == gt[keep]).sum())
            valid += int(keep.sum())
    out.mkdir(parents=True, exist_ok=True)
    model.half().save_pretrained(out)
    SegformerImageProcessor(
        size={"height": int(size_hw[0]), "width": int(size_hw[1])}, do_reduce_labels=False
    ).save_pretrained(out)
    return {"val_pixel_accuracy": correct / max(valid, 1)}


# ----------------------------------------------------------------------------- CLIP
def _clip_crops(
    scenes: Iterable[Scene], seed: int, image_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Masked crops (as ClipScorer makes them) of every instance and of background patches."""
    import open_clip

    from sfs_ros.open_vocab.clip import ClipScorer

    mean, std = tuple(open_clip.OPENAI_DATASET_MEAN), tuple(open_clip.OPENAI_DATASET_STD)
    cropper = ClipScorer(
        model=None,
        tokenizer=None,
        image_size=image_size,
        mean=mean,
        std=std,
        # the transform open_clip builds for the trained local-dir model (its defaults)
        preprocess=open_clip.image_transform(image_size, is_train=False, mean=mean, std=std),
    )
    rng = np.random.default_rng(seed)
    kernel = np.ones((3, 3), np.uint8)
    batches, labels = [], []
    for scene in scenes:
        h, w = scene.semantic.shape
        masks, classes = [], []
        for k, mask in enumerate(scene.instance_masks()):
            jitter = rng.integers(-2, 3)  # imperfect masks: grow or shrink a little
            m = mask.astype(np.uint8)
            if jitter > 0:
                m = cv2.dilate(m, kernel, iterations=int(jitter))
            elif jitter < 0:
                m = cv2.erode(m, kernel, iterations=int(-jitter))
            if m.sum() >= 16:
                masks.append(m.astype(bool))
                classes.append(int(scene.instance_classes[k]))
        for stuff in range(3):  # floor, wall, sky patches
            region = scene.semantic == stuff
            if region.sum() < 400:
                continue
            ys, xs = np.nonzero(region)
            j = int(rng.integers(len(ys)))
            bh, bw = int(rng.uniform(0.15, 0.4) * h), int(rng.uniform(0.15, 0.4) * w)
            y0, x0 = max(0, ys[j] - bh // 2), max(0, xs[j] - bw // 2)
            patch = np.zeros_like(region)
            patch[y0 : y0 + bh, x0 : x0 + bw] = True
            patch &= region
            if patch.sum() >= 200:
                masks.append(patch)
                classes.append(stuff)
        if not masks:
            continue
        stack = np.stack(masks)
        boxes = []
        for m in stack:
            ys, xs = np.nonzero(m)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        batch, index = cropper.crops(scene.rgb, stack, np.asarray(boxes, np.float32))
        batches.append(batch.astype(np.float16))
        labels.extend(classes[i] for i in index)
    return np.concatenate(batches), np.asarray(labels, np.int64)


def _class_text(model: Any, tokens: Any, n_classes: int, n_templates: int) -> Any:
    """(C, D) unit text embeddings: templates normalised, averaged per class, normalised."""
    feats = model.encode_text(tokens)
    feats = feats / feats.norm(dim=-1, keepdim=True)
    feats = feats.reshape(n_classes, n_templates, -1).mean(1)
    return feats / feats.norm(dim=-1, keepdim=True)


def train_clip(out: Path) -> dict[str, Any]:
    """Train the tiny open_clip model on crops vs class-name prompts; save ``out/``."""
    import open_clip
    import torch

    r = RECIPE["clip"]
    torch.manual_seed(r["seed"])
    rng = np.random.default_rng(r["seed"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": r["model_cfg"], "preprocess_cfg": {}}, indent=2)
    )
    model = open_clip.create_model(f"local-dir:{out}", pretrained=None)
    tokenizer = open_clip.get_tokenizer(f"local-dir:{out}")
    size = r["model_cfg"]["vision_cfg"]["image_size"]
    scene_size = r["scene_size"]
    x, y = _clip_crops(
        _scenes(TRAIN_SEED, r["scenes"], "clip train", scene_size), r["seed"], size
    )
    vx, vy = _clip_crops(
        _scenes(VAL_SEED, r["val_scenes"], "clip val", scene_size), r["seed"] + 1, size
    )
    templates = r["templates"]
    tokens = tokenizer([t.format(n) for n in CLASS_NAMES for t in templates])
    opt = torch.optim.AdamW(model.parameters(), lr=r["lr"], weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=r["lr"], total_steps=r["steps"])
    model.train()
    bar = tqdm(range(r["steps"]), desc="clip", file=sys.stderr, dynamic_ncols=True)
    for _ in bar:
        idx = rng.integers(0, len(x), r["batch"])
        xb = torch.from_numpy(x[idx].astype(np.float32))
        if rng.random() < 0.5:
            xb = xb.flip(-1)
        img = model.encode_image(xb)
        img = img / img.norm(dim=-1, keepdim=True)
        text = _class_text(model, tokens, len(CLASS_NAMES), len(templates))
        logits = model.logit_scale.exp() * img @ text.T
        loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    with torch.inference_mode():
        text = _class_text(model, tokens, len(CLASS_NAMES), len(templates))
        preds, scores = [], []
        for b in range(0, len(vx), 256):
            img = model.encode_image(torch.from_numpy(vx[b : b + 256].astype(np.float32)))
            sims = (img / img.norm(dim=-1, keepdim=True)) @ text.T
            preds.append(sims.argmax(1).numpy())
            scores.append(sims.max(1).values.numpy())
    pred = np.concatenate(preds)
    best = np.concatenate(scores)
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    torch.save(state, out / "open_clip_pytorch_model.bin")
    open_only = np.isin(vy, [CLASS_NAMES.index(n) for n in OPEN_ONLY_NAMES])
    return {
        "val_crops": len(vy),
        "val_accuracy": float((pred == vy).mean()),
        "val_accuracy_open_only": float((pred[open_only] == vy[open_only]).mean()),
        "val_median_top_cosine": float(np.median(best)),
    }


# ----------------------------------------------------------------------------- driver
def ensure_models(
    parts: Sequence[str] = MODEL_PARTS,
    root: Path | None = None,
    *,
    retrain: bool = False,
) -> TinyWorldModels:
    """The trained tiny-world models, training the missing ``parts`` first (minutes).

    Args:
        parts: which models must exist (``fastsam``, ``segformer``, ``clip``).
        root: the models folder (default: ``<sfs_ros cache>/tiny_world/v<version>``).
        retrain: train ``parts`` even when they are already saved.
    """
    models = TinyWorldModels(Path(root) if root is not None else default_models_dir())
    models.root.mkdir(parents=True, exist_ok=True)
    for part in parts:
        if part not in MODEL_PARTS:
            raise ValueError(f"unknown model part {part!r}; choose from {', '.join(MODEL_PARTS)}")
        if models.has(part) and not retrain:
            continue
        print(f"sfs-world: training {part} into {models.root} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        if part == "fastsam":
            metrics = train_fastsam(models.fastsam, models.root / "_fastsam_work")
            shutil.rmtree(models.root / "_fastsam_work", ignore_errors=True)
        elif part == "segformer":
            metrics = train_segformer(models.segformer)
        else:
            metrics = train_clip(models.clip)
        metrics["train_seconds"] = round(time.perf_counter() - start, 1)
        _record(models, part, metrics)
        print(f"sfs-world: {part} done: {metrics}", file=sys.stderr, flush=True)
    return models


def _record(models: TinyWorldModels, part: str, metrics: dict[str, Any]) -> None:
    """Write ``metrics/<part>.json``: the part's recipe, its key, seeds and metrics."""
    doc = {
        "recipe_key": recipe_key(part),
        "generator_version": GENERATOR_VERSION,
        "train_seed": TRAIN_SEED,
        "val_seed": VAL_SEED,
        "train_size": RECIPE["train_size"],
        "recipe": RECIPE[part],
        "metrics": metrics,
    }
    (models.root / "metrics").mkdir(exist_ok=True)
    (models.root / "metrics" / f"{part}.json").write_text(json.dumps(doc, indent=2) + "\n")


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``sfs-world train``."""
    parser = argparse.ArgumentParser(
        prog="sfs-world train", description="train the tiny-world models (cached per recipe)"
    )
    parser.add_argument("--out", type=Path, default=None, help="models folder (default: cache)")
    parser.add_argument(
        "--only", choices=MODEL_PARTS, action="append", default=None, help="train only this part"
    )
    parser.add_argument("--retrain", action="store_true", help="train even when cached")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``sfs-world train``; prints the models folder."""
    args = build_parser().parse_args(argv)
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    models = ensure_models(args.only or MODEL_PARTS, args.out, retrain=args.retrain)
    print(models.root)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
