"""The parameter contract, shared by the ROS node, the CLI and the YAML presets.

docs/architecture.md ("The parameter path") explains how this tree becomes ROS descriptors,
CLI overrides, preset checks and the table in docs/parameters.md.

Every parameter is one field of the typed configuration tree below (:class:`SfsConfig`, one
frozen dataclass per group such as ``fastsam`` or ``open_vocab``), declared with :func:`param`:
its default, description, optional range, step or choices, and whether it may change at run
time (``live``) are stated there and nowhere else. :data:`PARAMS` (one :class:`ParamSpec` per
dotted name), :func:`defaults`, :func:`validate`, :func:`load_config`, the ROS descriptors and
the documentation table are all derived from the tree. Config files use the ROS 2
parameter-file layout (``<node or /**>: ros__parameters: {...}`` with nested groups), so one
YAML serves both ``ros2 launch`` and ``sfs-segment --config``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sfs_ros.errors import ConfigError  # re-exported: defined with the other errors


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: name (dotted), default, description, constraints, live or not.

    Derived from a field of the configuration tree (see :func:`param`); never written by hand.
    """

    name: str
    default: Any
    description: str
    choices: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    live: bool = False
    step: int | None = None  # integers only: value - min must be a multiple of it
    internal: bool = False  # set by the tools themselves: no ROS parameter, no preset entry

    @property
    def kind(self) -> type:
        """Python type of the value (bool, int, float, str or list)."""
        return type(self.default)


_SPEC = "sfs_param"  # field metadata key: the field's ParamSpec (its name filled in later)


def param(
    default: Any,
    description: str,
    choices: tuple[str, ...] | None = None,
    *,
    min: float | None = None,
    max: float | None = None,
    step: int | None = None,
    live: bool = False,
    internal: bool = False,
) -> Any:
    """A configuration field: everything about one parameter, stated once.

    ``internal``: a setting the tools fix themselves (not a ROS parameter, not in the presets,
    refused by ``--set``), changed only through :meth:`SfsConfig.with_values`.
    """
    spec = ParamSpec(
        "",
        list(default) if isinstance(default, tuple) else default,
        description,
        choices,
        min,
        max,
        live,
        step,
        internal,
    )
    if isinstance(default, tuple):
        return field(default=tuple(default), metadata={_SPEC: spec})
    return field(default=default, metadata={_SPEC: spec})


class _Group:
    """Base of every group: values are checked (and int → float, list → tuple) on creation."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            spec = f.metadata.get(_SPEC)
            if spec is None:
                continue
            value = _check(
                dataclasses.replace(spec, name=_qualified(type(self), f.name)),
                getattr(self, f.name),
            )
            object.__setattr__(self, f.name, tuple(value) if isinstance(value, list) else value)


DEFAULT_TEMPLATES = (
    "a photo of a {}.",
    "a photo of the {}.",
    "a cropped photo of a {}.",
    "a close-up photo of a {}.",
)

LEGEND_MIN_CLASSES = 20
"""Smallest legend.max_classes accepted: Cityscapes-19 + unidentified (the smallest shipped
vocabulary); a bigger vocabulary needs more, which the label registry checks at start."""

# Values of open_vocab.schedule (an internal setting, see OpenVocabConfig).
SCHEDULE_BACKGROUND = "background"
SCHEDULE_EVERY_FRAME = "every_frame"


# ------------------------------------------------------------------------------ the tree
@dataclass(frozen=True)
class BackendCacheConfig(_Group):
    """``backend_cache.*``: exported networks kept in memory and on disk."""

    max_shapes: int = param(
        4,
        "onnx/openvino: compiled models kept in memory per network, one per input shape "
        "(least recently used released first)",
        min=1,
        max=64,
    )
    max_mb: int = param(
        1024,
        "onnx/openvino: megabytes of exports and compiled blobs kept in the sfs_ros cache "
        "(least recently used files deleted first)",
        min=16,
        max=1_000_000,
    )


@dataclass(frozen=True)
class FastSAMConfig(_Group):
    """``fastsam.*``: the class-agnostic mask generator."""

    model: str = param(
        "FastSAM-s.pt",
        "FastSAM / YOLOv8-seg checkpoint: a path (with a folder, e.g. ./x.pt), or a release name "
        "looked up in $SFS_WEIGHTS_DIR, the sfs_ros cache and ultralytics' weights folder "
        "(never the working directory)",
    )
    imgsz: int = param(
        640,
        "network input size (long side; a multiple of 32, the network stride)",
        min=64,
        max=2048,
        step=32,
    )
    mask_resolution: str = param(
        "edges",
        "edges (vote and paint at 1/4 of the network input, then the pixels along edges decided "
        "at input resolution as ultralytics' retina masks: sharp edges) | work (labels on the "
        "1/4 grid, upsampled: fastest) | input (every mask decoded at input resolution)",
        ("edges", "work", "input"),
    )
    conf: float = param(0.4, "mask confidence threshold", min=0.0, max=1.0, live=True)
    iou: float = param(0.9, "NMS IoU threshold", min=0.0, max=1.0, live=True)
    max_masks: int = param(100, "maximum masks per frame", min=1, max=1000, live=True)


@dataclass(frozen=True)
class ClosedSetConfig(_Group):
    """``closed_set.*``: the closed-set segmenters and their vote."""

    model: str = param(
        "nvidia/segformer-b0-finetuned-ade-512-512",
        "transformers model id or local directory; several comma-separated ids are merged "
        "into one id space (the paper: COCO + ADE20K OneFormers)",
    )
    vocabulary: str = param(
        "auto",
        "vocabulary of each closed-set model (ade20k, coco, cityscapes or auto; comma-separated)",
    )
    min_purity: float = param(
        0.5,
        "with the open-vocabulary branch on: a mask whose majority closed-set class holds less "
        "than this share of its pixels is named by the open vocabulary (or 0); with it off the "
        "majority class always wins (the paper's closed-set mode)",
        min=0.0,
        max=1.0,
        live=True,
    )
    min_confidence: float = param(
        0.1,
        "a pixel whose closed-set class has a softmax probability below this is unidentified "
        "(0) before the vote (SegFormer models; 0 = off)",
        min=0.0,
        max=1.0,
        live=True,
    )


@dataclass(frozen=True)
class PaintConfig(_Group):
    """``paint.*``: how the labelled masks become the label map."""

    order: str = param(
        "area",
        "which mask shows where masks overlap: area (smaller on top, as SSA and FastSAM draw) "
        "| confidence (higher FastSAM score on top, as the SFS paper orders them)",
        ("area", "confidence"),
        live=True,
    )
    uncovered: str = param(
        "closed_set",
        "pixels covered by no mask: closed_set (the closed-set class, as SSA does; default by "
        "measurement, docs/parity.md) | unidentified (0; the paper: a pixel gets the label of "
        "the mask covering it)",
        ("closed_set", "unidentified"),
        live=True,
    )


@dataclass(frozen=True)
class OpenVocabConfig(_Group):
    """``open_vocab.*``: the open-vocabulary (CLIP) branch."""

    enabled: bool = param(False, "name masks with CLIP on a background thread", live=True)
    model: str = param(
        "ViT-B-32",
        "open_clip model name, or local-dir:<folder> (open_clip_config.json + weights in it)",
    )
    pretrained: str = param("laion2b_s34b_b79k", "open_clip pretrained tag or file")
    mode: str = param(
        "crop",
        "crop (one masked crop per mask, one batch) | dense (one whole-image forward, patch "
        "tokens pooled per mask, MaskCLIP-style; open_clip ViT models only)",
        ("crop", "dense"),
    )
    vocabulary: tuple[str, ...] = param(
        (), "extra class names for CLIP (besides the closed-set names)", live=True
    )
    templates: tuple[str, ...] = param(DEFAULT_TEMPLATES, "prompt templates ({} = name)")
    backend: str = param(
        "auto",
        "image tower of CLIP: auto (openvino on the CPU in crop mode when installed, else "
        "torch) | torch | openvino",
        ("auto", "torch", "openvino"),
    )
    num_threads: int = param(
        1,
        "CPU threads of the CLIP image tower on openvino (its own budget: the per-frame path "
        "keeps the other cores)",
        min=1,
        max=256,
    )
    openvino_precision: str = param(
        "auto",
        "CLIP image tower on openvino: auto (bf16 where the CPU computes it natively, else "
        "f32) | f32 (the same features as torch) | bf16",
        ("auto", "f32", "bf16"),
    )
    crop_background: str = param(
        "mean",
        "crop mode: pixels of a mask's crop outside the mask become CLIP's mean colour (mean) "
        "or keep the image (image); the crop then goes through open_clip's own preprocessing",
        ("mean", "image"),
    )
    rate_hz: float = param(
        1.0, "maximum open-vocabulary passes per second", min=0.01, max=100.0, live=True
    )
    max_masks_per_pass: int = param(
        8,
        "background schedule, crop mode: at most this many masks per CLIP pass, tracks without "
        "a fresh label first, then the oldest labels, so that on a slow CPU a pass ends long "
        "before its labels expire (max_age_s) whatever the mask count (default: the best "
        "label coverage measured on a 2-core CPU, BENCHMARKS.md; raise it where crops are "
        "cheap, e.g. on a GPU); dense mode and the every_frame schedule score every mask",
        min=1,
        max=10000,
        live=True,
    )
    top_k: int = param(3, "CLIP candidates kept per mask", min=1, max=20, live=True)
    threshold: float = param(
        0.25, "minimum CLIP cosine score to name a mask", min=-1.0, max=1.0, live=True
    )
    captioner: str = param("", "transformers captioner id (empty = off)")
    max_age_s: float = param(
        10.0,
        "drop an open-vocabulary label this many seconds after the frame CLIP saw",
        min=0.0,
        max=3600.0,
    )
    max_missed_frames: int = param(
        10,
        "drop a mask track (and its label) after this many frames without a matching mask",
        min=0,
        max=10000,
    )
    match_iou: float = param(
        0.5,
        "mask IoU needed to carry a track's label to a mask of a later frame",
        min=0.01,
        max=1.0,
    )
    schedule: str = param(
        SCHEDULE_BACKGROUND,
        "background (the node: a background worker, at most rate_hz passes a second, never "
        "waited on) | every_frame (the offline tools: the pass runs inline on every frame, so "
        "its labels land in that frame and do not depend on timing)",
        (SCHEDULE_BACKGROUND, SCHEDULE_EVERY_FRAME),
        internal=True,
    )


@dataclass(frozen=True)
class LegendConfig(_Group):
    """``legend.*``: the class legend."""

    max_classes: int = param(
        4096,
        "cap on legend entries (closed set + open-vocabulary names); new names past it stay "
        "unidentified, with a warning; at least the closed-set vocabulary's size + 1",
        min=LEGEND_MIN_CLASSES,
        max=65535,
    )


@dataclass(frozen=True)
class DiagnosticsConfig(_Group):
    """``diagnostics.*``: the node's /diagnostics."""

    stale_timeout_s: float = param(
        5.0,
        "node: a camera silent this long after frames arrived is reported as stopped, and "
        "input without a published output for this long is a warning (/diagnostics)",
        min=0.5,
        max=3600.0,
    )


@dataclass(frozen=True)
class SfsConfig(_Group):
    """Every parameter of the ROS-free core and the node, as one typed tree.

    Fields are in the order of the presets; groups are nested dataclasses. Build one from
    dotted names with :meth:`from_flat`, change values with :meth:`with_values`.
    """

    device: str = param("auto", "auto | cpu | cuda | cuda:N (auto: first GPU, else CPU)")
    backend: str = param(
        "auto",
        "network backend for FastSAM and SegFormer: auto (CPU: openvino, else onnx, else torch; "
        "CUDA: torch in fp16) | torch | onnx (ONNX Runtime, CPU) | openvino (CPU) | tensorrt "
        "(not available in this build)",
        ("auto", "torch", "onnx", "openvino", "tensorrt"),
    )
    half: bool = param(False, "FP16 on CUDA with backend torch (auto on CUDA always uses FP16)")
    openvino_precision: str = param(
        "auto",
        "inference precision of backend openvino: auto (default, measured best on the tiny "
        "world: FastSAM in INT8 with the open-vocabulary branch off, bf16 with it on; the "
        "closed set in bf16; bf16 only on CPUs that compute it natively, else f32) | f32 "
        "(matches torch) | bf16 (both networks) | int8 (both networks: NNCF post-training "
        "quantisation on sample frames, once per input shape) | int8-fastsam (FastSAM in INT8, "
        "the closed set in f32); see docs/parity.md",
        ("auto", "f32", "bf16", "int8", "int8-fastsam"),
    )
    openvino_int8_calibration: str = param(
        "",
        "folder of images INT8 quantisation is calibrated on (the first 12 in name order, e.g. "
        "frames of your own camera); empty: the bundled sample photos. Each folder content "
        "gets its own cached INT8 model",
    )
    num_threads: int = param(
        0, "torch CPU threads for the per-frame path (0 = all cores)", min=0, max=256
    )
    parallel_networks: bool = param(
        False,
        "run the closed-set network concurrently with FastSAM, the CPU threads split between "
        "them (onnx / openvino); false = one after the other with every thread each "
        "(BENCHMARKS.md compares both)",
    )
    overlap_frames: bool = param(
        True,
        "node and sfs-segment: decode, fuse and publish (or write) each frame on a second "
        "thread while the next frame's networks run (more frames/s; a frame's latency stays "
        "both stages; BENCHMARKS.md)",
    )
    backend_cache: BackendCacheConfig = field(default_factory=BackendCacheConfig)
    fastsam: FastSAMConfig = field(default_factory=FastSAMConfig)
    closed_set: ClosedSetConfig = field(default_factory=ClosedSetConfig)
    paint: PaintConfig = field(default_factory=PaintConfig)
    open_vocab: OpenVocabConfig = field(default_factory=OpenVocabConfig)
    legend: LegendConfig = field(default_factory=LegendConfig)
    input_transport: str = param(
        "raw", "raw (sensor_msgs/Image) or compressed", ("raw", "compressed")
    )
    input_qos: str = param(
        "auto",
        "input QoS: auto (match the publishers' reliability and durability, again whenever "
        "they change, as `ros2 topic echo` does) | sensor_data (best effort) | reliable",
        ("auto", "sensor_data", "reliable"),
    )
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    overlay_alpha: float = param(
        0.5, "overlay blend weight of the class colours", min=0.0, max=1.0, live=True
    )
    allow_random_weights: bool = param(
        False,
        "run with random weights when real ones are missing (testing only; loud warning)",
    )

    # ---------------------------------------------------------------------- dotted names
    @classmethod
    def from_flat(cls, values: Mapping[str, Any]) -> SfsConfig:
        """The tree from dotted names (``{"fastsam.conf": 0.3, ...}``); missing ones keep
        their defaults, unknown or invalid ones raise :class:`ConfigError`. Node-only names
        (:data:`NODE_ONLY_PARAMS`) are ignored."""
        return cls().with_values(values)

    def with_values(self, values: Mapping[str, Any]) -> SfsConfig:
        """A copy with some values replaced (dotted names; internal settings included)."""
        groups: dict[str, dict[str, Any]] = {}
        top: dict[str, Any] = {}
        for name, value in values.items():
            if name in NODE_ONLY_PARAMS:
                continue
            spec = _ALL_SPECS.get(name)
            if spec is None:
                validate(name, value)  # raises: unknown parameter (with a hint)
            group, _, key = name.rpartition(".")
            (groups.setdefault(group, {}) if group else top)[key] = value
        for group, changes in groups.items():
            top[group] = dataclasses.replace(getattr(self, group), **changes)
        return dataclasses.replace(self, **top)

    def get(self, name: str) -> Any:
        """The value of one dotted name (lists as tuples)."""
        group, _, key = name.rpartition(".")
        if name not in _ALL_SPECS:
            validate(name, None)  # raises: unknown parameter
        return getattr(getattr(self, group) if group else self, key)

    def flat(self, *, internal: bool = False) -> dict[str, Any]:
        """Dotted names → values (lists as lists), the parameters only unless ``internal``."""
        return {
            spec.name: _plain(self.get(spec.name))
            for spec in _ALL_SPECS.values()
            if internal or not spec.internal
        }

    def offline(self) -> SfsConfig:
        """This configuration as the offline tools run it (``sfs-segment``, ``sfs-eval``, bag
        labelling, ``sfs-world``): the open-vocabulary pass runs inline on every frame."""
        return self.with_values({"open_vocab.schedule": SCHEDULE_EVERY_FRAME})


@dataclass(frozen=True)
class NodeConfig(_Group):
    """Parameters of the ROS node only (the ROS-free core ignores them in a shared YAML)."""

    cameras: tuple[str, ...] = param(
        (),
        "camera names; empty = one camera on 'image', outputs 'semantic', ...; "
        "with names, camera <name> reads image_topics[i] (default '<name>/image') and "
        "publishes '<name>/semantic', '<name>/semantic_color', ... (one shared set of models)",
    )
    image_topics: tuple[str, ...] = param(
        (),
        "input (base) image topic of each camera, same order as cameras; with "
        "input_transport compressed, '/compressed' is appended (image_transport convention)",
    )


# ------------------------------------------------------------------------------ derived
def _group_of(f: dataclasses.Field) -> type | None:
    """The group dataclass of a nested-group field (``fastsam``, ...), else None."""
    factory = f.default_factory
    return factory if isinstance(factory, type) and issubclass(factory, _Group) else None


def _walk(cls: type, prefix: str = "") -> Iterator[ParamSpec]:
    for f in dataclasses.fields(cls):
        group = _group_of(f)
        if group is not None:
            yield from _walk(group, f"{prefix}{f.name}.")
        else:
            yield dataclasses.replace(f.metadata[_SPEC], name=f"{prefix}{f.name}")


def specs_of(cls: type) -> tuple[ParamSpec, ...]:
    """The ParamSpec of every field of a configuration dataclass (dotted names, in order)."""
    return tuple(_walk(cls))


_PREFIXES: dict[type, str] = {SfsConfig: "", NodeConfig: ""}
for _f in dataclasses.fields(SfsConfig):
    if _group_of(_f) is not None:
        _PREFIXES[_group_of(_f)] = f"{_f.name}."


def _qualified(group: type, name: str) -> str:
    return _PREFIXES.get(group, "") + name


_ALL_SPECS: dict[str, ParamSpec] = {p.name: p for p in specs_of(SfsConfig)}
PARAMS: tuple[ParamSpec, ...] = tuple(p for p in _ALL_SPECS.values() if not p.internal)
"""Every parameter (ROS parameter, preset entry, ``--set`` name), derived from the tree."""
SPECS: dict[str, ParamSpec] = {p.name: p for p in PARAMS}
LIVE_PARAMS: tuple[str, ...] = tuple(p.name for p in PARAMS if p.live)
"""Names of the parameters that may change at run time."""
NODE_PARAMS: tuple[ParamSpec, ...] = specs_of(NodeConfig)
# ROS 2 cannot declare an empty string array with a typed default; this marks "no names".
EMPTY_LIST_MARK = "__none__"


def defaults() -> dict[str, Any]:
    """All parameters at their defaults (lists copied)."""
    return SfsConfig().flat()


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _clean(value: list) -> list:
    return [v for v in value if v != EMPTY_LIST_MARK]


def validate(name: str, value: Any) -> Any:
    """Check (and coerce int→float where harmless) one value; ConfigError says why it is bad."""
    spec = SPECS.get(name)
    if spec is None:
        close = [n for n in SPECS if n.split(".")[-1] == name.rsplit(".", maxsplit=1)[-1]]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"unknown parameter '{name}'{hint}")
    return _check(spec, value)


def _check(spec: ParamSpec, value: Any) -> Any:
    name, kind = spec.name, spec.kind
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is list:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{name}: expected a list of strings, got {value!r}")
        return _clean(list(value))
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
            f"{name}: {value} is not a multiple of {spec.step} (use {below} or {below + spec.step})"
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
    """Defaults ← config file ← overrides, every value validated; returns dotted names → values.

    :meth:`SfsConfig.from_flat` turns the result into the typed tree.
    """
    layers: list[Mapping[str, Any]] = []
    if path:
        layers.append(read_params_file(path))
    if isinstance(overrides, Mapping):
        layers.append(overrides)
    else:
        layers.append(dict(parse_override(o) for o in overrides))
    tree = SfsConfig()
    for layer in layers:  # each layer checked on its own: a bad file value is an error
        public = {name: value for name, value in layer.items() if name not in NODE_ONLY_PARAMS}
        for name in public:
            if name not in SPECS:
                validate(name, None)  # raises: unknown parameter (internal ones included)
        tree = tree.with_values(public)
    return tree.flat()


def as_config(config: SfsConfig | Mapping[str, Any]) -> SfsConfig:
    """The typed tree of a config given as a tree or as dotted names (:func:`load_config`)."""
    return config if isinstance(config, SfsConfig) else SfsConfig.from_flat(config)


def markdown_table(specs: Iterable[ParamSpec]) -> str:
    """A Markdown table of parameters (name, default, range or choices, live, description):
    docs/parameters.md holds it for :data:`PARAMS` and :data:`NODE_PARAMS`."""
    rows = ["| name | default | values | live | description |", "|---|---|---|---|---|"]
    for spec in specs:
        if spec.choices is not None:
            values = " \\| ".join(spec.choices)
        elif spec.min is not None or spec.max is not None:
            values = f"{_number(spec.min)} … {_number(spec.max)}"
            if spec.step:
                values += f", step {spec.step}"
        elif spec.kind is list:
            values = "list of strings"
        else:
            values = spec.kind.__name__
        default = yaml.safe_dump(spec.default, default_flow_style=True, width=1000)
        default = default.removesuffix("\n...\n").strip()
        description = spec.description.replace("|", "\\|").replace("<", "&lt;")
        rows.append(
            f"| `{spec.name}` | `{default}` | {values} | {'yes' if spec.live else ''} "
            f"| {description} |"
        )
    return "\n".join(rows) + "\n"


def parameters_page() -> str:
    """docs/parameters.md: the tables of :data:`PARAMS` and :data:`NODE_PARAMS`, generated
    (``python -m sfs_ros.params > docs/parameters.md``; a test keeps the file equal to this)."""
    return (
        "# Parameters\n\n"
        "Generated from the configuration tree in `sfs_ros/params.py` by\n"
        "`python -m sfs_ros.params > docs/parameters.md`; do not edit by hand.\n"
        "Presets: `config/sfs.yaml` (the defaults below) and `config/sfs_paper.yaml`.\n"
        "Live parameters change at run time (`ros2 param set /sfs/sfs fastsam.conf 0.3`);\n"
        "the others are read at start. `sfs-segment` (images, videos, bags) and `sfs-eval` take\n"
        "the same names with `--set name=value`.\n\n"
        "## Node and core\n\n"
        f"{markdown_table(PARAMS)}\n"
        "## Node only\n\n"
        "Read by the ROS node; the offline tools ignore them in a shared YAML file.\n\n"
        f"{markdown_table(NODE_PARAMS)}"
    )


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


# Parameters of the ROS node that the ROS-free core ignores when reading a shared YAML file.
NODE_ONLY_PARAMS = frozenset({*(p.name for p in NODE_PARAMS), "use_sim_time", "qos_overrides"})


if __name__ == "__main__":
    print(parameters_page(), end="")
