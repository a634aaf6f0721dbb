# SPDX-License-Identifier: AGPL-3.0-or-later
"""A procedural "tiny world": synthetic robot-camera scenes with exact ground truth.

Pretrained weights cannot be assumed, and random weights say nothing about label quality.
This subpackage draws scenes a robot camera could see (textured floor, wall and sky, a dozen
object classes with distinct shapes and colours, occlusion, scale, lighting, blur, panning
sequences) deterministically from a seed, with semantic label maps and instance masks, so small
models can be trained here and the pipeline's output can be measured against ground truth.

* :mod:`~sfs_ros.world.classes` - the class table (closed-set and open-vocabulary-only classes);
* :mod:`~sfs_ros.world.scene` - the scene generator (numpy + OpenCV only, no torch, no ROS).

Modules that train or evaluate models import torch lazily; the scene names load on first use.
"""

from typing import Any

from sfs_ros.world.classes import (
    CLASS_NAMES,
    CLASSES,
    CLOSED_SET_NAMES,
    GENERATOR_VERSION,
    OPEN_ONLY_NAMES,
    WorldClass,
    class_index,
)

__all__ = [
    "CLASSES",
    "CLASS_NAMES",
    "CLOSED_SET_NAMES",
    "GENERATOR_VERSION",
    "OPEN_ONLY_NAMES",
    "Scene",
    "WorldClass",
    "class_index",
    "generate_scene",
    "generate_sequence",
]

_SCENE_NAMES = frozenset({"Scene", "generate_scene", "generate_sequence"})


def __getattr__(name: str) -> Any:
    """Load the scene generator (numpy + OpenCV) on first use of one of its names."""
    if name in _SCENE_NAMES:
        from sfs_ros.world import scene

        return getattr(scene, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
