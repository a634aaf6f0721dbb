"""The ``sfs`` ROS 2 node: camera images in, label / colour / overlay / instance images and the
class legend out, ``/diagnostics`` at 1 Hz.

Threads: the executor (main thread) runs the subscription callbacks, which only store the
newest frame of their camera in a :class:`~sfs_ros.ros.frame_slot.FrameSlots`, plus the
timers and parameter services. One worker thread serves the cameras in turn: decode, run the
shared :class:`~sfs_ros.pipeline.Pipeline`, publish with the input's header. Every frame is
accounted for as processed or dropped with a reason.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.exceptions import InvalidParameterTypeException, ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from rclpy.utilities import remove_ros_args
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from sfs_ros import render
from sfs_ros.msg import ClassInfo, ClassLegend
from sfs_ros.params import PARAMS, ConfigError
from sfs_ros.pipeline import Pipeline, SegmentationResult
from sfs_ros.ros.conversions import (
    ImageConversionError,
    compressed_msg_to_rgb,
    image_msg_to_rgb,
    to_image_msg,
)
from sfs_ros.ros.diagnostics import STALE_AFTER_S, CameraMonitor, camera_status
from sfs_ros.ros.frame_slot import DropLogLimiter, FrameSlots
from sfs_ros.ros.qos import IMAGE_OUT_QOS, INPUT_QOS, LEGEND_QOS
from sfs_ros.ros.ros_params import (
    CameraSpec,
    LiveSettings,
    camera_specs,
    declare_parameters,
    on_set_parameters_callback,
)
from sfs_ros.runtime import LOG
from sfs_ros.weights import WeightsNotFoundError

NODE_NAME = "sfs"
DIAGNOSTICS_PERIOD_S = 1.0
WAITING_LOG_PERIOD_S = 5.0
DROP_LOG_PERIOD_S = 5.0
WORKER_JOIN_S = 1.5
STARTUP_ERRORS = (ValueError, WeightsNotFoundError, ParameterException)
"""Errors that mean "this configuration cannot start": one fatal line, exit code 1."""

USAGE = """\
usage: python -m sfs_ros.node --ros-args [-r __ns:=/sfs] [--params-file FILE] [-p NAME:=VALUE ...]

Semantic-Fast-SAM segmentation node. Subscribes to 'image' (or 'image/compressed' with
-p input_transport:=compressed) and publishes semantic, semantic_color, overlay, instances,
legend and /diagnostics. Parameters: see config/sfs.yaml or `ros2 param describe`.
"""


class _DroppedFrameError(Exception):
    """A frame that is dropped; ``reason`` is its accounting key."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class _RosLogHandler(logging.Handler):
    """Forwards the ``sfs_ros`` Python logger (used by the core) to the node's ROS logger."""

    def __init__(self, ros_logger: Any) -> None:
        super().__init__()
        self._ros_logger = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except (TypeError, ValueError):
            self.handleError(record)
            return
        if record.levelno >= logging.CRITICAL:
            self._ros_logger.fatal(text)
        elif record.levelno >= logging.ERROR:
            self._ros_logger.error(text)
        elif record.levelno >= logging.WARNING:
            self._ros_logger.warning(text)
        elif record.levelno >= logging.INFO:
            self._ros_logger.info(text)
        else:
            self._ros_logger.debug(text)


@dataclass
class _Camera:
    """Everything the node keeps per camera."""

    spec: CameraSpec
    decode: Callable[[Any], np.ndarray]
    subscription: Any = None
    semantic: Any = None
    color: Any = None
    overlay: Any = None
    instances: Any = None
    legend: Any = None
    monitor: CameraMonitor = field(default_factory=CameraMonitor)
    legend_key: tuple[int, str] | None = None
    size: tuple[int, int] | None = None
    stopped_reported: bool = False
    info: dict[str, str] = field(default_factory=dict)

    @property
    def topic(self) -> str:
        """Resolved input topic."""
        return self.subscription.topic_name if self.subscription else self.spec.input_topic


class SfsNode(Node):
    """The segmentation node. Construct, then :meth:`setup` (loads models), spin, :meth:`close`."""

    def __init__(self, pipeline_factory: Callable[[dict[str, Any]], Pipeline] | None = None):
        """Create the node (cheap); ``pipeline_factory`` builds the pipeline from the config
        in :meth:`setup` (default :meth:`Pipeline.from_config`)."""
        super().__init__(NODE_NAME)
        self._pipeline_factory = pipeline_factory or Pipeline.from_config
        self.pipeline: Pipeline | None = None
        self.config: dict[str, Any] = {}
        self._cameras: dict[str, _Camera] = {}
        self._slots: FrameSlots | None = None
        self._settings: LiveSettings | None = None
        self._worker: threading.Thread | None = None
        self._publish_lock = threading.Lock()
        self._closing = False
        self._closed = False
        self._drop_log = DropLogLimiter(DROP_LOG_PERIOD_S)
        self._lut: np.ndarray | None = None
        self._lut_revision = -1
        self._waiting_timer: Any = None
        self._diagnostics: Any = None
        self._log_handler = _RosLogHandler(self.get_logger())
        self._log_saved = (LOG.propagate, LOG.level)
        LOG.addHandler(self._log_handler)
        LOG.propagate = False
        # rcutils severities use the numbers of Python's logging levels (DEBUG 10 ... FATAL 50)
        LOG.setLevel(int(self.get_logger().get_effective_level()))

    # ------------------------------------------------------------------------ start-up
    def setup(self) -> None:
        """Declare parameters, load the models, create topics and timers, start the worker.

        Raises:
            ConfigError / ValueError: invalid parameters or device.
            WeightsNotFoundError: model weights are missing.
            rclpy.exceptions.ParameterException: rclpy refused a parameter value.
        """
        values = declare_parameters(self)
        self.config = {p.name: values[p.name] for p in PARAMS}
        specs = camera_specs(
            values["cameras"], values["image_topics"], self.config["input_transport"]
        )
        self.pipeline = self._pipeline_factory(self.config)
        self._settings = LiveSettings(self.config, Pipeline.LIVE_KEYS)
        self._slots = FrameSlots([s.name for s in specs])
        transport, qos_name = self.config["input_transport"], self.config["input_qos"]
        msg_type = CompressedImage if transport == "compressed" else Image
        decode = compressed_msg_to_rgb if transport == "compressed" else image_msg_to_rgb
        for spec in specs:
            cam = _Camera(spec, decode)
            cam.semantic = self.create_publisher(Image, spec.output("semantic"), IMAGE_OUT_QOS)
            cam.color = self.create_publisher(Image, spec.output("semantic_color"), IMAGE_OUT_QOS)
            cam.overlay = self.create_publisher(Image, spec.output("overlay"), IMAGE_OUT_QOS)
            cam.instances = self.create_publisher(Image, spec.output("instances"), IMAGE_OUT_QOS)
            cam.legend = self.create_publisher(ClassLegend, spec.output("legend"), LEGEND_QOS)
            # image_transport convention: remapping the base topic ('image:=/cam/image_raw')
            # also moves its '/compressed' sub-topic, so resolve the base before the suffix.
            input_topic = self.resolve_topic_name(spec.base_topic) + spec.suffix
            cam.subscription = self.create_subscription(
                msg_type,
                input_topic,
                lambda msg, name=spec.name: self._on_image(name, msg),
                INPUT_QOS[qos_name],
            )
            cam.info = {
                "input_topic": cam.topic,
                "input_transport": transport,
                "input_qos": qos_name,
                "output_topic": cam.semantic.topic_name,
                "device": self.pipeline.device,
                "backend": self.config["backend"],
            }
            self._cameras[spec.name] = cam
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        self._waiting_timer = self.create_timer(WAITING_LOG_PERIOD_S, self._log_waiting)
        self.add_on_set_parameters_callback(
            on_set_parameters_callback(self._settings.set, self._check_live)
        )
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id="")
        for cam in self._cameras.values():
            self._publish_legend(cam, header)
        self.get_logger().info(
            f"ready: {len(specs)} camera(s), {len(self.pipeline.registry)} classes "
            f"({self.pipeline.registry.vocabulary_name}), device {self.pipeline.device}, "
            f"backend {self.config['backend']}"
        )
        self._log_waiting()
        self._worker = threading.Thread(target=self._work, name="sfs-worker", daemon=True)
        self._worker.start()

    def _check_live(self, name: str, value: Any) -> str | None:
        """Veto live changes the loaded pipeline cannot apply (reason), else None."""
        if name.startswith("open_vocab.") and getattr(self.pipeline, "open_vocab", None) is None:
            if name == "open_vocab.enabled" and not value:
                return None
            return (
                f"{name}: the open-vocabulary branch was not loaded at start "
                "(open_vocab.enabled was false); restart with open_vocab.enabled:=true"
            )
        return None

    # ------------------------------------------------------------------------ callbacks
    def _on_image(self, camera: str, msg: Any) -> None:
        self._cameras[camera].monitor.on_input()
        self._slots.put(camera, msg)

    def _log_waiting(self) -> None:
        waiting = [
            c for c in self._cameras.values() if self._slots.stats(c.spec.name).frames_in == 0
        ]
        for cam in waiting:
            self.get_logger().info(
                f"waiting for images on {cam.topic} "
                f"({cam.info['input_transport']}, {cam.info['input_qos']})"
            )
        if not waiting and self._waiting_timer is not None:
            self._waiting_timer.cancel()

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        prefix = self.get_fully_qualified_name()
        info = {"legend_revision": str(self.pipeline.registry.revision)}
        open_vocab = self.pipeline.open_vocab_stats()
        if open_vocab is not None:
            info.update({f"open_vocab.{k}": _text(v) for k, v in open_vocab.items()})
        for cam in self._cameras.values():
            stats = self._slots.stats(cam.spec.name)
            array.status.append(
                camera_status(
                    name=f"{prefix}: {cam.spec.label}",
                    hardware_id=self.pipeline.device,
                    stats=stats,
                    snapshot=cam.monitor.snapshot(),
                    info={**cam.info, **info},
                    random_weights=self.pipeline.random_weights,
                    now=now,
                )
            )
            stale = stats.last_in is not None and now - stats.last_in > STALE_AFTER_S
            if stale and not cam.stopped_reported:
                self.get_logger().warning(
                    f"no frame on {cam.topic} for more than {STALE_AFTER_S:.0f} s (camera stopped?)"
                )
            cam.stopped_reported = stale
        self._diagnostics.publish(array)

    # ------------------------------------------------------------------------ worker
    def _work(self) -> None:
        """Worker thread: serve the cameras' newest frames in turn until closed."""
        while True:
            got = self._slots.take(timeout=0.5)
            if got is None:
                if self._slots.closed:
                    return
                continue
            name, msg = got
            cam = self._cameras[name]
            try:
                self._process(cam, msg)
            except _DroppedFrameError as drop:
                self._slots.mark_dropped(name, drop.reason)
                self._report_drop(cam, drop)
            except Exception as exc:  # a bug in the node: log it, count it, keep serving
                drop = _DroppedFrameError(
                    "internal_error", f"internal error on a frame from {cam.topic}: {exc!r}"
                )
                drop.__cause__ = exc
                self._slots.mark_dropped(name, drop.reason)
                self._report_drop(cam, drop)
            else:
                self._slots.mark_processed(name)

    def _apply_pending(self) -> None:
        for name, value in self._settings.take_pending().items():
            try:
                self.pipeline.update(name, value)
            except ConfigError as exc:  # validated already; reaching this is a bug
                self.get_logger().error(f"cannot apply {name}={value!r}: {exc}")
            else:
                self.get_logger().info(f"{name} set to {value!r}")

    def _process(self, cam: _Camera, msg: Any) -> None:
        """Decode, segment and publish one frame; a dropped frame raises _DroppedFrameError."""
        self._apply_pending()
        try:
            rgb = cam.decode(msg)
        except ImageConversionError as exc:
            raise _DroppedFrameError(exc.reason, f"bad frame on {cam.topic}: {exc}") from exc
        size = (rgb.shape[1], rgb.shape[0])
        if cam.size is None:
            self.get_logger().info(
                f"first frame on {cam.topic}: {size[0]}x{size[1]}, frame_id '{msg.header.frame_id}'"
            )
        elif cam.size != size:
            self.get_logger().info(
                f"input size on {cam.topic} changed from {cam.size[0]}x{cam.size[1]} to "
                f"{size[0]}x{size[1]}"
            )
        cam.size = size
        try:
            result = self.pipeline.process(rgb)
        except Exception as exc:  # any model failure on one frame: count it, keep running
            if _is_out_of_memory(exc):
                released = _release_accelerator_memory()
                raise _DroppedFrameError(
                    "out_of_memory",
                    f"out of memory on a {size[0]}x{size[1]} frame from {cam.topic}: {exc!r}"
                    + ("; cached GPU memory released" if released else ""),
                ) from exc
            raise _DroppedFrameError(
                "pipeline_error", f"pipeline failed on a frame from {cam.topic}: {exc!r}"
            ) from exc
        try:
            published = self._publish(cam, msg.header, rgb, result)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise _DroppedFrameError(
                "publish_error", f"cannot publish the outputs of {cam.topic}: {exc!r}"
            ) from exc
        if not published:
            raise _DroppedFrameError("shutdown", "node is shutting down")

    def _color_lut(self) -> np.ndarray:
        registry = self.pipeline.registry
        if self._lut is None or registry.revision != self._lut_revision:
            self._lut_revision = registry.revision
            self._lut = registry.color_lut()
        return self._lut

    def _publish(
        self, cam: _Camera, header: Any, rgb: np.ndarray, result: SegmentationResult
    ) -> bool:
        """Publish one frame's outputs; False when the node is closing (nothing sent)."""
        outputs = [(cam.semantic, to_image_msg(result.label_map, "mono16", header))]
        if cam.color.get_subscription_count() > 0:
            color = render.colorize(result.label_map, self._color_lut())
            outputs.append((cam.color, to_image_msg(color, "rgb8", header)))
        if cam.overlay.get_subscription_count() > 0:
            alpha = self._settings.get("overlay_alpha")
            blended = render.overlay(rgb, result.label_map, self._color_lut(), alpha)
            outputs.append((cam.overlay, to_image_msg(blended, "rgb8", header)))
        if cam.instances.get_subscription_count() > 0:
            outputs.append((cam.instances, to_image_msg(result.instance_map, "mono16", header)))
        with self._publish_lock:
            if self._closing:
                return False
            # the legend first: whoever gets a label image with new ids can already name them
            if cam.legend_key != (self.pipeline.registry.revision, header.frame_id):
                self._publish_legend(cam, header)
            for publisher, out in outputs:
                publisher.publish(out)
        stamp_ns = header.stamp.sec * 1_000_000_000 + header.stamp.nanosec
        latency = None
        if stamp_ns > 0:
            latency = (self.get_clock().now().nanoseconds - stamp_ns) / 1e9
        cam.monitor.on_output(latency, result.timings)
        return True

    def _publish_legend(self, cam: _Camera, header: Any) -> None:
        legend = self.pipeline.registry.legend_dict()
        msg = ClassLegend(
            header=header, revision=legend["revision"], vocabulary=legend["vocabulary"]
        )
        msg.classes = [
            ClassInfo(id=c["id"], name=c["name"], color=c["color"], source=c["source"])
            for c in legend["classes"]
        ]
        cam.legend.publish(msg)
        cam.legend_key = (legend["revision"], header.frame_id)

    def _report_drop(self, cam: _Camera, drop: _DroppedFrameError) -> None:
        if drop.reason == "shutdown":
            return
        count = self._drop_log.report(f"{cam.spec.name}/{drop.reason}")
        if count is not None:
            total = self._slots.stats(cam.spec.name).dropped.get(drop.reason, 0)
            self.get_logger().error(
                f"{drop} -> frame dropped ({drop.reason}; {count} since the last report, "
                f"{total} in total; at most one line per {DROP_LOG_PERIOD_S:.0f} s)"
            )
        if drop.__cause__ is not None and not isinstance(drop.__cause__, ImageConversionError):
            self.get_logger().debug("".join(traceback.format_exception(drop.__cause__)))

    # ------------------------------------------------------------------------ shutdown
    def close(self) -> None:
        """Stop the worker (joined), detach the log bridge and destroy the node (idempotent)."""
        if self._closed:
            return
        self._closed = True
        with self._publish_lock:
            self._closing = True
        if self._slots is not None:
            self._slots.close()
        if self._worker is not None:
            self._worker.join(WORKER_JOIN_S)
            if self._worker.is_alive():
                self.get_logger().warning(
                    f"worker still busy with a frame after {WORKER_JOIN_S} s; not waiting"
                )
        if self.pipeline is not None:
            self.pipeline.close()
        LOG.removeHandler(self._log_handler)
        LOG.propagate, level = self._log_saved
        LOG.setLevel(level)
        self.destroy_node()


def _is_out_of_memory(exc: BaseException) -> bool:
    """True for host or accelerator out-of-memory errors (``torch.cuda.OutOfMemoryError``)."""
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")  # loaded by the pipeline; not imported here for it
    oom = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    return isinstance(oom, type) and isinstance(exc, oom)


def _release_accelerator_memory() -> bool:
    """After an out-of-memory error: give torch's cached CUDA blocks back (True when done)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return False
    torch.cuda.empty_cache()
    return True


def _startup_message(exc: BaseException) -> str:
    """The fatal start-up line for ``exc``, with a hint for the usual ``-p x:=1`` mistake."""
    text = str(exc)
    if isinstance(exc, InvalidParameterTypeException) and "'DOUBLE'" in text:
        text += " (write floating-point values with a decimal point, e.g. 1.0)"
    return text


def _text(value: Any) -> str:
    """A diagnostics value as text (floats with 3 decimals, None as n/a)."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


class _Interrupted(BaseException):
    """SIGINT/SIGTERM during start-up (model loading): abort it and exit cleanly."""


def main(args: list[str] | None = None) -> int:
    """Run the node until SIGINT/SIGTERM; returns the process exit code.

    0 after a clean shutdown, 1 when the configuration cannot start (one fatal log line, e.g.
    missing weights), 2 on unexpected command-line arguments.
    """
    argv = list(sys.argv if args is None else args)
    extra = remove_ros_args(argv)[1:]
    if {"-h", "--help"} & set(extra):
        print(USAGE)
        return 0
    if extra:
        print(f"unexpected arguments {extra}\n{USAGE}", file=sys.stderr)
        return 2

    stop = threading.Event()
    spinning = False

    def on_signal(signum: int, frame: object) -> None:
        stop.set()
        if not spinning:
            raise _Interrupted(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    node: SfsNode | None = None
    executor: SingleThreadedExecutor | None = None
    try:
        node = SfsNode()
        try:
            node.setup()
        except STARTUP_ERRORS as exc:
            node.get_logger().fatal(f"cannot start: {_startup_message(exc)}")
            node.get_logger().debug(traceback.format_exc())
            return 1
        spinning = True
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.1)
        node.get_logger().info("shutting down")
        return 0
    except (_Interrupted, ExternalShutdownException):
        return 0
    finally:
        spinning = True  # a second signal during clean-up only sets the event
        if executor is not None:
            executor.shutdown(timeout_sec=0.5)
        if node is not None:
            node.close()
        rclpy.try_shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
