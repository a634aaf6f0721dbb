"""Importing sfs_ros and its core (ultralytics, transformers included) touches no network."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PROBE = textwrap.dedent(
    """
    import socket
    calls = []
    def refuse(name):
        def fn(*args, **kwargs):
            calls.append((name, repr(args)[:80]))
            raise OSError("network access attempted: " + name)
        return fn
    socket.getaddrinfo = refuse("getaddrinfo")
    socket.create_connection = refuse("create_connection")
    socket.socket.connect = refuse("connect")
    socket.socket.connect_ex = refuse("connect_ex")
    socket.socket.sendto = refuse("sendto")

    import sfs_ros
    import sfs_ros.pipeline, sfs_ros.models.fastsam, sfs_ros.models.closed_set
    import sfs_ros.weights, sfs_ros.cli.segment, sfs_ros.evaluation.cli
    from sfs_ros.runtime import import_ultralytics
    import_ultralytics()
    import transformers
    from ultralytics.utils import SETTINGS, ONLINE
    print("CALLS", calls)
    print("SYNC", SETTINGS["sync"], "ONLINE", ONLINE)
    """
)


def test_imports_make_no_network_access():
    env = {k: v for k, v in os.environ.items() if k not in {"YOLO_OFFLINE", "HF_HUB_OFFLINE"}}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    assert "CALLS []" in proc.stdout, proc.stdout
    assert "SYNC False ONLINE False" in proc.stdout, proc.stdout


def test_sfs_ros_package_import_is_light():
    code = (
        "import sys, sfs_ros; "
        "print(sorted(m for m in ('torch', 'rclpy', 'cv2') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr
