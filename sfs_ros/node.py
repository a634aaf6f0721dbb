"""Entry point of the ROS 2 node: ``python -m sfs_ros.node --ros-args ...``.

Also used by ``scripts/sfs_node`` (installed to ``lib/sfs_ros/`` for ``ros2 run``). rclpy is
imported only when the node runs, so importing this module stays cheap.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any


def _exit_quietly(signum: int, _frame: Any) -> None:
    """SIGINT/SIGTERM while the node's modules are still being imported: nothing is running
    yet, so end at once with exit code 0 (instead of a KeyboardInterrupt traceback)."""
    print(f"{signal.Signals(signum).name} during start-up: exiting", file=sys.stderr, flush=True)
    os._exit(0)


def exit_quietly_on_signals() -> None:
    """Install :func:`_exit_quietly` for SIGINT and SIGTERM (the node replaces it once its
    imports are done, before it creates anything)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _exit_quietly)


def main(args: list[str] | None = None) -> int:
    """Run the ``sfs`` node; returns the process exit code (see :func:`sfs_ros.ros.node.main`)."""
    exit_quietly_on_signals()
    from sfs_ros.ros.node import main as run_node

    return run_node(args)


if __name__ == "__main__":
    sys.exit(main())
