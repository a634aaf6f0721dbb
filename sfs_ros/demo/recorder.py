# SPDX-License-Identifier: AGPL-3.0-or-later
"""``recorder``: records what the sfs node publishes and prints a summary of the run.

Run (in the node's namespace, so the relative topics resolve to ``/sfs/...``)::

    python -m sfs_ros.demo.recorder --ros-args -r __ns:=/sfs \\
        -p output_dir:=demo_out -p max_frames:=30 -p timeout_s:=20.0

Subscribes to ``semantic`` (mono16 class ids) and ``overlay`` (rgb8), both RELIABLE, to
``legend`` (RELIABLE + TRANSIENT_LOCAL, so a late recorder still gets it), to ``/diagnostics``
and to ``ground_truth`` (mono8 tiny-world class values with the input frame's header, as the
demo camera's ``tiny-world`` source publishes them on ``<image>/ground_truth``; remap it there).
Writes into ``output_dir``:

* ``overlay_<n:06d>.png`` and ``semantic_<n:06d>.png`` (16-bit class ids) for every
  ``save_every``-th frame of each topic (0 = none);
* ``legend.json``: ``{"revision", "vocabulary", "classes": [{"id", "name", "color", "source"}]}``
  (the layout of ``sfs-segment``'s legend.json, README.md), rewritten on every legend change;
* ``summary.json`` on exit, also printed and written as text (``summary.txt``). Keys:
  ``frames_in`` (frames the camera published, from the demo camera's ``/diagnostics``; else
  the frames the node received), ``frames_out`` (semantic frames received here), ``drops`` /
  ``drops_by_reason`` (the node's ``/diagnostics``), ``fps`` ((frames − 1) / time between the
  first and the last), ``latency_ms`` (now − header stamp at receipt: median, p90, min, max),
  ``class_ids_seen``, ``classes_seen`` (id, name, share of pixels), ``random_weights``,
  ``models`` (the ``models`` parameter: which models the demo runs), ``exit_reason``, the last
  diagnostics values of the node and the camera, and ``ground_truth`` (None without ground
  truth): label maps paired with their ground truth by stamp and scored, per-class IoU, mIoU
  and pixel accuracy (:mod:`sfs_ros.demo.scoring`). The text summary ends with the mIoU.

It exits after ``max_frames`` semantic frames (0 = no limit), ``timeout_s`` after the last frame
(0 = never), ``startup_timeout_s`` without any frame (0 = wait forever), or on SIGINT/SIGTERM;
exit code 0 when at least one frame was received, 1 otherwise.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from sfs_ros.demo.camera import declare_parameters
from sfs_ros.demo.scoring import GroundTruthScorer
from sfs_ros.labels import SOURCE_OPEN_VOCAB, legend_msg_to_dict
from sfs_ros.msg import ClassLegend
from sfs_ros.ros.conversions import ImageConversionError, image_msg_to_rgb
from sfs_ros.ros.qos import latched, reliable
from sfs_ros.ros.signals import StopFlag
from sfs_ros.ros.tool_node import run_tool_node
from sfs_ros.world.classes import tiny_world_vocabulary

IMAGE_QOS = reliable(10)
DIAGNOSTICS_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.RELIABLE
)
RANDOM_WEIGHTS_MARK = "RANDOM WEIGHTS"
CAMERA_STATUS_PREFIX = "demo_camera: "
# After the last expected frame, keep listening this long for the final /diagnostics.
_FINAL_DIAGNOSTICS_S = 1.2
_MAX_LABEL = 65536


# ---------------------------------------------------------------------------- pure helpers
def label_image(msg: Any) -> np.ndarray:
    """The class ids of a ``mono16`` / ``16UC1`` / ``mono8`` Image as an ``(H, W)`` array.

    Honours ``step`` (row padding) and ``is_bigendian``; returns native-order uint16 (or
    uint8 for mono8), a copy.

    Raises:
        ValueError: another encoding, or fewer than ``height * step`` bytes.
    """
    itemsize = {"mono16": 2, "16UC1": 2, "mono8": 1}.get(str(msg.encoding))
    if itemsize is None:
        raise ValueError(f"expected a mono16 label image, got encoding {msg.encoding!r}")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    if step < width * itemsize or buf.size < height * step:
        raise ValueError(
            f"label image {width}x{height}: step {step}, {buf.size} bytes is inconsistent"
        )
    rows = np.ascontiguousarray(buf[: height * step].reshape(height, step)[:, : width * itemsize])
    if itemsize == 1:
        return rows.copy()
    dtype = np.dtype(">u2" if msg.is_bigendian else "<u2")
    return rows.view(dtype).astype(np.uint16).reshape(height, width)


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q``-th percentile (linear interpolation), None for no values."""
    data = list(values)
    return float(np.percentile(data, q)) if data else None


def legend_to_dict(msg: Any) -> dict[str, Any]:
    """A ``ClassLegend`` message as the ``legend.json`` document (README.md)."""
    return legend_msg_to_dict(msg)


@dataclass(frozen=True)
class StatusView:
    """The parts of one ``diagnostic_msgs/DiagnosticStatus`` the summary uses."""

    name: str
    hardware_id: str
    level: int
    message: str
    values: dict[str, str]

    @classmethod
    def from_msg(cls, status: Any) -> StatusView:
        """Convert a DiagnosticStatus (``level`` is bytes in rclpy)."""
        level = status.level
        level = level[0] if isinstance(level, bytes | bytearray) else int(level)
        return cls(
            name=str(status.name),
            hardware_id=str(status.hardware_id),
            level=int(level),
            message=str(status.message),
            values={str(kv.key): str(kv.value) for kv in status.values},
        )


def _as_int(text: str | None) -> int | None:
    try:
        return None if text is None else int(text)
    except ValueError:
        return None


@dataclass
class RecorderStats:
    """Everything the recorder counts; ROS-free so that it is unit-testable.

    ``on_*`` methods are called by the node's callbacks; :meth:`summary` builds the document.
    """

    semantic_topic: str = "semantic"
    frames_out: int = 0
    overlays: int = 0
    saved: int = 0
    first_at: float | None = None
    last_at: float | None = None
    latencies_ms: list[float] = field(default_factory=list)
    pixels: np.ndarray = field(default_factory=lambda: np.zeros(_MAX_LABEL, np.int64))
    sizes: set[tuple[int, int]] = field(default_factory=set)
    frame_ids: set[str] = field(default_factory=set)
    encodings: set[str] = field(default_factory=set)
    legend: dict[str, Any] | None = None
    statuses: dict[str, StatusView] = field(default_factory=dict)
    random_seen: bool = False
    bad_frames: int = 0
    models: str = ""
    scorer: GroundTruthScorer = field(
        default_factory=lambda: GroundTruthScorer(tiny_world_vocabulary())
    )

    def on_semantic(
        self, labels: np.ndarray, encoding: str, frame_id: str, latency_ms: float, now: float
    ) -> None:
        """One label image received at monotonic time ``now``."""
        self.frames_out += 1
        self.first_at = now if self.first_at is None else self.first_at
        self.last_at = now
        self.latencies_ms.append(latency_ms)
        counts = np.bincount(labels.ravel(), minlength=1)
        self.pixels[: counts.size] += counts
        self.sizes.add((int(labels.shape[1]), int(labels.shape[0])))
        self.frame_ids.add(frame_id)
        self.encodings.add(encoding)

    def on_overlay(self, now: float) -> None:
        """One overlay received."""
        self.overlays += 1
        self.last_at = now

    def on_status(self, status: StatusView) -> None:
        """One diagnostics status; the newest per name is kept."""
        self.statuses[status.name] = status
        if RANDOM_WEIGHTS_MARK in status.message.upper():
            self.random_seen = True

    # ------------------------------------------------------------------------ summary
    def node_statuses(self) -> list[StatusView]:
        """The sfs node's camera statuses for this recorder's semantic topic.

        Matched by the ``output_topic`` value; statuses without one that carry
        ``frames_dropped`` are used when none matches (e.g. a node that does not report it).
        """
        node = [s for s in self.statuses.values() if "frames_dropped" in s.values]
        mine = [s for s in node if s.values.get("output_topic") == self.semantic_topic]
        return mine or [s for s in node if "output_topic" not in s.values]

    def camera_status(self, input_topics: Iterable[str]) -> StatusView | None:
        """The demo camera's status for the node's input topic (or the only camera status)."""
        cams = {
            s.name[len(CAMERA_STATUS_PREFIX) :]: s
            for s in self.statuses.values()
            if s.name.startswith(CAMERA_STATUS_PREFIX)
        }
        for topic in input_topics:
            if topic in cams:
                return cams[topic]
        return next(iter(cams.values())) if len(cams) == 1 else None

    def summary(self, exit_reason: str, duration_s: float) -> dict[str, Any]:
        """The ``summary.json`` document."""
        node = self.node_statuses()
        camera = self.camera_status(s.values.get("input_topic", "") for s in node)
        camera_frames = _as_int(camera.values.get("frames_published")) if camera else None
        node_in = [_as_int(s.values.get("frames_in")) for s in node]
        node_frames_in = sum(v for v in node_in if v is not None) if node else None
        drops = [_as_int(s.values.get("frames_dropped")) for s in node]
        reasons: dict[str, int] = {}
        for status in node:
            for key, value in status.values.items():
                if key.startswith("dropped.") and (count := _as_int(value)) is not None:
                    reasons[key[len("dropped.") :]] = reasons.get(key[len("dropped.") :], 0) + count
        random_values = [s.values.get("random_weights") for s in node]
        random_weights: bool | None = None
        if self.random_seen or any(v not in (None, "", "none") for v in random_values):
            random_weights = True
        elif node:
            random_weights = False
        span = (self.last_at or 0.0) - (self.first_at or 0.0)
        fps = (self.frames_out - 1) / span if self.frames_out >= 2 and span > 0 else None
        names = {c["id"]: c["name"] for c in (self.legend or {}).get("classes", [])}
        ids = np.flatnonzero(self.pixels)
        total = int(self.pixels.sum())
        return {
            "semantic_topic": self.semantic_topic,
            "frames_in": camera_frames if camera_frames is not None else node_frames_in,
            "frames_in_source": (
                "camera" if camera_frames is not None else ("node" if node else None)
            ),
            "frames_out": self.frames_out,
            "node_frames_in": node_frames_in,
            "node_frames_processed": (
                sum(_as_int(s.values.get("frames_processed")) or 0 for s in node) if node else None
            ),
            "drops": sum(d for d in drops if d is not None) if node else None,
            "drops_by_reason": reasons,
            "overlays_received": self.overlays,
            "images_saved": self.saved,
            "bad_frames": self.bad_frames,
            "fps": _round(fps, 3),
            "duration_s": _round(duration_s, 3),
            "latency_ms": {
                "median": _round(percentile(self.latencies_ms, 50), 1),
                "p90": _round(percentile(self.latencies_ms, 90), 1),
                "min": _round(min(self.latencies_ms, default=None), 1),
                "max": _round(max(self.latencies_ms, default=None), 1),
            },
            "class_ids_seen": [int(i) for i in ids],
            "classes_seen": [
                {
                    "id": int(i),
                    "name": names.get(int(i)),
                    "pixel_share": round(int(self.pixels[i]) / total, 5),
                }
                for i in ids
            ],
            "legend_revision": self.legend["revision"] if self.legend else None,
            "open_vocabulary_names": [
                c["name"]
                for c in (self.legend or {}).get("classes", [])
                if c.get("source") == SOURCE_OPEN_VOCAB
            ],
            "vocabulary": self.legend["vocabulary"] if self.legend else None,
            "resolutions": sorted([w, h] for w, h in self.sizes),
            "frame_ids": sorted(self.frame_ids),
            "encodings": sorted(self.encodings),
            "random_weights": random_weights,
            "models": self.models or None,
            "exit_reason": exit_reason,
            "diagnostics": {
                "node": {s.name: {"message": s.message, **s.values} for s in node},
                "camera": (
                    {camera.name: {"message": camera.message, **camera.values}} if camera else {}
                ),
            },
            "ground_truth": self.scorer.results(self.legend),
        }


def _stamp_ns(stamp: Any) -> int:
    """A ``builtin_interfaces/Time`` as integer nanoseconds (the pairing key)."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


def format_summary(summary: Mapping[str, Any], output_dir: str) -> str:
    """The human-readable summary printed on exit."""

    def show(value: Any, unit: str = "") -> str:
        return "unknown" if value is None else f"{value}{unit}"

    lat = summary["latency_ms"]
    classes = summary["classes_seen"]
    top = sorted(classes, key=lambda c: -c["pixel_share"])[:8]
    top_text = ", ".join(f"{c['id']} {c['name'] or '?'} ({c['pixel_share']:.0%})" for c in top)
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(summary["drops_by_reason"].items()))
    if summary["random_weights"] is True:
        weights = "RANDOM WEIGHTS (pipeline and timings are real, the labels are not)"
    elif summary["random_weights"] is False:
        weights = "trained (not random)"
    else:
        weights = "unknown (no diagnostics from the node)"
    if summary.get("models"):
        weights += f"; {summary['models']}"
    lines = [
        f"== sfs recorder summary ({summary['semantic_topic']}) ==",
        f"frames in:     {show(summary['frames_in'])}"
        + (f" (from the {summary['frames_in_source']})" if summary["frames_in_source"] else ""),
        f"frames out:    {summary['frames_out']} label images received, "
        f"{summary['overlays_received']} overlays, {summary['images_saved']} PNGs saved",
        f"drops:         {show(summary['drops'])}" + (f" ({reasons})" if reasons else ""),
        f"output rate:   {show(summary['fps'], ' fps')}",
        f"latency:       median {show(lat['median'], ' ms')}, p90 {show(lat['p90'], ' ms')} "
        "(camera stamp to receipt here)",
        f"classes seen:  {len(classes)}" + (f"; largest: {top_text}" if top else ""),
        f"weights:       {weights}",
        f"stopped:       {summary['exit_reason']} after {show(summary['duration_s'], ' s')}",
        f"outputs:       {output_dir}/ (summary.json, legend.json, overlay_*.png, semantic_*.png)",
    ]
    lines += _open_vocabulary_lines(summary)
    lines += _score_lines(summary.get("ground_truth"))
    return "\n".join(lines)


def _open_vocabulary_lines(summary: Mapping[str, Any]) -> list[str]:
    """The names the open-vocabulary branch added to the legend (its later revisions), with
    their IoU where the ground truth has them."""
    names = summary.get("open_vocabulary_names") or []
    if not names:
        return []
    iou = (summary.get("ground_truth") or {}).get("iou") or {}
    shown = ", ".join(
        f"{n} (IoU {iou[n]:.2f})" if iou.get(n) is not None else n for n in names
    )
    return [f"open vocab.:   legend revision {summary['legend_revision']} added {shown}"]


def _score_lines(score: Mapping[str, Any] | None) -> list[str]:
    """The ground-truth lines of the text summary (none without ground truth); mIoU last."""
    if score is None:
        return []
    waiting = (
        f"; {score['ground_truth_without_label_map']} frames without a label map (node drops)"
        if score["ground_truth_without_label_map"]
        else ""
    )
    lines = [
        f"ground truth:  {score['frames_scored']} label images scored against the "
        f"{score['vocabulary']} ground truth (paired by stamp){waiting}"
    ]
    if score["error"]:
        return [*lines, f"mIoU:          unknown ({score['error']})"]
    ranked = sorted(score["iou"].items(), key=lambda kv: -(kv[1] or 0.0))
    lines += [
        "IoU per class: " + ", ".join(f"{name} {iou:.2f}" for name, iou in ranked),
        f"pixel acc.:    {score['pixel_accuracy']:.3f} (share of pixels labelled as the truth)",
        f"mIoU:          {score['miou']:.3f} over the {score['classes_scored']} classes in the "
        "ground truth or the labels",
    ]
    return lines


def _write_json(path: Path, document: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(tmp, path)


# ------------------------------------------------------------------------------ the node
@dataclass(frozen=True)
class RecorderConfig:
    """The recorder's parameters."""

    output_dir: str
    save_every: int
    max_frames: int
    timeout_s: float
    startup_timeout_s: float
    models: str

    def __post_init__(self) -> None:
        for name in ("timeout_s", "startup_timeout_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"parameter {name} must be >= 0, got {getattr(self, name)}")


def _descriptor(description: str, int_range: tuple[int, int] | None = None):
    desc = ParameterDescriptor(description=description, read_only=True)
    if int_range is not None:
        desc.integer_range = [IntegerRange(from_value=int_range[0], to_value=int_range[1], step=1)]
    return desc


_PARAMS: tuple[tuple[str, Any, ParameterDescriptor], ...] = (
    ("output_dir", "sfs_recording", _descriptor("folder for PNGs, legend.json, summary.json")),
    ("save_every", 1, _descriptor("save every Nth overlay / label image, 0 = none", (0, 10**6))),
    (
        "max_frames",
        0,
        _descriptor("stop after this many label images, 0 = no limit", (0, 2**31 - 1)),
    ),
    ("timeout_s", 10.0, _descriptor("stop this long after the last frame, 0 = never")),
    (
        "startup_timeout_s",
        0.0,
        _descriptor("stop if no frame arrives within this time, 0 = wait forever"),
    ),
    ("models", "", _descriptor("which models the node runs, for the summary (free text)")),
)


class Recorder(Node):
    """Subscribes to the sfs outputs, saves images and counts for :class:`RecorderStats`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("recorder", **kwargs)
        self.config = RecorderConfig(**declare_parameters(self, _PARAMS))
        self.out = Path(self.config.output_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self._semantic = self.create_subscription(Image, "semantic", self._on_semantic, IMAGE_QOS)
        self.create_subscription(Image, "overlay", self._on_overlay, IMAGE_QOS)
        self.create_subscription(ClassLegend, "legend", self._on_legend, latched())
        self.create_subscription(
            DiagnosticArray, "/diagnostics", self._on_diagnostics, DIAGNOSTICS_QOS
        )
        self._truth = self.create_subscription(
            Image, "ground_truth", self._on_ground_truth, IMAGE_QOS
        )
        self.stats = RecorderStats(
            semantic_topic=self._semantic.topic_name, models=self.config.models
        )
        self.started_at = time.monotonic()
        self._last_error_log = -float("inf")
        self.get_logger().info(
            f"recording {self._semantic.topic_name} (+ overlay, legend, /diagnostics, "
            f"{self._truth.topic_name}) into "
            f"{self.out}/; max_frames {self.config.max_frames or 'unlimited'}"
        )

    # ------------------------------------------------------------------------ callbacks
    def _latency_ms(self, stamp: Any) -> float:
        now_ns = self.get_clock().now().nanoseconds
        return (now_ns - (stamp.sec * 1_000_000_000 + stamp.nanosec)) / 1e6

    def _save(self, kind: str, index: int, image: np.ndarray) -> None:
        every = self.config.save_every
        if every <= 0 or index % every:
            return
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        path = self.out / f"{kind}_{index:06d}.png"
        if not cv2.imwrite(str(path), image):
            raise OSError(f"could not write {path}")
        self.stats.saved += 1

    def _bad_frame(self, topic: str, exc: Exception) -> None:
        self.stats.bad_frames += 1
        now = time.monotonic()
        if now - self._last_error_log > 5.0:
            self._last_error_log = now
            self.get_logger().error(f"cannot read a frame on {topic}: {exc}")

    def _on_semantic(self, msg: Image) -> None:
        latency = self._latency_ms(msg.header.stamp)
        try:
            labels = label_image(msg)
        except ValueError as exc:
            self._bad_frame(self._semantic.topic_name, exc)
            return
        index = self.stats.frames_out
        self.stats.on_semantic(labels, msg.encoding, msg.header.frame_id, latency, time.monotonic())
        if index == 0:
            self.get_logger().info(
                f"first label image: {msg.width}x{msg.height} {msg.encoding}, "
                f"frame_id '{msg.header.frame_id}', latency {latency:.0f} ms"
            )
        self._save("semantic", index, labels)
        self.stats.scorer.on_labels(_stamp_ns(msg.header.stamp), labels)

    def _on_ground_truth(self, msg: Image) -> None:
        try:
            truth = label_image(msg)
        except ValueError as exc:
            self._bad_frame(self._truth.topic_name, exc)
            return
        self.stats.scorer.on_ground_truth(_stamp_ns(msg.header.stamp), truth)

    def _on_overlay(self, msg: Image) -> None:
        try:
            rgb = image_msg_to_rgb(msg)
        except ImageConversionError as exc:
            self._bad_frame("overlay", exc)
            return
        index = self.stats.overlays
        self.stats.on_overlay(time.monotonic())
        self._save("overlay", index, rgb)

    def _on_legend(self, msg: ClassLegend) -> None:
        legend = legend_to_dict(msg)
        if legend == self.stats.legend:  # re-sent unchanged (e.g. for a new frame_id)
            return
        self.stats.legend = legend
        _write_json(self.out / "legend.json", legend)
        self.get_logger().info(
            f"legend revision {legend['revision']}: {len(legend['classes'])} classes "
            f"({legend['vocabulary']})"
        )

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            self.stats.on_status(StatusView.from_msg(status))

    # ------------------------------------------------------------------------ stopping
    def done(self) -> str | None:
        """Why the recording is over, or None while it goes on."""
        cfg, stats, now = self.config, self.stats, time.monotonic()
        if cfg.max_frames and stats.frames_out >= cfg.max_frames:
            return "max_frames"
        if stats.last_at is None:
            if cfg.startup_timeout_s and now - self.started_at > cfg.startup_timeout_s:
                return "startup_timeout"
        elif cfg.timeout_s and now - stats.last_at > cfg.timeout_s:
            return "timeout"
        return None

    def finish(self, reason: str) -> dict[str, Any]:
        """Write summary.json and print the summary; returns the summary."""
        summary = self.stats.summary(reason, time.monotonic() - self.started_at)
        _write_json(self.out / "summary.json", summary)
        text = format_summary(summary, str(self.out))
        (self.out / "summary.txt").write_text(text + "\n")
        print(text, flush=True)
        return summary


def main(argv: list[str] | None = None) -> int:
    """Record until done; exit code 0 when at least one label image arrived, 1 when none did,
    2 on invalid parameters."""

    def record(node: Recorder, stop: StopFlag) -> int:
        reason = None
        while reason is None:
            rclpy.spin_once(node, timeout_sec=0.1)
            reason = f"signal {signal.Signals(stop.signum).name}" if stop else node.done()
        if reason == "max_frames":  # the node's and camera's final counts are a second away
            deadline = time.monotonic() + _FINAL_DIAGNOSTICS_S
            while not stop and time.monotonic() < deadline:
                rclpy.spin_once(node, timeout_sec=0.1)
        summary = node.finish(reason)
        return 0 if summary["frames_out"] > 0 else 1

    start_errors = {ValueError: 2, ParameterException: 2}
    return run_tool_node(argv, "recorder", Recorder, record, start_errors)


if __name__ == "__main__":
    sys.exit(main())
