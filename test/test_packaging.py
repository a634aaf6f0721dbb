# SPDX-License-Identifier: AGPL-3.0-or-later
"""The colcon route for a real ROS machine, statically: package.xml depends on what the launch
file uses and only on rosdep keys that exist on Noble/Jammy, the runtime-only requirements
file, ament test registration, and the README steps (PEP 668)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# rosdep keys (rosdistro's rosdep/python.yaml) with Ubuntu Jammy and Noble packages, and ROS
# packages released for Humble, Jazzy and Kilted. Anything else needs checking before use.
KNOWN_KEYS = {
    "python3-numpy",
    "python3-yaml",
    "python3-tqdm",
    "python3-pytest",
    "ament_cmake",
    "ament_cmake_pytest",
    "ament_index_python",
    "rosidl_default_generators",
    "rosidl_default_runtime",
    "std_msgs",
    "sensor_msgs",
    "diagnostic_msgs",
    "rcl_interfaces",
    "rclpy",
    "launch",
    "launch_ros",
    "rviz2",
    "tf2_ros",
}


def _depends() -> dict[str, set[str]]:
    root = ET.parse(REPO / "package.xml").getroot()
    kinds: dict[str, set[str]] = {}
    for element in root:
        if element.tag.endswith("depend"):
            kinds.setdefault(element.tag, set()).add(element.text.strip())
    return kinds


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def test_package_xml_runs_the_launch_file_and_uses_existing_rosdep_keys():
    kinds = _depends()
    execs = kinds["exec_depend"] | kinds.get("depend", set())
    assert {"launch", "launch_ros", "rviz2", "tf2_ros"} <= execs
    every = set().union(*kinds.values())
    assert every <= KNOWN_KEYS, f"unverified rosdep keys: {every - KNOWN_KEYS}"
    for absent in ("python3-torchvision", "python3-torch", "python3-opencv"):
        assert absent not in every
    assert "ament_cmake_pytest" in kinds["test_depend"]


def test_runtime_requirements_are_runtime_only_and_pinned_as_in_requirements():
    runtime = _pins(REPO / "requirements-runtime.txt")
    full = _pins(REPO / "requirements.txt")
    assert {"torch", "torchvision", "ultralytics", "transformers", "open_clip_torch"} <= set(
        runtime
    )
    for name, version in runtime.items():
        assert not name.startswith(("ros-", "catkin")), name
        assert name not in {"pytest", "ruff", "numpy", "opencv-python-headless", "pyyaml"}, name
        assert full.get(name) == version, f"{name}: {version} here, {full.get(name)} there"


def test_colcon_test_runs_the_ros_free_suite():
    cmake = (REPO / "CMakeLists.txt").read_text()
    block = re.search(r"if\(BUILD_TESTING\)(.*?)endif\(\)", cmake, re.S)
    assert block, "no BUILD_TESTING block"
    assert "ament_add_pytest_test(sfs_ros_core test" in block.group(1)
    assert "not dds" in block.group(1)


def test_readme_colcon_steps_work_with_pep_668():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## For ROS 2 users") : readme.index("## Without ROS")]
    assert "python3 -m venv --system-site-packages" in section
    assert "COLCON_IGNORE" in section
    assert "pip install -r sfs_ros/requirements-runtime.txt" in section
    assert "pip install -r sfs_ros/requirements.txt" not in section
    assert "rosdep install --from-paths src --ignore-src -y" in section
    assert "colcon test" in section
