"""Entry point of the ROS 2 node: ``python -m sfs_ros.node --ros-args ...``.

Also used by ``scripts/sfs_node`` (installed to ``lib/sfs_ros/`` for ``ros2 run``). rclpy is
imported only when the node runs, so importing this module stays cheap.
"""

from __future__ import annotations

import sys


def main(args: list[str] | None = None) -> int:
    """Run the ``sfs`` node; returns the process exit code (see :func:`sfs_ros.ros.node.main`)."""
    from sfs_ros.ros.node import main as run_node

    return run_node(args)


if __name__ == "__main__":
    sys.exit(main())
