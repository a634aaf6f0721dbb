# SPDX-License-Identifier: AGPL-3.0-or-later
"""The image messages the node publishes for one frame, built without rclpy.

:class:`OutputEncoder` is the node's publish path up to (not including) ``publisher.publish``:
the node (:mod:`sfs_ros.ros.node`) calls :meth:`OutputEncoder.encode` for every frame and
publishes what it returns, and ``sfs-bench``'s ``ours`` configuration
(:mod:`sfs_ros.bench.pipeline`) calls the same method, so the benchmark times the encodings
that ship: ``semantic`` and ``instances`` as ``mono16``, ``semantic_color``, ``overlay`` and
``legend_image`` as ``rgb8``.

Which outputs are built is the caller's choice (``wanted``): the node builds ``semantic`` on
every frame and the others only while someone subscribes to them. The legend message
(``sfs_ros/ClassLegend``) is not an image and stays in the node.

Messages are instances of ``msg_cls`` (default: ``sensor_msgs.msg.Image``, imported lazily by
:func:`~sfs_ros.ros.conversions.to_image_msg`); anything constructible without arguments
whose attributes can be set works, e.g. :class:`types.SimpleNamespace`.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import numpy as np

from sfs_ros import render
from sfs_ros.ros.conversions import to_image_msg
from sfs_ros.ros.legend_image import draw_legend

if TYPE_CHECKING:
    from sfs_ros.labels import LabelRegistry
    from sfs_ros.pipeline import SegmentationResult

__all__ = ["IMAGE_OUTPUTS", "ON_EVERY_FRAME", "OutputEncoder"]

IMAGE_OUTPUTS: tuple[str, ...] = (
    "semantic",
    "semantic_color",
    "overlay",
    "instances",
    "legend_image",
)
"""Names (topic suffixes) of the image outputs, in publishing order."""

ON_EVERY_FRAME = "semantic"
"""The output published on every frame; the others only while subscribed."""


class OutputEncoder:
    """Builds one frame's image messages; caches the colour table per legend revision.

    Args:
        registry: the pipeline's label registry (colours, names, revision).
        msg_cls: the image message class (default ``sensor_msgs.msg.Image``).
    """

    def __init__(self, registry: LabelRegistry, msg_cls: Any = None) -> None:
        self.registry = registry
        self.msg_cls = msg_cls
        self._lut: np.ndarray | None = None
        self._lut_revision = -1

    def color_lut(self) -> np.ndarray:
        """The registry's colour table, rebuilt only when the legend changed."""
        revision = self.registry.revision
        if self._lut is None or revision != self._lut_revision:
            self._lut = self.registry.color_lut()
            self._lut_revision = revision
        return self._lut

    def encode(
        self,
        result: SegmentationResult,
        rgb: np.ndarray,
        header: Any,
        *,
        overlay_alpha: float,
        wanted: Collection[str] = IMAGE_OUTPUTS,
    ) -> dict[str, Any]:
        """Messages of the outputs in ``wanted`` (plus ``semantic`` always), by output name,
        in :data:`IMAGE_OUTPUTS` order, each carrying ``header`` (the input frame's).

        Args:
            result: the pipeline's result for ``rgb``.
            rgb: the decoded input frame (for the overlay).
            header: the input message's header.
            overlay_alpha: weight of the class colours in the overlay.
            wanted: output names to build besides ``semantic``.

        Raises:
            ValueError: an unknown output name in ``wanted``; or a map that cannot be encoded.
        """
        unknown = set(wanted) - set(IMAGE_OUTPUTS)
        if unknown:
            raise ValueError(f"unknown outputs {sorted(unknown)}; known: {IMAGE_OUTPUTS}")
        cls = self.msg_cls
        out = {ON_EVERY_FRAME: to_image_msg(result.label_map, "mono16", header, cls)}
        color = None  # made once for both colour outputs
        if "semantic_color" in wanted or "overlay" in wanted:
            # coloured on the smallest map that resizes to the label map, then resized
            color = render.colorize(result.color_labels, self.color_lut(), result.label_map.shape)
        if "semantic_color" in wanted:
            out["semantic_color"] = to_image_msg(color, "rgb8", header, cls)
        if "overlay" in wanted:
            blended = render.overlay(rgb, result.label_map, self.color_lut(), overlay_alpha, color)
            out["overlay"] = to_image_msg(blended, "rgb8", header, cls)
        if "instances" in wanted:
            out["instances"] = to_image_msg(result.instance_map, "mono16", header, cls)
        if "legend_image" in wanted:
            present = set(result.label_ids().tolist())
            entries = [e for e in self.registry.entries() if e.id in present]
            swatches = draw_legend([(e.id, e.name, e.color) for e in entries])
            out["legend_image"] = to_image_msg(swatches, "rgb8", header, cls)
        return out
