# SPDX-License-Identifier: AGPL-3.0-or-later
"""``make demo``'s script end to end, offline: scripts/run_demo.sh with no real weights on disk
picks the trained tiny-world models, plays the tiny-world sequence through the real node and
ends its summary with the mIoU of the published label maps against the ground truth.

Short (8 frames) so that it fits the test budget; the script, the processes and the params
file are the ones ``make demo`` uses.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ros_helpers import REPO, require_loopback_only

from sfs_ros.demo import tiny_world

pytestmark = [pytest.mark.dds, pytest.mark.models]

FRAMES = 8


def test_demo_without_weights_runs_the_tiny_world_and_reports_miou(tmp_path: Path) -> None:
    require_loopback_only()
    if tiny_world.missing_parts(tiny_world.FIXTURE_MODELS):
        pytest.skip(f"tiny-world models missing in {tiny_world.FIXTURE_MODELS}")
    out = tmp_path / "demo_out"
    env = dict(
        os.environ,
        SFS_VENV=str(Path(sys.executable).parents[1]),
        SFS_DEMO_OUT=str(out),
        SFS_DEMO_FRAMES=str(FRAMES),
        SFS_WEIGHTS_DIR=str(tmp_path / "no_weights"),  # real weights: nowhere on disk
        SFS_OFFLINE="1",
        HF_HUB_OFFLINE="1",
        SFS_DEMO_DOMAIN_ID=str(60 + os.getpid() % 10),
    )
    env.pop("SFS_DEMO_SOURCE", None)
    env.pop("SFS_DEMO_STAGE", None)
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "run_demo.sh")],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-6000:]
    assert "TINY-WORLD MODELS" in text and "RANDOM WEIGHTS" not in text, text[-6000:]
    assert f"camera: {FRAMES} frames of tiny-world at 640x480" in text
    params = (out / "sfs_tiny_world.yaml").read_text()
    assert str(tiny_world.FIXTURE_MODELS.resolve() / "fastsam.pt") in params

    summary = json.loads((out / "summary.json").read_text())
    score = summary["ground_truth"]
    assert score is not None and score["error"] is None, summary
    assert score["frames_scored"] >= 1
    assert score["label_maps_without_ground_truth"] == 0
    assert summary["random_weights"] is False
    assert "tiny-world models" in summary["models"]
    names = {c["name"] for c in summary["classes_seen"]}
    assert {"floor", "sky"} <= names  # the classes mean something
    assert score["miou"] > 0.5 and score["pixel_accuracy"] > 0.85, score

    last = (out / "summary.txt").read_text().strip().splitlines()[-1]
    match = re.fullmatch(r"mIoU:\s+(\d\.\d{3}) over the \d+ classes .*", last)
    assert match, last
    assert float(match.group(1)) == pytest.approx(score["miou"], abs=1e-3)
    assert last in proc.stdout  # printed at the end of the run, too
