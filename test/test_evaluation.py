"""Tests for sfs-eval: metrics vs an independent oracle, dataset layouts, mapping, CLI."""

from __future__ import annotations

import json
import math
import sys
import types
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import pytest

from sfs_ros.evaluation import cli
from sfs_ros.evaluation.datasets import EvaluationError, open_dataset
from sfs_ros.evaluation.mapping import IGNORED, SYNONYMS, build_mapping
from sfs_ros.evaluation.metrics import ConfusionMatrix
from sfs_ros.params import SfsConfig
from sfs_ros.vocabularies import get_vocabulary, normalize_class_name

CITY = get_vocabulary("cityscapes").names
ADE = get_vocabulary("ade20k").names


# ----------------------------------------------------------------------------- helpers


def oracle(preds: list[np.ndarray], gts: list[np.ndarray], num: int) -> dict[str, object]:
    """Plain per-class loops: IoU = |GT_c & P_c| / |GT_c | P_c| over non-ignored pixels.

    A predicted value outside 0..num-1 is "no class": it is in no P_c.
    """
    inter = [0] * num
    union = [0] * num
    gt_area = [0] * num
    correct = 0
    total = 0
    for pred, gt in zip(preds, gts, strict=True):
        valid = gt != 255
        for c in range(num):
            g = (gt == c) & valid
            p = (pred == c) & valid
            inter[c] += int(np.sum(g & p))
            union[c] += int(np.sum(g | p))
            gt_area[c] += int(np.sum(g))
        correct += int(np.sum((pred == gt) & valid))
        total += int(np.sum(valid))
    iou = [inter[c] / union[c] if union[c] else math.nan for c in range(num)]
    acc = [inter[c] / gt_area[c] if gt_area[c] else math.nan for c in range(num)]
    present = [v for v in iou if not math.isnan(v)]
    return {
        "iou": iou,
        "acc": acc,
        "miou": sum(present) / len(present),
        "aacc": correct / total,
    }


def legend(entries: list[tuple[int, str]], vocabulary: str = "cityscapes") -> dict:
    """A legend.json dict as sfs-segment writes it."""
    return {
        "revision": 1,
        "vocabulary": vocabulary,
        "classes": [
            {"id": i, "name": n, "color": [i % 256, 0, 0], "source": 0 if i == 0 else 1}
            for i, n in entries
        ],
    }


def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)


def rgb_image(shape: tuple[int, int], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def make_cityscapes(root: Path, gts: dict[str, np.ndarray]) -> list[str]:
    """gts: '<city>_<seq>_<frame>' -> trainId array; returns image stems, sorted."""
    for i, (base, gt) in enumerate(gts.items()):
        city = base.split("_")[0]
        write_png(
            root / "leftImg8bit/val" / city / f"{base}_leftImg8bit.png", rgb_image(gt.shape, i)
        )
        write_png(
            root / "gtFine/val" / city / f"{base}_gtFine_labelTrainIds.png", gt.astype(np.uint8)
        )
    return sorted(f"{base}_leftImg8bit" for base in gts)


def make_ade(root: Path, raw_gts: dict[str, np.ndarray]) -> list[str]:
    for i, (stem, raw) in enumerate(raw_gts.items()):
        write_png(root / "images/validation" / f"{stem}.jpg", rgb_image(raw.shape, i))
        write_png(root / "annotations/validation" / f"{stem}.png", raw.astype(np.uint8))
    return sorted(raw_gts)


def write_predictions(out: Path, labels: dict[str, np.ndarray], leg: dict) -> None:
    for stem, label in labels.items():
        write_png(out / f"{stem}_label.png", label.astype(np.uint16))
    (out / "legend.json").write_text(json.dumps(leg))


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = cli.main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


# ----------------------------------------------------------------------------- metrics


def test_hand_computed_example() -> None:
    # 3 classes; class 2 is absent from GT and prediction -> NaN, excluded from mIoU.
    gt = np.array([[0, 0, 1, 1], [0, 255, 1, 1]])
    pred = np.array([[0, 1, 1, 1], [0, 0, 255, 1]])  # (1,1) is GT-ignored, (1,2) no class
    cm = ConfusionMatrix(3)
    cm.update(pred, gt)
    r = cm.results()
    # class 0: GT {(0,0),(0,1),(1,0)}, P {(0,0),(1,0)} (pixel (1,1) has GT 255) -> 2/3
    # class 1: GT {(0,2),(0,3),(1,2),(1,3)}, P {(0,1),(0,2),(0,3),(1,3)} -> I 3, U 5
    assert r.iou[0] == pytest.approx(2 / 3)
    assert r.iou[1] == pytest.approx(3 / 5)
    assert math.isnan(r.iou[2]) and math.isnan(r.acc[2])
    assert r.miou == pytest.approx((2 / 3 + 3 / 5) / 2)
    assert r.acc.tolist()[:2] == pytest.approx([2 / 3, 3 / 4])
    assert r.aacc == pytest.approx(5 / 7)
    assert r.ignored_prediction_pixels == 1  # (1,2): GT 1, predicted no class
    assert r.area_union.tolist()[:2] == [3, 5]


def test_prediction_only_class_counts_as_zero_and_ignored_prediction_adds_to_union() -> None:
    gt = np.zeros((2, 4), dtype=np.uint8)
    pred = np.array([[0, 0, 255, 255], [2, 2, 0, 0]])
    cm = ConfusionMatrix(4)
    cm.update(pred, gt)
    r = cm.results()
    assert r.iou[0] == pytest.approx(4 / 8)  # 2 ignored + 2 class-2 pixels are misses
    assert r.iou[2] == 0.0 and math.isnan(r.acc[2])  # only in prediction: IoU 0, counted
    assert math.isnan(r.iou[1]) and math.isnan(r.iou[3])
    assert r.miou == pytest.approx((0.5 + 0.0) / 2)
    assert r.area_pred.tolist() == [4, 0, 2, 0]  # ignored predictions belong to no class
    assert r.ignored_prediction_pixels == 2


def test_confusion_matrix_matches_oracle_on_random_images() -> None:
    rng = np.random.default_rng(0)
    num = 7
    preds, gts = [], []
    cm = ConfusionMatrix(num)
    for shape in [(13, 17), (8, 5), (21, 9)]:
        gt = rng.choice([0, 1, 2, 3, 255], size=shape)  # classes 4..6 absent from GT
        pred = rng.choice([0, 1, 2, 4, 255, 9], size=shape)  # 4 only predicted; 5, 6 nowhere
        cm.update(pred.astype(np.uint16), gt.astype(np.uint8))
        preds.append(pred)
        gts.append(gt)
    r = cm.results()
    want = oracle(preds, gts, num)
    np.testing.assert_allclose(r.iou, want["iou"], equal_nan=True)
    np.testing.assert_allclose(r.acc, want["acc"], equal_nan=True)
    assert math.isnan(r.iou[5]) and math.isnan(r.iou[6])
    assert r.iou[4] == 0.0
    assert r.miou == pytest.approx(want["miou"])
    assert r.aacc == pytest.approx(want["aacc"])


def test_confusion_matrix_counts_equal_the_expanded_pixels() -> None:
    """``update(pred, gt, counts)`` (pairs counted elsewhere) adds what the pixels would."""
    rng = np.random.default_rng(5)
    pred = rng.integers(0, 5, 200)  # 4 = no class (num_classes 4)
    gt = rng.choice([0, 1, 2, 3, 255], 200)
    pixels = ConfusionMatrix(4)
    pixels.update(pred, gt)
    pairs, counts = np.unique(np.stack([pred, gt]), axis=1, return_counts=True)
    counted = ConfusionMatrix(4)
    counted.update(pairs[0], pairs[1], counts=counts)
    np.testing.assert_array_equal(counted.matrix, pixels.matrix)
    with pytest.raises(ValueError, match="counts shape"):
        counted.update(pairs[0], pairs[1], counts=counts[:-1])


def test_confusion_matrix_rejects_bad_ground_truth() -> None:
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="ground-truth value 7"):
        cm.update(np.zeros((1, 2)), np.array([[7, 0]]))
    with pytest.raises(ValueError, match="shape"):
        cm.update(np.zeros((2, 2)), np.zeros((1, 2)))
    assert cm.matrix.sum() == 0


# ----------------------------------------------------------------------------- datasets


def test_ade_reduce_zero_label(tmp_path: Path) -> None:
    raw = np.array([[0, 1, 2], [150, 255, 12]], dtype=np.uint8)
    make_ade(tmp_path, {"ADE_val_00000001": raw})
    ds = open_dataset("ade20k", tmp_path)
    assert ds.class_names == ADE and len(ADE) == 150
    [(stem, image_path, gt)] = list(ds)
    assert stem == "ADE_val_00000001"
    assert image_path == tmp_path / "images/validation/ADE_val_00000001.jpg"
    assert gt.tolist() == [[255, 0, 1], [149, 255, 11]]


def test_ade_value_out_of_range_is_an_error(tmp_path: Path) -> None:
    make_ade(tmp_path, {"ADE_val_00000001": np.array([[151, 1]], dtype=np.uint8)})
    ds = open_dataset("ade20k", tmp_path)
    with pytest.raises(EvaluationError, match="label value 151"):
        list(ds)


def test_cityscapes_reader_pairs_and_sorts(tmp_path: Path) -> None:
    a = np.array([[0, 18], [255, 3]], dtype=np.uint8)
    b = np.array([[1, 1], [2, 2]], dtype=np.uint8)
    stems = make_cityscapes(tmp_path, {"munster_000001_000019": b, "frankfurt_000000_000294": a})
    ds = open_dataset("cityscapes", tmp_path)
    assert ds.class_names == CITY and len(CITY) == 19
    got = list(ds)
    assert (
        [s for s, _, _ in got]
        == stems
        == [
            "frankfurt_000000_000294_leftImg8bit",
            "munster_000001_000019_leftImg8bit",
        ]
    )
    assert got[0][2].tolist() == a.tolist()  # no reduce-zero-label for trainIds
    assert got[1][2].tolist() == b.tolist()
    assert len(ds.limited(1)) == 1 and ds.limited(1).samples[0].stem == stems[0]


def test_missing_ground_truth_names_expected_path(tmp_path: Path) -> None:
    make_cityscapes(tmp_path, {"lindau_000000_000019": np.zeros((2, 2))})
    gt = tmp_path / "gtFine/val/lindau/lindau_000000_000019_gtFine_labelTrainIds.png"
    gt.unlink()
    with pytest.raises(EvaluationError) as err:
        open_dataset("cityscapes", tmp_path)
    assert str(gt) in str(err.value)


def test_ground_truth_without_image_is_an_error(tmp_path: Path) -> None:
    make_ade(tmp_path, {"ADE_val_00000001": np.ones((2, 2)), "ADE_val_00000002": np.ones((2, 2))})
    (tmp_path / "images/validation/ADE_val_00000002.jpg").unlink()
    with pytest.raises(EvaluationError) as err:
        open_dataset("ade20k", tmp_path)
    assert str(tmp_path / "annotations/validation/ADE_val_00000002.png") in str(err.value)


def test_empty_dataset_names_the_pattern(tmp_path: Path) -> None:
    (tmp_path / "images/validation").mkdir(parents=True)
    (tmp_path / "annotations/validation").mkdir(parents=True)
    with pytest.raises(EvaluationError) as err:
        open_dataset("ade20k", tmp_path)
    assert f"no images found: expected {tmp_path / 'images/validation/*.jpg'}" == str(err.value)


# ----------------------------------------------------------------------------- mapping


def test_mapping_by_normalized_name_and_synonyms() -> None:
    leg = legend(
        [
            (0, "unidentified"),
            (1, "Road"),
            (2, "traffic_light"),
            (3, "tree"),
            (4, "banana"),
            (7, "van"),
            (9, "motorbike"),
            (10, "grass"),
            (11, "Stop_Sign"),
        ]
    )
    m = build_mapping(leg, get_vocabulary("cityscapes"), "cityscapes")
    want = {
        0: IGNORED,
        1: 0,
        2: 6,
        3: 8,
        4: IGNORED,
        5: IGNORED,
        6: IGNORED,
        7: IGNORED,
        8: IGNORED,
        9: 17,
        10: 9,
        11: 7,
    }
    assert {i: int(v) for i, v in enumerate(m.lut)} == want
    assert [(c.id, c.name, c.reason) for c in m.ignored] == [
        (0, "unidentified", "unidentified"),
        (4, "banana", "no dataset class"),
        (7, "van", "no dataset class"),
    ]
    assert [(c.name, c.dataset_name, c.via) for c in m.mapped] == [
        ("Road", "road", "name"),
        ("traffic_light", "traffic light", "name"),
        ("tree", "vegetation", "synonym"),
        ("motorbike", "motorcycle", "synonym"),
        ("grass", "terrain", "synonym"),
        ("Stop_Sign", "traffic sign", "synonym"),
    ]
    label = np.array([[1, 3, 4], [9, 0, 60000]], dtype=np.uint16)
    assert m.apply(label).tolist() == [[0, 8, 255], [17, 255, 255]]
    assert m.name_of(60000) == "<id 60000 not in legend>"


@pytest.mark.parametrize("dataset", ["cityscapes", "ade20k"])
def test_synonym_table_targets_exist_and_keys_are_not_class_names(dataset: str) -> None:
    vocab = get_vocabulary(dataset)
    for ours, target in SYNONYMS[dataset].items():
        assert vocab.names[vocab.index_of(target)] == target
        assert ours not in vocab, ours  # a dataset class name never needs a synonym
        assert normalize_class_name(ours) == ours


def test_mapping_onto_ade_uses_comma_synonyms_and_cross_vocabulary_names() -> None:
    leg = legend(
        [
            (0, "unidentified"),
            (1, "sofa, couch, lounge"),
            (2, "motorcycle"),
            (3, "rider"),
            (4, "vegetation"),
            (5, "wall-other-merged"),
        ]
    )
    m = build_mapping(leg, get_vocabulary("ade20k"), "ade20k")
    assert m.lut.tolist() == [
        IGNORED,
        ADE.index("sofa"),
        ADE.index("minibike"),
        ADE.index("person"),
        IGNORED,
        ADE.index("wall"),
    ]


def test_mapping_rejects_malformed_legend() -> None:
    vocab = get_vocabulary("cityscapes")
    with pytest.raises(ValueError, match="twice"):
        build_mapping(legend([(1, "road"), (1, "car")]), vocab, "cityscapes")
    with pytest.raises(ValueError, match="classes"):
        build_mapping({"revision": 1}, vocab, "cityscapes")


# ----------------------------------------------------------------------------- CLI


@pytest.fixture
def cityscapes_case(tmp_path: Path) -> dict[str, object]:
    """Three Cityscapes images, sfs-segment predictions with our own id space."""
    rng = np.random.default_rng(42)
    shape = (12, 16)
    gts = {}
    for base in ["lindau_000000_000019", "frankfurt_000000_000294", "frankfurt_000001_000538"]:
        gt = rng.choice([0, 1, 2, 8, 11, 13, 255], size=shape).astype(np.uint8)
        gts[base] = gt
    root = tmp_path / "cityscapes"
    stems = make_cityscapes(root, gts)
    # Our ids: 0 unidentified, 1 "car", 2 "road", 3 "person", 4 "tree" (-> vegetation),
    # 5 "banana" (unmappable), 6 "sidewalk", 7 "sky" (never in GT: prediction-only class).
    to_train = {1: 13, 2: 0, 3: 11, 4: 8, 6: 1, 7: 10}
    leg = legend(
        [
            (0, "unidentified"),
            (1, "car"),
            (2, "road"),
            (3, "person"),
            (4, "tree"),
            (5, "banana"),
            (6, "sidewalk"),
            (7, "sky"),
        ],
        vocabulary="ade20k",
    )
    labels, preds_train, gts_list = {}, {}, {}
    for base, gt in gts.items():
        stem = f"{base}_leftImg8bit"
        label = rng.choice([0, 1, 2, 3, 4, 5, 6, 7], size=shape).astype(np.uint16)
        labels[stem] = label
        preds_train[stem] = np.vectorize(lambda i: to_train.get(int(i), -1))(label)
        gts_list[stem] = gt
    pred_dir = tmp_path / "pred"
    write_predictions(pred_dir, labels, leg)
    return {
        "root": root,
        "stems": stems,
        "pred_dir": pred_dir,
        "labels": labels,
        "preds": preds_train,
        "gts": gts_list,
        "out": tmp_path / "out",
    }


def test_cli_predictions_cityscapes_end_to_end(
    cityscapes_case: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    c = cityscapes_case
    rc, out, err = run_cli(
        [
            "--dataset",
            "cityscapes",
            "--root",
            str(c["root"]),
            "--predictions",
            str(c["pred_dir"]),
            "--out",
            str(c["out"]),
        ],
        capsys,
    )
    assert rc == 0, err
    stems = c["stems"]
    want = oracle([c["preds"][s] for s in stems], [c["gts"][s] for s in stems], 19)
    assert last_line(out) == f"mIoU={100 * want['miou']:.2f} aAcc={100 * want['aacc']:.2f}"
    assert "sfs-eval cityscapes" in err  # tqdm progress bar goes to stderr
    assert "'banana' (id 5" in err

    report = json.loads((c["out"] / "cityscapes.json").read_text())
    assert report["num_images"] == 3
    assert report["metrics"]["mIoU"] == pytest.approx(100 * want["miou"])
    assert report["metrics"]["aAcc"] == pytest.approx(100 * want["aacc"])
    for row in report["per_class"]:
        w = want["iou"][row["index"]]
        assert row["name"] == CITY[row["index"]]
        assert (row["IoU"] is None) if math.isnan(w) else row["IoU"] == pytest.approx(100 * w)
    assert report["per_class"][10]["IoU"] == 0.0  # sky: predicted only
    assert report["per_class"][3]["IoU"] is None  # wall: nowhere
    valid_pixels = {s: c["gts"][s] != 255 for s in stems}
    banana = sum(int(np.sum((c["labels"][s] == 5) & valid_pixels[s])) for s in stems)
    unidentified = sum(int(np.sum((c["labels"][s] == 0) & valid_pixels[s])) for s in stems)
    ignored = {row["name"]: row for row in report["mapping"]["ignored"]}
    assert ignored["banana"]["pixels"] == banana and ignored["banana"]["id"] == 5
    assert ignored["unidentified"]["pixels"] == unidentified
    assert report["mapping"]["ignored_prediction_pixels"] == banana + unidentified
    mapped = {
        row["name"]: (row["dataset_class"], row["via"]) for row in report["mapping"]["mapped"]
    }
    assert mapped["tree"] == ("vegetation", "synonym") and mapped["car"] == ("car", "name")
    assert report["source"] == {"mode": "predictions", "path": str(c["pred_dir"])}
    assert list(report["timing"]["per_image_ms"]) == stems
    assert all(v >= 0 for v in report["timing"]["per_image_ms"].values())

    md = (c["out"] / "cityscapes.md").read_text()
    assert f"| {100 * want['miou']:.2f} | {100 * want['aacc']:.2f} |" in md
    assert "| 5 | banana | no dataset class |" in md
    assert "tree -> vegetation" in md


def test_cli_limit(cityscapes_case: dict, capsys: pytest.CaptureFixture[str]) -> None:
    c = cityscapes_case
    (c["pred_dir"] / f"{c['stems'][2]}_label.png").unlink()  # never needed with --limit 2
    rc, out, err = run_cli(
        [
            "--dataset",
            "cityscapes",
            "--root",
            str(c["root"]),
            "--predictions",
            str(c["pred_dir"]),
            "--limit",
            "2",
            "--out",
            str(c["out"]),
        ],
        capsys,
    )
    assert rc == 0, err
    stems = c["stems"][:2]
    want = oracle([c["preds"][s] for s in stems], [c["gts"][s] for s in stems], 19)
    assert last_line(out) == f"mIoU={100 * want['miou']:.2f} aAcc={100 * want['aacc']:.2f}"
    report = json.loads((c["out"] / "cityscapes.json").read_text())
    assert report["num_images"] == 2 and report["limit"] == 2
    assert list(report["timing"]["per_image_ms"]) == stems


def test_cli_predictions_ade(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = {
        "ADE_val_00000001": np.array([[0, 1, 1, 3], [13, 13, 0, 2]]),  # 0 -> ignored
        "ADE_val_00000002": np.array([[3, 3, 1, 1], [255, 2, 2, 2]]),
    }
    root = tmp_path / "ADEChallengeData2016"
    make_ade(root, raw)
    # Our ids = ADE index + 1 (as a closed-set ADE legend would give), plus id 200 not in legend.
    leg = legend([(0, "unidentified"), *[(i + 1, n) for i, n in enumerate(ADE)]], "ade20k")
    labels = {
        "ADE_val_00000001": np.array([[5, 1, 2, 3], [13, 1, 1, 200]]),
        "ADE_val_00000002": np.array([[3, 0, 1, 1], [1, 2, 3, 2]]),
    }
    write_predictions(tmp_path / "pred", labels, leg)
    rc, out, err = run_cli(
        [
            "--dataset",
            "ade20k",
            "--root",
            str(root),
            "--predictions",
            str(tmp_path / "pred"),
            "--out",
            str(tmp_path / "out"),
        ],
        capsys,
    )
    assert rc == 0, err
    gts = [np.where((r == 0) | (r == 255), 255, r - 1) for r in raw.values()]
    preds = [np.where((lab == 0) | (lab > 150), -1, lab - 1) for lab in labels.values()]
    want = oracle(preds, gts, 150)
    assert last_line(out) == f"mIoU={100 * want['miou']:.2f} aAcc={100 * want['aacc']:.2f}"
    report = json.loads((tmp_path / "out/ade20k.json").read_text())
    assert report["metrics"]["mIoU"] == pytest.approx(100 * want["miou"])
    assert report["per_class"][0]["IoU"] == pytest.approx(100 * want["iou"][0])
    # wall, building, sky, person; "tree" (id 5) is predicted only on a GT-0 (ignored) pixel.
    assert [r["index"] for r in report["per_class"] if r["IoU"] is not None] == [0, 1, 2, 12]
    assert report["per_class"][4]["IoU"] is None and report["per_class"][4]["pred_pixels"] == 0
    not_in_legend = [r for r in report["mapping"]["ignored"] if r["reason"] == "not in legend"]
    assert not_in_legend == [
        {"id": 200, "name": "<id 200 not in legend>", "reason": "not in legend", "pixels": 1}
    ]


class FakePipeline:
    """Stands in for sfs_ros.pipeline.Pipeline: label = red channel // 50, legend grows."""

    instances: ClassVar[list[FakePipeline]] = []
    random_weights = ("FastSAM",)

    def __init__(self, cfg: SfsConfig) -> None:
        self.cfg = cfg
        self.calls = 0
        self.resets = 0
        self.classes = [(0, "unidentified"), (1, "road"), (2, "car")]
        FakePipeline.instances.append(self)

    @classmethod
    def from_config(cls, cfg: SfsConfig) -> FakePipeline:
        # evaluation must run the open-vocabulary branch inline on every image
        assert cfg.open_vocab.schedule == "every_frame", "sfs-eval must use config.offline()"
        return cls(cfg)

    def reset_sequence(self) -> None:
        self.resets += 1

    def process(self, rgb: np.ndarray) -> types.SimpleNamespace:
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
        self.calls += 1
        if self.calls == 2:  # open vocabulary adds a class after the first image
            self.classes.append((3, "person"))
        return types.SimpleNamespace(
            label_map=(rgb[:, :, 0] // 50).astype(np.uint16),
            timings={"fastsam": 10.0 * self.calls, "total": 30.0 * self.calls},
        )

    def legend_dict(self) -> dict:
        leg = legend(self.classes, "cityscapes")
        leg["revision"] = len(self.classes)
        return leg


@pytest.fixture
def fake_pipeline(monkeypatch: pytest.MonkeyPatch) -> type[FakePipeline]:
    """``sfs_ros.pipeline`` replaced by a module holding FakePipeline (no torch, no models)."""
    pipeline_mod = types.ModuleType("sfs_ros.pipeline")
    pipeline_mod.Pipeline = FakePipeline  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sfs_ros.pipeline", pipeline_mod)
    FakePipeline.instances.clear()
    return FakePipeline


def test_cli_config_path_with_fake_pipeline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_pipeline: type[FakePipeline]
) -> None:
    root = tmp_path / "cs"
    gts = {
        "aachen_000000_000019": np.array([[0, 0, 13], [11, 11, 255]], dtype=np.uint8),
        "bremen_000000_000019": np.array([[11, 13, 13], [0, 2, 0]], dtype=np.uint8),
    }
    stems = make_cityscapes(root, gts)
    # Encode the fake's prediction in the RED channel (our ids 0..3 -> R = 50 * id + 10),
    # blue is kept different, so a BGR image would give wrong ids.
    ids = {
        stems[0]: np.array([[1, 2, 2], [3, 0, 1]]),  # id 3 "person" before it is in legend
        stems[1]: np.array([[3, 2, 1], [1, 1, 2]]),
    }
    for stem, our in ids.items():
        city = stem.split("_")[0]
        rgb = np.zeros((*our.shape, 3), dtype=np.uint8)
        rgb[:, :, 0] = 50 * our + 10
        rgb[:, :, 2] = 240
        write_png(root / "leftImg8bit/val" / city / f"{stem}.png", rgb[:, :, ::-1].copy())
    config = tmp_path / "paper.yaml"
    config.write_text("/**:\n  ros__parameters:\n    fastsam:\n      imgsz: 1024\n")

    argv = ["--dataset", "cityscapes", "--root", str(root), "--config", str(config)]
    argv += ["--set", "device=cpu", "--set", "fastsam.conf=0.3", "--out", str(tmp_path / "out")]
    rc, out, err = run_cli(argv, capsys)
    assert rc == 0, err
    [pipe] = fake_pipeline.instances
    # The real sfs_ros.params.load_config merged file and --set overrides.
    assert (pipe.cfg.fastsam.imgsz, pipe.cfg.device, pipe.cfg.fastsam.conf) == (
        1024,
        "cpu",
        0.3,
    )
    assert pipe.calls == 2
    assert pipe.resets == 2  # dataset images are unrelated: tracks reset before each image
    # Image 1's id 3 is not in the legend yet (ignored prediction); the legend grows during
    # image 2, and the mapping is rebuilt, so there id 3 scores as "person".
    maps = [{1: 0, 2: 13}, {1: 0, 2: 13, 3: 11}]
    preds = [
        np.vectorize(lambda i, m=m: m.get(int(i), -1))(ids[s])
        for s, m in zip(stems, maps, strict=True)
    ]
    want = oracle(preds, [gts[s.removesuffix("_leftImg8bit")] for s in stems], 19)
    assert last_line(out) == f"mIoU={100 * want['miou']:.2f} aAcc={100 * want['aacc']:.2f}"
    assert "RANDOM WEIGHTS (FastSAM)" in err
    report = json.loads((tmp_path / "out/cityscapes.json").read_text())
    assert report["source"] == {
        "mode": "config",
        "config": str(config),
        "overrides": ["device=cpu", "fastsam.conf=0.3"],
        "random_weights": ["FastSAM"],
    }
    assert report["legend_revision"] == 4 and report["vocabulary"] == "cityscapes"
    assert report["per_class"][11]["IoU"] == pytest.approx(100 * want["iou"][11])
    timing = report["timing"]
    assert timing["what"] == "model inference (Pipeline.process)"
    assert timing["stages_mean_ms"] == {"fastsam": 15.0, "total": 45.0}
    assert timing["per_image_stages_ms"][stems[1]] == {"fastsam": 20.0, "total": 60.0}
    assert "**RANDOM WEIGHTS** (FastSAM)" in (tmp_path / "out/cityscapes.md").read_text()


class ConstantPredictor:
    """A minimal Predictor: every pixel gets our id 7 = "car" (no needs_rgb attribute)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, tuple[int, ...]]] = []

    def __call__(self, stem: str, rgb: np.ndarray | None) -> np.ndarray:
        assert rgb is not None
        self.seen.append((stem, rgb.shape))
        return np.full(rgb.shape[:2], 7, dtype=np.uint16)

    def legend(self) -> dict:
        return legend([(0, "unidentified"), (7, "car")])


def test_cli_injected_predictor(
    cityscapes_case: dict, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    c = cityscapes_case
    fake = ConstantPredictor()
    assert isinstance(fake, cli.Predictor)
    calls: list[tuple[object, list[str]]] = []

    def load(config: str | None, overrides: list[str]) -> ConstantPredictor:
        calls.append((config, list(overrides)))
        return fake

    monkeypatch.setattr(cli, "load_model_predictor", load)
    argv = ["--dataset", "cityscapes", "--root", str(c["root"]), "--limit", "2"]
    rc, out, err = run_cli([*argv, "--set", "device=cpu", "--out", str(c["out"])], capsys)
    assert rc == 0, err
    assert calls == [(None, ["device=cpu"])]
    assert fake.seen == [(s, (12, 16, 3)) for s in c["stems"][:2]]
    gts = [c["gts"][s] for s in c["stems"][:2]]
    want = oracle([np.full(g.shape, 13) for g in gts], gts, 19)
    assert last_line(out) == f"mIoU={100 * want['miou']:.2f} aAcc={100 * want['aacc']:.2f}"
    report = json.loads((c["out"] / "cityscapes.json").read_text())
    assert report["timing"]["what"] == "prediction"
    assert [r["index"] for r in report["per_class"] if r["IoU"] is not None] == [0, 1, 2, 8, 11, 13]


def test_cli_config_invalid_override_exit_2(
    cityscapes_case: dict, capsys: pytest.CaptureFixture[str], fake_pipeline: type[FakePipeline]
) -> None:
    base = ["--dataset", "cityscapes", "--root", str(cityscapes_case["root"])]
    rc, out, err = run_cli([*base, "--set", "fastsam.imgsz=99999"], capsys)
    assert rc == 2 and "fastsam.imgsz" in err and out == ""
    rc, _, err = run_cli([*base, "--set", "no.such.param=1"], capsys)
    assert rc == 2 and "no.such.param" in err
    assert fake_pipeline.instances == []


# ----------------------------------------------------------------------------- CLI errors


def test_cli_missing_dataset_dirs_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = run_cli(
        ["--dataset", "cityscapes", "--root", str(tmp_path), "--predictions", str(tmp_path)],
        capsys,
    )
    assert rc == 2
    assert f"Cityscapes image folder not found: {tmp_path / 'leftImg8bit/val'}" in err
    assert out == ""
    rc, _, err = run_cli(
        ["--dataset", "ade20k", "--root", str(tmp_path / "nope"), "--predictions", str(tmp_path)],
        capsys,
    )
    assert rc == 2 and f"dataset root not found: {tmp_path / 'nope'}" in err


def test_cli_missing_prediction_and_legend_exit_2(
    cityscapes_case: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    c = cityscapes_case
    args = [
        "--dataset",
        "cityscapes",
        "--root",
        str(c["root"]),
        "--predictions",
        str(c["pred_dir"]),
        "--out",
        str(c["out"]),
    ]
    missing = c["pred_dir"] / f"{c['stems'][1]}_label.png"
    missing.unlink()
    rc, _, err = run_cli(args, capsys)
    assert rc == 2 and str(missing) in err
    assert not (c["out"] / "cityscapes.json").exists()
    (c["pred_dir"] / "legend.json").unlink()
    rc, _, err = run_cli(args, capsys)
    assert rc == 2 and str(c["pred_dir"] / "legend.json") in err


def test_cli_prediction_shape_mismatch_exit_2(
    cityscapes_case: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    c = cityscapes_case
    write_png(c["pred_dir"] / f"{c['stems'][0]}_label.png", np.zeros((5, 5), dtype=np.uint16))
    rc, _, err = run_cli(
        ["--dataset", "cityscapes", "--root", str(c["root"]), "--predictions", str(c["pred_dir"])],
        capsys,
    )
    assert rc == 2 and "shape (5, 5)" in err and "(12, 16)" in err


def test_cli_bad_arguments_exit_2(
    cityscapes_case: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = cityscapes_case
    base = ["--dataset", "cityscapes", "--root", str(c["root"])]
    rc, _, err = run_cli([*base, "--predictions", str(c["pred_dir"]), "--limit", "0"], capsys)
    assert rc == 2 and "--limit" in err
    rc, _, err = run_cli([*base, "--predictions", str(c["pred_dir"]), "--set", "a=1"], capsys)
    assert rc == 2 and "--set" in err
    rc, _, err = run_cli([*base, "--predictions", "x", "--config", "y.yaml"], capsys)
    assert rc == 2 and "not allowed with argument" in err
    rc, _, err = run_cli(["--dataset", "kitti", "--root", "r"], capsys)
    assert rc == 2 and "invalid choice: 'kitti'" in err
    rc, _, err = run_cli([*base, "--config", str(tmp_path / "missing.yaml")], capsys)
    assert rc == 2 and f"config file not found: {tmp_path / 'missing.yaml'}" in err
    rc, _, err = run_cli([*base, "--set", "novalue"], capsys)
    assert rc == 2 and "key=value" in err
    assert cli.main(["--help"]) == 0
