"""Open-vocabulary branch: CLIP naming of masks on a background thread (docs/architecture.md).

Modules: :mod:`.clip` (open_clip adapter, cached text embeddings, one crop batch per pass),
:mod:`.tracks` (mask-track association that carries labels across frames), :mod:`.worker`
(one-slot background thread), :mod:`.branch` (the glue the pipeline calls),
:mod:`.captioner` (optional BLIP nouns). Importing this package does not import torch.
"""

from sfs_ros.open_vocab.branch import OpenVocabBranch, Snapshot
from sfs_ros.open_vocab.tracks import TrackLabel, TrackStore
from sfs_ros.open_vocab.worker import OpenVocabWorker, WorkerStats

__all__ = [
    "OpenVocabBranch",
    "OpenVocabWorker",
    "Snapshot",
    "TrackLabel",
    "TrackStore",
    "WorkerStats",
]
