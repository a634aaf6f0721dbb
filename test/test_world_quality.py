# SPDX-License-Identifier: AGPL-3.0-or-later
"""Label QUALITY of the pipeline with trained tiny-world models, at the shipped defaults.

The models (YOLOv8n-seg as FastSAM, a small SegFormer, a tiny CLIP) were trained here with
``python -m sfs_ros.world.train`` and are loaded through the real loading paths
(``fastsam.model: <path>.pt``, ``closed_set.model: <save_pretrained dir>``, ``open_vocab.model:
local-dir:<folder>``); see test/fixtures/tiny_world/README.md. Everything else is at its
default (``fastsam.conf`` 0.4, ``closed_set.min_purity`` 0.5). The scenes are held out (seeds
other than the training and validation seeds 1 and 2). These assertions fail when the voting,
the resizing of label maps or the RGB channel order breaks: each of those turns the trained
models' labels into wrong ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from sfs_ros.evaluation.mapping import build_mapping
from sfs_ros.world import CLOSED_SET_NAMES, OPEN_ONLY_NAMES, class_index, generate_scene
from sfs_ros.world.classes import OBJECT_NAMES, tiny_world_vocabulary
from sfs_ros.world.scene import Scene
from sfs_ros.world.train import MODEL_PARTS, TinyWorldModels

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "tiny_world"
CLOSED_OBJECTS = [n for n in OBJECT_NAMES if n in CLOSED_SET_NAMES]


@pytest.fixture(scope="session")
def tiny_world_models() -> TinyWorldModels:
    """The committed trained models (skipped, with the command to make them, when stale)."""
    models = TinyWorldModels(FIXTURES)
    stale = [p for p in MODEL_PARTS if not models.has(p)]
    if stale:
        pytest.skip(
            f"tiny-world models {stale} missing or trained with another recipe in {FIXTURES}; "
            f"run: python -m sfs_ros.world.train --out {FIXTURES}"
        )
    return models


def _pipeline(models: TinyWorldModels, open_vocab: bool) -> object:
    from sfs_ros.params import SfsConfig, load_config
    from sfs_ros.pipeline import Pipeline

    config = load_config(None, {"device": "cpu", "num_threads": 2, **models.overrides(open_vocab)})
    # CLIP on every frame, as sfs-segment runs it
    return Pipeline.from_config(SfsConfig.from_flat(config).offline())


@pytest.fixture(scope="module")
def sfs(tiny_world_models: TinyWorldModels) -> Iterator[object]:
    """The pipeline at its defaults (open vocabulary off) with the trained models."""
    pipeline = _pipeline(tiny_world_models, open_vocab=False)
    yield pipeline
    pipeline.close()


@pytest.fixture(scope="module")
def sfs_open(tiny_world_models: TinyWorldModels) -> Iterator[object]:
    """The same with the open-vocabulary branch on (tiny CLIP, open-only names)."""
    pipeline = _pipeline(tiny_world_models, open_vocab=True)
    yield pipeline
    pipeline.close()


def _labels(pipeline: object, scene: Scene) -> np.ndarray:
    """The pipeline's label map for ``scene`` as tiny-world class indices (255 = no class)."""
    result = pipeline.process(scene.rgb)
    mapping = build_mapping(pipeline.legend_dict(), tiny_world_vocabulary(), "tiny-world")
    labels = mapping.apply(result.label_map)
    assert labels.shape == scene.semantic.shape
    return labels


def _iou(pred: np.ndarray, gt: np.ndarray, cls: int) -> float:
    p, g = pred == cls, gt == cls
    return float((p & g).sum() / max((p | g).sum(), 1))


@pytest.mark.parametrize("index", range(3))
def test_planted_scene_mostly_right(sfs: object, index: int) -> None:
    """Four closed-set objects on a random background: >= 85 % of the pixels are right."""
    scene = generate_scene(4100, index, objects=4, classes=CLOSED_OBJECTS)
    pred = _labels(sfs, scene)
    assert (pred == scene.semantic).mean() >= 0.85


def _shifted(labels: np.ndarray, dy: int, dx: int) -> np.ndarray:
    return np.roll(np.roll(labels, dy, axis=0), dx, axis=1)


@pytest.mark.parametrize("index", range(3))
def test_label_map_is_aligned_with_the_scene(sfs: object, index: int) -> None:
    """The label map matches the ground truth best where it is, not shifted: of every shift
    up to 6 px in steps of 2, none agrees with the ground truth more than no shift. A resize
    or letterbox error that moves the labels by a few pixels fails this (a 3 px shift of the
    map finds its best match 2-4 px back; measured), while the 85 % test above still passes."""
    scene = generate_scene(4100, index, objects=4, classes=CLOSED_OBJECTS)
    pred = _labels(sfs, scene)
    shifts = [(dy, dx) for dy in range(-6, 7, 2) for dx in range(-6, 7, 2)]
    agree = {s: float((_shifted(pred, *s) == scene.semantic).mean()) for s in shifts}
    best = max(agree, key=agree.__getitem__)
    assert best == (0, 0), f"labels match best shifted by {best}: {agree[best]:.4f} vs " + (
        f"{agree[(0, 0)]:.4f} in place"
    )


def test_empty_scene_is_background(sfs: object) -> None:
    """No objects: floor, wall and sky, and (nearly) no object class anywhere."""
    scene = generate_scene(4200, 0, objects=False)
    pred = _labels(sfs, scene)
    assert (pred == scene.semantic).mean() >= 0.9
    objects = np.isin(pred, [class_index(n) for n in OBJECT_NAMES])
    assert objects.mean() < 0.02


@pytest.mark.parametrize("name", CLOSED_OBJECTS)
def test_single_object_found_and_named(sfs: object, name: str) -> None:
    """One object of a closed-set class alone: its pixels carry its class (mean IoU over four
    scenes >= 0.55)."""
    ious = []
    for index in range(4):
        scene = generate_scene(4300 + CLOSED_OBJECTS.index(name), index, objects=1, classes=[name])
        ious.append(_iou(_labels(sfs, scene), scene.semantic, class_index(name)))
    assert np.mean(ious) >= 0.55, ious


@pytest.mark.parametrize("name", OPEN_ONLY_NAMES)
def test_object_unknown_to_the_closed_set(sfs: object, sfs_open: object, name: str) -> None:
    """An object the closed set does not know: without open vocabulary its name appears
    nowhere; with it, the tiny CLIP names it (IoU >= 0.5)."""
    scene = generate_scene(4400, OPEN_ONLY_NAMES.index(name), objects=1, classes=[name])
    cls = class_index(name)
    assert not (_labels(sfs, scene) == cls).any()
    assert _iou(_labels(sfs_open, scene), scene.semantic, cls) >= 0.5


def test_the_shipped_clip_precision_reaches_the_image_tower(sfs_open: object) -> None:
    """open_vocab.openvino_precision at its default (auto) goes from the configuration to the
    compiled CLIP tower: bf16 where the CPU computes it natively, else f32, as the branch's
    diagnostics say."""
    from sfs_ros.models.backends import cpu_has_native_bf16
    from sfs_ros.params import SfsConfig

    assert SfsConfig().open_vocab.openvino_precision == "auto"
    expected = "bf16" if cpu_has_native_bf16() else "f32"
    assert sfs_open.open_vocab_stats()["image_tower"] == f"openvino {expected}, 1 thread(s)"


def test_world_eval_command_prints_the_summary_last(
    tiny_world_models: TinyWorldModels, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """``sfs-world eval`` on two held-out scenes: three configurations, one summary line."""
    import json
    import re

    from sfs_ros.world.cli import main

    code = main(
        [
            "eval",
            "--seed",
            "4500",
            "--frames",
            "2",
            "--models",
            str(FIXTURES),
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    match = re.fullmatch(
        r"closed_miou=(\S+) sfs_miou=(\S+) open_miou=(\S+) boundary_f=(\S+) "
        r"closed_boundary_f=(\S+) sfs_boundary_f=(\S+) oracle_miou=(\S+)",
        last,
    )
    assert match, last
    values = [float(v) for v in match.groups()]
    assert all(0.0 < v <= 1.0 for v in values)
    assert values[3] == values[5]  # boundary_f is sfs's
    report = json.loads((tmp_path / "tiny_world_eval.json").read_text())
    assert set(report["scores"]) == {"closed", "sfs", "open", "oracle"}
    scores = report["scores"]
    assert scores["sfs"]["miou"] == pytest.approx(values[1], abs=1e-4)
    assert scores["closed"]["boundary_f"] == pytest.approx(values[4], abs=1e-4)
    assert scores["oracle"]["miou"] == pytest.approx(values[6], abs=1e-4)
    # perfect masks: every object's edge is where the ground truth has it
    assert scores["oracle"]["boundary_f"] > scores["sfs"]["boundary_f"]
    assert set(scores["oracle"]["iou"]) == set(scores["sfs"]["iou"])
    proposals = scores["sfs"]["proposals"]
    assert proposals["objects"] > 0 and 0.0 <= proposals["recall"] <= 1.0
    # the closed-set configurations cannot name the open-only classes; only "open" can
    for cls in OPEN_ONLY_NAMES:
        assert report["scores"]["closed"]["iou"][cls] in (0.0, None)
        assert report["scores"]["sfs"]["iou"][cls] in (0.0, None)


def test_segment_cli_labels_tiny_world_frames(
    tiny_world_models: TinyWorldModels, tmp_path: Path
) -> None:
    """``sfs-segment`` with the shipped preset (config/sfs.yaml, only the model entries set to
    the trained tiny-world models) on planted scenes written as PNG files: the 16-bit label
    images it writes, read back through its legend.json, are >= 85 % right, and an empty
    scene is background."""
    import json

    import cv2
    import yaml

    from sfs_ros.cli.segment import main

    frames = tmp_path / "frames"
    frames.mkdir()
    scenes = {
        "planted": generate_scene(4100, 0, objects=4, classes=CLOSED_OBJECTS),
        "empty": generate_scene(4200, 0, objects=False),
    }
    for stem, scene in scenes.items():
        cv2.imwrite(str(frames / f"{stem}.png"), cv2.cvtColor(scene.rgb, cv2.COLOR_RGB2BGR))
    sets = [
        f"{k}={yaml.safe_dump(v, default_flow_style=True).strip()}"
        for k, v in tiny_world_models.overrides().items()
    ]
    config = Path(__file__).resolve().parents[1] / "config" / "sfs.yaml"
    argv = [str(frames), "-o", str(tmp_path / "out"), "--config", str(config), "--no-progress"]
    for item in sets:
        argv += ["--set", item]
    assert main(argv) == 0
    legend = json.loads((tmp_path / "out" / "legend.json").read_text())
    mapping = build_mapping(legend, tiny_world_vocabulary(), "tiny-world")
    for stem, scene in scenes.items():
        ids = cv2.imread(str(tmp_path / "out" / f"{stem}_label.png"), cv2.IMREAD_UNCHANGED)
        assert ids.dtype == np.uint16 and ids.shape == scene.semantic.shape
        agree = float((mapping.apply(ids) == scene.semantic).mean())
        assert agree >= (0.85 if stem == "planted" else 0.9), (stem, agree)


def _box(mask: np.ndarray) -> list[int]:
    """The xyxy box (pixel edges) of a non-empty mask."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]


def test_clip_tower_in_bf16_names_tiny_world_objects_as_f32_does(
    tiny_world_models: TinyWorldModels, tmp_path, monkeypatch
) -> None:
    """``open_vocab.openvino_precision``: the trained tiny CLIP's OpenVINO tower compiled in
    bf16 gives the f32 tower's top name on the objects of held-out scenes (and the f32 tower
    names them right: the agreement is about meaningful scores). The compiled model runs in
    the precision asked for."""
    from sfs_ros.models.backends import cpu_has_native_bf16
    from sfs_ros.open_vocab.clip import ClipScorer
    from sfs_ros.world.classes import CLASS_NAMES
    from sfs_ros.world.train import RECIPE

    monkeypatch.setenv("SFS_CACHE_DIR", str(tmp_path))
    names = list(CLASS_NAMES)
    scorers = {}
    for precision in ("f32", "bf16"):
        scorer = ClipScorer.load(
            f"local-dir:{tiny_world_models.clip}",
            "",
            templates=list(RECIPE["clip"]["templates"]),
            backend="openvino",
            openvino_precision=precision,
        )
        compiled = scorer.image_encoder._request.get_compiled_model()
        if precision == "f32" or cpu_has_native_bf16():  # else OpenVINO may fall back to f32
            assert compiled.get_property("INFERENCE_PRECISION_HINT").to_string() == precision
        scorers[precision] = scorer
    top = {"f32": [], "bf16": []}
    truth = []
    for index in range(12):
        scene = generate_scene(3000, index)
        masks = np.stack(scene.instance_masks())
        boxes = np.array([_box(mask) for mask in masks], np.float32)
        for precision, scorer in scorers.items():
            scores = scorer.score(scene.rgb, masks, boxes, names)
            top[precision] += list(np.nanargmax(np.nan_to_num(scores, nan=-2.0), axis=1))
        truth += [int(c) for c in scene.instance_classes]
    assert len(truth) >= 30
    agree = np.mean(np.array(top["bf16"]) == np.array(top["f32"]))
    right = np.mean(np.array(top["f32"]) == np.array(truth))
    print(f"\n[bf16 CLIP] {len(truth)} objects: top-1 agreement with f32 {agree:.1%}, "
          f"f32 right {right:.1%}")
    assert agree >= 0.95
    assert right >= 0.7


def _edge_figures(pipeline: object) -> tuple[float, float]:
    """Boundary precision (3 px) over three planted scenes, and the largest share of the label
    map's vertical edges on one column phase modulo 8 (the working grid's step here)."""
    from sfs_ros.evaluation.boundary import BoundaryScore

    score, stairs = BoundaryScore(tolerance=3.0), []
    for index in range(3):
        scene = generate_scene(4100, index, objects=4, classes=CLOSED_OBJECTS)
        labels = _labels(pipeline, scene)
        score.update(labels, scene.semantic)
        cols = np.nonzero(labels[:, 1:] != labels[:, :-1])[1] + 1
        stairs.append(np.bincount(cols % 8, minlength=8).max() / max(len(cols), 1))
    return score.precision, max(stairs)


def test_label_edges_follow_the_objects(sfs: object, tiny_world_models: TinyWorldModels) -> None:
    """At the defaults (fastsam.mask_resolution: edges) the label edges lie within 3 px of the
    true ones (precision 0.84 measured) and on no grid phase (0.17-0.19 of them on the most
    common one); the working-resolution map enlarged (``work``) puts every edge on the 8-px
    grid (1.0) and 0.70 of them within 3 px: the node test's thresholds tell them apart."""
    from sfs_ros.params import SfsConfig, load_config
    from sfs_ros.pipeline import Pipeline

    precision, stairs = _edge_figures(sfs)
    assert precision >= 0.8 and stairs < 0.4, (precision, stairs)
    overrides = {**tiny_world_models.overrides(), "fastsam.mask_resolution": "work"}
    coarse = Pipeline.from_config(SfsConfig.from_flat(load_config(None, overrides)))
    try:
        precision, stairs = _edge_figures(coarse)
    finally:
        coarse.close()
    assert precision < 0.8 and stairs > 0.9, (precision, stairs)
