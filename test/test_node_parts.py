# SPDX-License-Identifier: AGPL-3.0-or-later
"""The node's ROS-free parts: input QoS matching, the waiting hint, windowed diagnostics
(rates, levels, latency flag, hardware id), the legend image, start-up messages, and one
source of defaults for the node, the launch file and config/sfs.yaml."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.exceptions import InvalidParameterTypeException
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

from sfs_ros.labels import LabelRegistry
from sfs_ros.params import PARAMS, ConfigError, defaults, load_config, validate
from sfs_ros.ros import diagnostics as diag
from sfs_ros.ros.frame_slot import SlotStats
from sfs_ros.ros.legend_image import ROW_H, draw_legend, swatch_color
from sfs_ros.ros.node import _startup_message
from sfs_ros.ros.qos import best_effort, describe, latched, match_publishers, reliable
from sfs_ros.ros.waiting import TopicGraph, waiting_hint
from sfs_ros.vocabularies import get_vocabulary

REPO = Path(__file__).resolve().parents[1]
OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


# ------------------------------------------------------------------------------ 1. input QoS
def test_auto_qos_matches_the_publishers_like_ros2_topic_echo():
    assert describe(match_publishers([])) == "best_effort/volatile"  # matches any camera
    assert describe(match_publishers([reliable(5)])) == "reliable/volatile"
    assert describe(match_publishers([reliable(5), best_effort(1)])) == "best_effort/volatile"
    assert describe(match_publishers([latched()])) == "reliable/transient_local"
    assert describe(match_publishers([latched(), reliable(1)])) == "reliable/volatile"
    profile = match_publishers([reliable(10)])
    assert profile.depth == 1
    assert profile.reliability == ReliabilityPolicy.RELIABLE
    assert profile.durability == DurabilityPolicy.VOLATILE


def test_input_qos_default_is_auto():
    assert defaults()["input_qos"] == "auto"
    assert validate("input_qos", "sensor_data") == "sensor_data"
    with pytest.raises(ConfigError):
        validate("input_qos", "best_effort")


def test_waiting_hint_without_publisher_names_topic_transport_and_candidates():
    graph = TopicGraph(
        topic="/sfs/image",
        transport="raw",
        qos_setting="auto",
        subscription_qos="best_effort/volatile",
        other_transport_topic="/sfs/image/compressed",
        other_transport_publishers=1,
        image_topics=["/camera/color/image_raw"],
    )
    hint = waiting_hint(graph)
    assert "no publisher on /sfs/image" in hint
    assert "/sfs/image/compressed has a publisher: use input_transport:=compressed" in hint
    assert "image topics seen: /camera/color/image_raw; remap with image:=<topic>" in hint


def test_waiting_hint_names_a_reliability_mismatch_and_large_frames():
    mismatch = TopicGraph(
        "/cam", "raw", "reliable", "reliable/volatile", publisher_qos=["best_effort/volatile"]
    )
    assert "QoS mismatch" in waiting_hint(mismatch)
    assert "input_qos:=auto" in waiting_hint(mismatch)
    large = TopicGraph(
        "/cam", "raw", "sensor_data", "best_effort/volatile", publisher_qos=["reliable/volatile"]
    )
    hint = waiting_hint(large)
    assert "1 publisher(s) (reliable/volatile) but no frame yet" in hint
    assert "best-effort subscription to a reliable camera loses large frames" in hint
    assert "fastdds_large_images.xml" in hint


# ------------------------------------------------------------------------------ 3. diagnostics
class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_rates_of_a_slow_camera_are_not_zero():
    """Frames 3 s apart: about 0.33 Hz (a 5 s window read 0.00 before)."""
    meter = diag.RateMeter()
    for i in range(6):
        meter.tick(100.0 + 3.0 * i)
    assert meter.rate(100.0 + 15.5) == pytest.approx(1 / 3)
    # the source stops: the rate falls instead of freezing, and reaches 0 past the window
    assert meter.rate(100.0 + 15.0 + 15.0) == pytest.approx(5 / 30)
    assert meter.rate(100.0 + 15.0 + diag.WINDOW_S + 1) == 0.0


def _stats(frames_in: int, processed: int, dropped: dict[str, int], last_in: float | None):
    return SlotStats(frames_in, processed, dropped, 0, 0, last_in)


def _status(monitor: diag.CameraMonitor, clock: Clock, stats: SlotStats, **kw):
    return diag.camera_status(
        name="/sfs/sfs: camera",
        hardware_id="cpu: test",
        stats=stats,
        snapshot=monitor.snapshot(),
        info={"input_topic": "/cam"},
        random_weights=(),
        now=clock.t,
        **kw,
    )


def test_every_frame_failing_is_an_error_and_most_failing_a_warning():
    clock = Clock()
    monitor = diag.CameraMonitor(clock=clock)
    for _ in range(23):
        monitor.on_input()
        monitor.on_drop("unsupported_encoding")
        clock.t += 0.5
    status = _status(monitor, clock, _stats(23, 0, {"unsupported_encoding": 23}, clock.t - 0.5))
    assert status.level == ERROR
    assert "every frame fails: 23 of 23" in status.message
    assert "unsupported_encoding: 23" in status.message
    for _ in range(10):  # some frames work again: most still fail -> WARN
        monitor.on_input()
        monitor.on_output(0.05, {"total": 5.0})
        clock.t += 0.5
    status = _status(monitor, clock, _stats(33, 10, {"unsupported_encoding": 23}, clock.t))
    assert status.level == WARN
    assert "most frames fail: 23 of 33" in status.message


def test_superseded_frames_are_a_note_not_a_failure():
    clock = Clock()
    monitor = diag.CameraMonitor(clock=clock)
    for i in range(30):
        monitor.on_input()
        if i % 3:
            monitor.on_drop("superseded")
        else:
            monitor.on_output(0.05, {"total": 5.0})
        clock.t += 0.1
    status = _status(monitor, clock, _stats(30, 10, {"superseded": 20}, clock.t))
    assert status.level == OK
    assert status.message.startswith("running; node slower than the camera: 20 of 30")


def test_input_without_output_for_the_stale_timeout_is_a_warning():
    clock = Clock()
    monitor = diag.CameraMonitor(clock=clock)
    monitor.on_input()
    monitor.on_output(0.05, {"total": 5.0})
    for _ in range(12):  # input keeps coming, nothing is published (e.g. a stuck model)
        clock.t += 1.0
        monitor.on_input()
    stats = _stats(13, 1, {}, clock.t)
    assert _status(monitor, clock, stats, stale_after_s=20.0).level == OK
    status = _status(monitor, clock, stats, stale_after_s=10.0)
    assert status.level == WARN
    assert "input arrives but nothing was published for 12.0 s" in status.message
    values = {kv.key: kv.value for kv in status.values}
    assert values["stale_timeout_s"] == "10"


def test_stale_timeout_is_a_parameter():
    assert defaults()["diagnostics.stale_timeout_s"] == 5.0
    clock = Clock()
    monitor = diag.CameraMonitor(clock=clock)
    monitor.on_input()
    clock.t += 7.0
    stats = _stats(1, 0, {}, clock.t - 7.0)
    assert "camera stopped" in _status(monitor, clock, stats, stale_after_s=5.0).message
    assert _status(monitor, clock, stats, stale_after_s=10.0).level == OK


def test_latency_from_another_clock_is_flagged_not_reported():
    clock = Clock()
    monitor = diag.CameraMonitor(clock=clock)
    monitor.on_input()
    monitor.on_output(1.8e9, {"total": 5.0})  # stamps from 1970 vs a wall clock
    status = _status(monitor, clock, _stats(1, 1, {}, clock.t))
    values = {kv.key: kv.value for kv in status.values}
    assert (values["latency_ms"], values["latency_comparable"]) == ("n/a", "false")
    assert "not comparable with the node's clock" in status.message
    fresh = diag.CameraMonitor(clock=clock)
    fresh.on_output(0.120, {"total": 5.0})
    assert fresh.snapshot().latency_ms == pytest.approx(120.0)


def test_hardware_id_names_the_cpu_model_or_the_gpu(monkeypatch):
    cpu = diag.hardware_id("cpu")
    assert cpu.startswith("cpu: ") and cpu != "cpu: "
    cuda = types.SimpleNamespace(get_device_name=lambda index: f"Fake GPU {index}")
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    assert diag.hardware_id("cuda:1") == "cuda:1 Fake GPU 1"
    assert diag.hardware_id("cuda") == "cuda:0 Fake GPU 0"


# ------------------------------------------------------------------------------ 4. start-up
def test_type_hints_point_to_the_fix():
    as_float = InvalidParameterTypeException(
        Parameter("fastsam.imgsz", Parameter.Type.DOUBLE, 256.0), "INTEGER"
    )
    text = _startup_message(as_float)
    assert "write integers without a decimal point, e.g. fastsam.imgsz:=256" in text
    as_int = InvalidParameterTypeException(
        Parameter("fastsam.conf", Parameter.Type.INTEGER, 1), "DOUBLE"
    )
    assert "with a decimal point, e.g. fastsam.conf:=1.0" in _startup_message(as_int)
    assert _startup_message(KeyError("x")) == "KeyError: 'x'"


def test_legend_minimum_is_sensible():
    with pytest.raises(ConfigError, match="minimum"):
        validate("legend.max_classes", 2)
    with pytest.raises(ConfigError, match="use at least 151"):
        LabelRegistry([get_vocabulary("ade20k")], max_classes=100)
    assert len(LabelRegistry([get_vocabulary("ade20k")], max_classes=151)) == 151
    assert len(LabelRegistry([get_vocabulary("cityscapes")], max_classes=20)) == 20


def test_shipped_config_is_the_built_in_defaults():
    """`ros2 run` (built-in defaults) and `ros2 launch` (config/sfs.yaml) behave the same."""
    assert load_config(REPO / "config" / "sfs.yaml") == defaults()
    text = (REPO / "config" / "sfs.yaml").read_text()
    tree = yaml.safe_load(text)["/**"]["ros__parameters"]
    for spec in PARAMS:  # every parameter is documented in the file
        node = tree
        for part in spec.name.split("."):
            assert part in node, f"{spec.name} is missing from config/sfs.yaml"
            node = node[part]
    for name in ("cameras", "image_topics"):  # multi-camera is documented there too
        assert name in tree
    assert "cameras: [front, rear]" in text


def test_readme_documents_multi_camera_and_large_frames():
    readme = (REPO / "README.md").read_text()
    assert "cameras:=[front,rear]" in readme
    assert "image_topics:=" in readme
    assert "Large frames" in readme


# ------------------------------------------------------------------------------ legend image
def test_legend_image_shows_a_swatch_per_class():
    entries = [(3, "wall", (120, 120, 120)), (13, "person", (150, 5, 61))]
    image = draw_legend(entries)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.shape[0] == 2 * ROW_H
    assert swatch_color(image, 0) == (120, 120, 120)
    assert swatch_color(image, 1) == (150, 5, 61)
    assert image[:, 60:].max() > 200  # the names are written (light text on dark)
    many = draw_legend([(i, f"c{i}", (i, i, i)) for i in range(100)], max_rows=10)
    assert many.shape[0] == 10 * ROW_H
    assert draw_legend([]).shape[0] == ROW_H


def _result(label_work: np.ndarray, size_hw: tuple[int, int]) -> object:
    """A SegmentationResult without masks whose label map is ``label_work`` resized."""
    from sfs_ros import render
    from sfs_ros.models.fastsam import MaskSet
    from sfs_ros.pipeline import SegmentationResult

    return SegmentationResult(
        render.resize_labels(label_work, size_hw),
        label_work,
        np.zeros(label_work.shape, np.uint16),
        MaskSet.empty(size_hw, label_work.shape),
        np.zeros(0, np.uint16),
        np.zeros(0, np.uint16),
        np.zeros(0, np.float32),
    )


@pytest.mark.parametrize("work_hw", [(12, 16), (48, 64), (96, 128)])
def test_encoded_legend_image_lists_the_classes_on_the_map_in_legend_order(work_hw):
    """OutputEncoder's legend image: one swatch per id present on the label map (0 =
    unidentified included), in the legend's order, whatever the map's pixel order; from a
    working-resolution map smaller than, equal to or larger than the output (where a class
    one pixel wide on the larger map is gone from the output, and from the legend)."""
    from types import SimpleNamespace

    from sfs_ros.labels import LabelRegistry
    from sfs_ros.ros.outputs import OutputEncoder
    from sfs_ros.vocabularies import get_vocabulary

    registry = LabelRegistry([get_vocabulary("cityscapes")])
    colors = registry.color_lut()
    h, w = work_hw
    label_work = np.zeros(work_hw, np.uint16)
    label_work[: h // 4] = 7
    label_work[h * 5 // 8 :, w // 12 : w // 6] = 3
    label_work[h // 2, :] = 11  # one row: dropped by the 2x shrink (it keeps rows 1, 3, 5, ...)
    result = _result(label_work, (48, 64))
    expected_ids = (0, 3, 7) if h > 48 else (0, 3, 7, 11)
    assert tuple(np.unique(result.label_map)) == expected_ids
    header = SimpleNamespace(stamp=SimpleNamespace(sec=0, nanosec=0), frame_id="cam")
    msgs = OutputEncoder(registry).encode(
        result, np.zeros((48, 64, 3), np.uint8), header, overlay_alpha=0.5,
        wanted=("legend_image",),
    )  # fmt: skip
    msg = msgs["legend_image"]
    image = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)
    assert image.shape[0] == len(expected_ids) * ROW_H
    for row, class_id in enumerate(expected_ids):
        assert swatch_color(image, row) == tuple(int(c) for c in colors[class_id])


@pytest.mark.parametrize("with_color", [True, False])
def test_encoded_overlay_is_the_same_with_or_without_the_colour_output(with_color: bool):
    """The colour image is made once, from the working-resolution map, for both colour
    outputs: the same pixels as colouring the full-size label map."""
    from types import SimpleNamespace

    from sfs_ros import render
    from sfs_ros.labels import LabelRegistry
    from sfs_ros.ros.outputs import OutputEncoder
    from sfs_ros.vocabularies import get_vocabulary

    registry = LabelRegistry([get_vocabulary("cityscapes")])
    label_work = np.zeros((12, 16), np.uint16)
    label_work[:3] = 7
    label_work[7:, 1:3] = 3
    result = _result(label_work, (48, 64))
    label_map = result.label_map
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    header = SimpleNamespace(stamp=SimpleNamespace(sec=0, nanosec=0), frame_id="cam")
    wanted = ("semantic_color", "overlay") if with_color else ("overlay",)
    msgs = OutputEncoder(registry).encode(result, rgb, header, overlay_alpha=0.3, wanted=wanted)
    if with_color:
        color = msgs["semantic_color"]
        got = np.frombuffer(bytes(color.data), np.uint8).reshape(48, 64, 3)
        np.testing.assert_array_equal(got, render.colorize(label_map, registry.color_lut()))
    msg = msgs["overlay"]
    image = np.frombuffer(bytes(msg.data), np.uint8).reshape(48, 64, 3)
    expected = render.overlay(rgb, label_map, registry.color_lut(), 0.3)
    np.testing.assert_array_equal(image, expected)
    assert (image[20] == rgb[20]).all() and not (image[0] == rgb[0]).all()
