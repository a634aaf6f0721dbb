"""Weights: real loading paths on random-weight architectures, clear errors when missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sfs_ros.errors import ConfigError
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
    from sfs_ros.models.closed_set import load_segmenter

    source, is_random = resolve_hf_model(str(segformer_dir), {})
    assert (source, is_random) == (str(segformer_dir), False)
    segmenter = load_segmenter(str(segformer_dir), select_device("cpu"))
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
    from sfs_ros.models.closed_set import load_segmenter
    from sfs_ros.vocabularies import get_vocabulary
    from sfs_ros.weights import build_random_oneformer

    names = dict(enumerate(get_vocabulary("cityscapes").names))
    directory = build_random_oneformer(names, tmp_path / "oneformer", shortest_edge=64)
    segmenter = load_segmenter(str(directory), select_device("cpu"), vocabulary="auto")
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
    from sfs_ros.models.closed_set import load_segmenter

    with pytest.raises(ValueError, match="19 classes but model"):
        load_segmenter(str(segformer_dir), select_device("cpu"), vocabulary="cityscapes")


def test_device_selection():
    assert select_device("auto").device in {"cpu", "cuda:0"}
    assert select_device("cpu", half=True).half is False  # no FP16 on the CPU
    with pytest.raises(ValueError, match="expected auto, cpu"):
        select_device("tpu")
    with pytest.raises(ConfigError, match="integer N"):  # a config error, not any ValueError
        select_device("cuda:x")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="0 CUDA device"):
            select_device("cuda:0")


def test_mask2former_saved_with_save_pretrained_loads_through_its_processor(tmp_path):
    from sfs_ros.models.closed_set import load_segmenter
    from sfs_ros.vocabularies import get_vocabulary
    from sfs_ros.weights import build_random_mask2former

    names = dict(enumerate(get_vocabulary("cityscapes").names))
    directory = build_random_mask2former(names, tmp_path / "m2f", shortest_edge=96)
    segmenter = load_segmenter(str(directory), select_device("cpu"), vocabulary="auto")
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
    from sfs_ros.models.closed_set import UniversalSegmenter, load_segmenter
    from sfs_ros.vocabularies import get_vocabulary
    from sfs_ros.weights import build_random_mask2former

    names = dict(enumerate(get_vocabulary("cityscapes").names))
    directory = build_random_mask2former(names, tmp_path / "m2f", shortest_edge=64)
    segmenter = load_segmenter(str(directory), select_device("cpu"), backend="onnx")
    assert type(segmenter) is UniversalSegmenter
    assert "applies to FastSAM and SegFormer only" in caplog.text


def _plant_malicious_checkpoint(path, marker):
    """A torch checkpoint whose unpickling runs code (writes ``marker``)."""
    import torch

    class _Payload:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').write('pwned')",))

    torch.save({"model": _Payload(), "train_args": {"task": "segment"}}, path)


def test_planted_checkpoint_in_the_working_directory_is_never_loaded(
    monkeypatch, tmp_path, caplog
):
    """Issue item 3: the default 'FastSAM-s.pt' was looked up in the cwd and unpickled."""
    monkeypatch.setenv("SFS_OFFLINE", "1")
    monkeypatch.delenv("SFS_WEIGHTS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "code_ran"
    _plant_malicious_checkpoint(tmp_path / "FastSAM-s.pt", marker)
    with caplog.at_level("WARNING", logger="sfs_ros"):
        path, is_random = resolve_fastsam_weights("FastSAM-s.pt", allow_random=True)
    assert is_random is True
    assert Path(path).parent != tmp_path and Path(path).is_absolute()
    assert not marker.exists()
    # One truthful line per model: what was looked for, where, and why random weights.
    lines = [r.getMessage() for r in caplog.records if "FastSAM-s.pt" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "not found" in lines[0] and "downloads are off" in lines[0]
    assert "using random weights because allow_random_weights is on" in lines[0]
    assert str(tmp_path) not in lines[0]  # the cwd is not searched, so not listed
    assert not any("downloading" in r.getMessage() for r in caplog.records)


def test_planted_checkpoint_named_explicitly_is_refused_without_running_code(tmp_path):
    """Restricted unpickling: even an explicit path cannot execute code; one clear line."""
    from sfs_ros.models.fastsam import FastSAMMaskGenerator
    from sfs_ros.weights import UnusableWeightsError

    marker = tmp_path / "code_ran"
    planted = tmp_path / "evil" / "FastSAM-s.pt"
    planted.parent.mkdir()
    _plant_malicious_checkpoint(planted, marker)
    with pytest.raises(UnusableWeightsError, match=r"^fastsam\.model: '.*FastSAM-s\.pt' cannot"):
        FastSAMMaskGenerator(str(planted), select_device("cpu"), imgsz=64)
    assert not marker.exists()


def test_weights_dir_env_is_searched_for_bare_names(monkeypatch, tmp_path, fastsam_pt):
    import shutil

    monkeypatch.setenv("SFS_OFFLINE", "1")
    monkeypatch.setenv("SFS_WEIGHTS_DIR", str(tmp_path))
    shutil.copy(fastsam_pt, tmp_path / "FastSAM-s.pt")
    assert resolve_fastsam_weights("FastSAM-s.pt") == (str(tmp_path / "FastSAM-s.pt"), False)


@pytest.mark.parametrize("weights_env", [True, False], ids=["SFS_WEIGHTS_DIR", "cache"])
def test_a_missing_release_is_downloaded_into_the_documented_folder(
    monkeypatch, tmp_path, fastsam_pt, weights_env
):
    """Online, a missing release goes to $SFS_WEIGHTS_DIR (when set), else the sfs_ros cache,
    never into ultralytics' weights folder (recorded relative to its first run's directory)."""
    import shutil

    import ultralytics.utils
    from ultralytics.utils import SETTINGS, downloads

    for var in ("SFS_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "SFS_WEIGHTS_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SFS_CACHE_DIR", str(tmp_path / "cache"))
    # a copy: ultralytics' own SETTINGS writes every change to its settings file
    settings = dict(SETTINGS, weights_dir=str(tmp_path / "ultralytics_weights"))
    monkeypatch.setattr(ultralytics.utils, "SETTINGS", settings)
    if weights_env:
        monkeypatch.setenv("SFS_WEIGHTS_DIR", str(tmp_path / "mine"))
    targets = []

    def fake_download(file, *args, **kwargs):  # no network in tests: "download" a checkpoint
        targets.append(Path(file))
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(fastsam_pt, file)
        return str(file)

    monkeypatch.setattr(downloads, "attempt_download_asset", fake_download)
    path, is_random = resolve_fastsam_weights("FastSAM-s.pt")
    folder = tmp_path / ("mine" if weights_env else "cache/weights")
    assert targets == [folder / "FastSAM-s.pt"]
    assert (path, is_random) == (str(folder / "FastSAM-s.pt"), False)
    assert not (tmp_path / "ultralytics_weights").exists()
    assert resolve_fastsam_weights("FastSAM-s.pt") == (path, False)  # found there next time
    assert len(targets) == 1


@pytest.mark.parametrize(
    "content",
    [b"", b"not a checkpoint at all", b"PK\x03\x04truncated zip"],
    ids=["empty", "text", "truncated"],
)
def test_unusable_fastsam_file_is_one_line_naming_the_parameter(tmp_path, content):
    """Issue item 11: no raw ultralytics traceback or its 'yolo predict' hint."""
    from sfs_ros.models.fastsam import FastSAMMaskGenerator
    from sfs_ros.weights import UnusableWeightsError

    bad = tmp_path / "FastSAM-s.pt"
    bad.write_bytes(content)
    with pytest.raises(UnusableWeightsError) as err:
        FastSAMMaskGenerator(str(bad), select_device("cpu"), imgsz=64)
    text = str(err.value)
    assert text.startswith(f"fastsam.model: '{bad}' cannot be loaded")
    assert "yolo predict" not in text and "yolo26n" not in text and "\n" not in text
    assert isinstance(err.value, WeightsNotFoundError)  # the node's start-up error path


def _damaged_copy(src, dst, value: float, every_conv: bool = False):
    """A copy of a FastSAM checkpoint with the first (or every) conv weight set to ``value``."""
    import torch

    ckpt = torch.load(src, map_location="cpu", weights_only=False)
    convs = [m for m in ckpt["model"].modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        for conv in convs if every_conv else convs[:1]:
            conv.weight.fill_(value)
    torch.save(ckpt, dst)
    return dst


def test_nan_weights_are_refused_at_load_naming_the_parameter(tmp_path, fastsam_pt):
    """Issue item 11: NaN weights loaded without a warning."""
    from sfs_ros.models.fastsam import FastSAMMaskGenerator
    from sfs_ros.weights import UnusableWeightsError

    bad = _damaged_copy(fastsam_pt, tmp_path / "nan.pt", float("nan"))
    with pytest.raises(UnusableWeightsError, match=r"^fastsam\.model: .* NaN/inf values in"):
        FastSAMMaskGenerator(str(bad), select_device("cpu"), imgsz=64)


def test_nan_logits_on_the_warm_up_frame_are_broken_weights(tmp_path, fastsam_pt):
    """Finite but absurd weights (e.g. flipped exponent bits) overflow to NaN/inf logits."""
    from sfs_ros.models.fastsam import FastSAMMaskGenerator
    from sfs_ros.weights import UnusableWeightsError

    # Finite fp16 values (the checkpoint's dtype) whose activations overflow float32.
    bad = _damaged_copy(fastsam_pt, tmp_path / "huge.pt", 6e4, every_conv=True)
    generator = FastSAMMaskGenerator(str(bad), select_device("cpu"), imgsz=64)
    with pytest.raises(UnusableWeightsError, match=r"NaN/inf outputs on the warm-up frame"):
        generator(np.zeros((48, 64, 3), np.uint8))
    # checked once: later frames pay nothing and do not raise
    generator(np.zeros((48, 64, 3), np.uint8))


def test_segformer_with_nan_weights_names_closed_set_model(tmp_path, segformer_dir):
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    from sfs_ros.models.closed_set import load_segmenter
    from sfs_ros.weights import UnusableWeightsError

    copy = tmp_path / "seg"
    shutil.copytree(segformer_dir, copy)
    tensors = load_file(copy / "model.safetensors")
    name = next(k for k, v in tensors.items() if v.is_floating_point() and v.ndim == 4)
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    save_file(tensors, copy / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(UnusableWeightsError, match=r"^closed_set\.model: .* NaN/inf values"):
        load_segmenter(str(copy), select_device("cpu"))
