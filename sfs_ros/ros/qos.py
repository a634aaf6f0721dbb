"""QoS profiles of the sfs_ros graph, in one place (README.md "Outputs", REP-2003)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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


# The node's fixed input choices (parameter input_qos): newest frame only either way.
INPUT_QOS = {"sensor_data": best_effort(1), "reliable": reliable(1)}
AUTO = "auto"
"""input_qos value: match the publishers of the input topic (:func:`match_publishers`)."""


def describe(profile: QoSProfile) -> str:
    """``reliable/volatile``-style text of a profile's reliability and durability."""
    reliability = "reliable" if profile.reliability == ReliabilityPolicy.RELIABLE else "best_effort"
    durability = (
        "transient_local" if profile.durability == DurabilityPolicy.TRANSIENT_LOCAL else "volatile"
    )
    return f"{reliability}/{durability}"


def match_publishers(publishers: Sequence[Any]) -> QoSProfile:
    """The input profile for ``input_qos: auto``, as ``ros2 topic echo`` chooses it.

    RELIABLE when every publisher is reliable (a best-effort reader of a reliable writer loses
    large, fragmented frames: one lost fragment loses the frame), else BEST_EFFORT (the only
    choice that matches a best-effort writer); TRANSIENT_LOCAL when every publisher offers it,
    else VOLATILE. No publisher yet: best effort / volatile, which matches any writer, until
    one appears (the node then matches again). Depth 1 either way: newest frame only.

    Args:
        publishers: QoS profiles of the topic's publishers (``TopicEndpointInfo.qos_profile``).
    """
    profile = best_effort(1)
    if publishers and all(p.reliability == ReliabilityPolicy.RELIABLE for p in publishers):
        profile.reliability = ReliabilityPolicy.RELIABLE
    if publishers and all(p.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in publishers):
        profile.durability = DurabilityPolicy.TRANSIENT_LOCAL
    return profile


def same_policies(a: QoSProfile, b: QoSProfile) -> bool:
    """True when two profiles have the same reliability and durability."""
    return a.reliability == b.reliability and a.durability == b.durability


IMAGE_OUT_QOS = reliable(2)
LEGEND_QOS = latched()
