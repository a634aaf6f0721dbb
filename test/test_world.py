# SPDX-License-Identifier: AGPL-3.0-or-later
"""The tiny-world generator: determinism, ground truth vs drawn pixels, coverage, dataset layout."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from sfs_ros.evaluation.boundary import BoundaryScore, boundary_map
from sfs_ros.evaluation.cli import evaluate
from sfs_ros.evaluation.datasets import open_dataset
from sfs_ros.world import (
    CLASS_NAMES,
    CLOSED_SET_NAMES,
    OPEN_ONLY_NAMES,
    class_index,
    generate_scene,
    generate_sequence,
)
from sfs_ros.world.classes import OBJECT_NAMES, tiny_world_vocabulary
from sfs_ros.world.cli import summary_line, write_dataset
from sfs_ros.world.scene import TRAIN_SIZE

STUFF = {class_index(n) for n in ("floor", "wall", "sky")}


def test_same_seed_same_scene_other_seed_other_scene() -> None:
    a = generate_scene(5, 3, TRAIN_SIZE)
    b = generate_scene(5, 3, TRAIN_SIZE)
    assert np.array_equal(a.rgb, b.rgb)
    assert np.array_equal(a.semantic, b.semantic)
    assert np.array_equal(a.instances, b.instances)
    assert np.array_equal(a.instance_classes, b.instance_classes)
    c = generate_scene(5, 4, TRAIN_SIZE)
    d = generate_scene(6, 3, TRAIN_SIZE)
    assert not np.array_equal(a.rgb, c.rgb)
    assert not np.array_equal(a.rgb, d.rgb)


def test_shapes_and_encodings_at_camera_size() -> None:
    scene = generate_scene(0, 0)
    assert scene.rgb.shape == (480, 640, 3) and scene.rgb.dtype == np.uint8
    assert scene.semantic.shape == (480, 640) and scene.semantic.dtype == np.uint8
    assert scene.instances.shape == (480, 640) and scene.instances.dtype == np.uint16
    assert int(scene.semantic.max()) < len(CLASS_NAMES)


@pytest.mark.parametrize("index", range(6))
def test_ground_truth_matches_drawn_pixels(index: int) -> None:
    """Without photometric effects, the object pixels of the ground truth are exactly the
    pixels that differ from the same scene drawn without objects."""
    full = generate_scene(11, index, TRAIN_SIZE, effects=False)
    background = generate_scene(11, index, TRAIN_SIZE, effects=False, objects=False)
    objects = ~np.isin(full.semantic, list(STUFF))
    assert objects.any()
    changed = np.any(full.rgb != background.rgb, axis=2)
    # An object pixel may coincide with the background colour by chance: allow 0.5 %.
    assert (objects == changed).mean() > 0.995
    assert not (changed & ~objects).any()  # nothing drawn outside the ground truth
    assert np.array_equal(full.semantic[~objects], background.semantic[~objects])


@pytest.mark.parametrize("index", range(6))
def test_instances_agree_with_semantic_map(index: int) -> None:
    scene = generate_scene(12, index, TRAIN_SIZE)
    k = scene.instances
    assert int(k.max()) == len(scene.instance_classes)
    inside = k > 0
    # every instance pixel carries its instance's class; instances are objects, never stuff
    assert np.array_equal(scene.semantic[inside], scene.instance_classes[k[inside] - 1])
    assert not set(scene.instance_classes.tolist()) & STUFF
    counts = np.bincount(k.ravel())[1:]
    assert counts.min() >= 16
    masks = scene.instance_masks()
    assert len(masks) == len(scene.instance_classes)
    assert all(m.sum() == c for m, c in zip(masks, counts, strict=True))


def test_every_class_appears_and_open_classes_are_not_closed() -> None:
    seen_objects: set[int] = set()
    seen_pixels: set[int] = set()
    for i in range(40):
        scene = generate_scene(3, i, TRAIN_SIZE)
        seen_objects.update(scene.instance_classes.tolist())
        seen_pixels.update(np.unique(scene.semantic).tolist())
    assert seen_objects == {class_index(n) for n in OBJECT_NAMES}
    assert seen_pixels == set(range(len(CLASS_NAMES)))
    assert len(OBJECT_NAMES) == 10
    assert set(OPEN_ONLY_NAMES) == {"duck", "star", "kite"}
    assert not set(OPEN_ONLY_NAMES) & set(CLOSED_SET_NAMES)
    assert set(OPEN_ONLY_NAMES) | set(CLOSED_SET_NAMES) == set(CLASS_NAMES)


def test_class_colours_are_what_the_classes_look_like() -> None:
    """The drawn colour of each class (no effects) is near its nominal hue: a red ball, a blue
    barrel, a yellow duck, a purple star (what a classifier can learn from)."""
    sums = np.zeros((len(CLASS_NAMES), 3))
    counts = np.zeros(len(CLASS_NAMES))
    for i in range(20):
        scene = generate_scene(4, i, TRAIN_SIZE, effects=False)
        for c in np.unique(scene.semantic):
            sel = scene.semantic == c
            sums[c] += scene.rgb[sel].sum(axis=0)
            counts[c] += sel.sum()
    mean = sums / counts[:, None]
    r, g, b = mean[class_index("ball")]
    assert r > 1.5 * g and r > 1.5 * b
    r, g, b = mean[class_index("barrel")]
    assert b > 1.5 * r and b > g
    r, g, b = mean[class_index("duck")]
    assert r > 1.5 * b and g > 1.5 * b
    r, g, b = mean[class_index("star")]
    assert b > 1.3 * g and r > 1.3 * g


def test_panning_sequence_shifts_by_step() -> None:
    frames = list(generate_sequence(8, 3, TRAIN_SIZE, step=10))
    assert len(frames) == 3
    for a, b in itertools.pairwise(frames):
        assert a.rgb.shape == (240, 320, 3)
        assert np.array_equal(a.rgb[:, 10:], b.rgb[:, :-10])
        assert np.array_equal(a.semantic[:, 10:], b.semantic[:, :-10])
        # instance ids are renumbered per frame but keep their classes
        inside = b.instances > 0
        assert np.array_equal(b.semantic[inside], b.instance_classes[b.instances[inside] - 1])


def test_dataset_layout_round_trip_and_perfect_score(tmp_path: Path) -> None:
    out = write_dataset(tmp_path / "tw", seed=21, frames=3, size=TRAIN_SIZE)
    dataset = open_dataset("tiny-world", out)
    assert len(dataset) == 3
    assert dataset.class_names == CLASS_NAMES == tiny_world_vocabulary().names
    for i, (stem, _, gt) in enumerate(dataset):
        assert stem == f"tw21_{i:06d}"
        assert np.array_equal(gt, generate_scene(21, i, TRAIN_SIZE).semantic)

    class Oracle:
        """Ground truth as our ids (legend order shuffled against dataset order)."""

        needs_rgb = False
        order = tuple(reversed(CLASS_NAMES))

        def __call__(self, stem: str, rgb: np.ndarray | None) -> np.ndarray:
            gt = open_dataset("tiny-world", out).load_gt(
                next(s for s in dataset.samples if s.stem == stem)
            )
            lut = np.array([self.order.index(n) + 1 for n in CLASS_NAMES], np.uint16)
            return lut[gt]

        def legend(self) -> dict:
            classes = [{"id": i + 1, "name": n} for i, n in enumerate(self.order)]
            return {"revision": 1, "vocabulary": "tiny-world", "classes": classes}

    result = evaluate(dataset, Oracle(), progress=False)
    assert result.metrics.miou == pytest.approx(1.0)
    assert result.metrics.aacc == pytest.approx(1.0)
    with pytest.raises(FileExistsError):
        write_dataset(out, seed=21, frames=1)


def test_boundary_score_perfect_shifted_and_empty() -> None:
    gt = np.zeros((60, 80), np.uint8)
    gt[20:40, 20:50] = 3
    assert boundary_map(gt).sum() > 0
    perfect = BoundaryScore(tolerance=2)
    perfect.update(gt, gt)
    assert perfect.f_score == pytest.approx(1.0)
    near = BoundaryScore(tolerance=2)
    near.update(np.roll(gt, 1, axis=1), gt)
    assert near.f_score == pytest.approx(1.0)
    far = BoundaryScore(tolerance=2)
    far.update(np.roll(gt, 6, axis=1), gt)
    assert 0.2 < far.f_score < 0.8  # the horizontal edges still match, the vertical do not
    blank = BoundaryScore(tolerance=2)
    blank.update(np.zeros_like(gt), gt)
    assert blank.recall == 0.0 and np.isnan(blank.precision)


def test_summary_line_format() -> None:
    scores = {
        "closed": {"miou": 0.5, "boundary_f": 0.3},
        "sfs": {"miou": 0.61234, "boundary_f": 0.7},
        "open": {"miou": None, "boundary_f": 0.7},
        "oracle": {"miou": 0.8, "boundary_f": 0.9},
    }
    assert summary_line(scores) == (
        "closed_miou=0.5000 sfs_miou=0.6123 open_miou=nan boundary_f=0.7000 "
        "closed_boundary_f=0.3000 sfs_boundary_f=0.7000 oracle_miou=0.8000"
    )


def test_generate_command_writes_the_layout_once(tmp_path: Path) -> None:
    from sfs_ros.world.cli import main

    out = tmp_path / "gen"
    args = ["generate", "--seed", "3", "--frames", "2", "--out", str(out), "--size", "64x96"]
    assert main(args) == 0
    for sub in ("images", "labels", "instances"):
        assert sorted(p.name for p in (out / sub).iterdir()) == [
            "tw3_000000.png",
            "tw3_000001.png",
        ]
    assert open_dataset("tiny-world", out).load_gt(
        open_dataset("tiny-world", out).samples[1]
    ).shape == (
        64,
        96,
    )
    assert main(args) == 2  # never overwrites


def test_clip_local_dir_without_config_or_weights_is_a_clear_error(tmp_path: Path) -> None:
    import json

    from sfs_ros.open_vocab.clip import ClipScorer
    from sfs_ros.weights import WeightsNotFoundError

    with pytest.raises(WeightsNotFoundError, match=r"open_clip_config\.json"):
        ClipScorer.load(f"local-dir:{tmp_path / 'nothing'}", "")
    folder = tmp_path / "clip"
    folder.mkdir()
    from sfs_ros.world.train import RECIPE

    (folder / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": RECIPE["clip"]["model_cfg"]})
    )
    with pytest.raises(WeightsNotFoundError, match=r"open_clip_pytorch_model\.bin"):
        ClipScorer.load(f"local-dir:{folder}", "")


def test_closed_alone_configuration_proposes_no_masks_whatever_the_scores():
    """``sfs-world eval``'s closed-set-alone configuration: no masks even from a generator whose
    scores exceed 1 (quantised INT8 can), at the generator's working size; live changes of the
    fastsam group still reach the real generator for the next configuration."""
    from sfs_ros.models.fastsam import MaskSet
    from sfs_ros.params import FastSAMConfig
    from sfs_ros.world.cli import NoMasks

    class Confident:
        is_random = False

        def __init__(self):
            self.applied = []

        def infer(self, rgb):
            return None

        def decode(self, raw):
            masks = np.ones((1, 12, 16), bool)
            boxes = np.array([[0, 0, 64, 48]], np.float32)
            return MaskSet(masks, boxes, np.array([1.004], np.float32), (48, 64))

        def __call__(self, rgb):
            return self.decode(self.infer(rgb))

        def output_hw(self, image_hw):
            return (12, 16)

        def apply(self, settings):
            self.applied.append(settings)

    inner = Confident()
    assert len(inner(np.zeros((48, 64, 3), np.uint8))) == 1
    none = NoMasks(inner)
    got = none(np.zeros((48, 64, 3), np.uint8))
    assert len(got) == 0 and got.work_hw == (12, 16)
    none.apply(FastSAMConfig(conf=0.3))
    assert inner.applied[-1].conf == 0.3


def test_eval_refuses_a_models_folder_without_models(tmp_path: Path, capsys) -> None:
    """``sfs-world eval --models DIR`` uses DIR as it is: a folder without the models is one
    error line and exit 2, and nothing is created or trained there."""
    from sfs_ros.world.cli import main

    missing = tmp_path / "no_models"
    code = main(["eval", "--frames", "1", "--models", str(missing), "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no tiny-world models" in err[0] and "sfs-world train" in err[0]
    assert not missing.exists()
