# SPDX-License-Identifier: AGPL-3.0-or-later
"""Every model implementation satisfies its protocol; the factories pick one class per model
type and backend, and refuse the unknown ones with a ConfigError (an SfsError)."""

from __future__ import annotations

import inspect
import logging

import numpy as np
import pytest

from sfs_ros.errors import ConfigError, SfsError
from sfs_ros.models import closed_set
from sfs_ros.models.backends import available_backends
from sfs_ros.models.closed_set import (
    ExportedSegFormerSegmenter,
    SegFormerSegmenter,
    UniversalSegmenter,
    segmenter_class,
)
from sfs_ros.models.protocols import Captioner, MaskGenerator, Scorer, Segmenter
from sfs_ros.runtime import select_device

EXPORTED = [b for b in ("onnx", "openvino") if b in available_backends()]


def assert_implements(part: object, protocol: type) -> None:
    """``isinstance`` against the runtime-checkable protocol (the members exist), plus the
    methods' parameter names equal the protocol's (what ``isinstance`` does not check)."""
    assert isinstance(part, protocol), f"{type(part).__name__} is not a {protocol.__name__}"
    for name, member in vars(protocol).items():
        if (name.startswith("_") and name != "__call__") or not callable(member):
            continue
        wanted = list(inspect.signature(member).parameters)[1:]
        got = list(inspect.signature(getattr(part, name)).parameters)
        assert got == wanted, f"{type(part).__name__}.{name}{got} != {protocol.__name__}"


# ------------------------------------------------------------------------------ registry
@pytest.mark.parametrize(
    ("model_type", "backend", "expected"),
    [
        ("segformer", "torch", SegFormerSegmenter),
        ("segformer", "onnx", ExportedSegFormerSegmenter),
        ("segformer", "openvino", ExportedSegFormerSegmenter),
        ("segformer", "tensorrt", ExportedSegFormerSegmenter),  # refused by check_backend
        ("mask2former", "torch", UniversalSegmenter),
        ("oneformer", "torch", UniversalSegmenter),
        ("maskformer", "torch", UniversalSegmenter),
    ],
)
def test_segmenter_class_per_model_type_and_backend(model_type, backend, expected):
    assert segmenter_class(model_type, backend) is expected


def test_registry_holds_each_class_under_its_own_keys_only():
    assert closed_set.supported_model_types() == [
        "segformer",
        "mask2former",
        "oneformer",
        "maskformer",
    ]
    for (model_type, backend), cls in closed_set.SEGMENTER_REGISTRY.items():
        assert model_type in cls.model_types and backend in cls.backends
    assert set(closed_set.SEGMENTER_REGISTRY.values()) == set(closed_set.SEGMENTER_CLASSES)


def test_universal_models_on_an_exported_backend_run_in_torch_and_say_so(caplog):
    with caplog.at_level(logging.WARNING, logger="sfs_ros"):
        assert segmenter_class("mask2former", "openvino", "m2f") is UniversalSegmenter
    assert "backend openvino applies to FastSAM and SegFormer only" in caplog.text
    assert "m2f (mask2former) runs in torch" in caplog.text


@pytest.mark.parametrize(
    ("model_type", "backend", "message"),
    [
        ("beit", "torch", r"is a 'beit'; supported: segformer, mask2former, oneformer"),
        ("segformer", "coreml", r"backend 'coreml' is not a concrete backend"),
        ("segformer", "auto", r"resolve 'auto' first"),
    ],
)
def test_segmenter_class_refuses_unknown_types_and_backends(model_type, backend, message):
    with pytest.raises(ConfigError, match=message) as caught:
        segmenter_class(model_type, backend, "some/model")
    assert isinstance(caught.value, SfsError)


def test_a_segmenter_class_refuses_a_backend_it_does_not_run(segformer_dir):
    from sfs_ros.models.closed_set import ClosedSetSource

    spec = ClosedSetSource.resolve(str(segformer_dir), "auto", allow_random=False)
    assert spec.model_type == "segformer" and spec.vocabulary.name == "ade20k"
    with pytest.raises(ConfigError, match="SegFormerSegmenter runs on torch, not 'onnx'"):
        SegFormerSegmenter(spec, select_device("cpu"), backend="onnx")


def test_fastsam_network_refuses_an_unknown_backend():
    from sfs_ros.models.fastsam import fastsam_network

    with pytest.raises(ConfigError, match="backend 'coreml' is not one of") as caught:
        fastsam_network(object(), "w.pt", "coreml", select_device("cpu"), lambda image: image)
    assert isinstance(caught.value, SfsError)


def test_clip_backend_refuses_an_unknown_one():
    from sfs_ros.open_vocab.clip import resolve_clip_backend

    with pytest.raises(ConfigError, match=r"open_vocab\.backend 'onnx' is not one of"):
        resolve_clip_backend("onnx", "cpu", "crop")


# ------------------------------------------------------------------------------ real models
@pytest.mark.parametrize("backend", ["torch", *EXPORTED])
def test_segformer_loads_as_the_class_for_its_backend(segformer_dir, backend):
    from sfs_ros.models.closed_set import load_segmenter
    from sfs_ros.models.networks import ExportedTensors, TorchSegFormer

    segmenter = load_segmenter(str(segformer_dir), select_device("cpu"), backend=backend)
    assert_implements(segmenter, Segmenter)
    if backend == "torch":
        assert type(segmenter) is SegFormerSegmenter
        assert type(segmenter.network) is TorchSegFormer
    else:
        assert type(segmenter) is ExportedSegFormerSegmenter
        assert type(segmenter.network) is ExportedTensors
        assert segmenter.network.backend == backend
    index = segmenter(np.zeros((40, 48, 3), np.uint8), (10, 12))
    assert index.shape == (10, 12) and index.dtype == np.int32
    assert len(segmenter.vocabulary) == 150 and not segmenter.is_random


def test_mask2former_loads_as_the_universal_segmenter(tmp_path):
    from sfs_ros.models.closed_set import load_segmenter
    from sfs_ros.vocabularies import get_vocabulary
    from sfs_ros.weights import build_random_mask2former

    names = dict(enumerate(get_vocabulary("cityscapes").names))
    directory = build_random_mask2former(names, tmp_path / "m2f", shortest_edge=64)
    segmenter = load_segmenter(str(directory), select_device("cpu"), min_confidence=0.3)
    assert type(segmenter) is UniversalSegmenter
    assert_implements(segmenter, Segmenter)
    index = segmenter(np.zeros((48, 64, 3), np.uint8), (12, 16))
    assert index.shape == (12, 16) and index.dtype == np.int32 and index.min() >= 0


@pytest.mark.parametrize("backend", ["torch", *EXPORTED])
def test_fastsam_satisfies_the_mask_generator_protocol(fastsam_pt, backend):
    from sfs_ros.models.fastsam import FastSAMMaskGenerator
    from sfs_ros.models.networks import ExportedTensors, TorchFastSAM

    masker = FastSAMMaskGenerator(
        str(fastsam_pt), select_device("cpu"), imgsz=96, backend=backend, is_random=True
    )
    assert_implements(masker, MaskGenerator)
    assert masker.is_random
    network = {"torch": TorchFastSAM}.get(backend, ExportedTensors)
    assert type(masker.network) is network
    masks = masker(np.zeros((60, 80, 3), np.uint8))
    assert masks.work_hw == masker.output_hw((60, 80)) == (18, 24)


def test_clip_scorer_satisfies_the_scorer_protocol(tiny_clip_name):
    from sfs_ros.open_vocab.clip import ClipScorer, TorchImageEncoder

    scorer = ClipScorer.load(tiny_clip_name, "", allow_random=True, backend="torch")
    assert_implements(scorer, Scorer)
    assert scorer.is_random and type(scorer.image_encoder) is TorchImageEncoder
    masks = np.zeros((1, 16, 16), bool)
    masks[0, 2:12, 2:12] = True
    boxes = np.array([[4, 4, 24, 24]], np.float32)
    scores = scorer.score(np.zeros((32, 32, 3), np.uint8), masks, boxes, ["a"])
    assert scores.shape == (1, 1)
    assert scorer.counters() == {"encode_text_calls": 1, "encode_image_calls": 1}


def test_blip_captioner_satisfies_the_captioner_protocol(tmp_path):
    from sfs_ros.open_vocab.captioner import BlipCaptioner
    from sfs_ros.weights import build_random_blip

    captioner = BlipCaptioner.load(str(build_random_blip(tmp_path / "blip")))
    assert_implements(captioner, Captioner)
    assert not captioner.is_random


def test_a_part_without_is_random_is_not_a_protocol_member():
    class Bare:
        def __call__(self, rgb, out_hw):
            return np.zeros(out_hw, np.int32)

    assert not isinstance(Bare(), Segmenter)
    assert not isinstance(Bare(), MaskGenerator)
