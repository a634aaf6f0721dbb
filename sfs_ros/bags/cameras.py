# SPDX-License-Identifier: AGPL-3.0-or-later
"""Which bag topics are labelled, and the output topic names of each camera.

Output names follow the node (``sfs_ros/ros/ros_params.py``: ``camera_specs``): with one camera
the outputs are ``/<namespace>/semantic``, ``…/semantic_color``, ``…/overlay`` and ``…/legend``;
with several, each camera gets its own ``/<namespace>/<camera>/…``. The camera name is derived
from the input topic (``/front/image_raw`` → ``front``, ``/cam/color/image_raw/compressed`` →
``cam_color``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sfs_ros.bags.messages import COMPRESSED_IMAGE, IMAGE_TYPES

# Trailing topic components that name the image stream rather than the camera.
_STREAM_NAMES = frozenset(
    {
        "image",
        "image_raw",
        "image_rect",
        "image_color",
        "image_rect_color",
        "image_mono",
        "image_rect_raw",
        "compressed",
    }
)
_NOT_NAME_CHARS = re.compile(r"[^A-Za-z0-9_]+")


class TopicSelectionError(ValueError):
    """``--topics`` names a topic the bag lacks, or one that is not an image topic, or the bag
    holds no image topic at all."""


@dataclass(frozen=True)
class Camera:
    """One labelled input topic and where its outputs go."""

    topic: str
    msgtype: str
    name: str
    prefix: str  # output topic prefix, ends with '/'

    def output(self, kind: str) -> str:
        """Output topic of ``kind`` (``semantic``, ``semantic_color``, ``overlay``, ``legend``)."""
        return f"{self.prefix}{kind}"


def camera_name(topic: str) -> str:
    """A valid camera name (letters, digits, '_', starting with a letter) from a topic."""
    parts = [p for p in topic.split("/") if p]
    while len(parts) > 1 and parts[-1] in _STREAM_NAMES:
        parts.pop()
    name = _NOT_NAME_CHARS.sub("_", "_".join(parts)).strip("_")
    if not name:
        return "camera"
    return name if name[0].isalpha() else f"cam_{name}"


def select_cameras(
    topic_types: Mapping[str, str], wanted: Sequence[str] | None, namespace: str = "sfs"
) -> list[Camera]:
    """The cameras to label: every Image / CompressedImage topic, or those in ``wanted``.

    Args:
        topic_types: topic → message type of the input bag.
        wanted: ``--topics`` (None: all image topics).
        namespace: output namespace (the node's default is ``sfs``).

    Raises:
        TopicSelectionError: see the class.
    """
    image_topics = sorted(t for t, typ in topic_types.items() if typ in IMAGE_TYPES)
    if wanted:
        missing = [t for t in wanted if t not in topic_types]
        if missing:
            raise TopicSelectionError(
                f"--topics: not in the bag: {', '.join(missing)} (image topics in the bag: "
                f"{', '.join(image_topics) or 'none'})"
            )
        not_images = [f"{t} ({topic_types[t]})" for t in wanted if t not in image_topics]
        if not_images:
            raise TopicSelectionError(
                f"--topics: not sensor_msgs/msg/Image or CompressedImage: {', '.join(not_images)}"
            )
        topics = sorted(set(wanted))
    else:
        topics = image_topics
    if not topics:
        raise TopicSelectionError(
            "the bag holds no sensor_msgs/msg/Image or sensor_msgs/msg/CompressedImage topic"
        )
    names: list[str] = []
    for topic in topics:
        name = camera_name(topic)
        if topic_types[topic] == COMPRESSED_IMAGE and name in names:
            name = f"{name}_compressed"  # raw and compressed stream of one camera
        base, n = name, 2
        while name in names:
            name, n = f"{base}_{n}", n + 1
        names.append(name)
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    single = len(topics) == 1
    return [
        Camera(topic, topic_types[topic], name, f"{ns}/" if single else f"{ns}/{name}/")
        for topic, name in zip(topics, names, strict=True)
    ]
