# SPDX-License-Identifier: AGPL-3.0-or-later
"""scripts/clean_installed_package.sh: the venv's old sfs_ros copy goes, generated messages stay."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "clean_installed_package.sh"

#: What CMake installs into site-packages/sfs_ros: rosidl's output and the hand-written modules.
GENERATED = [
    "msg/__init__.py",
    "msg/_class_info.py",
    "msg/_class_info_s.c",
    "msg/_class_legend.py",
    "msg/__pycache__/_class_info.cpython-311.pyc",
    "_sfs_ros_s.ep.rosidl_typesupport_c.c",
    "_sfs_ros_s.ep.rosidl_typesupport_fastrtps_c.c",
    "_sfs_ros_s.ep.rosidl_typesupport_introspection_c.c",
    "sfs_ros_s__rosidl_typesupport_c.so",
    "sfs_ros_s__rosidl_typesupport_fastrtps_c.so",
    "sfs_ros_s__rosidl_typesupport_introspection_c.so",
]
HAND_WRITTEN = [
    "__init__.py",
    "__pycache__/pipeline.cpython-311.pyc",
    "pipeline.py",
    "removed_module.py",
    "cli/__init__.py",
    "cli/segment.py",
    "data/palettes.json",
    "ros/node.py",
]


def _tree(root: Path, files: list[str]) -> Path:
    pkg = root / "lib" / "python3.11" / "site-packages" / "sfs_ros"
    for name in files:
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text("x")
    return pkg


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    command = [bash, str(SCRIPT), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def _files(pkg: Path) -> list[str]:
    return sorted(str(p.relative_to(pkg)) for p in pkg.rglob("*") if p.is_file())


def test_removes_hand_written_modules_and_keeps_generated_messages(tmp_path: Path):
    pkg = _tree(tmp_path, GENERATED + HAND_WRITTEN)
    outside = tmp_path / "lib" / "python3.11" / "site-packages" / "other_package.py"
    outside.write_text("x")
    proc = _run(pkg)
    assert proc.returncode == 0, proc.stderr
    assert _files(pkg) == sorted(GENERATED)
    assert outside.read_text() == "x"


def test_the_glob_of_setup_env_works_with_no_installed_copy(tmp_path: Path):
    # setup_env.sh passes an unmatched glob on the first install: nothing to do, no error.
    proc = _run(tmp_path / "lib" / "python*" / "site-packages" / "sfs_ros")
    assert proc.returncode == 0, proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_directory_that_is_not_sfs_ros(tmp_path: Path):
    keep = tmp_path / "site-packages" / "numpy" / "__init__.py"
    keep.parent.mkdir(parents=True)
    keep.write_text("x")
    proc = _run(keep.parent)
    assert proc.returncode == 2
    assert "refusing" in proc.stderr
    assert keep.read_text() == "x"


def test_setup_env_cleans_right_before_installing():
    lines = (REPO / "scripts" / "setup_env.sh").read_text().splitlines()
    clean = [i for i, line in enumerate(lines) if "clean_installed_package.sh" in line]
    install = [i for i, line in enumerate(lines) if line.startswith("cmake --install")]
    assert len(clean) == 1 and len(install) == 1
    assert '"$VENV"/lib/python*/site-packages/sfs_ros' in lines[clean[0]]
    assert clean[0] + 1 == install[0]
