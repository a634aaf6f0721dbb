"""QoS profiles of the sfs_ros graph, in one place (README.md "Outputs", REP-2003)."""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy


def reliable(depth: int) -> QoSProfile:
    """RELIABLE / VOLATILE, keep last ``depth`` (what RViz's Image display uses)."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
    )


def best_effort(depth: int) -> QoSProfile:
    """BEST_EFFORT / VOLATILE, keep last ``depth`` (sensor data)."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.VOLATILE,
    )


def latched() -> QoSProfile:
    """RELIABLE + TRANSIENT_LOCAL, depth 1: late subscribers get the last message (legend)."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )


# The node's input choices (parameter input_qos): newest frame only either way.
INPUT_QOS = {"sensor_data": best_effort(1), "reliable": reliable(1)}
IMAGE_OUT_QOS = reliable(2)
LEGEND_QOS = latched()
