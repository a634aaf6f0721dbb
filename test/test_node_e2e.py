"""The sfs node end to end over real DDS: node, camera and viewers in separate processes.

The node runs as users run it (``python -m sfs_ros.node --ros-args ...``) on random-weight
models; a driver process (``DRIVER`` below) plays camera, viewer and ``ros2 param``: it reads
JSON commands on stdin and answers one ``@@ {json}`` line each. Assertions are on values
(headers, encodings, sizes, ids vs legend, pixels, counters), never on timing.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from ros_helpers import (
    DRIVER,
    FRAME_TIMEOUT_S,
    NODE,
    Driver,
    LineReader,
    ModuleProcesses,
    dds_child_env,
    decode,
    legend_ids,
    node_args,
    require_loopback_only,
    start_driver,
    wait_for_node,
)

from sfs_ros import render

pytestmark = pytest.mark.dds


# ------------------------------------------------------------------------------ raw node
@pytest.fixture(scope="module")
def raw(test_params_file: Path) -> Iterator[dict]:
    """One node on raw images (sensor-data QoS) and one driver, shared by the tests below."""
    require_loopback_only()
    procs = ModuleProcesses(dds_child_env(90 + os.getpid() % 10))
    try:
        node = procs.start(node_args(test_params_file, "input_qos:=sensor_data"))
        node_out = LineReader(node)
        driver = start_driver(procs.start)
        driver("subscribe", topic="/sfs/semantic", kind="image", with_data=True)
        driver("subscribe", topic="/sfs/legend", kind="legend", latched=True)
        driver("subscribe", topic="/diagnostics", key="diagnostics", kind="diagnostics")
        driver("advertise", topic="/sfs/image", reliable=False)
        wait_for_node(driver, node_out, "/sfs/semantic", "/sfs/semantic")
        assert driver("wait_subscribers", topic="/sfs/image", timeout=60)["ok"]
        yield {"node": node, "log": node_out, "driver": driver, "stamp": [0]}
    finally:
        procs.stop_all()


def next_stamp(raw: dict) -> dict[str, int]:
    """A unique input stamp near the current time (so latency in diagnostics is meaningful)."""
    ns = max(time.time_ns(), raw["stamp"][0] + 1)
    raw["stamp"][0] = ns
    return {"sec": ns // 1_000_000_000, "nanosec": ns % 1_000_000_000}


def test_outputs_carry_the_input_header_size_and_legend_ids(raw):
    driver = raw["driver"]
    frames = [
        (96, 64, "cam_optical"),
        (96, 64, "cam_optical"),
        (160, 120, "cam_optical"),  # size change mid-stream
        (64, 48, "other_frame"),
    ]
    for i, (width, height, frame_id) in enumerate(frames):
        stamp = next_stamp(raw)
        _, out = driver.roundtrip(
            "/sfs/semantic",
            "/sfs/image",
            width=width,
            height=height,
            frame_id=frame_id,
            seed=i,
            **stamp,
        )
        assert (out["sec"], out["nanosec"], out["frame_id"]) == (
            stamp["sec"],
            stamp["nanosec"],
            frame_id,
        )
        assert out["encoding"] == "mono16"
        assert (out["width"], out["height"], out["step"]) == (width, height, width * 2)
        legends = driver("wait_count", key="/sfs/legend", count=1, timeout=30)["items"]
        assert legends, "no legend received"
        assert set(out["ids"]) <= legend_ids(legends[-1])
        label = decode(out, "<u2", 1)
        assert label.shape == (height, width)
    # re-sent with the latest input's frame_id (DDS does not order topics: poll for it)
    legend = driver.wait_item("/sfs/legend", lambda item: item["frame_id"] == "other_frame")
    assert legend["vocabulary"] == "ade20k"
    assert legend["revision"] >= 1
    assert [c[0] for c in legend["classes"]] == list(range(151))
    assert legend["classes"][0][:2] == [0, "unidentified"]


def test_late_subscriber_still_gets_the_legend(raw):
    driver = raw["driver"]
    driver("subscribe", topic="/sfs/legend", key="late_legend", kind="legend", latched=True)
    items = driver("wait_count", key="late_legend", count=1, timeout=30)["items"]
    assert items, "a late subscriber got no legend"
    legend = items[-1]
    assert legend["vocabulary"] == "ade20k"
    assert len(legend["classes"]) == 151
    first = driver("messages", key="/sfs/legend")["items"][0]
    assert legend["revision"] >= first["revision"]


def test_reliable_viewer_gets_colour_overlay_and_instances(raw):
    driver = raw["driver"]
    for topic in ("/sfs/semantic_color", "/sfs/overlay", "/sfs/instances"):
        driver("subscribe", topic=topic, kind="image", reliable=True, with_data=True)
        wait_for_node(driver, raw["log"], topic, topic)
    stamp = next_stamp(raw)
    frame = {"width": 96, "height": 64, "frame_id": "cam_optical", **stamp}
    sent, overlay = driver.roundtrip("/sfs/overlay", "/sfs/image", seed=7, **frame)
    color = driver("wait_stamp", key="/sfs/semantic_color", timeout=30, **stamp)
    instances = driver("wait_stamp", key="/sfs/instances", timeout=30, **stamp)
    semantic = driver("wait_stamp", key="/sfs/semantic", timeout=30, **stamp)
    color, instances, semantic = color["item"], instances["item"], semantic["item"]
    for out, encoding in ((overlay, "rgb8"), (color, "rgb8"), (instances, "mono16")):
        assert out is not None
        assert out["encoding"] == encoding
        assert (out["sec"], out["nanosec"], out["frame_id"]) == (
            stamp["sec"],
            stamp["nanosec"],
            "cam_optical",
        )
        assert (out["width"], out["height"]) == (96, 64)
    legend = driver("messages", key="/sfs/legend")["items"][-1]
    lut = np.zeros((max(legend_ids(legend)) + 1, 3), np.uint8)
    for cid, _name, rgb, _source in legend["classes"]:
        lut[cid] = rgb
    label = decode(semantic, "<u2", 1)
    assert np.array_equal(decode(color, np.uint8, 3), lut[label])
    rgb_in = decode({**sent, "width": 96, "height": 64}, np.uint8, 3)
    expected = render.overlay(rgb_in, label, lut, 0.5)
    assert np.array_equal(decode(overlay, np.uint8, 3), expected)
    inst_ids = set(instances["ids"]) - {0}
    assert len(inst_ids) > 1  # max_masks 60 with conf 0.003: many masks
    raw["instances_before"] = len(inst_ids)


def test_live_parameters_change_behaviour_and_bad_values_are_rejected(raw):
    driver = raw["driver"]
    for topic in ("/sfs/overlay", "/sfs/instances"):
        driver("subscribe", topic=topic, key=topic + "#live", kind="image", with_data=True)
        wait_for_node(driver, raw["log"], topic, topic + "#live")
    described = driver(
        "describe", node=NODE, names=["fastsam.conf", "fastsam.max_masks", "device"]
    )["descriptors"]
    conf, masks, device = described
    assert (conf["float_range"], conf["read_only"]) == ([[0.0, 1.0]], False)
    assert (masks["int_range"], masks["read_only"]) == ([[1, 1000]], False)
    assert device["read_only"] is True
    assert conf["description"].startswith("mask confidence")

    results = driver(
        "set_parameters", node=NODE, params={"fastsam.max_masks": 1, "overlay_alpha": 0.0}
    )["results"]
    assert results == [{"successful": True, "reason": ""}] * 2
    stamp = next_stamp(raw)
    sent, overlay = driver.roundtrip(
        "/sfs/overlay#live",
        "/sfs/image",
        width=96,
        height=64,
        frame_id="cam_optical",
        seed=11,
        **stamp,
    )
    assert overlay["sha1"] == sent["sha1"]  # alpha 0: the overlay is the input
    instances = driver("wait_stamp", key="/sfs/instances#live", timeout=30, **stamp)
    assert len(set(instances["item"]["ids"]) - {0}) <= 1

    rejected = {
        "fastsam.conf": 1.5,  # out of range (descriptor)
        "device": "cuda",  # read at start only
        "open_vocab.enabled": True,  # branch not loaded at start
        "fastsam.max_masks": "many",  # wrong type
    }
    for name, value in rejected.items():
        (result,) = driver("set_parameters", node=NODE, params={name: value})["results"]
        assert result["successful"] is False, name
        assert result["reason"], name
    (conf_result,) = driver("set_parameters", node=NODE, params={"fastsam.conf": 1.5})["results"]
    assert "fastsam.conf" in conf_result["reason"]
    assert "range" in conf_result["reason"]
    (ov_result,) = driver("set_parameters", node=NODE, params={"open_vocab.enabled": True})[
        "results"
    ]
    assert "open_vocab.enabled" in ov_result["reason"]

    restore = {"fastsam.max_masks": 60, "overlay_alpha": 0.5}
    assert all(
        r["successful"] for r in driver("set_parameters", node=NODE, params=restore)["results"]
    )
    assert raw["log"].wait_for(r"fastsam\.max_masks set to 1\b", 10) is not None


def test_bad_frame_is_counted_and_the_node_keeps_serving(raw):
    driver = raw["driver"]
    bad = next_stamp(raw)
    driver(
        "publish",
        topic="/sfs/image",
        width=96,
        height=64,
        frame_id="cam_optical",
        encoding="weird16",
        **bad,
    )
    line = raw["log"].wait_for(r"unsupported_encoding", FRAME_TIMEOUT_S)
    assert line is not None, raw["log"].text()
    assert "ERROR" in line
    assert "weird16" in line
    _, out = driver.roundtrip(
        "/sfs/semantic",
        "/sfs/image",
        width=96,
        height=64,
        frame_id="cam_optical",
        seed=3,
        **next_stamp(raw),
    )
    assert out["frame_id"] == "cam_optical"
    semantic = driver("messages", key="/sfs/semantic")["items"]
    assert all((item["sec"], item["nanosec"]) != (bad["sec"], bad["nanosec"]) for item in semantic)
    assert raw["node"].poll() is None
    error_lines = [ln for ln in raw["log"].text().splitlines() if "unsupported_encoding" in ln]
    assert len(error_lines) == 1


def test_diagnostics_report_counters_device_and_timings(raw):
    driver = raw["driver"]
    driver.roundtrip(
        "/sfs/semantic",
        "/sfs/image",
        width=96,
        height=64,
        frame_id="cam_optical",
        seed=4,
        **next_stamp(raw),
    )
    semantic = driver("messages", key="/sfs/semantic")["items"]
    processed = len({(i["sec"], i["nanosec"]) for i in semantic})
    status = driver.last_diagnostics(
        NODE + ": camera",
        lambda s: (
            int(s["values"]["frames_processed"]) >= processed
            and s["values"]["frames_pending"] == "0"
        ),
    )
    values = status["values"]
    assert status["level"] == 0, status  # OK: real weight files, frames arriving
    assert status["hardware_id"].startswith("cpu: ")  # the CPU model
    assert (values["device"], values["backend"]) == ("cpu", "torch")
    assert (values["input_topic"], values["input_transport"], values["input_qos"]) == (
        "/sfs/image",
        "raw",
        "sensor_data: best_effort/volatile",
    )
    assert values["random_weights"] == "none"
    frames_in = int(values["frames_in"])
    assert frames_in == int(values["frames_processed"]) + int(values["frames_dropped"])
    assert int(values["dropped.unsupported_encoding"]) == 1
    dropped = sum(int(v) for k, v in values.items() if k.startswith("dropped."))
    assert dropped == int(values["frames_dropped"])
    # now - input stamp, in milliseconds (stamps are taken from the clock when sent)
    assert 0 < float(values["latency_ms"]) < 600_000
    assert {"time_ms.fastsam", "time_ms.closed_set", "time_ms.total"} <= set(values)
    assert float(values["time_ms.total"]) > 0
    # no frames for more than 5 s after having had some: WARN, camera stopped
    stopped = driver.last_diagnostics(NODE + ": camera", lambda s: s["level"] == 1, timeout=30)
    assert "camera stopped" in stopped["message"]
    assert "/sfs/image" in stopped["message"]


def test_waiting_log_named_the_resolved_input_topic(raw):
    line = raw["log"].wait_for(r"waiting for images on", 5)
    assert line is not None
    assert "waiting for images on /sfs/image (raw, sensor_data: best_effort/volatile)" in line
    loaded = re.findall(r"FastSAM .* loaded", raw["log"].text())
    assert len(loaded) == 1


# ------------------------------------------------------------------------------ other starts
def test_two_compressed_cameras_share_one_pipeline_and_stop_on_sigint(
    test_params_file, dds_env, processes
):
    """Two JPEG cameras, reliable input QoS, FastSAM with (allowed) random weights."""
    topics = {"front": "/cams/front/image_raw", "rear": "/cams/rear/image_raw"}
    node = processes.start(
        [
            sys.executable,
            *node_args(
                test_params_file,
                "input_transport:=compressed",
                "input_qos:=reliable",
                "cameras:=[front,rear]",
                f"image_topics:=[{topics['front']},{topics['rear']}]",
                "allow_random_weights:=true",
                "fastsam.model:=/nonexistent/FastSAM-s.pt",
            ),
        ],
        dds_env,
    )
    node_out = LineReader(node)
    driver = Driver(processes.start([sys.executable, "-c", DRIVER], dds_env, stdin=subprocess.PIPE))
    driver("subscribe", topic="/diagnostics", key="diagnostics", kind="diagnostics")
    for name, topic in topics.items():
        driver("subscribe", topic=f"/sfs/{name}/semantic", kind="image")
        driver("subscribe", topic=f"/sfs/{name}/legend", kind="legend", latched=True)
        driver("advertise", topic=topic + "/compressed", compressed=True, reliable=True)
    for name, topic in topics.items():
        wait_for_node(driver, node_out, f"/sfs/{name}/semantic", f"/sfs/{name}/semantic")
        assert driver("wait_subscribers", topic=topic + "/compressed", timeout=60)["ok"]

    sizes = {"front": (96, 64), "rear": (128, 96)}
    for name, topic in topics.items():
        width, height = sizes[name]
        _, out = driver.roundtrip(
            f"/sfs/{name}/semantic",
            topic + "/compressed",
            compressed=True,
            width=width,
            height=height,
            sec=50,
            nanosec=1,
            frame_id=f"{name}_optical",
            seed=1,
        )
        assert (out["sec"], out["nanosec"], out["frame_id"]) == (50, 1, f"{name}_optical")
        assert (out["encoding"], out["width"], out["height"]) == ("mono16", width, height)
        legend = driver("wait_count", key=f"/sfs/{name}/legend", count=1, timeout=30)["items"]
        assert set(out["ids"]) <= legend_ids(legend[-1])

    # both cameras at once: each camera's newest frame is served
    for name, topic in topics.items():
        driver(
            "publish",
            topic=topic + "/compressed",
            compressed=True,
            width=sizes[name][0],
            height=sizes[name][1],
            sec=60,
            nanosec=2,
            frame_id=f"{name}_optical",
            seed=2,
        )
    for name in topics:
        got = driver(
            "wait_stamp", key=f"/sfs/{name}/semantic", sec=60, nanosec=2, timeout=FRAME_TIMEOUT_S
        )["item"]
        assert got is not None, name
        assert got["frame_id"] == f"{name}_optical"
        assert (got["width"], got["height"]) == sizes[name]

    log = node_out.text()
    assert len(re.findall(r"FastSAM .* loaded", log)) == 1, log
    assert len(re.findall(r"closed-set .* loaded", log)) == 1, log
    assert "ready: 2 camera(s)" in log
    assert "RANDOM WEIGHTS IN USE for FastSAM" in log
    for name, topic in topics.items():
        status = driver.last_diagnostics(f"{NODE}: {name}", lambda s: s["level"] == 1)
        assert "RANDOM WEIGHTS" in status["message"]
        assert status["values"]["random_weights"] == "FastSAM"
        assert status["values"]["input_topic"] == topic + "/compressed"
        assert status["values"]["input_qos"] == "reliable: reliable/volatile"

    node.send_signal(signal.SIGINT)
    assert node.wait(timeout=30) == 0, node_out.text()
    assert "shutting down" in node_out.text()
    assert "Traceback" not in node_out.text()


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("fastsam.model:=/nonexistent/FastSAM-s.pt", "/nonexistent/FastSAM-s.pt"),
        ("fastsam.conf:=1.5", "fastsam.conf"),
    ],
)
def test_bad_configuration_exits_1_with_one_clear_line(
    test_params_file, dds_env, processes, override, fragment
):
    node = processes.start([sys.executable, *node_args(test_params_file, override)], dds_env)
    out, _ = node.communicate(timeout=120)
    assert node.returncode == 1, out
    fatal = [line for line in out.splitlines() if "cannot start:" in line]
    assert len(fatal) == 1, out
    assert "FATAL" in fatal[0]
    assert fragment in fatal[0]
    assert "Traceback" not in out


def test_compressed_input_follows_a_remap_of_the_base_topic(test_params_file, dds_env, processes):
    """image_transport rule: remapping 'image' also moves 'image/compressed'."""
    args = node_args(test_params_file, "input_transport:=compressed")
    node = processes.start([sys.executable, *args, "-r", "image:=/remapped/cam"], dds_env)
    log = LineReader(node)
    line = log.wait_for(r"waiting for images on", 120)
    assert line is not None, log.text()
    expected = "waiting for images on /remapped/cam/compressed (compressed, auto: best_effort/"
    assert expected in line
    node.send_signal(signal.SIGINT)
    assert node.wait(timeout=30) == 0, log.text()
