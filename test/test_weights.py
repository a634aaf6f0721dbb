"""Weights: real loading paths on random-weight architectures, clear errors when missing."""

from __future__ import annotations

import numpy as np
import pytest

from sfs_ros.runtime import select_device
from sfs_ros.weights import (
    WeightsNotFoundError,
    fastsam_arch_yaml,
    resolve_fastsam_weights,
    resolve_hf_model,
)

pytestmark = pytest.mark.models


def test_fastsam_checkpoint_saved_by_ultralytics_loads_through_fastsam(fastsam_pt):
    from sfs_ros.models.fastsam import FastSAMMaskGenerator

    path, is_random = resolve_fastsam_weights(str(fastsam_pt))
    assert (path, is_random) == (str(fastsam_pt), False)
    generator = FastSAMMaskGenerator(
        path, select_device("cpu"), imgsz=128, conf=0.003, max_masks=20
    )
    masks = generator(np.zeros((60, 80, 3), np.uint8))
    assert generator.num_classes == 1  # FastSAM: one class-agnostic class
    assert masks.masks.dtype == bool
    assert masks.masks.shape[1:] == (24, 32)  # 128x96 network input at 1/4 → 32x24
    assert len(masks) <= 20


def test_missing_fastsam_weights_offline_name_the_file_and_the_parameter(monkeypatch, tmp_path):
    monkeypatch.setenv("SFS_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WeightsNotFoundError) as err:
        resolve_fastsam_weights("FastSAM-s.pt")
    text = str(err.value)
    assert "FastSAM-s.pt" in text
    assert "fastsam.model" in text
    assert "allow_random_weights" in text


def test_random_fastsam_only_when_allowed_and_flagged(monkeypatch, tmp_path):
    monkeypatch.setenv("SFS_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    path, is_random = resolve_fastsam_weights("FastSAM-x.pt", allow_random=True)
    assert is_random is True
    assert path.endswith(".pt")
    assert fastsam_arch_yaml("FastSAM-x.pt") == "yolov8x-seg.yaml"
    assert fastsam_arch_yaml("weights/FastSAM-s.pt") == "yolov8s-seg.yaml"


def test_segformer_saved_with_save_pretrained_loads_by_directory(segformer_dir):
    from sfs_ros.models.closed_set import ClosedSetSegmenter

    source, is_random = resolve_hf_model(str(segformer_dir), {})
    assert (source, is_random) == (str(segformer_dir), False)
    segmenter = ClosedSetSegmenter(str(segformer_dir), select_device("cpu"))
    assert segmenter.model_type == "segformer"
    assert segmenter.vocabulary.name == "ade20k"  # recognised from id2label
    class_map = segmenter(np.zeros((50, 70, 3), np.uint8), (12, 17))
    assert class_map.shape == (12, 17)
    assert class_map.dtype == np.int32
    assert class_map.min() >= 0
    assert class_map.max() < 150


def test_missing_hub_model_offline_names_the_id_and_the_parameter():
    with pytest.raises(WeightsNotFoundError) as err:
        resolve_hf_model("nvidia/segformer-b9-does-not-exist", {0: "a"})
    assert "nvidia/segformer-b9-does-not-exist" in str(err.value)
    assert "closed_set.model" in str(err.value)


def test_random_weights_refused_for_families_without_a_builtin_config():
    with pytest.raises(WeightsNotFoundError, match="SegFormer, Mask2Former and OneFormer"):
        resolve_hf_model("facebook/maskformer-swin-tiny-ade", {0: "a"}, allow_random=True)


@pytest.mark.models
def test_oneformer_random_weights_load_through_its_processor_with_the_semantic_task(tmp_path):
    """The paper's closed-set model family, built offline (tiny CLIP tokenizer), loaded and run
    through AutoProcessor + post_process_semantic_segmentation like shi-labs/oneformer_*."""
    from sfs_ros.models.closed_set import ClosedSetSegmenter
    from sfs_ros.vocabularies import get_vocabulary
    from sfs_ros.weights import build_random_oneformer

    names = dict(enumerate(get_vocabulary("cityscapes").names))
    directory = build_random_oneformer(names, tmp_path / "oneformer", shortest_edge=64)
    segmenter = ClosedSetSegmenter(str(directory), select_device("cpu"), vocabulary="auto")
    assert segmenter.model_type == "oneformer"
    assert segmenter.vocabulary.name == "cityscapes"
    seen = {}
    original = segmenter.model.forward

    def spy(pixel_values, task_inputs, **kwargs):
        seen["task"] = task_inputs
        return original(pixel_values=pixel_values, task_inputs=task_inputs, **kwargs)

    segmenter.model.forward = spy
    class_map = segmenter(np.zeros((60, 80, 3), np.uint8), (15, 20))
    assert class_map.shape == (15, 20) and class_map.dtype == np.int32
    assert class_map.min() >= 0 and class_map.max() < 19
    assert seen["task"].shape[0] == 1  # the semantic task prompt went in


def test_explicit_vocabulary_must_match_the_model(segformer_dir):
    from sfs_ros.models.closed_set import ClosedSetSegmenter

    with pytest.raises(ValueError, match="19 classes but model"):
        ClosedSetSegmenter(str(segformer_dir), select_device("cpu"), vocabulary="cityscapes")


def test_device_selection():
    assert select_device("auto").device in {"cpu", "cuda:0"}
    assert select_device("cpu", half=True).half is False  # no FP16 on the CPU
    with pytest.raises(ValueError, match="expected auto, cpu"):
        select_device("tpu")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="0 CUDA device"):
            select_device("cuda:0")


def test_mask2former_saved_with_save_pretrained_loads_through_its_processor(tmp_path):
    from sfs_ros.models.closed_set import ClosedSetSegmenter
    from sfs_ros.vocabularies import get_vocabulary
    from sfs_ros.weights import build_random_mask2former

    names = dict(enumerate(get_vocabulary("cityscapes").names))
    directory = build_random_mask2former(names, tmp_path / "m2f", shortest_edge=96)
    segmenter = ClosedSetSegmenter(str(directory), select_device("cpu"), vocabulary="auto")
    assert segmenter.model_type == "mask2former"
    assert segmenter.vocabulary.name == "cityscapes"
    seen = {}
    original = segmenter.model.forward

    def spy(pixel_values, **kwargs):
        seen["x"] = pixel_values.detach().float().numpy()
        return original(pixel_values=pixel_values, **kwargs)

    segmenter.model.forward = spy
    red = np.zeros((60, 80, 3), np.uint8)
    red[..., 0] = 255
    class_map = segmenter(red, (15, 20))
    assert class_map.shape == (15, 20)
    assert class_map.dtype == np.int32
    assert class_map.min() >= 0
    assert class_map.max() < 19
    x = seen["x"][0]  # normalised by the processor: R high, B low for a red image
    assert x[0].mean() > x[1].mean()
    assert x[0].mean() > x[2].mean()


def test_exported_backend_on_mask2former_says_it_runs_in_torch(tmp_path, caplog):
    from sfs_ros.models.closed_set import ClosedSetSegmenter
    from sfs_ros.vocabularies import get_vocabulary
    from sfs_ros.weights import build_random_mask2former

    names = dict(enumerate(get_vocabulary("cityscapes").names))
    directory = build_random_mask2former(names, tmp_path / "m2f", shortest_edge=64)
    segmenter = ClosedSetSegmenter(str(directory), select_device("cpu"), backend="onnx")
    assert segmenter.runner is None
    assert "applies to FastSAM and SegFormer only" in caplog.text
