"""Semantic-segmentation evaluation (``sfs-eval``): mIoU / aAcc on Cityscapes and ADE20K.

* :mod:`~sfs_ros.evaluation.datasets` - validation-layout readers (ground truth with 255 =
  ignore, ADE reduce-zero-label);
* :mod:`~sfs_ros.evaluation.mapping` - our legend's class names -> dataset class indices;
* :mod:`~sfs_ros.evaluation.metrics` - the confusion matrix and mmseg-compatible metrics;
* :mod:`~sfs_ros.evaluation.report` - JSON and Markdown reports;
* :mod:`~sfs_ros.evaluation.cli` - the command line and the evaluation loop.

The command-line names (``evaluate``, ``main``, the predictors) load lazily, so that
``python -m sfs_ros.evaluation.cli`` runs without a double import. Nothing here imports
torch: scoring ``sfs-segment`` output needs numpy, OpenCV and tqdm only.
"""

from typing import Any

from sfs_ros.evaluation.datasets import (
    DATASETS,
    IGNORE_INDEX,
    EvaluationError,
    SegmentationDataset,
    open_dataset,
)
from sfs_ros.evaluation.mapping import IGNORED, ClassMapping, build_mapping
from sfs_ros.evaluation.metrics import ConfusionMatrix, SegmentationMetrics
from sfs_ros.evaluation.report import EvaluationResult, write_reports

__all__ = [
    "DATASETS",
    "IGNORED",
    "IGNORE_INDEX",
    "ClassMapping",
    "ConfusionMatrix",
    "EvaluationError",
    "EvaluationResult",
    "LabelDirPredictor",
    "PipelinePredictor",
    "Predictor",
    "SegmentationDataset",
    "SegmentationMetrics",
    "build_mapping",
    "evaluate",
    "main",
    "open_dataset",
    "write_reports",
]

_CLI_NAMES = frozenset({"LabelDirPredictor", "PipelinePredictor", "Predictor", "evaluate", "main"})


def __getattr__(name: str) -> Any:
    """Load the command-line module on first use of one of its names."""
    if name in _CLI_NAMES:
        from sfs_ros.evaluation import cli

        return getattr(cli, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
