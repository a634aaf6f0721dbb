# SPDX-License-Identifier: AGPL-3.0-or-later
"""``demo_camera``: a stand-in camera that plays a video, images or a panning sequence.

Run::

    python -m sfs_ros.demo.camera --ros-args -r image:=/camera/image_raw \\
        -p source:=samples -p rate_hz:=2.0 -p width:=640 -p height:=480 -p max_frames:=30

Publishes ``sensor_msgs/Image`` on ``image`` (relative, so remapping and namespaces work), or
with ``transport:=compressed`` a JPEG ``sensor_msgs/CompressedImage`` on ``image/compressed``
(which follows a remapped ``image``: ``-r image:=/cam/image_raw`` → ``/cam/image_raw/compressed``,
as with image_transport).
Each header has ``stamp = now`` and ``frame_id`` from the parameter. Nothing is published (and
no frame counted) before the publisher has a subscriber, so the first frames are not lost on
a node that is still starting; a log line says that it waits (with ground truth, also up to
10 s for a subscriber of the ground truth). With ``max_frames`` > 0 the
process exits 0 after that many frames. It also reports ``frames_published`` on
``/diagnostics`` (status name ``demo_camera: <topic>``), which the recorder uses as "frames in".

Source ``tiny-world`` (:mod:`sfs_ros.demo.tiny_world`): a camera panning over a tiny-world
scene (world ``tiny_world_seed``, ``tiny_world_frames`` frames ``tiny_world_step`` pixels apart,
then from the start again). Its ground truth goes out with every frame: a ``mono8`` Image of
tiny-world class values (``sfs_ros.world.classes.CLASSES``) with the same header, on
``<image>/ground_truth`` (following a remapped ``image`` like ``image/compressed``), published
just before the frame, so a recorder pairs the node's label maps with it by stamp.

Parameters: ``source`` (``samples`` | ``synthetic`` | ``tiny-world`` | a video | an image | a
folder of images), ``tiny_world_seed`` / ``tiny_world_frames`` / ``tiny_world_step``,
``rate_hz``, ``width`` / ``height`` (0 = the source's size), ``frame_id``, ``loop``,
``max_frames`` (0 = forever), ``encoding`` (rgb8 | bgr8), ``transport`` (raw | compressed),
``jpeg_quality``, ``qos`` (reliable | best_effort), ``wait_for_subscriber``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import IntegerRange, ParameterDescriptor
from rclpy.duration import Duration
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from sfs_ros.demo import tiny_world
from sfs_ros.ros.conversions import to_image_msg
from sfs_ros.ros.signals import StopFlag
from sfs_ros.ros.tool_node import run_tool_node
from sfs_ros.samples import SamplesNotFoundError, frame_sequence

ENCODINGS = ("rgb8", "bgr8")
TRANSPORTS = ("raw", "compressed")
QOS_CHOICES = ("reliable", "best_effort")
_WAIT_LOG_PERIOD_S = 10.0
_ACK_TIMEOUT_S = 3.0
_SETTLE_S = 0.5
_TRUTH_WAIT_S = 10.0  # source tiny-world: how long to wait for a ground-truth subscriber


@dataclass(frozen=True)
class CameraConfig:
    """The validated parameters of :class:`DemoCamera`."""

    source: str
    rate_hz: float
    width: int
    height: int
    frame_id: str
    loop: bool
    max_frames: int
    encoding: str
    transport: str
    jpeg_quality: int
    qos: str
    wait_for_subscriber: bool
    tiny_world_seed: int
    tiny_world_frames: int
    tiny_world_step: int

    def __post_init__(self) -> None:
        for name, value, choices in (
            ("encoding", self.encoding, ENCODINGS),
            ("transport", self.transport, TRANSPORTS),
            ("qos", self.qos, QOS_CHOICES),
        ):
            if value not in choices:
                raise ValueError(f"parameter {name}: {value!r} is not one of {choices}")
        if not 0 < self.rate_hz <= 1000:
            raise ValueError(f"parameter rate_hz must be in (0, 1000], got {self.rate_hz}")


def _descriptor(description: str, int_range: tuple[int, int] | None = None) -> ParameterDescriptor:
    desc = ParameterDescriptor(description=description, read_only=True)
    if int_range is not None:
        desc.integer_range = [IntegerRange(from_value=int_range[0], to_value=int_range[1], step=1)]
    return desc


_PARAMS: tuple[tuple[str, Any, ParameterDescriptor], ...] = (
    (
        "source",
        "samples",
        _descriptor(
            "samples | synthetic | tiny-world (with ground truth) | path of a video, an image "
            "or a folder of images"
        ),
    ),
    ("rate_hz", 10.0, _descriptor("frames per second (> 0)")),
    ("width", 640, _descriptor("output width in pixels, 0 = the source's", (0, 16384))),
    ("height", 480, _descriptor("output height in pixels, 0 = the source's", (0, 16384))),
    ("frame_id", "camera_optical_frame", _descriptor("header.frame_id of every frame")),
    ("loop", True, _descriptor("start the source over at its end")),
    ("max_frames", 0, _descriptor("exit after this many frames, 0 = never", (0, 2**31 - 1))),
    ("encoding", "rgb8", _descriptor("rgb8 | bgr8 (raw transport)")),
    (
        "transport",
        "raw",
        _descriptor("raw (Image on image) | compressed (JPEG on image/compressed)"),
    ),
    ("jpeg_quality", 90, _descriptor("JPEG quality (compressed transport)", (1, 100))),
    ("qos", "reliable", _descriptor("reliable | best_effort (KEEP_LAST)")),
    ("wait_for_subscriber", True, _descriptor("publish only once a subscriber is matched")),
    (
        "tiny_world_seed",
        tiny_world.DEFAULT_SEED,
        _descriptor("source tiny-world: world seed", (0, 2**31 - 1)),
    ),
    (
        "tiny_world_frames",
        tiny_world.DEFAULT_FRAMES,
        _descriptor("source tiny-world: frames of one pan before it starts over", (1, 10**5)),
    ),
    (
        "tiny_world_step",
        tiny_world.DEFAULT_STEP,
        _descriptor("source tiny-world: pan per frame in pixels", (0, 4096)),
    ),
)


def declare_parameters(node: Node, params: Iterable[tuple[str, Any, ParameterDescriptor]]) -> dict:
    """Declare ``params`` on ``node`` and return their values by name.

    Float parameters are declared with dynamic typing and converted here, so that
    ``-p rate_hz:=2`` (an integer on the command line) works as well as ``2.0``.

    Raises:
        ValueError: a float parameter was given a value that is not a number.
        rclpy.exceptions.ParameterException: rclpy refused a value (type or range).
    """
    values = {}
    for name, default, descriptor in params:
        if isinstance(default, float):
            descriptor.dynamic_typing = True
        value = node.declare_parameter(name, default, descriptor).value
        if isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"parameter {name}: expected a number, got {value!r}")
            value = float(value)
        values[name] = value
    return values


class DemoCamera(Node):
    """Publishes frames of a :func:`sfs_ros.samples.frame_sequence` at a fixed rate."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("demo_camera", **kwargs)
        self.config = CameraConfig(**declare_parameters(self, _PARAMS))
        cfg = self.config
        self._frames: Iterator[tuple[np.ndarray, np.ndarray | None]] = _frames_of(cfg)
        reliability = (
            ReliabilityPolicy.RELIABLE if cfg.qos == "reliable" else ReliabilityPolicy.BEST_EFFORT
        )
        # Reliable keeps 5 frames so that a subscriber still completing discovery gets the
        # first ones repaired (RViz's default depth, too); best effort keeps only the newest.
        depth = 5 if cfg.qos == "reliable" else 1
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=reliability)
        if cfg.transport == "raw":
            self._pub = self.create_publisher(Image, "image", qos)
        else:
            self._pub = self.create_publisher(CompressedImage, self._sub_topic("compressed"), qos)
        self._truth_pub = None
        if cfg.source == tiny_world.SOURCE_NAME:
            self._truth_pub = self.create_publisher(Image, self._sub_topic("ground_truth"), qos)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.published = 0
        self.started = False
        self.finished = False
        self.error: str | None = None
        self._last_wait_log = -float("inf")
        self._matched_at: float | None = None
        self._first_stamp: float | None = None
        self.create_timer(1.0 / cfg.rate_hz, self._tick)
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(
            f"source '{cfg.source}' → {self._pub.topic_name} ({cfg.transport}, {cfg.encoding}, "
            f"{cfg.width or 'native'}x{cfg.height or 'native'}, {cfg.rate_hz:g} Hz, "
            f"qos {cfg.qos}, max_frames {cfg.max_frames or 'unlimited'})"
            + (f"; ground truth → {self._truth_pub.topic_name}" if self._truth_pub else "")
        )

    def _sub_topic(self, suffix: str) -> str:
        """``<image>/<suffix>`` after remapping, as image_transport names ``compressed``.

        ``-r image:=/camera/image_raw`` does not remap ``image/compressed`` (a different name),
        so unless ``image/<suffix>`` is remapped itself it follows the ``image`` topic.
        """
        remapped = self.resolve_topic_name(f"image/{suffix}")
        if remapped != self.resolve_topic_name(f"image/{suffix}", only_expand=True):
            return remapped
        return self.resolve_topic_name("image") + f"/{suffix}"

    # ------------------------------------------------------------------------------ frames
    def _tick(self) -> None:
        if self.finished:
            return
        if not self.started:
            if not self._ready_to_start():
                return
            self.started = True
            self._first_stamp = time.monotonic()
            self.get_logger().info(f"publishing on {self._pub.topic_name}")
        try:
            frame, truth = next(self._frames)
        except StopIteration:
            self.get_logger().info(f"source ended after {self.published} frames")
            self._finish()
            return
        except (ValueError, OSError) as exc:
            self.error = f"cannot read source '{self.config.source}': {exc}"
            self.get_logger().error(self.error)
            self._finish()
            return
        msg = self._to_msg(frame)
        if self._truth_pub is not None and truth is not None:
            self._truth_pub.publish(to_image_msg(truth, "mono8", msg.header, Image))
        self._pub.publish(msg)
        self.published += 1
        if self.config.max_frames and self.published >= self.config.max_frames:
            elapsed = time.monotonic() - (self._first_stamp or time.monotonic())
            self.get_logger().info(f"published {self.published} frames in {elapsed:.1f} s")
            self._finish()

    def _ready_to_start(self) -> bool:
        """True once a subscriber is matched and discovery had ``_SETTLE_S`` to finish.

        The publisher sees the match before the subscriber has matched it back; frames sent
        in between are lost on a best-effort subscriber, hence the short settle time.
        """
        if not self.config.wait_for_subscriber:
            return True
        now = time.monotonic()
        if self._pub.get_subscription_count() == 0:
            self._matched_at = None
            if now - self._last_wait_log >= _WAIT_LOG_PERIOD_S:
                self._last_wait_log = now
                self.get_logger().info(
                    f"waiting for a subscriber on {self._pub.topic_name} before publishing"
                )
            return False
        if self._matched_at is None:
            self._matched_at = now
        if now - self._matched_at < _SETTLE_S:
            return False
        return self._truth_ready(now - self._matched_at)

    def _truth_ready(self, waited_s: float) -> bool:
        """With ground truth: True once it has a subscriber too (a recorder), or after
        ``_TRUTH_WAIT_S`` without one (then it says so: nothing will be scored)."""
        if self._truth_pub is None or self._truth_pub.get_subscription_count() > 0:
            return True
        if waited_s < _TRUTH_WAIT_S:
            return False
        self.get_logger().warning(
            f"no subscriber on {self._truth_pub.topic_name} after {_TRUTH_WAIT_S:g} s: "
            "publishing anyway; ground truth sent before a recorder subscribes is lost"
        )
        return True

    def _to_msg(self, rgb: np.ndarray) -> Image | CompressedImage:
        cfg = self.config
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=cfg.frame_id)
        if cfg.transport == "compressed":
            bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
            ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality])
            if not ok:
                raise RuntimeError("OpenCV failed to encode a JPEG frame")
            msg = CompressedImage(header=header, format=f"{cfg.encoding}; jpeg compressed bgr8")
            msg.data = jpeg.tobytes()
            return msg
        pixels = rgb if cfg.encoding == "rgb8" else rgb[:, :, ::-1]
        msg = to_image_msg(pixels, "rgb8", header, Image)
        msg.encoding = cfg.encoding  # same byte layout as rgb8; the name gives the channel order
        return msg

    def _finish(self) -> None:
        self.finished = True
        self._publish_diagnostics()

    # ------------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        cfg = self.config
        if self.error:
            level, message = DiagnosticStatus.ERROR, self.error
        elif self.finished:
            level, message = DiagnosticStatus.OK, "finished"
        elif self.started:
            level, message = DiagnosticStatus.OK, "publishing"
        else:
            level, message = DiagnosticStatus.OK, "waiting for a subscriber"
        status = DiagnosticStatus(
            level=level,
            name=f"demo_camera: {self._pub.topic_name}",
            message=message,
            hardware_id="demo_camera",
            values=[
                KeyValue(key="frames_published", value=str(self.published)),
                KeyValue(key="rate_hz", value=f"{cfg.rate_hz:g}"),
                KeyValue(key="source", value=cfg.source),
                KeyValue(key="transport", value=cfg.transport),
                KeyValue(key="encoding", value=cfg.encoding),
            ],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(array)

    def flush(self, timeout_s: float = _ACK_TIMEOUT_S) -> None:
        """Wait until reliable subscribers acknowledged what was published (bounded)."""
        for pub in (self._pub, self._truth_pub, self._diag_pub):
            if pub is not None and pub.qos_profile.reliability == ReliabilityPolicy.RELIABLE:
                pub.wait_for_all_acked(Duration(seconds=timeout_s))


def _frames_of(cfg: CameraConfig) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """(RGB frame, ground truth or None) pairs of the configured source."""
    if cfg.source == tiny_world.SOURCE_NAME:
        scenes = tiny_world.scene_stream(
            cfg.tiny_world_seed,
            cfg.width,
            cfg.height,
            frames=cfg.tiny_world_frames,
            step=cfg.tiny_world_step,
            loop=cfg.loop,
        )
        return ((scene.rgb, scene.semantic) for scene in scenes)
    return ((frame, None) for frame in frame_sequence(cfg.source, cfg.width, cfg.height, cfg.loop))


def main(argv: list[str] | None = None) -> int:
    """Run the demo camera; 0 after ``max_frames`` (or on SIGINT/SIGTERM), 1 when the source
    cannot be read, 2 on invalid parameters."""

    def play(node: DemoCamera, stop: StopFlag) -> int:
        while not stop and not node.finished:
            rclpy.spin_once(node, timeout_sec=0.1)
        if node.finished:
            node.flush()
        return 1 if node.error else 0

    start_errors = {SamplesNotFoundError: 1, ValueError: 2, ParameterException: 2}
    return run_tool_node(argv, "demo_camera", DemoCamera, play, start_errors)


if __name__ == "__main__":
    sys.exit(main())
