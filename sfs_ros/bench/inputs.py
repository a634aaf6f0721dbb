# SPDX-License-Identifier: AGPL-3.0-or-later
"""What every benchmark feeds: the frame, the model files and the pipeline configuration.

Frames come from :mod:`sfs_ros.samples` (the photos shipped in the installed ultralytics
package, else a synthetic scene); nothing is read from a source tree.

Input messages are ``sensor_msgs/msg/Image`` when ROS is installed (the node decodes and builds
exactly these), else :class:`types.SimpleNamespace` with the same fields, so ``sfs-bench`` also
runs from a pip install without ROS (then message construction is a little cheaper than with
rosidl's classes).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from types import SimpleNamespace
from typing import Any

import numpy as np

DEFAULT_SEGMENTER = "nvidia/segformer-b0-finetuned-ade-512-512"
"""The shipped preset's closed-set model (``closed_set.model`` of config/sfs.yaml)."""

RANDOM_WEIGHTS_CONF = 0.003
"""``fastsam.conf`` that gives ~100 masks from random FastSAM weights, like the real model at
the shipped 0.4."""


def parse_size(text: str) -> tuple[int, int]:
    """``"640x480"`` → ``(640, 480)``."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"size {text!r}: expected WIDTHxHEIGHT") from exc
    if width <= 0 or height <= 0:
        raise argparse.ArgumentTypeError(f"size {text!r}: must be positive")
    return width, height


def bench_frame(width: int, height: int) -> tuple[np.ndarray, str]:
    """The benchmark frame (RGB uint8) and where it came from: the first bundled sample photo
    (ultralytics' bus.jpg) resized, else :func:`~sfs_ros.samples.synthetic_scene`."""
    import cv2

    from sfs_ros.samples import SAMPLE_NAMES, SamplesNotFoundError, sample_images, synthetic_scene

    try:
        photo = sample_images()[0]
    except SamplesNotFoundError:
        return synthetic_scene(width, height), "synthetic scene"
    return cv2.resize(photo, (width, height)), f"{SAMPLE_NAMES[0]} resized"


def image_msg_class() -> Any:
    """``sensor_msgs.msg.Image``, or SimpleNamespace without ROS (see the module docstring)."""
    try:
        from sensor_msgs.msg import Image
    except ImportError:
        return SimpleNamespace
    return Image


def frame_header(frame_id: str = "camera") -> Any:
    """A ``std_msgs/Header`` (or a stand-in without ROS) for the benchmark's messages."""
    try:
        from std_msgs.msg import Header
    except ImportError:
        return SimpleNamespace(stamp=SimpleNamespace(sec=0, nanosec=0), frame_id=frame_id)
    return Header(frame_id=frame_id)


def rgb8_message(rgb: np.ndarray, header: Any = None) -> Any:
    """An ``rgb8`` image message holding ``rgb``, as a camera driver sends it."""
    from sfs_ros.ros.conversions import to_image_msg

    header = frame_header() if header is None else header
    return to_image_msg(rgb, "rgb8", header, image_msg_class())


def resolve_models(args: argparse.Namespace) -> None:
    """Resolve (or build, with random weights) ``args.fastsam`` and ``args.closed_set`` once,
    in place, so every configuration of a run loads the same files."""
    from sfs_ros.vocabularies import get_vocabulary
    from sfs_ros.weights import resolve_fastsam_weights, resolve_hf_model

    args.fastsam, _ = resolve_fastsam_weights(args.fastsam, allow_random=True)
    ade = dict(enumerate(get_vocabulary("ade20k").names))
    args.closed_set, _ = resolve_hf_model(args.closed_set, ade, allow_random=True)


def config_for(
    args: argparse.Namespace,
    imgsz: int,
    backend: str,
    extra: Mapping[str, Any] | None = None,
    overrides: Iterable[str] = (),
) -> dict[str, Any]:
    """The validated pipeline configuration of a benchmark run: the built-in defaults (the
    shipped preset), the benchmark's models and mask budget, CPU, ``backend`` and ``imgsz``,
    then ``extra`` and ``overrides`` (``KEY=VALUE`` strings)."""
    from sfs_ros.params import load_config, parse_override

    settings = {
        "device": "cpu",
        "backend": backend,
        "num_threads": args.threads,
        "allow_random_weights": True,
        "fastsam.model": args.fastsam,
        "fastsam.imgsz": imgsz,
        "fastsam.conf": args.conf,
        "fastsam.max_masks": args.max_masks,
        "closed_set.model": args.closed_set,
        **(extra or {}),
    }
    settings.update(parse_override(item) for item in overrides)
    return load_config(None, settings)


def shipped(name: str) -> Any:
    """The shipped preset's value of parameter ``name`` (the built-in default)."""
    from sfs_ros.params import defaults

    return defaults()[name]
