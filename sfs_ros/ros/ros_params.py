"""ROS 2 parameters of the node: descriptors from the configuration tree of :mod:`sfs_ros.params`
(:data:`~sfs_ros.params.PARAMS` and :data:`~sfs_ros.params.NODE_PARAMS`), declaration,
the camera list, and the validated set-parameters callback for the live parameters.

Everything except :func:`declare_parameters` works on plain values and ``rcl_interfaces``
messages, so it is tested without a running node.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)

from sfs_ros.params import (
    EMPTY_LIST_MARK,
    NODE_PARAMS,
    PARAMS,
    SPECS,
    ConfigError,
    ParamSpec,
    validate,
)

NODE_SPECS: dict[str, ParamSpec] = {p.name: p for p in NODE_PARAMS}
ALL_PARAMS: tuple[ParamSpec, ...] = PARAMS + NODE_PARAMS

_TYPES: dict[type, int] = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
    list: ParameterType.PARAMETER_STRING_ARRAY,
}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_CAMERA_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


# ------------------------------------------------------------------------------ descriptors
def ros_default(spec: ParamSpec) -> Any:
    """The default to declare: an empty string array becomes ``[EMPTY_LIST_MARK]``."""
    if spec.kind is list:
        return list(spec.default) or [EMPTY_LIST_MARK]
    return spec.default


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """A ParameterDescriptor: description, type, range, choices; read-only unless live."""
    desc = ParameterDescriptor(
        name=spec.name,
        type=_TYPES[spec.kind],
        description=spec.description + (" (live)" if spec.live else " (read at start)"),
        read_only=not spec.live,
    )
    constraints = []
    if spec.choices is not None:
        constraints.append("one of: " + ", ".join(spec.choices))
    if spec.kind is list:
        constraints.append(f"list of strings; [{EMPTY_LIST_MARK}] = empty list")
    if spec.min is not None or spec.max is not None:
        if spec.kind is int:
            low = _INT64_MIN if spec.min is None else int(spec.min)
            high = _INT64_MAX if spec.max is None else int(spec.max)
            desc.integer_range = [IntegerRange(from_value=low, to_value=high, step=spec.step or 0)]
        else:
            low_f = -sys.float_info.max if spec.min is None else float(spec.min)
            high_f = sys.float_info.max if spec.max is None else float(spec.max)
            desc.floating_point_range = [
                FloatingPointRange(from_value=low_f, to_value=high_f, step=0.0)
            ]
    desc.additional_constraints = "; ".join(constraints)
    return desc


def declare_parameters(node: Any) -> dict[str, Any]:
    """Declare every core and node parameter on ``node``; return dotted name → checked value.

    Values come from the node's parameter overrides (params file, ``-p``) or the defaults.
    Each one goes through :func:`sfs_ros.params.validate` (string arrays lose
    ``EMPTY_LIST_MARK``).

    Raises:
        ConfigError: a value is invalid (the message names the parameter).
        rclpy.exceptions.ParameterException: rclpy refused a value (wrong type, out of range).
    """
    declared = node.declare_parameters(
        "", [(spec.name, ros_default(spec), descriptor(spec)) for spec in ALL_PARAMS]
    )
    values: dict[str, Any] = {}
    for spec, param in zip(ALL_PARAMS, declared, strict=True):
        value = param.value
        if spec.kind is list:
            value = list(value)
            values[spec.name] = _validate_list(spec.name, value)
        else:
            values[spec.name] = validate(spec.name, value)
    return values


def _validate_list(name: str, value: list) -> list[str]:
    if not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{name}: expected a list of strings, got {value!r}")
    if name in SPECS:
        return validate(name, value)
    return [v for v in value if v != EMPTY_LIST_MARK]


# ------------------------------------------------------------------------------ cameras
@dataclass(frozen=True)
class CameraSpec:
    """One input camera: its name ('' = the single default camera) and topics (relative)."""

    name: str
    base_topic: str  # the raw image topic name (what remapping applies to)
    prefix: str
    suffix: str = ""  # "/compressed" with compressed transport (image_transport convention)

    @property
    def input_topic(self) -> str:
        """Relative topic subscribed to (base topic + transport suffix)."""
        return self.base_topic + self.suffix

    def output(self, topic: str) -> str:
        """Relative name of an output topic of this camera (``semantic`` → ``front/semantic``)."""
        return self.prefix + topic

    @property
    def label(self) -> str:
        """Name used in log lines and diagnostics."""
        return self.name or "camera"


def camera_specs(
    cameras: Sequence[str], image_topics: Sequence[str], transport: str
) -> list[CameraSpec]:
    """Interpret ``cameras`` / ``image_topics`` / ``input_transport``.

    No cameras: one camera reading ``image`` (or ``image_topics[0]``), outputs ``semantic``...
    Names: camera ``n`` reads ``image_topics[i]`` (default ``n/image``) and publishes
    ``n/semantic``... With compressed transport ``/compressed`` is appended to the base topic.

    Raises:
        ConfigError: bad or duplicate names, or a length mismatch.
    """
    suffix = "/compressed" if transport == "compressed" else ""
    topics = [t.strip() for t in image_topics]
    if any(not t for t in topics):
        raise ConfigError(f"image_topics: empty topic name in {list(image_topics)}")
    if not cameras:
        if len(topics) > 1:
            raise ConfigError(
                f"image_topics names {len(topics)} topics but cameras is empty; "
                "name the cameras (cameras:=[a,b]) to subscribe to several topics"
            )
        base = topics[0] if topics else "image"
        return [CameraSpec("", base, "", suffix)]
    for name in cameras:
        if not _CAMERA_NAME.match(name):
            raise ConfigError(
                f"cameras: '{name}' is not a valid camera name (letters, digits, '_'; "
                "starting with a letter)"
            )
    if len(set(cameras)) != len(cameras):
        raise ConfigError(f"cameras: names must be unique, got {list(cameras)}")
    if topics and len(topics) != len(cameras):
        raise ConfigError(
            f"image_topics names {len(topics)} topics for {len(cameras)} cameras; "
            "give one topic per camera (or none for '<name>/image')"
        )
    return [
        CameraSpec(name, topics[i] if topics else f"{name}/image", f"{name}/", suffix)
        for i, name in enumerate(cameras)
    ]


# ------------------------------------------------------------------------------ live updates
def check_update(name: str, value: Any) -> tuple[Any, str | None]:
    """Check one run-time parameter change.

    Returns:
        ``(validated value, None)`` when it may be applied, ``(None, reason)`` when not.
        Parameters this module does not own (``use_sim_time``, ``qos_overrides.*``) pass
        unchanged.
    """
    spec = SPECS.get(name) or NODE_SPECS.get(name)
    if spec is None:
        return value, None
    if not spec.live:
        return None, f"{name} is read at start only; restart the node to change it"
    try:
        return validate(name, list(value) if isinstance(value, list | tuple) else value), None
    except ConfigError as exc:
        return None, str(exc)


def on_set_parameters_callback(
    apply: Callable[[str, Any], None],
    extra_check: Callable[[str, Any], str | None] | None = None,
) -> Callable[[list[Any]], SetParametersResult]:
    """Build the callback for ``Node.add_on_set_parameters_callback``.

    All parameters of one request are checked first (:func:`check_update`, then
    ``extra_check`` returning a reason or None); only when all pass is ``apply(name, value)``
    called for each of our parameters, with the validated value. The first failure is
    reported in ``SetParametersResult.reason`` and nothing is applied.
    """

    def callback(params: list[Any]) -> SetParametersResult:
        checked = []
        for param in params:
            value, reason = check_update(param.name, param.value)
            if reason is None and extra_check is not None and param.name in SPECS:
                reason = extra_check(param.name, value)
            if reason is not None:
                return SetParametersResult(successful=False, reason=reason)
            checked.append((param.name, value))
        for name, value in checked:
            if name in SPECS:
                apply(name, value)
        return SetParametersResult(successful=True)

    return callback


class LiveSettings:
    """Live values of a running node, set from the parameter callback, read by the worker.

    Pipeline parameters (``Pipeline.LIVE_KEYS``) are queued and applied by the worker between
    two frames (it takes them with :meth:`take_pending`), so a parameter request never waits
    for a frame; ``overlay_alpha`` and every other live value are stored at once (:meth:`get`).
    """

    def __init__(self, config: dict[str, Any], pipeline_keys: Iterable[str]) -> None:
        self._pipeline_keys = frozenset(pipeline_keys)
        self._lock = threading.Lock()
        self._values = {p.name: config[p.name] for p in PARAMS if p.live}
        self._pending: dict[str, Any] = {}

    def set(self, name: str, value: Any) -> None:
        """Store a validated live value (queued for the pipeline when it is one of its keys)."""
        with self._lock:
            self._values[name] = value
            if name in self._pipeline_keys:
                self._pending[name] = value

    def get(self, name: str) -> Any:
        """The current value of a live parameter."""
        with self._lock:
            return self._values[name]

    def take_pending(self) -> dict[str, Any]:
        """Pipeline updates queued since the last call (and forget them)."""
        with self._lock:
            pending, self._pending = self._pending, {}
            return pending
