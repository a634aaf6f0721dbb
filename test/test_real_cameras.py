# SPDX-License-Identifier: AGPL-3.0-or-later
"""Real cameras over DDS: a RELIABLE camera of large frames without a Fast DDS profile, the
"waiting for images" hint, start-up errors and unknown parameters, diagnostics that follow the
truth, and SIGINT/SIGTERM at random points.

Every process here runs WITHOUT ``FASTDDS_DEFAULT_PROFILES_FILE`` (the test command exports
it for the rest of the suite): a camera driver on a robot does not load our profile.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
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
    driver("subscribe", topic="/diagnostics", key="diagnostics", kind="diagnostics")
    wait_for_node(driver, log, "/sfs/semantic", "/sfs/semantic")
    driver("advertise", topic="/sfs/image", reliable=True)
    matched = log.wait_for(r"input QoS on /sfs/image now reliable/volatile", 60)
    assert matched is not None, log.text()
    assert "matches 1 publisher(s): reliable/volatile" in matched
    assert driver("wait_subscribers", topic="/sfs/image", timeout=60)["ok"]

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

    status = driver.last_diagnostics(
        STATUS,
        lambda s: (
            s["values"].get("frames_in") == str(len(sizes)) and s["values"]["frames_pending"] == "0"
        ),
        timeout=30,
    )
    values = status["values"]
    assert int(values["frames_processed"]) + int(values["frames_dropped"]) == len(sizes)
    assert values["frames_processed"] == str(len(sizes))
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
