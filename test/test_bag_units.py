# SPDX-License-Identifier: AGPL-3.0-or-later
"""Bag labelling pieces without models: camera names, dispatch, legend restore on --resume,
per-camera tracks, the Ctrl-C handler, the ClassLegend type from msg/."""

from __future__ import annotations

import os
import signal
from types import SimpleNamespace

import numpy as np
import pytest
from lookup_helpers import label_id

from sfs_ros.bags.cameras import camera_name, select_cameras
from sfs_ros.bags.labeller import OfflineLabeller
from sfs_ros.cli.bag import StopRequest, names_bag
from sfs_ros.labels import SOURCE_OPEN_VOCAB, LabelRegistry
from sfs_ros.params import SfsConfig
from sfs_ros.vocabularies import get_vocabulary

IMAGE, COMPRESSED = "sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage"


def test_camera_names_and_output_topics():
    one = select_cameras({"/cam/color/image_raw": IMAGE, "/x": "std_msgs/msg/String"}, None)
    assert [(c.name, c.output("semantic")) for c in one] == [("cam_color", "/sfs/semantic")]
    two = select_cameras(
        {"/front/image_raw": IMAGE, "/front/image_raw/compressed": COMPRESSED, "/3d/image": IMAGE},
        None,
        "robot/sfs",
    )
    assert [(c.topic, c.output("legend")) for c in two] == [
        ("/3d/image", "/robot/sfs/cam_3d/legend"),
        ("/front/image_raw", "/robot/sfs/front/legend"),
        ("/front/image_raw/compressed", "/robot/sfs/front_compressed/legend"),
    ]
    picked = select_cameras({"/front/image_raw": IMAGE, "/rear/image": IMAGE}, ["/rear/image"])
    assert [(c.name, c.prefix) for c in picked] == [("rear", "/sfs/")]
    assert camera_name("/image_raw") == "image_raw"
    assert camera_name("/a-b/c.d/image") == "a_b_c_d"


def test_only_bag_inputs_go_to_the_bag_form(tmp_path):
    bag = tmp_path / "drive"
    bag.mkdir()
    (bag / "metadata.yaml").write_text("{}")
    assert names_bag([str(bag), "-o", "out"])
    assert names_bag(["x.mcap", "-o", "out"])  # a missing .mcap still gets the bag form's error
    assert not names_bag(["photos/", "-o", str(bag)])  # the output folder is not an input
    assert not names_bag(["clip.mp4", "--config", "x.mcap", "-o", "out"])


def _labeller(open_vocab=None) -> OfflineLabeller:
    registry = LabelRegistry([get_vocabulary("ade20k")])
    pipeline = SimpleNamespace(
        registry=registry,
        open_vocab=open_vocab,
        config=SfsConfig().offline(),
        legend_dict=registry.legend_dict,
        process=lambda rgb, sequence="": (rgb.shape, sequence),
    )
    return OfflineLabeller(pipeline)


def test_resume_restores_open_vocabulary_ids_and_colours():
    first = _labeller()
    first.pipeline.registry.add("pallet jack")
    first.pipeline.registry.add("forklift")
    earlier = first.legend
    second = _labeller()
    second.restore_legend(earlier)
    assert second.legend == earlier  # same ids, names, colours, sources and revision
    assert label_id(second.pipeline.registry, "forklift") == 152
    assert earlier["classes"][-1]["source"] == SOURCE_OPEN_VOCAB

    other = _labeller()
    other.pipeline.registry.add("kite")  # id 151 already means something else
    with pytest.raises(ValueError, match="legend id 151 was 'pallet jack', this run has 'kite'"):
        other.restore_legend(earlier)
    with pytest.raises(ValueError, match="vocabulary 'coco'"):
        _labeller().restore_legend({**earlier, "vocabulary": "coco"})


def test_each_camera_is_its_own_sequence_and_open_vocabulary_runs_inline():
    """Frames go to the pipeline with their camera as the sequence (per-camera mask tracks:
    test_open_vocab.py::test_cameras_keep_their_own_tracks)."""
    labeller = _labeller()
    assert labeller.pipeline.config.open_vocab.schedule == "every_frame"
    rgb = np.zeros((4, 4, 3), np.uint8)
    assert labeller.label("front", rgb) == ((4, 4, 3), "front")
    assert labeller.label("rear", rgb) == ((4, 4, 3), "rear")


def test_first_ctrl_c_asks_to_stop_the_second_interrupts():
    # what the process had before (a shell's background job inherits SIGINT ignored)
    before = signal.getsignal(signal.SIGINT)
    stop = StopRequest()
    stop.install()
    try:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
        with stop.shielded():  # closing the output bag is not cut short
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        stop.restore()
    assert signal.getsignal(signal.SIGINT) is before


def test_class_legend_type_comes_from_msg_files():
    from sfs_ros.bags.messages import CLASS_LEGEND, legend_dict_of, legend_message, make_typestore

    store = make_typestore()
    legend = LabelRegistry([get_vocabulary("ade20k")]).legend_dict()
    header = store.types["std_msgs/msg/Header"](
        stamp=store.types["builtin_interfaces/msg/Time"](sec=3, nanosec=4), frame_id="cam"
    )
    raw = store.serialize_cdr(legend_message(store, legend, header), CLASS_LEGEND)
    back = store.deserialize_cdr(raw, CLASS_LEGEND)
    assert legend_dict_of(back) == legend
    assert back.header.frame_id == "cam"
    msgdef, _ = store.generate_msgdef(CLASS_LEGEND, ros_version=2)
    assert "ClassInfo[] classes" in msgdef and "uint8 SOURCE_OPEN_VOCAB=2" in msgdef


def test_bag_code_imports_and_builds_images_without_ros_messages():
    """The bag path needs neither rclpy nor the generated ROS message packages."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys\n"
        "for name in ('rclpy', 'sensor_msgs', 'std_msgs', 'sfs_ros.msg'):\n"
        "    sys.modules[name] = None\n"
        "import numpy as np\n"
        "import sfs_ros.cli.bag, sfs_ros.bags.labeller\n"
        "from sfs_ros.bags.messages import IMAGE, decode_rgb, image_message, make_typestore\n"
        "store = make_typestore()\n"
        "header = store.types['std_msgs/msg/Header'](\n"
        "    stamp=store.types['builtin_interfaces/msg/Time'](sec=1, nanosec=2), frame_id='c')\n"
        "rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)\n"
        "msg = image_message(store, rgb, 'rgb8', header)\n"
        "back = store.deserialize_cdr(store.serialize_cdr(msg, IMAGE), IMAGE)\n"
        "assert (decode_rgb(back, IMAGE) == rgb).all() and back.step == 9\n"
        "print('ok')\n"
    )
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_bag_messages_are_what_ros_2_reads():
    """The bytes written to bags deserialise with rclpy into the generated ROS types, and the
    ClassLegend type hash recorded in the bag is the one rosidl generates from msg/."""
    import json
    import sys
    from pathlib import Path

    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image
    from sfs_ros.msg import ClassLegend

    from sfs_ros.bags.messages import (
        CLASS_LEGEND,
        IMAGE,
        image_message,
        legend_message,
        make_typestore,
    )

    store = make_typestore()
    header = store.types["std_msgs/msg/Header"](
        stamp=store.types["builtin_interfaces/msg/Time"](sec=3, nanosec=4), frame_id="cam"
    )
    registry = LabelRegistry([get_vocabulary("ade20k")])
    registry.add("pallet jack")
    legend = registry.legend_dict()
    raw = store.serialize_cdr(legend_message(store, legend, header), CLASS_LEGEND)
    ros_legend = deserialize_message(bytes(raw), ClassLegend)
    assert (ros_legend.header.stamp.sec, ros_legend.header.stamp.nanosec) == (3, 4)
    assert (ros_legend.revision, ros_legend.vocabulary) == (2, "ade20k")
    last = ros_legend.classes[-1]
    assert (last.id, last.name, last.source) == (151, "pallet jack", SOURCE_OPEN_VOCAB)
    assert list(last.color) == legend["classes"][-1]["color"]

    labels = np.array([[0, 1, 151], [65535, 2, 3]], np.uint16)
    raw = store.serialize_cdr(image_message(store, labels, "mono16", header), IMAGE)
    ros_image = deserialize_message(bytes(raw), Image)
    assert (ros_image.encoding, ros_image.height, ros_image.width, ros_image.step) == (
        "mono16",
        2,
        3,
        6,
    )
    decoded = np.frombuffer(bytes(ros_image.data), np.uint16).reshape(2, 3)
    np.testing.assert_array_equal(decoded, labels)

    generated = Path(sys.prefix) / "share" / "sfs_ros" / "msg" / "ClassLegend.json"
    hashes = json.loads(generated.read_text())["type_hashes"]
    rosidl_hash = next(h["hash_string"] for h in hashes if h["type_name"] == CLASS_LEGEND)
    assert store.hash_rihs01(CLASS_LEGEND) == rosidl_hash
