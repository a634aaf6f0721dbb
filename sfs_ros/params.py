"""The parameter contract, shared by the ROS node, the CLI and the YAML presets.

docs/architecture.md ("The parameter path") explains how these specs become ROS descriptors,
CLI overrides and preset checks.

Each parameter has a default, a description, a type, an optional range or set of choices, and
whether it may change at run time (``live``). Config files use the ROS 2 parameter-file layout
(``<node or /**>: ros__parameters: {...}`` with nested groups), so one YAML serves both
``ros2 launch`` and ``sfs-segment --config``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sfs_ros.errors import ConfigError  # re-exported: defined with the other errors


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: name (dotted), default, description, constraints, live or not."""

    name: str
    default: Any
    description: str
    choices: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    live: bool = False
    step: int | None = None  # integers only: value - min must be a multiple of it

    @property
    def kind(self) -> type:
        """Python type of the value (bool, int, float, str or list)."""
        return type(self.default)


DEFAULT_TEMPLATES = (
    "a photo of a {}.",
    "a photo of the {}.",
    "a cropped photo of a {}.",
    "a close-up photo of a {}.",
)

LEGEND_MIN_CLASSES = 20
"""Smallest legend.max_classes accepted: Cityscapes-19 + unidentified (the smallest shipped
vocabulary); a bigger vocabulary needs more, which the label registry checks at start."""

PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("device", "auto", "auto | cpu | cuda | cuda:N (auto: first GPU, else CPU)"),
    ParamSpec(
        "backend",
        "auto",
        "network backend for FastSAM and SegFormer: auto (CPU: openvino, else onnx, else torch; "
        "CUDA: torch in fp16) | torch | onnx (ONNX Runtime, CPU) | openvino (CPU) | tensorrt "
        "(not available in this build)",
        ("auto", "torch", "onnx", "openvino", "tensorrt"),
    ),
    ParamSpec("half", False, "FP16 on CUDA with backend torch (auto on CUDA always uses FP16)"),
    ParamSpec(
        "openvino_precision",
        "auto",
        "inference precision of backend openvino: auto (default, measured best on the tiny "
        "world: FastSAM in INT8 with the open-vocabulary branch off, bf16 with it on; the "
        "closed set in bf16; bf16 only on CPUs that compute it natively, else f32) | f32 "
        "(matches torch) | bf16 (both networks) | int8 (both networks: NNCF post-training "
        "quantisation on sample frames, once per input shape) | int8-fastsam (FastSAM in INT8, "
        "the closed set in f32); see docs/parity.md",
        ("auto", "f32", "bf16", "int8", "int8-fastsam"),
    ),
    ParamSpec(
        "num_threads", 0, "torch CPU threads for the per-frame path (0 = all cores)", min=0, max=256
    ),
    ParamSpec(
        "parallel_networks",
        False,
        "run the closed-set network concurrently with FastSAM, the CPU threads split between "
        "them (onnx / openvino); false = one after the other with every thread each "
        "(BENCHMARKS.md compares both)",
    ),
    ParamSpec(
        "backend_cache.max_shapes",
        4,
        "onnx/openvino: compiled models kept in memory per network, one per input shape "
        "(least recently used released first)",
        min=1,
        max=64,
    ),
    ParamSpec(
        "backend_cache.max_mb",
        1024,
        "onnx/openvino: megabytes of exports and compiled blobs kept in the sfs_ros cache "
        "(least recently used files deleted first)",
        min=16,
        max=1_000_000,
    ),
    ParamSpec(
        "fastsam.model",
        "FastSAM-s.pt",
        "FastSAM / YOLOv8-seg checkpoint: a path (with a folder, e.g. ./x.pt), or a release name "
        "looked up in $SFS_WEIGHTS_DIR, the sfs_ros cache and ultralytics' weights folder "
        "(never the working directory)",
    ),
    ParamSpec(
        "fastsam.imgsz",
        640,
        "network input size (long side; a multiple of 32, the network stride)",
        min=64,
        max=2048,
        step=32,
    ),
    ParamSpec(
        "fastsam.mask_resolution",
        "work",
        "work (masks, vote and paint at 1/4 of the network input, label map upsampled: fast) | "
        "input (masks decoded at input resolution like ultralytics' retina masks: sharp edges)",
        ("work", "input"),
    ),
    ParamSpec("fastsam.conf", 0.4, "mask confidence threshold", min=0.0, max=1.0, live=True),
    ParamSpec("fastsam.iou", 0.9, "NMS IoU threshold", min=0.0, max=1.0, live=True),
    ParamSpec("fastsam.max_masks", 100, "maximum masks per frame", min=1, max=1000, live=True),
    ParamSpec(
        "closed_set.model",
        "nvidia/segformer-b0-finetuned-ade-512-512",
        "transformers model id or local directory; several comma-separated ids are merged "
        "into one id space (the paper: COCO + ADE20K OneFormers)",
    ),
    ParamSpec(
        "closed_set.vocabulary",
        "auto",
        "vocabulary of each closed-set model (ade20k, coco, cityscapes or auto; comma-separated)",
    ),
    ParamSpec(
        "closed_set.min_purity",
        0.5,
        "with the open-vocabulary branch on: a mask whose majority closed-set class holds less "
        "than this share of its pixels is named by the open vocabulary (or 0); with it off the "
        "majority class always wins (the paper's closed-set mode)",
        min=0.0,
        max=1.0,
        live=True,
    ),
    ParamSpec(
        "closed_set.min_confidence",
        0.1,
        "a pixel whose closed-set class has a softmax probability below this is unidentified "
        "(0) before the vote (SegFormer models; 0 = off)",
        min=0.0,
        max=1.0,
        live=True,
    ),
    ParamSpec(
        "paint.order",
        "area",
        "which mask shows where masks overlap: area (smaller on top, as SSA and FastSAM draw) "
        "| confidence (higher FastSAM score on top, as the SFS paper orders them)",
        ("area", "confidence"),
        live=True,
    ),
    ParamSpec(
        "paint.uncovered",
        "closed_set",
        "pixels covered by no mask: closed_set (the closed-set class, as SSA does; default by "
        "measurement, docs/parity.md) | unidentified (0; the paper: a pixel gets the label of "
        "the mask covering it)",
        ("closed_set", "unidentified"),
        live=True,
    ),
    ParamSpec(
        "open_vocab.enabled", False, "name masks with CLIP on a background thread", live=True
    ),
    ParamSpec(
        "open_vocab.model",
        "ViT-B-32",
        "open_clip model name, or local-dir:<folder> (open_clip_config.json + weights in it)",
    ),
    ParamSpec("open_vocab.pretrained", "laion2b_s34b_b79k", "open_clip pretrained tag or file"),
    ParamSpec(
        "open_vocab.mode",
        "crop",
        "crop (one masked crop per mask, one batch) | dense (one whole-image forward, patch "
        "tokens pooled per mask, MaskCLIP-style; open_clip ViT models only)",
        ("crop", "dense"),
    ),
    ParamSpec(
        "open_vocab.vocabulary",
        [],
        "extra class names for CLIP (besides the closed-set names)",
        live=True,
    ),
    ParamSpec("open_vocab.templates", list(DEFAULT_TEMPLATES), "prompt templates ({} = name)"),
    ParamSpec(
        "open_vocab.backend",
        "auto",
        "image tower of CLIP: auto (openvino on the CPU in crop mode when installed, else "
        "torch) | torch | openvino",
        ("auto", "torch", "openvino"),
    ),
    ParamSpec(
        "open_vocab.num_threads",
        1,
        "CPU threads of the CLIP image tower on openvino (its own budget: the per-frame path "
        "keeps the other cores)",
        min=1,
        max=256,
    ),
    ParamSpec(
        "open_vocab.crop_background",
        "mean",
        "crop mode: pixels of a mask's crop outside the mask become CLIP's mean colour (mean) "
        "or keep the image (image); the crop then goes through open_clip's own preprocessing",
        ("mean", "image"),
    ),
    ParamSpec(
        "open_vocab.rate_hz",
        1.0,
        "maximum open-vocabulary passes per second",
        min=0.01,
        max=100.0,
        live=True,
    ),
    ParamSpec("open_vocab.top_k", 3, "CLIP candidates kept per mask", min=1, max=20, live=True),
    ParamSpec(
        "open_vocab.threshold",
        0.25,
        "minimum CLIP cosine score to name a mask",
        min=-1.0,
        max=1.0,
        live=True,
    ),
    ParamSpec("open_vocab.captioner", "", "transformers captioner id (empty = off)"),
    ParamSpec(
        "open_vocab.max_age_s",
        10.0,
        "drop an open-vocabulary label this many seconds after the frame CLIP saw",
        min=0.0,
        max=3600.0,
    ),
    ParamSpec(
        "open_vocab.max_missed_frames",
        10,
        "drop a mask track (and its label) after this many frames without a matching mask",
        min=0,
        max=10000,
    ),
    ParamSpec(
        "open_vocab.match_iou",
        0.5,
        "mask IoU needed to carry a track's label to a mask of a later frame",
        min=0.01,
        max=1.0,
    ),
    ParamSpec(
        "legend.max_classes",
        4096,
        "cap on legend entries (closed set + open-vocabulary names); new names past it stay "
        "unidentified, with a warning; at least the closed-set vocabulary's size + 1",
        min=LEGEND_MIN_CLASSES,
        max=65535,
    ),
    ParamSpec(
        "input_transport", "raw", "raw (sensor_msgs/Image) or compressed", ("raw", "compressed")
    ),
    ParamSpec(
        "input_qos",
        "auto",
        "input QoS: auto (match the publishers' reliability and durability, again whenever "
        "they change, as `ros2 topic echo` does) | sensor_data (best effort) | reliable",
        ("auto", "sensor_data", "reliable"),
    ),
    ParamSpec(
        "diagnostics.stale_timeout_s",
        5.0,
        "node: a camera silent this long after frames arrived is reported as stopped, and "
        "input without a published output for this long is a warning (/diagnostics)",
        min=0.5,
        max=3600.0,
    ),
    ParamSpec(
        "overlay_alpha",
        0.5,
        "overlay blend weight of the class colours",
        min=0.0,
        max=1.0,
        live=True,
    ),
    ParamSpec(
        "allow_random_weights",
        False,
        "run with random weights when real ones are missing (testing only; loud warning)",
    ),
)
SPECS: dict[str, ParamSpec] = {p.name: p for p in PARAMS}
# ROS 2 cannot declare an empty string array with a typed default; this marks "no names".
EMPTY_LIST_MARK = "__none__"


def defaults() -> dict[str, Any]:
    """All parameters at their defaults (lists copied)."""
    return {p.name: _clean(p, p.default) for p in PARAMS}


def _clean(spec: ParamSpec, value: Any) -> Any:
    if isinstance(value, list):
        return [v for v in value if v != EMPTY_LIST_MARK]
    return value


def validate(name: str, value: Any) -> Any:
    """Check (and coerce int→float where harmless) one value; ConfigError says why it is bad."""
    spec = SPECS.get(name)
    if spec is None:
        close = [n for n in SPECS if n.split(".")[-1] == name.rsplit(".", maxsplit=1)[-1]]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"unknown parameter '{name}'{hint}")
    kind = spec.kind
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is list:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{name}: expected a list of strings, got {value!r}")
        return _clean(spec, list(value))
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{name}: expected {kind.__name__}, got {value!r}")
    if kind is float and not math.isfinite(value):
        # NaN passes every range comparison (NaN < x and NaN > x are both False) and inf has
        # no meaning for any parameter, so neither ever reaches a model.
        raise ConfigError(f"{name}: {value!r} is not a finite number")
    if spec.choices is not None and value not in spec.choices:
        raise ConfigError(f"{name}: '{value}' is not one of {', '.join(spec.choices)}")
    if spec.min is not None and value < spec.min:
        raise ConfigError(f"{name}: {value} is below the minimum {spec.min}")
    if spec.max is not None and value > spec.max:
        raise ConfigError(f"{name}: {value} is above the maximum {spec.max}")
    if spec.step and (value - int(spec.min or 0)) % spec.step:
        below = value - (value - int(spec.min or 0)) % spec.step
        raise ConfigError(
            f"{name}: {value} is not a multiple of {spec.step} (use {below} or "
            f"{below + spec.step})"
        )
    return value


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested parameter groups → dotted names."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def read_params_file(path: str | Path) -> dict[str, Any]:
    """The sfs parameters of a ROS 2 parameter file (or a plain mapping of parameters)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' does not exist")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    for node in doc.values():  # ROS layout: {<node name or /**>: {ros__parameters: {...}}}
        if isinstance(node, Mapping) and "ros__parameters" in node:
            return flatten(node["ros__parameters"])
    return flatten(doc)


def parse_override(item: str) -> tuple[str, Any]:
    """``key=value`` with the value parsed as YAML (``--set fastsam.conf=0.2``)."""
    if "=" not in item:
        raise ConfigError(f"--set '{item}': expected key=value")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: value is not valid YAML: {exc}") from exc
    return key.strip(), value


def load_config(
    path: str | Path | None = None, overrides: Iterable[str] | Mapping[str, Any] = ()
) -> dict[str, Any]:
    """Defaults ← config file ← overrides, every value validated; returns dotted names → values."""
    config = defaults()
    layers: list[Mapping[str, Any]] = []
    if path:
        layers.append(read_params_file(path))
    if isinstance(overrides, Mapping):
        layers.append(overrides)
    else:
        layers.append(dict(parse_override(o) for o in overrides))
    for layer in layers:
        for name, value in layer.items():
            if name in NODE_ONLY_PARAMS:
                continue
            config[name] = validate(name, value)
    return config


# Parameters of the ROS node that the ROS-free core ignores when reading a shared YAML file.
NODE_ONLY_PARAMS = frozenset({"cameras", "image_topics", "use_sim_time", "qos_overrides"})
