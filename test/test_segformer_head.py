# SPDX-License-Identifier: AGPL-3.0-or-later
"""The folded SegFormer decode head equals transformers' head (sfs_ros/models/segformer_head.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

WORLD_SEGFORMER = Path(__file__).parent / "fixtures" / "tiny_world" / "segformer"


def _random_segformer(hidden: int, seed: int) -> object:
    """A small SegFormer whose decode-head batch norm has non-trivial statistics (a freshly
    built model's identity batch norm would hide a wrongly folded scale or shift)."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    torch.manual_seed(seed)
    config = SegformerConfig(
        num_labels=7,
        hidden_sizes=[16, 24, 40, 64],
        decoder_hidden_size=hidden,
        num_attention_heads=[1, 1, 2, 2],
    )
    model = SegformerForSemanticSegmentation(config).eval()
    with torch.no_grad():
        norm = model.decode_head.batch_norm
        norm.running_mean.uniform_(-0.5, 0.5)
        norm.running_var.uniform_(0.3, 3.0)
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.3, 0.3)
        model.decode_head.classifier.weight.normal_(0.0, 0.5)  # logits of order 1
        for projection in model.decode_head.linear_projections:
            projection.proj.bias.uniform_(-0.2, 0.2)
    return model


@pytest.mark.parametrize("hidden", [32, 96])
@pytest.mark.parametrize("hw", [(128, 128), (96, 160), (100, 75)])
def test_folded_head_equals_transformers_logits(hidden: int, hw: tuple[int, int]) -> None:
    from sfs_ros.models.segformer_head import FoldedSegformer

    model = _random_segformer(hidden, seed=hidden + hw[0])
    x = torch.randn(1, 3, *hw)
    with torch.inference_mode():
        ref = model(pixel_values=x).logits
        got = FoldedSegformer(model)(x)
    assert got.shape == ref.shape
    scale = float(ref.abs().max())
    assert scale > 0.2, "the random model should give non-trivial logits"
    assert float((got - ref).abs().max()) <= 1e-5 * scale
    assert bool((got.argmax(1) == ref.argmax(1)).all())


def test_folding_leaves_the_model_untouched() -> None:
    """The folded head shares the encoder and classifier; the transformers model still runs
    and gives the same logits as before folding."""
    from sfs_ros.models.segformer_head import FoldedSegformer

    model = _random_segformer(32, seed=3)
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        before = model(pixel_values=x).logits.clone()
        FoldedSegformer(model)
        after = model(pixel_values=x).logits
    assert torch.equal(before, after)


@pytest.mark.skipif(not WORLD_SEGFORMER.is_dir(), reason="tiny-world fixtures not present")
def test_trained_segformer_class_maps_unchanged() -> None:
    """On the trained tiny-world SegFormer and tiny-world scenes, the class map through
    ClosedSetSegmenter (folded head) equals transformers' model + argmax, pixel for pixel."""
    from transformers import AutoModelForSemanticSegmentation

    from sfs_ros.models.closed_set import load_segmenter
    from sfs_ros.runtime import select_device
    from sfs_ros.world.scene import generate_scene

    ours = load_segmenter(str(WORLD_SEGFORMER), select_device("cpu", False))
    model = AutoModelForSemanticSegmentation.from_pretrained(
        str(WORLD_SEGFORMER), dtype=torch.float32
    ).eval()
    for index in range(3):
        rgb = generate_scene(4242, index).rgb
        hw = rgb.shape[:2]
        with torch.inference_mode():
            logits = model(pixel_values=ours.preprocess(rgb)).logits
            logits = torch.nn.functional.interpolate(logits, size=hw, mode="bilinear")
        ref = logits[0].argmax(0).numpy()
        got = ours(rgb, hw)
        known = got >= 0  # closed_set.min_confidence defaults to 0 in the adapter
        assert known.all()
        assert float(np.mean(got == ref)) >= 0.9999
        assert len(np.unique(ref)) >= 3, "a tiny-world scene has several classes"


def test_broken_segformer_fails_on_the_warm_up_frame(segformer_dir) -> None:
    """Finite but absurd weights overflow to inf logits: the folded torch network refuses them on
    the first frame as broken weights (the transformers model's own forward is never called)."""
    from sfs_ros.errors import UnusableWeightsError
    from sfs_ros.models.closed_set import load_segmenter
    from sfs_ros.runtime import select_device

    segmenter = load_segmenter(str(segformer_dir), select_device("cpu", False))
    with torch.no_grad():
        segmenter.model.decode_head.classifier.weight.fill_(3e38)  # shared with the folded head
    rgb = np.full((48, 64, 3), 120, np.uint8)
    with pytest.raises(UnusableWeightsError, match=r"closed_set\.model: .*warm-up frame"):
        segmenter(rgb, (12, 16))
