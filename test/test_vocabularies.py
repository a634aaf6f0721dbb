"""Tests for sfs_ros.vocabularies: official names, palettes and helpers."""

from __future__ import annotations

import configparser
import fnmatch
import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from sfs_ros.vocabularies import (
    VOCABULARIES,
    Vocabulary,
    distinct_colors,
    get_vocabulary,
    normalize_class_name,
    vocabulary_from_id2label,
)


@pytest.mark.parametrize(("name", "length"), [("ade20k", 150), ("coco", 133), ("cityscapes", 19)])
def test_lengths(name: str, length: int) -> None:
    vocab = get_vocabulary(name)
    assert vocab.name == name
    assert len(vocab) == length
    assert len(vocab.names) == len(vocab.colors) == length
    if vocab.raw_names is not None:
        assert len(vocab.raw_names) == length


def test_registry_keys() -> None:
    assert set(VOCABULARIES) == {"ade20k", "coco", "cityscapes"}
    assert get_vocabulary(" ADE20K ") is VOCABULARIES["ade20k"]


@pytest.mark.parametrize(
    ("vocab", "index", "name", "color"),
    [
        # ADE20K-150, mmsegmentation ADE20KDataset.METAINFO
        ("ade20k", 0, "wall", (120, 120, 120)),
        ("ade20k", 1, "building", (180, 120, 120)),
        ("ade20k", 2, "sky", (6, 230, 230)),
        ("ade20k", 4, "tree", (4, 200, 3)),
        ("ade20k", 7, "bed", (204, 5, 255)),  # "bed " typo fixed
        ("ade20k", 12, "person", (150, 5, 61)),
        ("ade20k", 20, "car", (0, 102, 200)),
        ("ade20k", 48, "skyscraper", (140, 140, 140)),
        ("ade20k", 127, "bicycle", (255, 245, 0)),
        ("ade20k", 136, "traffic light", (41, 0, 255)),
        ("ade20k", 149, "flag", (92, 0, 255)),
        # COCO panoptic 133, detectron2 COCO_CATEGORIES
        ("coco", 0, "person", (220, 20, 60)),
        ("coco", 1, "bicycle", (119, 11, 32)),
        ("coco", 2, "car", (0, 0, 142)),
        ("coco", 62, "tv", (183, 130, 88)),
        ("coco", 79, "toothbrush", (191, 162, 208)),
        ("coco", 80, "banner", (255, 255, 128)),
        ("coco", 86, "door", (92, 136, 89)),
        ("coco", 100, "road", (128, 64, 128)),
        ("coco", 109, "wall-brick", (137, 54, 74)),
        ("coco", 116, "tree", (107, 142, 35)),
        ("coco", 119, "sky", (70, 130, 180)),
        ("coco", 131, "wall", (102, 102, 156)),
        ("coco", 132, "rug", (250, 141, 255)),
        # Cityscapes trainIds, cityscapesScripts labels.py
        ("cityscapes", 0, "road", (128, 64, 128)),
        ("cityscapes", 1, "sidewalk", (244, 35, 232)),
        ("cityscapes", 6, "traffic light", (250, 170, 30)),
        ("cityscapes", 8, "vegetation", (107, 142, 35)),
        ("cityscapes", 10, "sky", (70, 130, 180)),
        ("cityscapes", 11, "person", (220, 20, 60)),
        ("cityscapes", 13, "car", (0, 0, 142)),
        ("cityscapes", 18, "bicycle", (119, 11, 32)),
    ],
)
def test_known_entries(vocab: str, index: int, name: str, color: tuple[int, int, int]) -> None:
    v = get_vocabulary(vocab)
    assert v.names[index] == name
    assert v.colors[index] == color
    assert v.index_of(name) == index


def test_cityscapes_full_order() -> None:
    assert get_vocabulary("cityscapes").names == (
        "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light",
        "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car", "truck",
        "bus", "train", "motorcycle", "bicycle",
    )  # fmt: skip


def test_coco_raw_names() -> None:
    coco = get_vocabulary("coco")
    assert coco.raw_names is not None
    assert coco.raw_names[79] == "toothbrush"
    assert coco.raw_names[86] == "door-stuff"
    assert coco.raw_names[113] == "water-other"
    assert coco.raw_names[119] == "sky-other-merged"
    assert coco.raw_names[131] == "wall-other-merged"
    assert coco.raw_names[132] == "rug-merged"
    for display, raw in zip(coco.names, coco.raw_names, strict=True):
        assert display == normalize_class_name(raw)
        assert not display.endswith(("-merged", "-other", "-stuff"))
    # things first (80), then stuff (53)
    assert coco.names[:3] == ("person", "bicycle", "car")
    assert coco.names[80:83] == ("banner", "blanket", "bridge")


@pytest.mark.parametrize("name", sorted(VOCABULARIES))
def test_names_unique_and_clean(name: str) -> None:
    v = VOCABULARIES[name]
    assert len(set(v.names)) == len(v.names)
    assert len({normalize_class_name(n) for n in v.names}) == len(v.names)
    for n in v.names:
        assert n == n.strip() and n
    if v.raw_names is not None:
        assert len(set(v.raw_names)) == len(v.raw_names)


@pytest.mark.parametrize("name", sorted(VOCABULARIES))
def test_colors_valid(name: str) -> None:
    v = VOCABULARIES[name]
    for color in v.colors:
        assert isinstance(color, tuple) and len(color) == 3
        assert all(type(c) is int and 0 <= c <= 255 for c in color)


def test_palette_duplicates_only_official_one() -> None:
    # The official ADE20K palette reuses (140, 140, 140) for road and skyscraper.
    ade = get_vocabulary("ade20k")
    dup = [i for i, c in enumerate(ade.colors) if ade.colors.count(c) > 1]
    assert dup == [6, 48]
    for name in ("coco", "cityscapes"):
        colors = get_vocabulary(name).colors
        assert len(set(colors)) == len(colors)


def test_index_of_normalizes() -> None:
    coco = get_vocabulary("coco")
    assert coco.index_of("wall-other-merged") == 131
    assert coco.index_of("  Wall-Other-Merged ") == 131
    assert coco.index_of("WALL") == 131
    assert coco.index_of("door-stuff") == coco.index_of("door") == 86
    assert coco.index_of("Traffic   Light") == 9
    assert coco.index_of("traffic_light") == 9
    assert coco.index_of("dining table") == 60
    assert coco.index_of("table-merged") == coco.index_of("table") == 121
    ade = get_vocabulary("ade20k")
    assert ade.index_of("bed ") == 7
    assert ade.index_of("Chest  of_Drawers") == 44
    assert "traffic light" in ade
    assert "unicorn" not in ade
    with pytest.raises(KeyError):
        ade.index_of("unicorn")
    with pytest.raises(KeyError):
        get_vocabulary("cityscapes").index_of("banner")


def test_unknown_vocabulary_lists_known() -> None:
    with pytest.raises(ValueError, match="unknown vocabulary") as info:
        get_vocabulary("pascal")
    for known in ("ade20k", "coco", "cityscapes"):
        assert known in str(info.value)


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("Wall", "wall"),
        ("  traffic   light ", "traffic light"),
        ("traffic_light", "traffic light"),
        ("wall-other-merged", "wall"),
        ("sky-other-merged", "sky"),
        ("tree-merged", "tree"),
        ("door-stuff", "door"),
        ("water-other", "water"),
        ("wall-brick", "wall-brick"),
        ("-merged", "-merged"),
        ("bed ", "bed"),
    ],
)
def test_normalize_class_name(raw: str, normalized: str) -> None:
    assert normalize_class_name(raw) == normalized


def test_vocabulary_validation() -> None:
    with pytest.raises(ValueError):
        Vocabulary("x", ("a", "b"), ((1, 2, 3),))
    with pytest.raises(ValueError):
        Vocabulary("x", ("a",), ((1, 2, 256),))
    with pytest.raises(ValueError):
        Vocabulary("x", ("a",), ((1, 2),))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Vocabulary("x", ("a",), ((1, 2, 3),), raw_names=("a", "b"))
    v = Vocabulary("x", ["a", "b"], [[1, 2, 3], [4, 5, 6]])  # type: ignore[arg-type]
    assert v.names == ("a", "b") and v.colors == ((1, 2, 3), (4, 5, 6))
    assert hash(v) == hash(Vocabulary("x", ("a", "b"), ((1, 2, 3), (4, 5, 6))))


def test_vocabulary_from_id2label() -> None:
    v = vocabulary_from_id2label("custom", {2: "Cone", 0: "floor", 1: "robot "})
    assert v.name == "custom"
    assert v.names == ("floor", "robot", "Cone")
    assert v.raw_names == ("floor", "robot ", "Cone")
    assert v.colors == tuple(distinct_colors(3))
    assert v.index_of("cone") == 2
    # Hugging Face config.json keys are strings
    w = vocabulary_from_id2label("hf", {"0": "a", "1": "b"})
    assert w.names == ("a", "b") and w.raw_names is None


@pytest.mark.parametrize(
    "id2label",
    [
        {},
        {1: "a", 2: "b"},
        {0: "a", 2: "b"},
        {0: "a", 1: "b", -1: "c"},
        {0: "a", "0": "b"},
        {"zero": "a"},
    ],
)
def test_vocabulary_from_id2label_rejects(id2label: dict) -> None:
    with pytest.raises(ValueError):
        vocabulary_from_id2label("bad", id2label)


def test_distinct_colors_deterministic_and_distinct() -> None:
    a = distinct_colors(300)
    assert a == distinct_colors(300)
    assert len(a) == 300 and len(set(a)) == 300
    assert (0, 0, 0) not in a
    assert all(type(c) is int and 0 <= c <= 255 for color in a for c in color)
    assert distinct_colors(10) == a[:10]
    assert distinct_colors(10, seed=1) != a[:10]
    assert distinct_colors(10, seed=1) == distinct_colors(10, seed=1)
    assert distinct_colors(0) == []
    with pytest.raises(ValueError):
        distinct_colors(-1)


def test_distinct_colors_first_ones_are_far_apart() -> None:
    colors = distinct_colors(8)
    for i, c1 in enumerate(colors):
        for c2 in colors[i + 1 :]:
            assert sum(abs(x - y) for x, y in zip(c1, c2, strict=True)) > 60


def test_distinct_colors_avoid() -> None:
    free = distinct_colors(20)
    avoid = free[:5]
    colors = distinct_colors(20, avoid=avoid)
    assert len(set(colors)) == 20
    assert not set(colors) & set(avoid)
    palette = get_vocabulary("ade20k").colors
    extra = distinct_colors(50, avoid=palette)
    assert not set(extra) & set(palette)


def test_distinct_colors_many() -> None:
    colors = distinct_colors(5000, avoid=get_vocabulary("coco").colors)
    assert len(set(colors)) == 5000
    assert (0, 0, 0) not in colors


# ------------------------------------------------------------------------ palettes as data
REPO = Path(__file__).resolve().parents[1]


def test_palettes_are_package_data_installed_by_both_builds() -> None:
    path = resources.files("sfs_ros").joinpath("data").joinpath("palettes.json")
    data = json.loads(path.read_text("utf-8"))
    assert {name: len(entry["classes"]) for name, entry in data.items()} == {
        "ade20k": 150,
        "coco": 133,
        "cityscapes": 19,
    }
    # setup.cfg ships data/* of the package; CMakeLists.txt installs *.json from sfs_ros/.
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    patterns = setup["options.package_data"]["sfs_ros"].split()
    assert any(fnmatch.fnmatch("data/palettes.json", pattern) for pattern in patterns)
    assert 'PATTERN "*.json"' in (REPO / "CMakeLists.txt").read_text()


def test_palettes_are_read_on_first_use_not_at_import() -> None:
    code = (
        "import sfs_ros.vocabularies as v\n"
        "before = v.builtin_vocabularies.cache_info().currsize\n"
        "coco = v.get_vocabulary('coco')\n"
        "after = v.builtin_vocabularies.cache_info().currsize\n"
        "print(before, after, v.VOCABULARIES['coco'] is coco)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    assert out.split() == ["0", "1", "True"]


def test_unknown_module_attribute_still_raises() -> None:
    import sfs_ros.vocabularies as module

    with pytest.raises(AttributeError, match="NOT_THERE"):
        _ = module.NOT_THERE
