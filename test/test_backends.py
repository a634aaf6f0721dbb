"""Exported backends (ONNX Runtime, OpenVINO) against torch on random-weight FastSAM-s."""

from __future__ import annotations

import numpy as np
import pytest

from sfs_ros.models.backends import available_backends, check_backend
from sfs_ros.params import ConfigError, load_config

EXPORTED = [b for b in ("onnx", "openvino") if b in available_backends()]


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(3)
    img = np.zeros((120, 160, 3), np.uint8)
    img[:] = np.linspace(30, 220, 160, dtype=np.uint8)[None, :, None]
    img[30:90, 40:100] = (200, 40, 40)
    img += rng.integers(0, 20, img.shape, dtype=np.uint8)
    return img


@pytest.fixture(scope="module")
def torch_masker(fastsam_pt):
    from sfs_ros.models.fastsam import FastSAMMaskGenerator
    from sfs_ros.runtime import select_device

    return FastSAMMaskGenerator(
        str(fastsam_pt), select_device("cpu"), imgsz=160, conf=0.003, iou=0.9, max_masks=40
    )


@pytest.mark.parametrize("backend", EXPORTED)
def test_fastsam_backend_matches_torch(backend, fastsam_pt, torch_masker, image):
    from sfs_ros.models.fastsam import FastSAMMaskGenerator
    from sfs_ros.runtime import select_device

    masker = FastSAMMaskGenerator(
        str(fastsam_pt),
        select_device("cpu"),
        imgsz=160,
        conf=0.003,
        iou=0.9,
        max_masks=40,
        backend=backend,
    )
    ref = torch_masker(image)
    got = masker(image)
    assert len(ref) > 5
    assert got.masks.shape[1:] == ref.masks.shape[1:]
    # Scores differ in the last float bits, so ranks may swap: match each torch mask to an
    # exported one with the same box (within 1 px; many share the full-image box) and IoU > 0.95.
    matched = 0
    for i in range(len(ref)):
        same_box = np.flatnonzero(np.abs(got.boxes - ref.boxes[i]).max(axis=1) <= 1.0)
        if any(_mask_iou(got.masks[j], ref.masks[i]) > 0.95 for j in same_box):
            matched += 1
    assert matched >= 0.9 * len(ref)
    assert abs(len(got) - len(ref)) <= max(1, len(ref) // 10)
    assert set(masker.last_timings) == {"fastsam_pre", "fastsam_forward", "fastsam_post"}
    # exported once per input shape, into the cache
    assert list(masker.runner._compiled) == [(1, 3, 128, 160)]
    assert masker.runner.onnx_path((1, 3, 128, 160)).exists()


@pytest.mark.parametrize("backend", EXPORTED)
def test_segformer_backend_matches_torch(backend, segformer_dir, image):
    from sfs_ros.models.closed_set import ClosedSetSegmenter
    from sfs_ros.runtime import select_device

    device = select_device("cpu")
    ref = ClosedSetSegmenter(str(segformer_dir), device, "ade20k")(image, (30, 40))
    got = ClosedSetSegmenter(str(segformer_dir), device, "ade20k", backend=backend)(image, (30, 40))
    assert got.shape == ref.shape == (30, 40)
    assert (got == ref).mean() > 0.95


def test_tensorrt_refused_clearly(test_overrides):
    from sfs_ros.pipeline import Pipeline

    with pytest.raises(ConfigError, match=r"tensorrt.*not available"):
        Pipeline.from_config(load_config(None, {**test_overrides, "backend": "tensorrt"}))


def test_backend_choices_and_device():
    with pytest.raises(ConfigError, match="not one of"):
        load_config(None, {"backend": "tflite"})
    check_backend("torch", "cuda:0")
    for backend in EXPORTED:
        with pytest.raises(ConfigError, match="CPU only"):
            check_backend(backend, "cuda:0")
