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
    exported = masker.network.exported
    assert list(exported._compiled) == [(1, 3, 128, 160)]
    assert exported.onnx_path((1, 3, 128, 160)).exists()


@pytest.mark.parametrize("backend", EXPORTED)
def test_segformer_backend_matches_torch(backend, segformer_dir, image):
    from sfs_ros.models.closed_set import load_segmenter
    from sfs_ros.runtime import select_device

    device = select_device("cpu")
    ref = load_segmenter(str(segformer_dir), device, "ade20k")(image, (30, 40))
    got = load_segmenter(str(segformer_dir), device, "ade20k", backend=backend)(image, (30, 40))
    assert got.shape == ref.shape == (30, 40)
    assert (got == ref).mean() > 0.95


@pytest.mark.parametrize("backend", EXPORTED)
def test_exported_segformer_logits_are_a_channels_last_view(backend, segformer_dir, image):
    """The export writes its logits channels-last (N, H, W, C); the segmenter gets them back as
    the usual (1, C, h/4, w/4) tensor in channels-last memory, with torch's values, and the
    class map reads them without changing them."""
    import torch

    from sfs_ros.models.closed_set import load_segmenter
    from sfs_ros.runtime import select_device

    device = select_device("cpu")
    ref = load_segmenter(str(segformer_dir), device, "ade20k").infer(image)
    seg = load_segmenter(str(segformer_dir), device, "ade20k", backend=backend)
    got = seg.infer(image)
    assert got.shape == ref.shape == (1, 150, 128, 128)
    assert got.is_contiguous(memory_format=torch.channels_last) and got.stride()[1] == 1
    np.testing.assert_allclose(got.numpy(), ref.numpy(), atol=1e-3)
    assert seg.network.exported.name.endswith("-nhwc")
    before = got.clone()
    for out_hw in ((30, 40), (128, 128)):
        seg.class_map(got, out_hw)
        assert torch.equal(got, before)


def test_input_normalisation_is_the_torch_networks_input(pipeline):
    """The exported networks' float input (InputNormalisation.apply, and the same constants
    inside the compiled OpenVINO model) equals what the torch networks compute on, bit for
    bit: FastSAM's ``/ 255`` of the letterboxed frame, SegFormer's ``(x - mean) / std`` of
    the resized one."""
    from sfs_ros.models.fastsam import FASTSAM_INPUT

    rgb = np.random.default_rng(8).integers(0, 256, (45, 70, 3), dtype=np.uint8)
    masker = pipeline.mask_generator
    image, _ = masker.network_image(rgb)
    assert image.dtype == np.uint8 and image.shape[2] == 3
    np.testing.assert_array_equal(FASTSAM_INPUT.apply(image[None]), masker.to_tensor(image))
    segmenter = pipeline.segmenters[0]
    resized = segmenter.network_image(rgb)
    assert resized.shape == (*segmenter.input_hw, 3) and resized.dtype == np.uint8
    np.testing.assert_array_equal(
        segmenter.normalisation.apply(resized[None]), segmenter.to_tensor(resized).float()
    )


@pytest.mark.parametrize("backend", EXPORTED)
def test_exported_network_takes_the_uint8_image(backend, tmp_path, monkeypatch):
    """With an input normalisation an exported network takes RGB uint8 (N, H, W, 3) and gives
    what the float export gives on the normalised input (OpenVINO converts inside the compiled
    model, ONNX Runtime before the call); any other input is refused clearly."""
    import torch

    from sfs_ros.models.backends import ExportedNetwork, InputNormalisation

    monkeypatch.setenv("SFS_CACHE_DIR", str(tmp_path))
    norm = InputNormalisation((123.675, 116.28, 103.53), (58.395, 57.12, 57.375))

    def module() -> torch.nn.Module:
        conv = torch.nn.Conv2d(3, 4, 1)
        torch.nn.init.normal_(conv.weight, generator=torch.Generator().manual_seed(0))
        return conv.eval()

    kwargs = {"threads": 1, "openvino_precision": "f32"}
    plain = ExportedNetwork(backend, module, "toy-conv", "x", ("y",), **kwargs)
    taking_images = ExportedNetwork(
        backend, module, "toy-conv", "x", ("y",), normalisation=norm, **kwargs
    )
    images = np.random.default_rng(2).integers(0, 256, (1, 6, 10, 3), dtype=np.uint8)
    expected = plain(norm.apply(images))[0]
    got = taking_images(images)[0]
    assert got.shape == expected.shape == (1, 4, 6, 10)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    assert list(taking_images._compiled) == [(1, 3, 6, 10)]  # one export per input shape
    with pytest.raises(ValueError, match=r"RGB uint8 images \(N, H, W, 3\)"):
        taking_images(images.astype(np.float32))


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


def test_auto_backend_resolution(monkeypatch):
    from sfs_ros.models import backends
    from sfs_ros.params import defaults

    assert defaults()["backend"] == "auto"
    assert backends.resolve_backend("auto", "cuda:0", False)[:2] == ("torch", True)
    assert backends.resolve_backend("torch", "cuda:0", False)[:2] == ("torch", False)
    assert backends.resolve_backend("onnx", "cpu", False)[:2] == ("onnx", False)
    monkeypatch.setattr(backends, "available_backends", lambda: ["torch", "onnx", "openvino"])
    assert backends.resolve_backend("auto", "cpu", True)[:2] == ("openvino", False)
    monkeypatch.setattr(backends, "available_backends", lambda: ["torch", "onnx"])
    assert backends.resolve_backend("auto", "cpu", False)[0] == "onnx"
    monkeypatch.setattr(backends, "available_backends", lambda: ["torch"])
    backend, _, why = backends.resolve_backend("auto", "cpu", False)
    assert backend == "torch" and "neither openvino nor onnxruntime" in why


@pytest.mark.parametrize(
    ("requested", "open_vocab", "native_bf16", "expected"),
    [
        ("auto", False, True, ("int8", "bf16")),
        ("auto", True, True, ("bf16", "bf16")),
        ("auto", False, False, ("int8", "f32")),
        ("auto", True, False, ("f32", "f32")),
        ("int8-fastsam", False, True, ("int8", "f32")),
        ("f32", False, True, ("f32", "f32")),
        ("bf16", True, False, ("bf16", "bf16")),
        ("int8", True, True, ("int8", "int8")),
    ],
)
def test_openvino_precision_per_network(requested, open_vocab, native_bf16, expected):
    """auto: FastSAM INT8 with the open vocabulary off, bf16/f32 with it on; the closed set in
    bf16 only where the CPU computes it natively (the tiny-world measurements behind this are
    in docs/tiny_world.md)."""
    from sfs_ros.models.backends import resolve_openvino_precisions

    got = resolve_openvino_precisions(requested, open_vocab, native_bf16=lambda: native_bf16)
    assert (got.fastsam, got.closed_set) == expected
    assert ("bf16 natively" in got.why or "no native bf16" in got.why) == (requested == "auto")


def test_openvino_precision_unknown_is_refused():
    from sfs_ros.models.backends import resolve_openvino_precisions

    with pytest.raises(ConfigError, match="fp8"):
        resolve_openvino_precisions("fp8", False, native_bf16=lambda: True)


def test_other_backends_run_f32_and_say_so(caplog):
    import logging

    from sfs_ros.models.backends import network_precisions

    with caplog.at_level(logging.WARNING, logger="sfs_ros"):
        got = network_precisions("onnx", "bf16", open_vocab=False)
    assert (got.fastsam, got.closed_set) == ("f32", "f32")
    assert "applies to backend openvino only" in caplog.text


@pytest.mark.skipif("openvino" not in EXPORTED, reason="openvino not installed")
def test_default_backend_runs_openvino_on_the_cpu(test_overrides, caplog):
    import logging

    from sfs_ros.pipeline import Pipeline

    overrides = {k: v for k, v in test_overrides.items() if k != "backend"}
    with caplog.at_level(logging.INFO, logger="sfs_ros"):
        pipe = Pipeline.from_config(load_config(None, overrides))
    try:
        assert pipe.backend == "openvino"
        assert pipe.mask_generator.network.backend == "openvino"
        assert pipe.segmenters[0].network.backend == "openvino"
        assert "backend openvino (auto on the CPU" in caplog.text
        assert "openvino precision: FastSAM int8, closed set " in caplog.text
        result = pipe.process(np.zeros((48, 64, 3), np.uint8))
        assert result.label_map.shape == (48, 64)
    finally:
        pipe.close()


@pytest.mark.skipif("openvino" not in EXPORTED, reason="openvino not installed")
def test_int8_is_quantised_once_per_shape_and_cached(fastsam_pt, image, tmp_path, monkeypatch):
    """openvino_precision int8: NNCF quantises the export on sample frames, saves the INT8 model
    beside the export, and a second start reuses it (no second quantisation)."""
    import nncf

    from sfs_ros.models.fastsam import FastSAMMaskGenerator
    from sfs_ros.runtime import select_device

    monkeypatch.setenv("SFS_CACHE_DIR", str(tmp_path))
    calls = []
    original = nncf.quantize
    monkeypatch.setattr(nncf, "quantize", lambda *a, **k: calls.append(1) or original(*a, **k))
    device = select_device("cpu")
    for _ in range(2):
        masker = FastSAMMaskGenerator(
            str(fastsam_pt), device, imgsz=160, conf=0.003, iou=0.9, max_masks=40,
            backend="openvino", openvino_precision="int8",
        )  # fmt: skip
        masks = masker(image)
        assert len(masks) > 0 and masks.masks.dtype == bool
    assert calls == [1]
    assert list(tmp_path.glob("backends/*-int8-samples.xml"))  # calibrated on the sample photos
    assert list(tmp_path.glob("backends/*-int8-samples.bin"))


def test_int8_calibration_folder_is_checked_and_keys_the_cache(tmp_path, monkeypatch):
    """openvino_int8_calibration: '' = the bundled photos; a folder must hold images; the INT8
    cache name changes with the folder's contents (a model calibrated on other frames is never
    reused)."""
    import cv2

    from sfs_ros.models import backends
    from sfs_ros.samples import calibration_frames

    monkeypatch.setattr(backends.INT8_CALIBRATION, "folder", None)
    assert backends.INT8_CALIBRATION.key() == "samples"
    with pytest.raises(ConfigError, match="not a folder with images"):
        backends.set_int8_calibration(str(tmp_path / "missing"))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(ConfigError, match="not a folder with images"):
        backends.set_int8_calibration(str(empty))
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.full((40, 60, 3), 90, np.uint8))
    backends.set_int8_calibration(str(folder))
    first = backends.INT8_CALIBRATION.key()
    assert first.startswith("cal")
    cv2.imwrite(str(folder / "b.png"), np.full((40, 60, 3), 200, np.uint8))
    assert backends.INT8_CALIBRATION.key() != first
    frames = calibration_frames(32, 24, 12, folder)
    assert [f.shape for f in frames] == [(24, 32, 3)] * 2
    assert [int(f[0, 0, 0]) for f in frames] == [90, 200]  # name order, the user's pixels
    backends.set_int8_calibration("")
    assert backends.INT8_CALIBRATION.folder is None
