# SPDX-License-Identifier: AGPL-3.0-or-later
"""The hint of the "waiting for images" line: from what the ROS graph shows, name the likely
reason nothing arrives (topic, transport, QoS, frame size). ROS-free, tested without DDS."""

from __future__ import annotations

from dataclasses import dataclass, field

LARGE_FRAMES_HINT = (
    "frames of about 1 MB and more (e.g. 1280x720 rgb8) may be lost between processes over "
    "Fast DDS's default shared-memory settings: use input_qos auto or reliable with a RELIABLE "
    "camera, or start the camera with FASTDDS_DEFAULT_PROFILES_FILE pointing at "
    "share/sfs_ros/config/fastdds_large_images.xml (README, 'Large frames')"
)


@dataclass(frozen=True)
class TopicGraph:
    """What the graph says about one camera's input topic.

    Attributes:
        topic: the resolved input topic.
        transport: ``raw`` or ``compressed``.
        qos_setting: the ``input_qos`` parameter (``auto``, ``sensor_data``, ``reliable``).
        subscription_qos: the subscription's policies (``reliable/volatile``).
        publisher_qos: the policies of each publisher on ``topic``.
        other_transport_topic: the topic of the other transport (``<topic>/compressed`` or the
            base topic).
        other_transport_publishers: how many publishers it has.
        image_topics: other ``sensor_msgs/msg/Image`` topics in the graph.
    """

    topic: str
    transport: str
    qos_setting: str
    subscription_qos: str
    publisher_qos: list[str] = field(default_factory=list)
    other_transport_topic: str = ""
    other_transport_publishers: int = 0
    image_topics: list[str] = field(default_factory=list)


def waiting_hint(graph: TopicGraph, max_topics: int = 5) -> str:
    """One sentence (or a few, joined with '; ') on why no frame has arrived yet."""
    if not graph.publisher_qos:
        hints = [f"no publisher on {graph.topic}: check the camera runs and the topic name"]
        if graph.other_transport_publishers:
            other = "compressed" if graph.transport == "raw" else "raw"
            hints.append(
                f"{graph.other_transport_topic} has a publisher: use input_transport:={other}"
            )
        if graph.image_topics:
            shown = ", ".join(graph.image_topics[:max_topics])
            extra = len(graph.image_topics) - max_topics
            shown += f" (+{extra} more)" if extra > 0 else ""
            hints.append(f"image topics seen: {shown}; remap with image:=<topic>")
        return "; ".join(hints)
    reliable_sub = graph.subscription_qos.startswith("reliable")
    best_effort_pubs = [q for q in graph.publisher_qos if q.startswith("best_effort")]
    if reliable_sub and best_effort_pubs:
        return (
            f"QoS mismatch: {len(best_effort_pubs)} publisher(s) on {graph.topic} are "
            f"BEST_EFFORT but input_qos {graph.qos_setting} subscribes RELIABLE: "
            "use input_qos:=auto or sensor_data"
        )
    if graph.subscription_qos.split("/")[-1] == "transient_local" and any(
        q.endswith("/volatile") for q in graph.publisher_qos
    ):
        return (
            f"QoS mismatch: a VOLATILE publisher on {graph.topic} cannot serve a "
            "TRANSIENT_LOCAL subscription: use input_qos:=sensor_data"
        )
    publishers = ", ".join(sorted(set(graph.publisher_qos)))
    hint = f"{len(graph.publisher_qos)} publisher(s) ({publishers}) but no frame yet"
    if not reliable_sub and any(q.startswith("reliable") for q in graph.publisher_qos):
        hint += "; a best-effort subscription to a reliable camera loses large frames"
    return f"{hint}; {LARGE_FRAMES_HINT}"
