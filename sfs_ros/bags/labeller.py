# SPDX-License-Identifier: AGPL-3.0-or-later
"""The pipeline as bag labelling calls it (the one place that talks to :class:`Pipeline`).

Offline, the real-time limit is gone: the open-vocabulary branch runs synchronously on every
frame (no background worker), and each camera keeps its own mask tracks, so the labels follow
that camera's image sequence instead of being matched against another camera's masks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sfs_ros.params import SCHEDULE_EVERY_FRAME
from sfs_ros.pipeline import Pipeline, SegmentationResult


class OfflineLabeller:
    """Label frames of several cameras with one pipeline (models loaded once)."""

    def __init__(self, pipeline: Pipeline) -> None:
        if pipeline.config.open_vocab.schedule != SCHEDULE_EVERY_FRAME:
            raise ValueError("bag labelling needs Pipeline.from_config(config.offline())")
        self.pipeline = pipeline

    def label(self, camera: str, rgb: np.ndarray) -> SegmentationResult:
        """Segment one RGB frame of ``camera`` (its own open-vocabulary mask tracks)."""
        return self.pipeline.process(rgb, sequence=camera)

    @property
    def legend(self) -> dict[str, Any]:
        """The current legend (``legend.json`` document)."""
        return self.pipeline.legend_dict()

    def color_lut(self) -> np.ndarray:
        """(K, 3) uint8 legend colours by label id."""
        return self.pipeline.registry.color_lut()

    def restore_legend(self, legend: dict[str, Any]) -> None:
        """Re-register the open-vocabulary names of an earlier run's legend, in id order, so a
        resumed run gives every name the id (and colour) it had.

        Raises:
            ValueError: the earlier legend does not extend this pipeline's legend (another
                vocabulary or closed-set model).
        """
        registry = self.pipeline.registry
        current = {c["id"]: c["name"] for c in registry.legend_dict()["classes"]}
        if legend["vocabulary"] != registry.vocabulary_name:
            raise ValueError(
                f"the output was labelled with vocabulary '{legend['vocabulary']}', this run "
                f"uses '{registry.vocabulary_name}'"
            )
        for entry in sorted(legend["classes"], key=lambda c: c["id"]):
            if entry["id"] in current:
                if current[entry["id"]] != entry["name"]:
                    raise ValueError(
                        f"legend id {entry['id']} was '{entry['name']}', this run has "
                        f"'{current[entry['id']]}'"
                    )
                continue
            new_id = registry.add(entry["name"], entry["source"])
            if new_id != entry["id"]:
                raise ValueError(
                    f"legend name '{entry['name']}' had id {entry['id']}, now gets {new_id}"
                )
