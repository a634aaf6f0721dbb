# SPDX-License-Identifier: AGPL-3.0-or-later
"""Message types and conversions between ``rosbags`` messages and the pipeline's arrays.

``rosbags`` deserialises into its own dataclasses, which carry the same fields as the ROS
messages, so decoding is done by :mod:`sfs_ros.ros.conversions` directly. Building output images
also reuses :func:`~sfs_ros.ros.conversions.to_image_msg` (encoding, step, endianness checks);
only the final object is mapped onto the ``rosbags`` dataclass, whose constructor needs every
field at once.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from sfs_ros.labels import legend_msg_to_dict
from sfs_ros.ros.conversions import compressed_msg_to_rgb, image_msg_to_rgb, to_image_msg

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = frozenset({IMAGE, COMPRESSED_IMAGE})
CLASS_INFO = "sfs_ros/msg/ClassInfo"
CLASS_LEGEND = "sfs_ros/msg/ClassLegend"
_MSG_FILES = {CLASS_INFO: "ClassInfo.msg", CLASS_LEGEND: "ClassLegend.msg"}


class MessageDefinitionsNotFoundError(FileNotFoundError):
    """The ``msg/*.msg`` files of sfs_ros could not be found."""


def msg_dir() -> Path:
    """The folder holding ``ClassInfo.msg`` / ``ClassLegend.msg``: the source checkout's
    ``msg/``, or ``share/sfs_ros/msg`` of the install prefix (colcon)."""
    candidates = [
        Path(__file__).resolve().parents[2] / "msg",
        Path(sys.prefix) / "share" / "sfs_ros" / "msg",
    ]
    for folder in candidates:
        if _has_msg_files(folder):
            return folder
    try:  # a sourced ROS workspace
        from ament_index_python.packages import get_package_share_directory

        folder = Path(get_package_share_directory("sfs_ros")) / "msg"
    except (ImportError, LookupError, OSError):  # no ROS environment, or sfs_ros not in it
        pass
    else:
        candidates.append(folder)
        if _has_msg_files(folder):
            return folder
    raise MessageDefinitionsNotFoundError(
        "cannot find ClassInfo.msg / ClassLegend.msg; looked in "
        + ", ".join(str(c) for c in candidates)
    )


def _has_msg_files(folder: Path) -> bool:
    return all((folder / name).is_file() for name in _MSG_FILES.values())


def make_typestore() -> Any:
    """A ``rosbags`` typestore with the ROS 2 Kilted messages plus ``sfs_ros/msg/ClassInfo``
    and ``sfs_ros/msg/ClassLegend`` registered from ``msg/*.msg``."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    folder = msg_dir()
    types: dict = {}
    for typename, filename in _MSG_FILES.items():
        types.update(get_types_from_msg((folder / filename).read_text(), typename))
    store.register(types)
    return store


def decode_rgb(msg: Any, msgtype: str) -> np.ndarray:
    """RGB uint8 (H, W, 3) of an Image / CompressedImage message, as the node decodes it.

    Raises:
        sfs_ros.ros.conversions.ImageConversionError: the node would drop this frame too.
    """
    if msgtype == COMPRESSED_IMAGE:
        return compressed_msg_to_rgb(msg)
    return image_msg_to_rgb(msg)


def image_message(store: Any, array: np.ndarray, encoding: str, header: Any) -> Any:
    """A ``rosbags`` ``sensor_msgs/msg/Image`` of ``array`` (see ``to_image_msg``)."""
    built = to_image_msg(array, encoding, header, msg_cls=SimpleNamespace)
    return store.types[IMAGE](
        header=built.header,
        height=built.height,
        width=built.width,
        encoding=built.encoding,
        is_bigendian=built.is_bigendian,
        step=built.step,
        data=np.frombuffer(built.data, np.uint8),
    )


def legend_message(store: Any, legend: dict, header: Any) -> Any:
    """A ``rosbags`` ``sfs_ros/msg/ClassLegend`` of a ``legend.json`` document."""
    info = store.types[CLASS_INFO]
    return store.types[CLASS_LEGEND](
        header=header,
        revision=int(legend["revision"]),
        classes=[
            info(
                id=int(c["id"]),
                name=str(c["name"]),
                color=np.asarray(c["color"], np.uint8),
                source=int(c["source"]),
            )
            for c in legend["classes"]
        ],
        vocabulary=str(legend["vocabulary"]),
    )


def legend_dict_of(msg: Any) -> dict:
    """The ``legend.json`` form of a deserialised ClassLegend message."""
    return legend_msg_to_dict(msg)
