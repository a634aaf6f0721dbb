"""ROS parameter layer: descriptors, camera list, set-parameters validation (no DDS needed)."""

from __future__ import annotations

import pytest
from rcl_interfaces.msg import ParameterType
from rclpy.parameter import Parameter

from sfs_ros.params import EMPTY_LIST_MARK, PARAMS, SPECS, ConfigError
from sfs_ros.pipeline import Pipeline
from sfs_ros.ros.ros_params import (
    ALL_PARAMS,
    LiveSettings,
    camera_specs,
    check_update,
    descriptor,
    on_set_parameters_callback,
    ros_default,
)

LIVE = [p for p in PARAMS if p.live]


def test_every_parameter_gets_a_descriptor_with_type_description_and_read_only_flag():
    names = [p.name for p in ALL_PARAMS]
    assert len(names) == len(set(names))
    assert {"cameras", "image_topics"} <= set(names)
    types = {
        bool: ParameterType.PARAMETER_BOOL,
        int: ParameterType.PARAMETER_INTEGER,
        float: ParameterType.PARAMETER_DOUBLE,
        str: ParameterType.PARAMETER_STRING,
        list: ParameterType.PARAMETER_STRING_ARRAY,
    }
    for spec in ALL_PARAMS:
        desc = descriptor(spec)
        assert desc.name == spec.name
        assert desc.type == types[spec.kind], spec.name
        assert desc.description.startswith(spec.description)
        assert desc.read_only is (not spec.live), spec.name


def test_ranges_come_from_the_specs():
    conf = descriptor(SPECS["fastsam.conf"])
    assert len(conf.floating_point_range) == 1
    assert (conf.floating_point_range[0].from_value, conf.floating_point_range[0].to_value) == (
        0.0,
        1.0,
    )
    assert conf.floating_point_range[0].step == 0.0
    assert not conf.integer_range
    masks = descriptor(SPECS["fastsam.max_masks"])
    assert len(masks.integer_range) == 1
    assert (masks.integer_range[0].from_value, masks.integer_range[0].to_value) == (1, 1000)
    assert masks.integer_range[0].step == 0
    assert not masks.floating_point_range
    threshold = descriptor(SPECS["open_vocab.threshold"])
    assert threshold.floating_point_range[0].from_value == -1.0
    for name in ("device", "fastsam.model", "half"):
        desc = descriptor(SPECS[name])
        assert not desc.floating_point_range
        assert not desc.integer_range


def test_choices_and_empty_lists_are_described_in_additional_constraints():
    transport = descriptor(SPECS["input_transport"])
    assert transport.additional_constraints == "one of: raw, compressed"
    qos = descriptor(SPECS["input_qos"])
    assert "sensor_data" in qos.additional_constraints
    assert "reliable" in qos.additional_constraints
    vocab = descriptor(SPECS["open_vocab.vocabulary"])
    assert EMPTY_LIST_MARK in vocab.additional_constraints


def test_empty_string_arrays_are_declared_with_the_empty_mark():
    assert ros_default(SPECS["open_vocab.vocabulary"]) == [EMPTY_LIST_MARK]
    assert ros_default(SPECS["open_vocab.templates"]) == list(SPECS["open_vocab.templates"].default)
    assert ros_default(SPECS["fastsam.conf"]) == 0.4
    cameras = next(p for p in ALL_PARAMS if p.name == "cameras")
    assert ros_default(cameras) == [EMPTY_LIST_MARK]


# ------------------------------------------------------------------------------ cameras
def test_single_camera_defaults():
    (cam,) = camera_specs([], [], "raw")
    assert (cam.name, cam.input_topic, cam.output("semantic"), cam.label) == (
        "",
        "image",
        "semantic",
        "camera",
    )
    (cam,) = camera_specs([], [], "compressed")
    assert cam.input_topic == "image/compressed"
    (cam,) = camera_specs([], ["/cam/image_raw"], "compressed")
    assert cam.input_topic == "/cam/image_raw/compressed"


def test_named_cameras_get_their_own_topics():
    front, rear = camera_specs(["front", "rear"], ["/a/image_raw", "/b/image_raw"], "raw")
    assert (front.input_topic, front.output("semantic"), front.output("legend")) == (
        "/a/image_raw",
        "front/semantic",
        "front/legend",
    )
    assert (rear.input_topic, rear.output("overlay"), rear.label) == (
        "/b/image_raw",
        "rear/overlay",
        "rear",
    )
    front, rear = camera_specs(["front", "rear"], [], "compressed")
    assert (front.input_topic, rear.input_topic) == (
        "front/image/compressed",
        "rear/image/compressed",
    )


@pytest.mark.parametrize(
    ("cameras", "topics", "match"),
    [
        (["front", "front"], [], "unique"),
        (["front", "rear"], ["/a"], "2 cameras"),
        (["9lives"], [], "not a valid camera name"),
        (["a/b"], [], "not a valid camera name"),
        ([], ["/a", "/b"], "cameras is empty"),
        (["a"], [" "], "empty topic"),
    ],
)
def test_bad_camera_lists_are_refused(cameras, topics, match):
    with pytest.raises(ConfigError, match=match):
        camera_specs(cameras, topics, "raw")


# ------------------------------------------------------------------------------ live updates
def test_check_update_accepts_live_values_and_coerces_ints_to_floats():
    assert check_update("fastsam.conf", 0.25) == (0.25, None)
    value, reason = check_update("overlay_alpha", 1)
    assert reason is None
    assert value == 1.0
    assert isinstance(value, float)
    assert check_update("open_vocab.vocabulary", [EMPTY_LIST_MARK]) == ([], None)
    assert check_update("open_vocab.vocabulary", ("kite", "drone")) == (["kite", "drone"], None)


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("fastsam.conf", 1.5, "above the maximum"),
        ("fastsam.max_masks", 0, "below the minimum"),
        ("fastsam.max_masks", 2.5, "expected int"),
        ("overlay_alpha", "half", "expected float"),
        ("device", "cpu", "read at start"),
        ("fastsam.model", "x.pt", "read at start"),
        ("cameras", ["a"], "read at start"),
    ],
)
def test_check_update_rejects_with_a_reason(name, value, fragment):
    value_out, reason = check_update(name, value)
    assert value_out is None
    assert fragment in reason
    if SPECS.get(name) is not None and SPECS[name].live:
        assert name in reason


def test_parameters_of_others_pass_through():
    assert check_update("use_sim_time", True) == (True, None)
    assert check_update("qos_overrides./sfs/image.subscription.depth", 3) == (3, None)


def test_callback_applies_all_or_nothing():
    applied = []
    callback = on_set_parameters_callback(lambda n, v: applied.append((n, v)))
    ok = callback([Parameter("fastsam.conf", value=0.2), Parameter("overlay_alpha", value=0.0)])
    assert ok.successful
    assert applied == [("fastsam.conf", 0.2), ("overlay_alpha", 0.0)]
    applied.clear()
    bad = callback([Parameter("overlay_alpha", value=0.3), Parameter("fastsam.conf", value=1.5)])
    assert not bad.successful
    assert "fastsam.conf" in bad.reason
    assert "above the maximum" in bad.reason
    assert applied == []
    not_live = callback([Parameter("backend", value="torch")])
    assert not not_live.successful
    assert "backend" in not_live.reason
    # use_sim_time belongs to rclpy: accepted, not handed to apply
    assert callback([Parameter("use_sim_time", value=True)]).successful
    assert applied == []


def test_callback_extra_check_can_veto():
    applied = []

    def veto(name, value):
        return "not in this build" if name == "open_vocab.enabled" and value else None

    callback = on_set_parameters_callback(lambda n, v: applied.append((n, v)), veto)
    result = callback([Parameter("open_vocab.enabled", value=True)])
    assert not result.successful
    assert result.reason == "not in this build"
    assert callback([Parameter("open_vocab.enabled", value=False)]).successful
    assert applied == [("open_vocab.enabled", False)]


def test_live_settings_queue_pipeline_keys_and_store_the_rest():
    config = {p.name: p.default for p in PARAMS}
    settings = LiveSettings(config, ["fastsam.max_masks", "fastsam.conf"])
    assert settings.get("overlay_alpha") == 0.5
    settings.set("overlay_alpha", 0.0)
    settings.set("fastsam.max_masks", 1)
    settings.set("open_vocab.top_k", 5)  # not a pipeline key here: stored only
    settings.set("fastsam.max_masks", 2)  # newest queued value wins
    assert settings.get("overlay_alpha") == 0.0
    assert settings.get("open_vocab.top_k") == 5
    assert settings.take_pending() == {"fastsam.max_masks": 2}
    assert settings.take_pending() == {}
    assert settings.get("fastsam.max_masks") == 2
    assert set(Pipeline.LIVE_KEYS) <= {p.name for p in LIVE}
