# SPDX-License-Identifier: AGPL-3.0-or-later
"""Real cameras over DDS: a RELIABLE camera of large frames without a Fast DDS profile, the
"waiting for images" hint, start-up errors and unknown parameters, diagnostics that follow the
truth, and SIGINT/SIGTERM at random points.

Every process here runs WITHOUT ``FASTDDS_DEFAULT_PROFILES_FILE`` (the test command exports
it for the rest of the suite): a camera driver on a robot does not load our profile.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from ros_helpers import (
    DRIVER,
    NODE,
    START_TIMEOUT_S,
    Driver,
    LineReader,
    node_args,
    wait_for_node,
)

pytestmark = pytest.mark.dds

PROFILE_VAR = "FASTDDS_DEFAULT_PROFILES_FILE"
STATUS = f"{NODE}: camera"


@pytest.fixture
def plain_env(dds_env: dict[str, str]) -> dict[str, str]:
    """The DDS child environment without the large-image Fast DDS profile."""
    env = dict(dds_env)
    env.pop(PROFILE_VAR, None)
    return env


def _driver(processes, env) -> Driver:
    return Driver(processes.start([sys.executable, "-c", DRIVER], env, stdin=subprocess.PIPE))


# ------------------------------------------------------------------------------ 1. input QoS
def test_reliable_camera_of_large_frames_arrives_at_default_parameters(
    test_params_file: Path, plain_env, processes
):
    """input_qos auto (the default) re-matches when a RELIABLE camera appears after the node;
    1280x720 and 1920x1080 rgb8 frames then all arrive and are processed, with no profile."""
    node = processes.start([sys.executable, *node_args(test_params_file)], plain_env)
    log = LineReader(node)
    waiting = log.wait_for(r"waiting for images on /sfs/image", START_TIMEOUT_S)
    assert waiting is not None, log.text()
    assert "(raw, auto: best_effort/volatile)" in waiting
    assert "no publisher on /sfs/image" in waiting

    driver = _driver(processes, plain_env)
    driver("subscribe", topic="/sfs/semantic", kind="image")
    driver("subscribe", topic="/sfs/legend_image", kind="image")
    driver("subscribe", topic="/diagnostics", key="diagnostics", kind="diagnostics")
    wait_for_node(driver, log, "/sfs/semantic", "/sfs/semantic")
    driver("advertise", topic="/sfs/image", reliable=True)
    matched = log.wait_for(r"input QoS on /sfs/image now reliable/volatile", 60)
    assert matched is not None, log.text()
    assert "matches 1 publisher(s): reliable/volatile" in matched
    assert driver("wait_subscribers", topic="/sfs/image", timeout=60)["ok"]

    # 3. diagnostics follow the truth: frames that all fail are an ERROR, not "running"
    bad = 3
    for index in range(bad):  # one at a time: each is counted before the next is sent
        driver(
            "publish_msg",
            topic="/sfs/image",
            height=48,
            width=64,
            encoding="yuv999",
            step=192,
            data_len=64 * 48 * 3,
            sec=200 + index,
            nanosec=0,
        )
        failing = driver.last_diagnostics(
            STATUS,
            lambda s, n=index + 1: (
                s["values"].get("frames_in") == str(n) and s["values"]["frames_pending"] == "0"
            ),
            timeout=60,
        )
    assert failing["level"] == 2, failing
    assert "every frame fails" in failing["message"], failing
    assert "unsupported_encoding: 3" in failing["message"], failing
    assert failing["hardware_id"].startswith("cpu: ") and len(failing["hardware_id"]) > 6
    assert failing["values"]["stale_timeout_s"] == "5"

    sizes = [(1280, 720), (1920, 1080), (1280, 720), (1920, 1080)]
    for index, (width, height) in enumerate(sizes):
        driver(
            "publish",
            topic="/sfs/image",
            width=width,
            height=height,
            sec=300 + index,
            nanosec=7,
            frame_id="cam_optical",
            seed=index,
        )
        got = driver("wait_stamp", key="/sfs/semantic", sec=300 + index, nanosec=7, timeout=120)[
            "item"
        ]
        assert got is not None, f"frame {index} ({width}x{height}) never came out\n{log.text()}"
        assert (got["width"], got["height"], got["encoding"]) == (width, height, "mono16")
        assert got["frame_id"] == "cam_optical"
        swatches = driver(
            "wait_stamp", key="/sfs/legend_image", sec=300 + index, nanosec=7, timeout=30
        )["item"]
        assert swatches is not None, "no legend_image for a subscribed viewer"
        assert (swatches["encoding"], swatches["frame_id"]) == ("rgb8", "cam_optical")
        assert swatches["width"] == 320 and swatches["height"] % 22 == 0

    status = driver.last_diagnostics(
        STATUS,
        lambda s: (
            s["values"].get("frames_in") == str(bad + len(sizes))
            and s["values"]["frames_pending"] == "0"
        ),
        timeout=30,
    )
    values = status["values"]
    assert int(values["frames_processed"]) + int(values["frames_dropped"]) == bad + len(sizes)
    assert values["frames_processed"] == str(len(sizes))
    assert values["dropped.unsupported_encoding"] == str(bad)
    # recovered: OK again; stamps of 1970 are not comparable with the node's clock: flagged
    assert status["level"] == 0, status
    assert status["message"].startswith("running; latency unknown: input stamps are not")
    assert (values["latency_ms"], values["latency_comparable"]) == ("n/a", "false")
    assert values["input_qos"] == "auto: reliable/volatile"
    assert "Traceback" not in log.text()


def test_waiting_hint_names_a_qos_mismatch(test_params_file: Path, plain_env, processes):
    """A fixed input_qos reliable against a best-effort camera: the hint says why, and what
    to set."""
    node = processes.start(
        [sys.executable, *node_args(test_params_file, "input_qos:=reliable")], plain_env
    )
    log = LineReader(node)
    assert log.wait_for(r"waiting for images on /sfs/image", START_TIMEOUT_S), log.text()
    driver = _driver(processes, plain_env)
    driver("advertise", topic="/sfs/image", reliable=False)
    line = log.wait_for(r"QoS mismatch", 30)
    assert line is not None, log.text()
    assert "waiting for images on /sfs/image (raw, reliable: reliable/volatile)" in line
    assert "BEST_EFFORT" in line and "input_qos:=auto" in line


# ------------------------------------------------------------------------------ 2. shutdown
SLOW_WIDTH = 97  # frames this wide keep the worker inside torch for SLOW_S seconds
SLOW_S = 6.0
SHUTDOWN_RUNS = 20

# The node's real main(), threads and rclpy, with a light pipeline whose frames and
# "open-vocabulary" passes are long runs of torch calls (what a big model on a busy CPU does).
# Loading the real random-weight models takes ~30 s per start on a busy 2-core machine; the
# real models' shutdown is covered by test_reliability.py::test_signal_stops_the_node_cleanly.
SLOW_LAUNCHER = f"""
import sys, time
from sfs_ros.node import exit_quietly_on_signals
exit_quietly_on_signals()  # as the real entry point does, before the heavy imports
import numpy as np
import torch
from sfs_ros.labels import LabelRegistry
from sfs_ros.open_vocab.worker import OpenVocabWorker
from sfs_ros.ros import node
from sfs_ros.vocabularies import get_vocabulary


def busy(seconds):
    a = torch.rand(256, 256)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        a = torch.tanh(a @ a)


class Result:
    def __init__(self, rgb):
        self.label_map = np.full(rgb.shape[:2], 3, np.uint16)
        self.instance_map = np.ones(rgb.shape[:2], np.uint16)
        self.timings = {{"total": 1.0}}


class TorchBusyPipeline:
    random_weights = ()
    device = "cpu"
    backend = "torch"

    def __init__(self):
        self.registry = LabelRegistry([get_vocabulary("ade20k")])
        self.worker = OpenVocabWorker(lambda snapshot: busy(4.0), rate_hz=100.0)

    def infer(self, rgb, sequence=""):
        busy({SLOW_S} if rgb.shape[1] == {SLOW_WIDTH} else 0.05)
        self.worker.offer(lambda: rgb.copy())  # the "CLIP" thread: busy most of the time
        return rgb

    def finish(self, rgb):
        return Result(rgb)

    def update(self, name, value):
        pass

    def open_vocab_stats(self):
        return None

    def close(self):
        self.worker.stop(timeout=None)


sys.exit(node.main(sys.argv, pipeline_factory=lambda config: TorchBusyPipeline()))
"""

CAMERA = """
import sys, threading, time
import numpy as np
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

rclpy.init()
node = rclpy.create_node("shutdown_test_camera")
pub = node.create_publisher(
    Image, "/sfs/image", QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE))
width = [96]

def read():
    for line in sys.stdin:
        width[0] = int(line)

threading.Thread(target=read, daemon=True).start()
print("camera up", flush=True)
i = 0
try:
    while True:
        w, h = width[0], 64
        msg = Image(height=h, width=w, encoding="rgb8", step=w * 3)
        msg.data = np.random.default_rng(i).integers(0, 256, h * w * 3, np.uint8).tobytes()
        msg.header.stamp.sec, msg.header.frame_id = i + 1, "cam"
        pub.publish(msg)
        i += 1
        time.sleep(0.1)
except KeyboardInterrupt:
    pass
"""


def test_sigint_and_sigterm_at_random_points_always_exit_0(
    test_params_file: Path, plain_env, processes
):
    """20 signals (SIGINT and SIGTERM alternating) at random points: during start-up, while
    frames flow (the open-vocabulary thread busy in torch), and while the frame worker is deep
    inside a long torch computation. Every run exits 0, without an abort, within a few
    seconds; the exit times are printed."""
    rng = random.Random(1234)
    camera = processes.start([sys.executable, "-c", CAMERA], plain_env, stdin=subprocess.PIPE)
    camera_out = LineReader(camera)
    assert camera_out.wait_for("camera up", 60), camera_out.text()
    phases = ["startup"] * 5 + ["frames"] * 7 + ["long_frame"] * 8
    rng.shuffle(phases)
    report = []
    args = [
        "-c",
        SLOW_LAUNCHER,
        *node_args(test_params_file)[2:],
        "-p",
        "diagnostics.stale_timeout_s:=60.0",
    ]
    for run, phase in enumerate(phases):
        sig = signal.SIGINT if run % 2 == 0 else signal.SIGTERM
        node = processes.start([sys.executable, *args], plain_env)
        log = LineReader(node)
        if phase == "startup":
            time.sleep(rng.uniform(0.5, 4.0))
        else:
            assert log.wait_for(r"first frame on /sfs/image", START_TIMEOUT_S), log.text()
            if phase == "long_frame":
                camera.stdin.write(f"{SLOW_WIDTH}\n")
                camera.stdin.flush()
                changed = log.wait_for(r"input size on /sfs/image changed .* to 97x64", 60)
                assert changed, log.text()
            time.sleep(rng.uniform(0.0, 1.5))
        t0 = time.monotonic()
        node.send_signal(sig)
        try:
            code = node.wait(timeout=30)
        finally:
            camera.stdin.write("96\n")
            camera.stdin.flush()
        elapsed = time.monotonic() - t0
        report.append(f"run {run:2d} {phase:10s} {sig.name}: exit {code} after {elapsed:.2f} s")
        text = log.text()
        assert code == 0, "\n".join(report) + "\n" + text[-4000:]
        assert "terminate called" not in text, text[-4000:]
        assert "Traceback" not in text, text[-4000:]
        assert elapsed < 10, "\n".join(report)
    print("\n" + "\n".join(report))


# ------------------------------------------------------------------------------ 4. start-up
def test_startup_errors_are_one_fatal_line_and_unknown_parameters_are_named(
    test_params_file: Path, tmp_path: Path, plain_env, processes
):
    """A legend smaller than the closed set: one FATAL line with the number needed, exit 1.
    Typos in the params file: one warning each, naming the key and the likely intended one."""
    params = yaml.safe_load(test_params_file.read_text())
    tree = params["/**"]["ros__parameters"]
    tree["fastsam"]["confidance"] = 0.3
    tree["overlay_alfa"] = 0.2
    typo_file = tmp_path / "typos.yaml"
    typo_file.write_text(yaml.safe_dump(params))
    node = processes.start(
        [sys.executable, *node_args(typo_file, "legend.max_classes:=100")], plain_env
    )
    out, _ = node.communicate(timeout=START_TIMEOUT_S)
    assert node.returncode == 1, out
    fatal = [line for line in out.splitlines() if "FATAL" in line]
    assert len(fatal) == 1, out
    assert "legend.max_classes: 100 is below the 151 classes" in fatal[0]
    assert "use at least 151" in fatal[0]
    assert "Traceback" not in out and "LegendFullError" not in out
    warnings = [line for line in out.splitlines() if "unknown parameter" in line]
    assert len(warnings) == 2, out
    assert any("'fastsam.confidance'" in w and "did you mean 'fastsam.conf'" in w for w in warnings)
    assert any("'overlay_alfa'" in w and "did you mean 'overlay_alpha'" in w for w in warnings)


def test_integer_parameter_given_as_float_gets_the_right_hint(plain_env, processes):
    node = processes.start(
        [sys.executable, "-m", "sfs_ros.node", "--ros-args", "-p", "fastsam.imgsz:=256.0"],
        plain_env,
    )
    out, _ = node.communicate(timeout=START_TIMEOUT_S)
    assert node.returncode == 1, out
    fatal = [line for line in out.splitlines() if "FATAL" in line]
    assert len(fatal) == 1, out
    assert "write integers without a decimal point, e.g. fastsam.imgsz:=256" in fatal[0]
    assert "decimal point, e.g. 1.0" not in fatal[0]
