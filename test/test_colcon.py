# SPDX-License-Identifier: AGPL-3.0-or-later
"""The colcon route of the README: Debian's ``colcon`` builds the package against this venv,
``install/setup.bash`` is sourced, and the installed ``lib/sfs_ros/sfs_node`` (not the source
tree, not the venv's copy) serves a frame over DDS. ``colcon test`` finds the registered
ROS-free suite.

Needs ``colcon`` on PATH (``apt-get install colcon``; ``scripts/setup_env.sh`` installs it
when it runs as root, as CI does). Skipped without it, except under CI, where it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ros_helpers import DRIVER, REPO, START_TIMEOUT_S, Driver, LineReader, wait_for_node

pytestmark = pytest.mark.dds

SKIP = {
    ".git",
    ".venv",
    "build",
    "install",
    "log",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "demo_out",
    "eval_out",
    "runs",
    "output",
    ".cache",
}


def _colcon() -> str:
    colcon = shutil.which("colcon")
    if colcon is None:
        message = "colcon is not installed (apt-get install colcon)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return colcon


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A colcon workspace with this checkout in src/, built with Debian's colcon."""
    colcon = _colcon()
    ws = tmp_path_factory.mktemp("colcon_ws")
    shutil.copytree(REPO, ws / "src" / "sfs_ros", ignore=lambda _d, names: SKIP & set(names))
    venv = Path(sys.prefix)
    env = dict(os.environ)
    env.update(
        AMENT_PREFIX_PATH=str(venv),
        CMAKE_PREFIX_PATH=str(venv),
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
    )
    env.pop("PYTHONPATH", None)
    build = subprocess.run(
        [
            colcon,
            "build",
            "--packages-select",
            "sfs_ros",
            "--cmake-args",
            f"-DPython3_EXECUTABLE={sys.executable}",
        ],
        cwd=ws,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return ws


def _sourced(ws: Path, command: str) -> list[str]:
    return ["bash", "-c", f"source {ws / 'install' / 'setup.bash'} && {command}"]


def _installed_env(dds_env: dict[str, str]) -> dict[str, str]:
    env = dict(dds_env)
    env.pop("PYTHONPATH", None)  # no source tree on the path: only what colcon installed
    env["PATH"] = f"{Path(sys.prefix) / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_colcon_installs_node_launch_config_and_registers_the_ros_free_tests(workspace: Path):
    prefix = workspace / "install" / "sfs_ros"
    assert os.access(prefix / "lib" / "sfs_ros" / "sfs_node", os.X_OK)
    for name in ("launch/sfs.launch.py", "config/sfs.yaml", "config/sfs.rviz"):
        assert (prefix / "share" / "sfs_ros" / name).is_file(), name
    listed = subprocess.run(
        ["ctest", "-N"],
        cwd=workspace / "build" / "sfs_ros",
        capture_output=True,
        text=True,
        check=False,
    )
    assert "sfs_ros_core" in listed.stdout, listed.stdout + listed.stderr


def test_installed_sfs_node_serves_a_frame_over_dds(
    workspace: Path, test_params_file: Path, dds_env, processes
):
    env = _installed_env(dds_env)
    where = subprocess.run(
        _sourced(
            workspace,
            "python -c 'import sfs_ros.ros.node as n, sfs_ros.msg as m; "
            "print(n.__file__); print(m.__file__)'",
        ),
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert where.returncode == 0, where.stderr
    for line in where.stdout.split():
        assert line.startswith(str(workspace / "install")), where.stdout

    node_cmd = (
        f"exec {workspace / 'install/sfs_ros/lib/sfs_ros/sfs_node'} --ros-args "
        f"-r __ns:=/sfs --params-file {test_params_file}"
    )
    node = processes.start(_sourced(workspace, node_cmd), env)
    log = LineReader(node)
    driver = Driver(processes.start([sys.executable, "-c", DRIVER], dds_env, stdin=subprocess.PIPE))
    driver("subscribe", topic="/sfs/semantic", kind="image")
    wait_for_node(driver, log, "/sfs/semantic", "/sfs/semantic")
    driver("advertise", topic="/sfs/image", reliable=True)
    assert driver("wait_subscribers", topic="/sfs/image", timeout=START_TIMEOUT_S)["ok"]
    _, out = driver.roundtrip(
        "/sfs/semantic",
        "/sfs/image",
        width=160,
        height=120,
        sec=77,
        nanosec=5,
        frame_id="colcon_cam",
        seed=3,
    )
    assert (out["encoding"], out["width"], out["height"]) == ("mono16", 160, 120)
    assert (out["sec"], out["nanosec"], out["frame_id"]) == (77, 5, "colcon_cam")
