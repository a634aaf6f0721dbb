"""The parameter contract: presets load, overrides parse as YAML, bad values are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from sfs_ros.params import (
    PARAMS,
    SPECS,
    ConfigError,
    defaults,
    load_config,
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
        "paint.order",
        "paint.uncovered",
        "open_vocab.enabled",
        "open_vocab.vocabulary",
        "open_vocab.rate_hz",
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
