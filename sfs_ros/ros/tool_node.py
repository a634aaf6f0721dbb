# SPDX-License-Identifier: AGPL-3.0-or-later
"""The ``main()`` of a helper node that runs until its job is done (the demo camera and the
recorder of ``sfs_ros/demo/``): rclpy without its own signal handlers, a :class:`StopFlag`
for SIGINT / SIGTERM, start-up errors as one log line and an exit code, and the node destroyed
and rclpy shut down on every way out. The ``sfs`` node itself has its own ``main``
(:mod:`sfs_ros.ros.node`): it spins an executor until a signal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import TypeVar

import rclpy
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from sfs_ros.ros.signals import StopFlag

NodeT = TypeVar("NodeT", bound=Node)


def run_tool_node(
    argv: list[str] | None,
    name: str,
    make_node: Callable[[], NodeT],
    run: Callable[[NodeT, StopFlag], int],
    start_errors: Mapping[type[Exception], int],
) -> int:
    """Start a helper node, let ``run`` drive it, return the process exit code.

    Args:
        argv: the command line (``sys.argv`` when None), ROS arguments included.
        name: the logger name of start-up errors.
        make_node: builds the node (after ``rclpy.init``).
        run: spins the node until its job is done or the flag is set; returns the exit code.
        start_errors: exception types ``make_node`` may raise for a bad start, each with its
            exit code; the first matching entry wins, and ``cannot start: <error>`` is logged.
            Other exceptions propagate.
    """
    rclpy.init(
        args=sys.argv if argv is None else argv, signal_handler_options=SignalHandlerOptions.NO
    )
    stop = StopFlag()
    node: NodeT | None = None
    try:
        try:
            node = make_node()
        except tuple(start_errors) as exc:
            rclpy.logging.get_logger(name).error(f"cannot start: {exc}")
            return next(code for kind, code in start_errors.items() if isinstance(exc, kind))
        return run(node, stop)
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
