# SPDX-License-Identifier: AGPL-3.0-or-later
"""An offline start says the truth once per model, and never waits on hub retries.

Only SFS_OFFLINE is set here (as a user would), not HF_HUB_OFFLINE: huggingface_hub then
used to retry an unreachable hub for ~50 s and print duplicated warnings for CLIP.
"""

from __future__ import annotations

import logging

import pytest

pytestmark = pytest.mark.models


@pytest.fixture
def sfs_offline_only(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setenv("SFS_OFFLINE", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def test_clip_offline_is_one_line_and_no_hub_request(
    sfs_offline_only, monkeypatch, caplog, tiny_clip_name
):
    from open_clip import pretrained

    from sfs_ros.open_vocab.clip import ClipScorer

    tags = {"sfstest": pretrained._pcfg(hf_hub="sfs-test/no-such-clip/")}
    monkeypatch.setitem(pretrained._PRETRAINED, tiny_clip_name, tags)
    with caplog.at_level(logging.DEBUG):
        scorer = ClipScorer.load(tiny_clip_name, "sfstest", allow_random=True)
    assert scorer.is_random
    assert not [r for r in caplog.records if r.name.startswith("huggingface_hub")]
    assert not [r for r in caplog.records if r.name == "root" and r.levelno >= logging.INFO]
    lines = [r.getMessage() for r in caplog.records if "sfstest" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "not in the local cache and downloads are off" in lines[0]
    assert "using random weights because allow_random_weights is on" in lines[0]


def test_clip_offline_without_random_weights_is_a_clear_error(
    sfs_offline_only, monkeypatch, tiny_clip_name
):
    from open_clip import pretrained

    from sfs_ros.open_vocab.clip import ClipScorer
    from sfs_ros.weights import WeightsNotFoundError

    tags = {"sfstest": pretrained._pcfg(hf_hub="sfs-test/no-such-clip/")}
    monkeypatch.setitem(pretrained._PRETRAINED, tiny_clip_name, tags)
    with pytest.raises(WeightsNotFoundError, match="downloads are off"):
        ClipScorer.load(tiny_clip_name, "sfstest")


def test_closed_set_offline_is_one_line(sfs_offline_only, caplog):
    from sfs_ros.weights import resolve_hf_model

    names = {i: f"c{i}" for i in range(3)}
    model_id = "sfs-test/segformer-b0-not-cached"
    with caplog.at_level(logging.INFO):
        _, is_random = resolve_hf_model(model_id, names, allow_random=True)
    assert is_random
    lines = [r.getMessage() for r in caplog.records if model_id in r.getMessage()]
    assert len(lines) == 1, lines
    assert "downloads are off" in lines[0]
    assert "using random weights because allow_random_weights is on" in lines[0]
    assert not any("downloading" in r.getMessage() for r in caplog.records)
