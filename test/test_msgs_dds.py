"""The generated sfs_ros.msg interfaces over real DDS, between separate processes."""

from __future__ import annotations

import json
import textwrap

import pytest

pytestmark = pytest.mark.dds

PUBLISHER = textwrap.dedent(
    """
    import sys, time
    import rclpy
    from rclpy.qos import QoSProfile, DurabilityPolicy, ReliabilityPolicy
    from sfs_ros.msg import ClassInfo, ClassLegend
    rclpy.init()
    node = rclpy.create_node("legend_pub")
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
    pub = node.create_publisher(ClassLegend, "/sfs/legend", qos)
    msg = ClassLegend(revision=7, vocabulary="ade20k")
    msg.header.frame_id = "camera_optical"
    msg.header.stamp.sec = 1234
    msg.classes = [
        ClassInfo(id=0, name="unidentified", color=[0, 0, 0],
                  source=ClassInfo.SOURCE_UNIDENTIFIED),
        ClassInfo(id=1, name="wall", color=[120, 120, 120], source=ClassInfo.SOURCE_CLOSED_SET),
        ClassInfo(id=151, name="kite", color=[10, 200, 30], source=ClassInfo.SOURCE_OPEN_VOCAB),
    ]
    pub.publish(msg)
    print("PUBLISHED", flush=True)
    while rclpy.ok():
        rclpy.spin_once(node, timeout_sec=0.1)
    """
)

LATE_SUBSCRIBER = textwrap.dedent(
    """
    import json, sys, time
    import rclpy
    from rclpy.qos import QoSProfile, DurabilityPolicy, ReliabilityPolicy
    from sfs_ros.msg import ClassLegend
    rclpy.init()
    node = rclpy.create_node("legend_sub")
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
    got = []
    node.create_subscription(ClassLegend, "/sfs/legend", got.append, qos)
    deadline = time.monotonic() + 20
    while not got and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    if not got:
        print("TIMEOUT", flush=True); sys.exit(1)
    m = got[0]
    print("RESULT " + json.dumps({
        "revision": m.revision, "vocabulary": m.vocabulary, "frame_id": m.header.frame_id,
        "sec": m.header.stamp.sec,
        "classes": [[c.id, c.name, list(map(int, c.color)), c.source] for c in m.classes],
    }), flush=True)
    """
)


def test_legend_is_latched_for_a_late_subscriber(dds_env, processes):
    pub = processes.python(["-c", PUBLISHER], dds_env)
    assert pub.stdout.readline().strip() == "PUBLISHED"  # published before anyone listens
    sub = processes.python(["-c", LATE_SUBSCRIBER], dds_env)
    out, _ = sub.communicate(timeout=60)
    result = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert result, out
    legend = json.loads(result[0][len("RESULT ") :])
    assert legend["revision"] == 7
    assert legend["vocabulary"] == "ade20k"
    assert legend["frame_id"] == "camera_optical"
    assert legend["sec"] == 1234
    assert legend["classes"] == [
        [0, "unidentified", [0, 0, 0], 0],
        [1, "wall", [120, 120, 120], 1],
        [151, "kite", [10, 200, 30], 2],
    ]
