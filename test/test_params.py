"""The parameter contract: presets load, overrides parse as YAML, bad values are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from sfs_ros.params import (
    NODE_PARAMS,
    PARAMS,
    SPECS,
    ConfigError,
    FastSAMConfig,
    SfsConfig,
    defaults,
    load_config,
    parameters_page,
    parse_override,
    read_params_file,
    validate,
)

CONFIG = Path(__file__).resolve().parents[1] / "config"


def test_real_time_preset_sets_every_parameter_with_documented_values():
    flat = read_params_file(CONFIG / "sfs.yaml")
    # every parameter, plus the node-only multi-camera ones
    assert set(flat) == set(SPECS) | {"cameras", "image_topics"}, "sfs.yaml must set every one"
    config = load_config(CONFIG / "sfs.yaml")
    assert config["fastsam.model"] == "FastSAM-s.pt"
    assert config["closed_set.model"] == "nvidia/segformer-b0-finetuned-ade-512-512"
    assert config["open_vocab.model"] == "ViT-B-32"
    assert config["open_vocab.vocabulary"] == []  # "__none__" marks the empty list
    assert config["allow_random_weights"] is False


def test_paper_preset_matches_the_paper_setup():
    flat = read_params_file(CONFIG / "sfs_paper.yaml")
    assert set(flat) == set(SPECS), "sfs_paper.yaml must set every parameter"
    config = load_config(CONFIG / "sfs_paper.yaml")
    assert config["fastsam.model"] == "FastSAM-x.pt"
    assert (config["fastsam.imgsz"], config["fastsam.conf"], config["fastsam.iou"]) == (
        1024,
        0.4,
        0.9,
    )
    assert config["closed_set.model"].split(",") == [
        "shi-labs/oneformer_coco_swin_large",
        "shi-labs/oneformer_ade20k_swin_large",
    ]
    assert config["open_vocab.model"] == "ViT-L-14"
    assert config["open_vocab.captioner"] == "Salesforce/blip-image-captioning-large"


def test_overrides_are_parsed_as_yaml_and_win_over_the_file():
    config = load_config(
        CONFIG / "sfs.yaml",
        ["fastsam.conf=0.2", "half=true", "open_vocab.vocabulary=[kite, pallet jack]"],
    )
    assert config["fastsam.conf"] == 0.2
    assert config["half"] is True
    assert config["open_vocab.vocabulary"] == ["kite", "pallet jack"]


def test_int_is_accepted_for_float_parameters():
    assert validate("overlay_alpha", 1) == 1.0
    assert isinstance(validate("overlay_alpha", 1), float)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("fastsam.conf=1.5", "above the maximum"),
        ("fastsam.imgsz=0", "below the minimum"),
        ("fastsam.imgsz=abc", "expected int"),
        ("half=1", "expected bool"),
        ("input_qos=fast", "not one of"),
        ("conf=0.3", "did you mean fastsam.conf"),
        ("novalue", "expected key=value"),
    ],
)
def test_bad_values_are_refused_with_a_reason(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_config_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [unclosed")
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        load_config(bad)


def test_plain_mapping_files_and_node_only_parameters(tmp_path):
    plain = tmp_path / "plain.yaml"
    plain.write_text("fastsam:\n  imgsz: 320\ncameras: [front]\n")
    config = load_config(plain)
    assert config["fastsam.imgsz"] == 320
    assert "cameras" not in config


def test_defaults_are_valid_and_live_flags_match_the_design():
    for name, value in defaults().items():
        assert validate(name, value) == value
    live = {p.name for p in PARAMS if p.live}
    assert live == {
        "fastsam.conf",
        "fastsam.iou",
        "fastsam.max_masks",
        "closed_set.min_purity",
        "closed_set.min_confidence",
        "paint.order",
        "paint.uncovered",
        "open_vocab.enabled",
        "open_vocab.vocabulary",
        "open_vocab.rate_hz",
        "open_vocab.max_masks_per_pass",
        "open_vocab.top_k",
        "open_vocab.threshold",
        "overlay_alpha",
    }


def test_parse_override_keeps_strings_with_equals_signs():
    assert parse_override("closed_set.model=a=b") == ("closed_set.model", "a=b")


# Issue: NaN passed every range check (comparisons with NaN are False), so --set
# closed_set.min_purity=.nan ran and made every pixel unidentified; inf is never meaningful.
@pytest.mark.parametrize("raw", [".nan", ".inf", "-.inf"])
@pytest.mark.parametrize("name", sorted(p.name for p in PARAMS if isinstance(p.default, float)))
def test_nan_and_inf_are_refused_for_every_float_parameter(name, raw):
    with pytest.raises(ConfigError, match=rf"{name}: .* not a finite number"):
        load_config(None, [f"{name}={raw}"])


def test_finite_floats_still_pass_validation():
    assert validate("fastsam.iou", 0.5) == 0.5
    assert validate("overlay_alpha", 1) == 1.0


# ------------------------------------------------------------------------------ the tree
def test_docs_parameter_table_is_generated_from_the_tree():
    page = (CONFIG.parent / "docs" / "parameters.md").read_text()
    assert page == parameters_page(), "regenerate: python -m sfs_ros.params > docs/parameters.md"
    for spec in (*PARAMS, *NODE_PARAMS):
        assert f"| `{spec.name}` |" in page


def test_params_are_derived_from_the_typed_tree():
    tree = SfsConfig()
    assert [p.name for p in PARAMS][:3] == ["device", "backend", "half"]
    assert tree.fastsam.conf == SPECS["fastsam.conf"].default == 0.4
    assert tree.open_vocab.enabled is SPECS["open_vocab.enabled"].default is False
    assert tree.flat() == defaults()
    assert SPECS["fastsam.imgsz"].step == 32 and SPECS["fastsam.conf"].live
    assert SfsConfig.from_flat(load_config(CONFIG / "sfs.yaml")) == tree  # preset = defaults
    # internal settings: in the tree, not parameters (no ROS parameter, no --set)
    assert "open_vocab.schedule" not in SPECS
    assert tree.open_vocab.schedule == "background"
    assert tree.offline().open_vocab.schedule == "every_frame"
    with pytest.raises(ConfigError, match=r"unknown parameter 'open_vocab\.schedule'"):
        load_config(None, ["open_vocab.schedule=every_frame"])


def test_the_tree_validates_every_value_it_holds():
    changed = SfsConfig().with_values({"fastsam.conf": 0.2, "open_vocab.vocabulary": ["kite"]})
    assert changed.fastsam.conf == 0.2 and changed.open_vocab.vocabulary == ("kite",)
    assert changed.flat()["open_vocab.vocabulary"] == ["kite"]
    assert changed.get("overlay_alpha") == 0.5
    with pytest.raises(ConfigError, match=r"fastsam\.conf: 1\.5 is above the maximum"):
        SfsConfig().with_values({"fastsam.conf": 1.5})
    with pytest.raises(ConfigError, match=r"fastsam\.conf: 1\.5 is above the maximum"):
        FastSAMConfig(conf=1.5)
    with pytest.raises(ConfigError, match=r"open_vocab\.schedule: 'sometimes' is not one of"):
        SfsConfig().with_values({"open_vocab.schedule": "sometimes"})
    with pytest.raises(ConfigError, match=r"did you mean fastsam\.conf"):
        SfsConfig.from_flat({"conf": 0.3})
    assert FastSAMConfig(max_masks=5).max_masks == 5
    assert isinstance(SfsConfig().with_values({"overlay_alpha": 1}).overlay_alpha, float)
    assert SfsConfig.from_flat({"cameras": ["front"]}) == SfsConfig()  # node-only: ignored
