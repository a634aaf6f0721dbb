"""The ``sfs`` ROS 2 node: camera images in, label / colour / overlay / instance images and the
class legend out, ``/diagnostics`` at 1 Hz.

Threads: the executor (main thread) runs the subscription callbacks, which only store the
newest frame of their camera in a :class:`~sfs_ros.ros.frame_slot.FrameSlots`, plus the
timers and parameter services. One worker thread serves the cameras in turn: decode and run
the network passes of the shared :class:`~sfs_ros.pipeline.Pipeline` (``infer``); with
``overlap_frames`` a second thread (:class:`~sfs_ros.overlap.FrameOverlap`) finishes that frame
(``finish``: decode masks, fuse, paint) and publishes it with the input's header while the
worker starts on the next frame. Every frame is accounted for as processed or dropped with a
reason.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
import re
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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

from sfs_ros.errors import SfsError
from sfs_ros.msg import ClassInfo, ClassLegend
from sfs_ros.overlap import FrameOverlap
from sfs_ros.params import PARAMS, ConfigError
from sfs_ros.pipeline import NetworkPass, Pipeline, SegmentationResult
from sfs_ros.ros.conversions import (
    ImageConversionError,
    compressed_msg_to_rgb,
    image_msg_to_rgb,
)
from sfs_ros.ros.diagnostics import CameraMonitor, camera_status, hardware_id
from sfs_ros.ros.frame_slot import SUPERSEDED, DropLogLimiter, FrameSlots
from sfs_ros.ros.outputs import ON_EVERY_FRAME, OutputEncoder
from sfs_ros.ros.qos import (
    AUTO,
    IMAGE_OUT_QOS,
    INPUT_QOS,
    LEGEND_QOS,
    describe,
    match_publishers,
    same_policies,
)
from sfs_ros.ros.ros_params import (
    ALL_PARAMS,
    CameraSpec,
    LiveSettings,
    camera_specs,
    declare_parameters,
    on_set_parameters_callback,
)
from sfs_ros.ros.waiting import TopicGraph, waiting_hint
from sfs_ros.runtime import LOG

NODE_NAME = "sfs"
DIAGNOSTICS_PERIOD_S = 1.0
WAITING_LOG_PERIOD_S = 5.0
DROP_LOG_PERIOD_S = 5.0
QOS_MATCH_PERIOD_S = 1.0
SHUTDOWN_GRACE_S = 2.0
"""How long close() waits for an in-flight frame and the CLIP thread before abandoning them."""
STARTUP_ERRORS = (SfsError, ParameterException)
"""Errors that mean "this configuration cannot start" and say why themselves (sfs_ros/errors.py):
one fatal line without the exception's type name, exit code 1."""
ROS_OWN_PARAMS = ("use_sim_time", "start_type_description_service")
"""Parameters rclpy declares itself (not unknown when found in a params file)."""

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
    legend_image: Any = None
    input_qos: Any = None  # the QoSProfile of the current subscription
    input_topic: str = ""  # resolved input topic
    monitor: CameraMonitor = field(default_factory=CameraMonitor)
    legend_key: tuple[int, str] | None = None
    size: tuple[int, int] | None = None
    stopped_reported: bool = False
    info: dict[str, str] = field(default_factory=dict)

    def image_publishers(self) -> dict[str, Any]:
        """The image publishers by output name (``sfs_ros.ros.outputs.IMAGE_OUTPUTS``)."""
        return {
            "semantic": self.semantic,
            "semantic_color": self.color,
            "overlay": self.overlay,
            "instances": self.instances,
            "legend_image": self.legend_image,
        }

    @property
    def topic(self) -> str:
        """Resolved input topic."""
        return self.input_topic or self.spec.input_topic


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
        self._overlap: FrameOverlap | None = None
        self._publish_lock = threading.Lock()
        self._closing = False
        self._closed = False
        self._drop_log = DropLogLimiter(DROP_LOG_PERIOD_S)
        self._outputs: OutputEncoder | None = None
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
        self._warn_unknown_parameters()
        specs = camera_specs(
            values["cameras"], values["image_topics"], self.config["input_transport"]
        )
        self.pipeline = self._pipeline_factory(self.config)
        self._outputs = OutputEncoder(self.pipeline.registry, Image)
        self._settings = LiveSettings(self.config, Pipeline.LIVE_KEYS)
        self._slots = FrameSlots([s.name for s in specs])
        transport, qos_name = self.config["input_transport"], self.config["input_qos"]
        self._msg_type = CompressedImage if transport == "compressed" else Image
        decode = compressed_msg_to_rgb if transport == "compressed" else image_msg_to_rgb
        stale_s = self.config["diagnostics.stale_timeout_s"]
        self._hardware_id = hardware_id(self.pipeline.device)
        for spec in specs:
            cam = _Camera(spec, decode, monitor=CameraMonitor(stale_after_s=stale_s))
            cam.semantic = self.create_publisher(Image, spec.output("semantic"), IMAGE_OUT_QOS)
            cam.color = self.create_publisher(Image, spec.output("semantic_color"), IMAGE_OUT_QOS)
            cam.overlay = self.create_publisher(Image, spec.output("overlay"), IMAGE_OUT_QOS)
            cam.instances = self.create_publisher(Image, spec.output("instances"), IMAGE_OUT_QOS)
            cam.legend_image = self.create_publisher(
                Image, spec.output("legend_image"), IMAGE_OUT_QOS
            )
            cam.legend = self.create_publisher(ClassLegend, spec.output("legend"), LEGEND_QOS)
            # image_transport convention: remapping the base topic ('image:=/cam/image_raw')
            # also moves its '/compressed' sub-topic, so resolve the base before the suffix.
            cam.input_topic = self.resolve_topic_name(spec.base_topic) + spec.suffix
            self._subscribe(cam, self._input_profile(cam))
            cam.info = {
                "input_topic": cam.topic,
                "input_transport": transport,
                "input_qos": self._qos_text(cam),
                "output_topic": cam.semantic.topic_name,
                "device": self.pipeline.device,
                "backend": self.pipeline.backend,
            }
            self._cameras[spec.name] = cam
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        self._waiting_timer = self.create_timer(WAITING_LOG_PERIOD_S, self._log_waiting)
        if qos_name == AUTO:
            self.create_timer(QOS_MATCH_PERIOD_S, self._rematch_inputs)
        self.add_on_set_parameters_callback(
            on_set_parameters_callback(self._settings.set, self._check_live)
        )
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id="")
        for cam in self._cameras.values():
            self._publish_legend(cam, header)
        self.get_logger().info(
            f"ready: {len(specs)} camera(s), {len(self.pipeline.registry)} classes "
            f"({self.pipeline.registry.vocabulary_name}), device {self.pipeline.device} "
            f"({self._hardware_id}), backend {self.pipeline.backend}"
        )
        self._log_waiting()
        self._overlap = FrameOverlap(
            self._finish_frame, enabled=self.config["overlap_frames"], name="sfs-finish"
        )
        self._worker = threading.Thread(target=self._work, name="sfs-worker", daemon=True)
        self._worker.start()

    def _warn_unknown_parameters(self) -> None:
        """One warning per parameter given to the node (params file, ``-p``) that it does not
        know: rclpy ignores those silently, so a typo would otherwise go unnoticed."""
        known = {p.name for p in ALL_PARAMS} | set(ROS_OWN_PARAMS)
        given = getattr(self, "_parameter_overrides", {}) or {}
        for name in sorted(given):
            if name in known or name.startswith("qos_overrides."):
                continue
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            self.get_logger().warning(
                f"unknown parameter '{name}' (params file or -p) is ignored{hint}"
            )

    # ------------------------------------------------------------------------ input QoS
    def _input_profile(self, cam: _Camera) -> Any:
        """The QoS to subscribe with: the fixed choice, or (auto) one matching the publishers."""
        name = self.config["input_qos"]
        if name != AUTO:
            return INPUT_QOS[name]
        return match_publishers(self._publisher_qos(cam))

    def _publisher_qos(self, cam: _Camera) -> list[Any]:
        infos = self.get_publishers_info_by_topic(cam.input_topic)
        own = self.get_fully_qualified_name()
        return [
            i.qos_profile for i in infos if f"{i.node_namespace.rstrip('/')}/{i.node_name}" != own
        ]

    def _qos_text(self, cam: _Camera) -> str:
        chosen = describe(cam.input_qos)
        name = self.config["input_qos"]
        return f"auto: {chosen}" if name == AUTO else f"{name}: {chosen}"

    def _subscribe(self, cam: _Camera, profile: Any) -> None:
        if cam.subscription is not None:
            self.destroy_subscription(cam.subscription)
        cam.input_qos = profile
        cam.subscription = self.create_subscription(
            self._msg_type,
            cam.input_topic,
            lambda msg, name=cam.spec.name: self._on_image(name, msg),
            profile,
        )

    def _rematch_inputs(self) -> None:
        """input_qos auto: subscribe again when the publishers now call for other policies."""
        for cam in self._cameras.values():
            publishers = self._publisher_qos(cam)
            profile = match_publishers(publishers)
            if same_policies(profile, cam.input_qos):
                continue
            self._subscribe(cam, profile)
            cam.info["input_qos"] = self._qos_text(cam)
            self.get_logger().info(
                f"input QoS on {cam.topic} now {describe(profile)} "
                f"(auto: matches {len(publishers)} publisher(s): "
                f"{', '.join(sorted({describe(p) for p in publishers})) or 'none'})"
            )

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
        monitor = self._cameras[camera].monitor
        monitor.on_input()
        if self._slots.put(camera, msg):
            monitor.on_drop(SUPERSEDED)

    def _log_waiting(self) -> None:
        waiting = [
            c for c in self._cameras.values() if self._slots.stats(c.spec.name).frames_in == 0
        ]
        for cam in waiting:
            self.get_logger().info(
                f"waiting for images on {cam.topic} "
                f"({cam.info['input_transport']}, {cam.info['input_qos']}): "
                + waiting_hint(self._topic_graph(cam))
            )
        if not waiting and self._waiting_timer is not None:
            self._waiting_timer.cancel()

    def _topic_graph(self, cam: _Camera) -> TopicGraph:
        """What the ROS graph says about a camera's input topic (for the waiting hint)."""
        transport = cam.info["input_transport"]
        base = cam.topic[: -len(cam.spec.suffix)] if cam.spec.suffix else cam.topic
        other = base if transport == "compressed" else base + "/compressed"
        own = {
            pub.topic_name
            for c in self._cameras.values()
            for pub in (c.semantic, c.color, c.overlay, c.instances, c.legend_image)
        }
        image_topics = sorted(
            name
            for name, types in self.get_topic_names_and_types()
            if "sensor_msgs/msg/Image" in types and name != cam.topic and name not in own
        )
        return TopicGraph(
            topic=cam.topic,
            transport=transport,
            qos_setting=self.config["input_qos"],
            subscription_qos=describe(cam.input_qos),
            publisher_qos=[describe(p) for p in self._publisher_qos(cam)],
            other_transport_topic=other,
            other_transport_publishers=self.count_publishers(other),
            image_topics=image_topics,
        )

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        prefix = self.get_fully_qualified_name()
        info = {"legend_revision": str(self.pipeline.registry.revision)}
        open_vocab = self.pipeline.open_vocab_stats()
        if open_vocab is not None:
            info.update({f"open_vocab.{k}": _text(v) for k, v in open_vocab.items()})
        stale_s = self.config["diagnostics.stale_timeout_s"]
        for cam in self._cameras.values():
            stats = self._slots.stats(cam.spec.name)
            array.status.append(
                camera_status(
                    name=f"{prefix}: {cam.spec.label}",
                    hardware_id=self._hardware_id,
                    stats=stats,
                    snapshot=cam.monitor.snapshot(),
                    info={**cam.info, **info},
                    random_weights=self.pipeline.random_weights,
                    now=now,
                    stale_after_s=stale_s,
                )
            )
            stale = stats.last_in is not None and now - stats.last_in > stale_s
            if stale and not cam.stopped_reported:
                self.get_logger().warning(
                    f"no frame on {cam.topic} for more than {stale_s:g} s (camera stopped?)"
                )
            cam.stopped_reported = stale
        self._diagnostics.publish(array)

    # ------------------------------------------------------------------------ worker
    def _work(self) -> None:
        """Worker thread: serve the cameras' newest frames in turn until closed. Each frame's
        network passes run here; the rest (:meth:`_complete`) runs on the overlap thread
        (``overlap_frames``) or right after, here."""
        while True:
            got = self._slots.take(timeout=0.5)
            if got is None:
                if self._slots.closed:
                    return
                continue
            name, msg = got
            cam = self._cameras[name]
            net = self._reporting(cam, self._begin, cam, msg)
            if net is not None and not self._overlap.submit((cam, msg, net)):
                self._drop(cam, _DroppedFrameError("shutdown", "node is shutting down"))

    def _reporting(self, cam: _Camera, stage: Callable[..., Any], *args: Any) -> Any:
        """``stage(*args)``, one stage of a frame; a dropped frame (or a bug) is counted and
        reported and gives None."""
        try:
            return stage(*args)
        except _DroppedFrameError as drop:
            self._drop(cam, drop)
        except Exception as exc:  # a bug in the node: log it, count it, keep serving
            drop = _DroppedFrameError(
                "internal_error", f"internal error on a frame from {cam.topic}: {exc!r}"
            )
            drop.__cause__ = exc
            self._drop(cam, drop)
        return None

    def _drop(self, cam: _Camera, drop: _DroppedFrameError) -> None:
        """Count a frame taken from ``cam`` as dropped, in the slots and the diagnostics, and
        log it (rate-limited)."""
        self._slots.mark_dropped(cam.spec.name, drop.reason)
        cam.monitor.on_drop(drop.reason)
        self._report_drop(cam, drop)

    def _finish_frame(self, item: tuple[_Camera, Any, NetworkPass]) -> None:
        """Second stage of a frame (the overlap thread): finish, publish, count it."""
        cam, msg, net = item
        if self._reporting(cam, self._complete, cam, msg, net) is not None:
            self._slots.mark_processed(cam.spec.name)

    def _apply_pending(self) -> None:
        for name, value in self._settings.take_pending().items():
            try:
                self.pipeline.update(name, value)
            except ConfigError as exc:  # validated already; reaching this is a bug
                self.get_logger().error(f"cannot apply {name}={value!r}: {exc}")
            else:
                self.get_logger().info(f"{name} set to {value!r}")

    def _begin(self, cam: _Camera, msg: Any) -> NetworkPass:
        """Decode one frame and run its network passes; a dropped frame raises
        _DroppedFrameError."""
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
        with self._model_errors(cam, size):
            return self.pipeline.infer(rgb, sequence=cam.spec.name)

    def _complete(self, cam: _Camera, msg: Any, net: NetworkPass) -> bool:
        """Finish and publish one frame; a dropped frame raises _DroppedFrameError."""
        rgb = net.rgb
        with self._model_errors(cam, (rgb.shape[1], rgb.shape[0])):
            result = self.pipeline.finish(net)
        try:
            published = self._publish(cam, msg.header, rgb, result)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise _DroppedFrameError(
                "publish_error", f"cannot publish the outputs of {cam.topic}: {exc!r}"
            ) from exc
        if not published:
            raise _DroppedFrameError("shutdown", "node is shutting down")
        return True

    @contextmanager
    def _model_errors(self, cam: _Camera, size: tuple[int, int]) -> Iterator[None]:
        """Any model failure on one frame becomes a counted drop (out of memory: cached
        accelerator memory is released first)."""
        try:
            yield
        except Exception as exc:
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

    def _publish(
        self, cam: _Camera, header: Any, rgb: np.ndarray, result: SegmentationResult
    ) -> bool:
        """Publish one frame's outputs; False when the node is closing (nothing sent).

        The messages come from :meth:`OutputEncoder.encode` (``sfs_ros/ros/outputs.py``, also
        what ``sfs-bench`` times); ``semantic`` on every frame, the others while subscribed.
        Every call into rclpy (subscriber counts, publish) happens under ``_publish_lock`` and
        only while the node is not closing, so :meth:`close` never destroys the node under a
        worker that is inside rclpy.
        """
        publishers = cam.image_publishers()
        with self._publish_lock:
            if self._closing:
                return False
            wanted = [
                name
                for name, pub in publishers.items()
                if name != ON_EVERY_FRAME and pub.get_subscription_count() > 0
            ]
        messages = self._outputs.encode(
            result, rgb, header, overlay_alpha=self._settings.get("overlay_alpha"), wanted=wanted
        )
        outputs = [(publishers[name], msg) for name, msg in messages.items()]
        with self._publish_lock:
            if self._closing:
                return False
            # the legend first: whoever gets a label image with new ids can already name them
            if cam.legend_key != (self.pipeline.registry.revision, header.frame_id):
                self._publish_legend(cam, header)
            for publisher, out in outputs:
                publisher.publish(out)
            now_ns = self.get_clock().now().nanoseconds
        stamp_ns = header.stamp.sec * 1_000_000_000 + header.stamp.nanosec
        latency = None
        if stamp_ns > 0:
            latency = (now_ns - stamp_ns) / 1e9
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
    def close(self, grace_s: float = SHUTDOWN_GRACE_S) -> bool:
        """Stop the worker and the pipeline's threads, detach the log bridge, destroy the node.

        An in-flight frame gets ``grace_s`` seconds to finish (its outputs are not published
        once closing); the open-vocabulary thread is stopped in the same time. Returns True
        when every thread ended, False when one is still busy inside a model call: the caller
        must then end the process without interpreter finalization (:func:`main` does), since
        finalization would stop that thread inside C++ code and abort the process. Idempotent.
        """
        if self._closed:
            return True
        self._closed = True
        deadline = time.monotonic() + grace_s
        with self._publish_lock:
            self._closing = True
        if self._slots is not None:
            self._slots.close()
        finished = True
        if self._worker is not None:
            self._worker.join(max(0.0, deadline - time.monotonic()))
            finished = not self._worker.is_alive()
        if self._overlap is not None:  # the frame being finished (not published: closing)
            finished = self._overlap.close(max(0.0, deadline - time.monotonic())) and finished
        if not finished:
            self.get_logger().warning(
                f"abandoning the frame in progress (still busy after {grace_s:g} s)"
            )
        if self.pipeline is not None and finished:
            closer = threading.Thread(target=self.pipeline.close, name="sfs-close", daemon=True)
            closer.start()
            closer.join(max(0.0, deadline - time.monotonic()))
            if closer.is_alive():
                finished = False
                self.get_logger().warning(
                    f"abandoning the open-vocabulary pass in progress (still busy after "
                    f"{grace_s:g} s)"
                )
        LOG.removeHandler(self._log_handler)
        LOG.propagate, level = self._log_saved
        LOG.setLevel(level)
        if finished:
            self.destroy_node()
        return finished


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


_TYPE_MISMATCH = re.compile(
    r"Trying to set parameter '(?P<name>[^']+)' to '(?P<value>[^']*)' of type '(?P<got>\w+)', "
    r"expecting type '(?P<want>\w+)'"
)


def _startup_message(exc: BaseException) -> str:
    """The fatal start-up line for ``exc``, with a hint for the usual ``-p x:=1`` mistakes."""
    text = str(exc)
    mismatch = _TYPE_MISMATCH.search(text)
    if isinstance(exc, InvalidParameterTypeException) and mismatch:
        name, value = mismatch["name"], mismatch["value"]
        got, want = mismatch["got"], mismatch["want"]
        if want == "INTEGER" and got == "DOUBLE":
            whole = value.split(".")[0] or "0"
            text += f" (write integers without a decimal point, e.g. {name}:={whole})"
        elif want == "DOUBLE" and got == "INTEGER":
            text += f" (write floating-point values with a decimal point, e.g. {name}:={value}.0)"
        elif want == "STRING":
            text += f" (quote the value to pass it as a string, e.g. {name}:=\"'{value}'\")"
    elif not isinstance(exc, STARTUP_ERRORS):
        text = f"{type(exc).__name__}: {text}"
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


def main(
    args: list[str] | None = None,
    pipeline_factory: Callable[[dict[str, Any]], Pipeline] | None = None,
) -> int:
    """Run the node until SIGINT/SIGTERM; returns the process exit code.

    0 after a clean shutdown, 1 when the configuration cannot start (one fatal log line, e.g.
    missing weights), 2 on unexpected command-line arguments. ``pipeline_factory`` builds the
    pipeline from the validated configuration (default :meth:`Pipeline.from_config`): the
    seam through which tests run the real node around a pipeline with injected faults.
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
    code = 0
    try:
        node = SfsNode(pipeline_factory)
        try:
            node.setup()
        except _Interrupted:
            raise
        except Exception as exc:  # every start-up failure: one fatal line, exit code 1
            node.get_logger().fatal(f"cannot start: {_startup_message(exc)}")
            node.get_logger().debug(traceback.format_exc())
            code = 1
            return code
        spinning = True
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.1)
        node.get_logger().info("shutting down")
        return code
    except (_Interrupted, ExternalShutdownException):
        return code
    finally:
        spinning = True  # a second signal during clean-up only sets the event
        if executor is not None:
            executor.shutdown(timeout_sec=0.5)
        finished = node.close() if node is not None else True
        rclpy.try_shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if not finished or _busy_threads():
            _exit_now(code)


def _busy_threads() -> list[str]:
    """Names of the Python threads still running besides this one."""
    current = threading.current_thread()
    return [t.name for t in threading.enumerate() if t is not current and t.is_alive()]


def _exit_now(code: int) -> None:
    """End the process with ``code`` while a thread is still inside a model call.

    Interpreter finalization would stop such a thread where it next touches Python, from
    inside C++ (torch, rclpy), which aborts the process ("terminate called without an active
    exception", exit 134). The node is already shut down and its outputs are flushed, so the
    process ends here, without finalization.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
