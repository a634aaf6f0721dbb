"""The per-frame pipeline on real architectures (random weights) and on planted fakes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from lookup_helpers import label_id

from sfs_ros.labels import LabelRegistry
from sfs_ros.models.closed_set import UNSURE
from sfs_ros.models.fastsam import Letterbox, MaskSet, _crop_to_boxes, _full_box_rule
from sfs_ros.open_vocab import OpenVocabBranch
from sfs_ros.params import LIVE_PARAMS, SPECS, ConfigError, OpenVocabConfig, ParamSpec, SfsConfig
from sfs_ros.pipeline import Pipeline
from sfs_ros.vocabularies import Vocabulary, get_vocabulary

RNG = np.random.default_rng(7)
IMAGE = (RNG.random((90, 120, 3)) * 255).astype(np.uint8)


# ----------------------------------------------------------------- real models, random weights
@pytest.mark.models
def test_result_shapes_dtypes_and_legend(pipeline):
    result = pipeline.process(IMAGE)
    assert result.label_map.shape == (90, 120)
    assert result.label_map.dtype == np.uint16
    assert result.instance_map.shape == (90, 120)
    assert result.instance_map.dtype == np.uint16
    assert len(result.masks) > 10  # conf 0.003 on random weights → many masks
    assert result.masks.boxes.shape == (len(result.masks), 4)
    assert result.mask_labels.shape == (len(result.masks),)
    legend_ids = {c["id"] for c in pipeline.legend_dict()["classes"]}
    assert set(np.unique(result.label_map).tolist()) <= legend_ids
    assert int(result.instance_map.max()) <= len(result.masks)
    assert {"fastsam", "closed_set", "vote_fuse", "paint", "total"} <= set(result.timings)


@pytest.mark.models
def test_deterministic(pipeline):
    first, second = pipeline.process(IMAGE), pipeline.process(IMAGE)
    np.testing.assert_array_equal(first.label_map, second.label_map)
    np.testing.assert_array_equal(first.masks.boxes, second.masks.boxes)


@pytest.mark.models
def test_boxes_are_xyxy_and_enclose_their_masks(pipeline):
    result = pipeline.process(IMAGE)
    boxes, masks = result.masks.boxes, result.masks.masks
    assert np.all(boxes[:, 2] >= boxes[:, 0]) and np.all(boxes[:, 3] >= boxes[:, 1])
    assert np.all(boxes[:, [0, 2]] <= 120) and np.all(boxes[:, [1, 3]] <= 90)
    h, w = masks.shape[1:]
    for box, mask in zip(boxes, masks, strict=True):
        ys, xs = np.nonzero(mask)
        if len(xs) == 0:
            continue
        # working-grid pixel centres in input pixels must lie inside the (xyxy) box
        assert (xs.min() + 0.5) * 120 / w >= box[0] - 1e-3
        assert (xs.max() + 0.5) * 120 / w <= box[2] + 1e-3
        assert (ys.min() + 0.5) * 90 / h >= box[1] - 1e-3
        assert (ys.max() + 0.5) * 90 / h <= box[3] + 1e-3


@pytest.mark.models
def test_semantic_model_receives_rgb(pipeline, monkeypatch):
    segmenter = pipeline.segmenters[0]
    seen = {}
    encoder = segmenter.model.segformer  # what the folded network runs first
    original = encoder.forward

    def spy(pixel_values, *args, **kwargs):
        seen["x"] = pixel_values.detach().float().numpy()
        return original(pixel_values, *args, **kwargs)

    monkeypatch.setattr(encoder, "forward", spy)
    red = np.zeros((40, 40, 3), np.uint8)
    red[..., 0] = 255  # pure red in RGB
    segmenter(red, (10, 10))
    x = seen["x"][0] * segmenter.std_t.numpy() / 255 + segmenter.mean_t.numpy() / 255
    assert x[0].mean() == pytest.approx(1.0, abs=1e-3)  # channel 0 = R
    assert x[2].mean() == pytest.approx(0.0, abs=1e-3)


@pytest.mark.models
def test_fastsam_receives_rgb(pipeline):
    generator = pipeline.mask_generator
    red = np.zeros((64, 64, 3), np.uint8)
    red[..., 0] = 255
    tensor, box = generator.preprocess(red)
    top, left = box.pad_tl
    inner = tensor[0, :, top : top + box.new_hw[0], left : left + box.new_hw[1]].numpy()
    assert inner[0].mean() == pytest.approx(1.0)
    assert inner[2].mean() == pytest.approx(0.0)


@pytest.mark.models
def test_preprocessing_gives_contiguous_tensors_with_the_reference_values(pipeline):
    """Both preprocessors hand the network a contiguous NCHW tensor (the in-place arithmetic
    on it is the fast path) holding exactly what the references compute: ultralytics'
    ``float / 255`` of the letterboxed image and the processor's ``(x - mean) / std`` of the
    resized one."""
    import torch
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as tvf

    rgb = np.random.default_rng(3).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    tensor, box = pipeline.mask_generator.preprocess(rgb)
    assert tensor.is_contiguous() and tensor.shape == (1, 3, *box.input_hw)
    top, left = box.pad_tl
    inner = tensor[0, :, top : top + box.new_hw[0], left : left + box.new_hw[1]]
    resized = cv2.resize(rgb, box.new_hw[::-1], interpolation=cv2.INTER_LINEAR)
    expected = torch.from_numpy(resized).permute(2, 0, 1).float() / 255.0
    assert torch.equal(inner, expected)

    segmenter = pipeline.segmenters[0]
    pixels = segmenter.preprocess(rgb)
    assert pixels.is_contiguous() and pixels.shape == (1, 3, *segmenter.input_hw)
    image = tvf.resize(
        torch.from_numpy(rgb).permute(2, 0, 1),
        list(segmenter.input_hw),
        interpolation=InterpolationMode.BILINEAR,
        antialias=True,
    )
    expected = ((image.float() - segmenter.mean_t) / segmenter.std_t)[None]
    assert torch.equal(pixels.float(), expected)


@pytest.mark.models
def test_live_updates_apply_and_bad_ones_are_refused(own_pipeline):
    own_pipeline.update("fastsam.max_masks", 1)
    result = own_pipeline.process(IMAGE)
    assert len(result.masks) == 1
    assert set(np.unique(result.instance_map).tolist()) <= {0, 1}
    own_pipeline.update("fastsam.conf", 1.0)  # no random-weight score reaches 1.0
    assert len(own_pipeline.process(IMAGE).masks) == 0
    own_pipeline.update("closed_set.min_confidence", 1.0)  # no softmax reaches 1.0
    segmenter = own_pipeline.segmenters[0]
    assert (segmenter(IMAGE, (16, 16)) == UNSURE).all()
    with pytest.raises(ConfigError, match="cannot be changed"):
        own_pipeline.update("fastsam.imgsz", 320)
    with pytest.raises(ConfigError, match="above the maximum"):
        own_pipeline.update("fastsam.conf", 2.0)
    assert own_pipeline.config.fastsam.conf == 1.0  # the refused value changed nothing


# What the per-frame code of each component reads, for every live parameter: the test below
# changes each parameter through Pipeline.update and checks that this value follows, so a
# renamed attribute or a forgotten ``apply`` cannot go unnoticed.
READ_PER_FRAME = {
    "fastsam.conf": lambda p: p.mask_generator.conf,
    "fastsam.iou": lambda p: p.mask_generator.iou,
    "fastsam.max_masks": lambda p: p.mask_generator.max_masks,
    "closed_set.min_purity": lambda p: p.min_purity,
    "closed_set.min_confidence": lambda p: {s.min_confidence for s in p.segmenters},
    "paint.order": lambda p: p.paint_order,
    "paint.uncovered": lambda p: p.uncovered,
    "open_vocab.enabled": lambda p: p.open_vocab.enabled,
    "open_vocab.vocabulary": lambda p: p.open_vocab.candidate_names()[-1:],
    "open_vocab.rate_hz": lambda p: p.open_vocab.worker.rate_hz,
    "open_vocab.max_masks_per_pass": lambda p: p.open_vocab.mask_budget(),
    "open_vocab.top_k": lambda p: p.open_vocab.settings.top_k,
    "open_vocab.threshold": lambda p: p.open_vocab.settings.threshold,
}
# Live parameters the node applies itself (rendering), not the pipeline.
NODE_LIVE = {"overlay_alpha"}


def _another_value(spec: ParamSpec, current):
    """A valid value of ``spec`` other than ``current``."""
    if spec.choices is not None:
        return next(c for c in spec.choices if c != current)
    if spec.kind is bool:
        return not current
    if spec.kind is list:
        return ["pallet jack"]
    if spec.kind is int:
        return int(spec.min) if current != spec.min else int(spec.min) + 1
    return (spec.min + spec.max) / 2 if current != (spec.min + spec.max) / 2 else spec.max


class _IdleScorer:
    """A scorer that is never asked to score (the branch only needs one to exist and close)."""

    is_random = False

    def __init__(self) -> None:
        import threading

        self.cancel = threading.Event()

    def score(self, rgb, masks, boxes, names):
        raise AssertionError("not scored in this test")

    def counters(self) -> dict:
        return {}


def test_every_live_parameter_reaches_the_component_that_reads_it(own_pipeline):
    assert set(LIVE_PARAMS) == set(Pipeline.LIVE_KEYS) | NODE_LIVE  # both from the tree
    assert set(READ_PER_FRAME) == set(Pipeline.LIVE_KEYS), "add the new live parameter here"
    branch = OpenVocabBranch(
        scorer=_IdleScorer(), registry=own_pipeline.registry, settings=OpenVocabConfig(enabled=True)
    )
    pipe = Pipeline(
        own_pipeline.mask_generator,
        own_pipeline.segmenters,
        own_pipeline.registry,
        config=own_pipeline.config,
        open_vocab=branch,
    )
    for name in Pipeline.LIVE_KEYS:
        read = READ_PER_FRAME[name]
        before = read(pipe)
        value = _another_value(SPECS[name], pipe.config.get(name))
        pipe.update(name, value)
        after = read(pipe)
        assert after != before, name
        expected = {value} if isinstance(after, set) else value
        assert after == expected, name
        assert pipe.config.get(name) == (tuple(value) if isinstance(value, list) else value)
    pipe.close()


@pytest.mark.models
@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((10, 10), np.uint8),
        np.zeros((10, 10, 3), np.float32),
        np.zeros((0, 10, 3), np.uint8),
    ],
)
def test_bad_arrays_are_refused(pipeline, bad):
    with pytest.raises(ValueError):
        pipeline.process(bad)


# ------------------------------------------------------------------------ geometry helpers
def test_letterbox_keeps_aspect_and_pads_to_the_stride():
    box = Letterbox.fit((480, 640), 320, 32)
    assert box.scale == 0.5
    assert box.new_hw == (240, 320)
    assert box.input_hw == (256, 320)
    assert box.pad_tl == (8, 0)


def test_fastsam_full_box_rule():
    import torch

    boxes = torch.tensor(
        [[5.0, 3.0, 630.0, 475.0], [100.0, 100.0, 200.0, 200.0], [30.0, 30.0, 600.0, 470.0]]
    )
    out = _full_box_rule(boxes, (480, 640)).tolist()
    assert out[0] == [0.0, 0.0, 640.0, 480.0]  # snapped to the border → the full image
    assert out[1] == [100.0, 100.0, 200.0, 200.0]  # untouched
    assert out[2] == [30.0, 30.0, 600.0, 480.0]  # bottom snapped, IoU < 0.9 → kept


def test_crop_to_boxes_keeps_the_pixel_centres_inside_each_box():
    """The sliced crop equals the broadcast rule it replaced (a pixel stays when its centre lies
    in the box, edges included, in float32), on random boxes and on boxes whose edges fall
    exactly on pixel centres, outside the image, inverted or NaN."""
    import torch

    image_hw, work_hw = (480, 640), (120, 160)
    generator = torch.Generator().manual_seed(3)
    corners = torch.rand(200, 2, 2, generator=generator) * torch.tensor([700.0, 520.0]) - 30.0
    boxes = torch.cat((corners.amin(1), corners.amax(1)), 1)  # xyxy
    on_centres = torch.tensor(
        [
            [2.0, 2.0, 6.0, 6.0],  # centres 0.5 and 1.5 of the working grid: both edges kept
            [0.0, 0.0, 640.0, 480.0],  # the whole image
            [-50.0, -50.0, -10.0, -10.0],  # outside: nothing stays
            [300.0, 200.0, 100.0, 100.0],  # inverted: nothing stays
            [float("nan"), 10.0, 50.0, 50.0],  # NaN edge: nothing stays
        ]
    )
    boxes = torch.cat((boxes, on_centres))
    masks = torch.rand(len(boxes), *work_hw, generator=generator) > 0.3
    masks[-5] = True
    sy, sx = work_hw[0] / image_hw[0], work_hw[1] / image_hw[1]
    rows = torch.arange(work_hw[0], dtype=torch.float32)[None, :, None] + 0.5
    cols = torch.arange(work_hw[1], dtype=torch.float32)[None, None, :] + 0.5
    x1, y1, x2, y2 = (boxes[:, i, None, None] for i in range(4))
    inside = (cols >= x1 * sx) & (cols <= x2 * sx) & (rows >= y1 * sy) & (rows <= y2 * sy)
    expected = (masks & inside).numpy()

    got = masks.numpy().copy()
    _crop_to_boxes(got, boxes, image_hw)
    np.testing.assert_array_equal(got, expected)
    assert got[-5, :2, :2].all() and not got[-5, 2:].any() and not got[-5, :, 2:].any()
    np.testing.assert_array_equal(got[-4], masks[-4].numpy())  # the whole image: all kept
    assert not got[-3:].any()
    assert 0.05 < expected[:200].mean() < 0.5  # the random boxes crop, but not everything
    _crop_to_boxes(np.zeros((0, *work_hw), bool), boxes[:0], image_hw)  # no masks: no error


# -------------------------------------------------------------- planted masks, known answer
class PlantedMasks:
    """A mask generator returning fixed masks at a 4x4 working grid."""

    def __init__(self, masks: np.ndarray) -> None:
        self.masks = masks

    def infer(self, rgb: np.ndarray) -> tuple[int, int]:
        return rgb.shape[:2]

    def decode(self, image_hw: tuple[int, int]) -> MaskSet:
        n = len(self.masks)
        return MaskSet(
            self.masks,
            np.tile([0, 0, 8, 8], (n, 1)).astype(np.float32),
            np.ones(n, np.float32),
            image_hw,
        )

    def __call__(self, rgb: np.ndarray) -> MaskSet:
        return self.decode(self.infer(rgb))


class PlantedClasses:
    """A closed-set segmenter returning a fixed class-index map."""

    def __init__(self, class_map: np.ndarray) -> None:
        self.planted = class_map

    def infer(self, rgb: np.ndarray) -> None:
        return None

    def class_map(self, raw: None, out_hw: tuple[int, int]) -> np.ndarray:
        assert out_hw == self.planted.shape
        return self.planted

    def __call__(self, rgb: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
        return self.class_map(self.infer(rgb), out_hw)


def _vocab(name: str, names: list[str]) -> Vocabulary:
    return Vocabulary(name, tuple(names), tuple((10 * i + 1, 2, 3) for i in range(len(names))))


@pytest.mark.parametrize("uncovered", ["unidentified", "closed_set"])
def test_planted_frame_gives_the_known_label_map(uncovered):
    vocab = _vocab("toy", ["road", "car", "tree"])
    big = np.zeros((4, 4), bool)
    big[:, :2] = True  # left half: 6 px road + 2 px car → road, purity 0.75
    small = np.zeros((4, 4), bool)
    small[0, 0] = small[0, 1] = True  # inside the big mask: car, purity 1.0 → on top
    mixed = np.zeros((4, 4), bool)
    mixed[:, 3] = True  # 2 tree + 2 car: a tie goes to the smaller id (car); purity 0.5
    class_map = np.array([[1, 1, 2, 2], [0, 0, 2, 2], [0, 0, 2, 1], [0, 0, 2, 1]])
    registry = LabelRegistry([vocab])
    pipe = Pipeline(
        PlantedMasks(np.stack([big, small, mixed])),
        [PlantedClasses(class_map)],
        registry,
        # min_purity is not used with the open-vocabulary branch off: majority wins
        config=SfsConfig().with_values(
            {"closed_set.min_purity": 0.6, "paint.uncovered": uncovered}
        ),
    )
    result = pipe.process(np.zeros((8, 8, 3), np.uint8))
    road, car, tree = (label_id(registry, n) for n in ("road", "car", "tree"))
    free = 0 if uncovered == "unidentified" else tree  # column 2 lies in no mask
    expected_work = np.array(
        [
            [car, car, free, car],
            [road, road, free, car],
            [road, road, free, car],
            [road, road, free, car],
        ]
    )
    np.testing.assert_array_equal(result.label_map, np.kron(expected_work, np.ones((2, 2))))
    np.testing.assert_array_equal(result.mask_labels, [road, car, car])
    np.testing.assert_allclose(result.purity, [0.75, 1.0, 0.5])
    instances = np.array([[2, 2, 0, 3], [1, 1, 0, 3], [1, 1, 0, 3], [1, 1, 0, 3]])
    np.testing.assert_array_equal(result.instance_map, np.kron(instances, np.ones((2, 2))))


def test_two_closed_set_models_share_ids_by_name_and_higher_purity_wins():
    coco_like = _vocab("a", ["person", "car"])
    ade_like = _vocab("b", ["wall", "person"])
    registry = LabelRegistry([coco_like, ade_like])
    assert registry.closed_set_lut(1).tolist() == [3, 1]  # "person" reuses id 1
    mask = np.zeros((1, 2, 2), bool)
    mask[0, 0, :] = True
    first = PlantedClasses(np.array([[0, 1], [0, 0]]))  # person/car split: purity 0.5
    second = PlantedClasses(np.array([[1, 1], [0, 0]]))  # person person: purity 1.0
    config = SfsConfig().with_values({"closed_set.min_purity": 0.6})
    pipe = Pipeline(PlantedMasks(mask), [first, second], registry, config=config)
    result = pipe.process(np.zeros((2, 2, 3), np.uint8))
    assert result.mask_labels.tolist() == [label_id(registry, "person")]


def test_legend_is_append_only_and_revisions_count_changes():
    registry = LabelRegistry([get_vocabulary("cityscapes")])
    legend = registry.legend_dict()
    assert legend["revision"] == 1
    assert legend["vocabulary"] == "cityscapes"
    assert legend["classes"][0] == {
        "id": 0,
        "name": "unidentified",
        "color": [0, 0, 0],
        "source": 0,
    }
    assert legend["classes"][1]["name"] == "road"
    kite = registry.add("kite")
    assert kite == 20
    assert registry.add("Kite ") == 20  # same name, same id
    assert registry.revision == 2
    colors = registry.color_lut()
    assert colors.shape == (21, 3)
    assert tuple(colors[kite]) not in {tuple(c) for c in colors[:kite]}


def test_lean_nms_matches_ultralytics_nms():
    import torch
    from ultralytics.utils.nms import non_max_suppression

    from sfs_ros.models.fastsam import class_agnostic_nms

    gen = torch.Generator().manual_seed(0)
    anchors = 2000
    xy = torch.rand(2, anchors, generator=gen) * 600
    wh = torch.rand(2, anchors, generator=gen) * 200 + 5
    for nc in (1, 3):
        scores = torch.rand(nc, anchors, generator=gen)
        coeffs = torch.randn(32, anchors, generator=gen)
        preds = torch.cat([xy, wh, scores, coeffs])[None]
        ref = non_max_suppression(preds, 0.3, 0.6, agnostic=True, max_det=50, nc=nc)[0]
        boxes, conf, mask_coeffs = class_agnostic_nms(preds, nc, 0.3, 0.6, 50)
        assert len(boxes) == len(ref) == 50
        torch.testing.assert_close(boxes, ref[:, :4])
        torch.testing.assert_close(conf, ref[:, 4])
        torch.testing.assert_close(mask_coeffs, ref[:, 6:])


@pytest.mark.parametrize(
    ("anchors", "iou", "max_det", "spread"),
    [
        (3000, 0.9, 100, 600),  # FastSAM's setting: few suppressed, the first 400 suffice
        (3000, 0.3, 100, 80),  # crowded: the best 400 keep 79, the candidate set must grow
        (3000, 0.3, 100, 40),  # almost all suppressed: only 82 survive in all
        (100, 0.9, 300, 600),  # fewer candidates than max_det
    ],
)
def test_nms_on_the_best_candidates_equals_full_nms(anchors, iou, max_det, spread):
    """NMS over the top-scoring candidates only keeps what ultralytics' full NMS keeps."""
    import torch
    from ultralytics.utils.nms import non_max_suppression

    from sfs_ros.models.fastsam import class_agnostic_nms

    gen = torch.Generator().manual_seed(anchors + max_det + spread)
    xy = torch.rand(2, anchors, generator=gen) * spread
    wh = torch.rand(2, anchors, generator=gen) * 100 + 5
    scores = torch.rand(1, anchors, generator=gen)
    coeffs = torch.randn(32, anchors, generator=gen)
    preds = torch.cat([xy, wh, scores, coeffs])[None]
    ref = non_max_suppression(preds, 0.01, iou, agnostic=True, max_det=max_det, nc=1)[0]
    boxes, conf, mask_coeffs = class_agnostic_nms(preds, 1, 0.01, iou, max_det)
    assert len(boxes) == len(ref) > 0
    torch.testing.assert_close(boxes, ref[:, :4])
    torch.testing.assert_close(conf, ref[:, 4])
    torch.testing.assert_close(mask_coeffs, ref[:, 6:])


@pytest.mark.parametrize("backend", ["torch", "openvino"])
def test_parallel_networks_give_the_same_labels(test_overrides, backend):
    """parallel_networks runs the closed set beside FastSAM on a second thread: same output."""
    from sfs_ros.params import load_config

    rng = np.random.default_rng(5)
    frame = np.ascontiguousarray(
        np.repeat(np.repeat(rng.integers(0, 255, (12, 16, 3), np.uint8), 8, 0), 8, 1)
    )
    results = []
    for parallel in (False, True):
        config = load_config(
            None, {**test_overrides, "backend": backend, "parallel_networks": parallel}
        )
        pipe = Pipeline.from_config(config)
        try:
            assert (pipe._closed_set_pool is not None) == parallel
            results.append(pipe.process(frame))
            assert pipe.mask_generator.output_hw(frame.shape[:2]) == results[-1].masks.work_hw
        finally:
            pipe.close()
    np.testing.assert_array_equal(results[0].label_map, results[1].label_map)
    np.testing.assert_array_equal(results[0].mask_labels, results[1].mask_labels)
