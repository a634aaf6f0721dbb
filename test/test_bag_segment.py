# SPDX-License-Identifier: AGPL-3.0-or-later
"""sfs-segment on recorded ROS 2 bags: a bag written with rosbags in, a labelled bag out.

The input bag has raw rgb8 and bgr8 frames on one topic, JPEG CompressedImage frames on another,
a std_msgs/String topic (skipped), one corrupt and one truncated-data image message (dropped).
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.models
REPO = Path(__file__).resolve().parents[1]

FRONT, REAR, CHATTER = "/front/image_raw", "/rear/image_raw/compressed", "/chatter"
FRONT_HW, REAR_HW = (48, 64), (40, 56)
FRONT_ENCODINGS = ["rgb8", "bgr8", "rgb8", "bgr8"]
REAR_FRAMES = 3
BASE_NS = 1_700_000_000 * 10**9
RECEIVE_DELAY_NS = 3_000_000  # receive time = header stamp + 3 ms


def _stamp_ns(i: int, camera: int) -> int:
    return BASE_NS + i * 100_000_000 + camera * 10_000_000


def write_input_bag(path: Path, storage: str) -> Path:
    """Write the test bag; returns what to pass to sfs-segment (folder, or the .mcap file)."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    types = store.types
    image, compressed = types["sensor_msgs/msg/Image"], types["sensor_msgs/msg/CompressedImage"]
    header_t, time_t = types["std_msgs/msg/Header"], types["builtin_interfaces/msg/Time"]
    rng = np.random.default_rng(5)

    def header(stamp: int, frame_id: str):
        return header_t(stamp=time_t(sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id=frame_id)

    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    messages = []  # (receive ns, connection key, raw)
    for i, encoding in enumerate(FRONT_ENCODINGS):
        h, w = FRONT_HW
        pixels = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        msg = image(
            header=header(_stamp_ns(i, 0), "front_optical"),
            height=h,
            width=w,
            encoding=encoding,
            is_bigendian=0,
            step=w * 3,
            data=pixels.reshape(-1),
        )
        messages.append((_stamp_ns(i, 0) + RECEIVE_DELAY_NS, "front", msg))
    for i in range(REAR_FRAMES):
        h, w = REAR_HW
        ok, jpeg = cv2.imencode(".jpg", rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        assert ok
        msg = compressed(header=header(_stamp_ns(i, 1), "rear_optical"), format="jpeg", data=jpeg)
        messages.append((_stamp_ns(i, 1) + RECEIVE_DELAY_NS, "rear", msg))
    # An image whose data is shorter than height * step (valid CDR, undecodable picture).
    short = image(
        header=header(BASE_NS + 7, "front_optical"),
        height=48,
        width=64,
        encoding="rgb8",
        is_bigendian=0,
        step=192,
        data=np.zeros(100, np.uint8),
    )
    messages.append((BASE_NS + 50_000_000, "front", short))
    string_t = types["std_msgs/msg/String"]
    messages += [(BASE_NS + 1000 + k, "chatter", string_t(data=f"hello {k}")) for k in range(2)]
    messages.sort(key=lambda m: m[0])
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        conns = {
            "front": writer.add_connection(FRONT, image.__msgtype__, typestore=store),
            "rear": writer.add_connection(REAR, compressed.__msgtype__, typestore=store),
            "chatter": writer.add_connection(CHATTER, string_t.__msgtype__, typestore=store),
        }
        for receive, key, msg in messages:
            writer.write(conns[key], receive, store.serialize_cdr(msg, msg.__msgtype__))
        # A corrupt image message: truncated CDR.
        first_front = next(m for _, key, m in messages if key == "front")
        good = store.serialize_cdr(first_front, image.__msgtype__)
        writer.write(conns["front"], BASE_NS + 60_000_000, bytes(good[:40]))
    return path / f"{path.name}.mcap" if storage == "mcap" else path


def read_bag(path: Path) -> dict:
    """topic → list of (receive ns, message, connection) of a bag (rosbags + the sfs types)."""
    from rosbags.rosbag2 import Reader

    from sfs_ros.bags.messages import make_typestore

    store = make_typestore()
    out: dict = defaultdict(list)
    with Reader(path) as reader:
        for conn, timestamp, raw in reader.messages():
            try:
                msg = store.deserialize_cdr(raw, conn.msgtype)
            except Exception:  # the input's deliberately corrupt message
                if conn.topic != FRONT:
                    raise
                continue
            out[conn.topic].append((timestamp, msg, conn))
    return out


def _tree_digest(path: Path) -> dict[str, str]:
    root = path if path.is_dir() else path.parent
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _args(bag: Path, out: Path, params: Path, clip: str, *extra: str) -> list[str]:
    return [
        str(bag),
        "-o",
        str(out),
        "--config",
        str(params),
        "--allow-random-weights",
        "--no-progress",
        "--set",
        "open_vocab.enabled=true",
        "--set",
        f"open_vocab.model={clip}",
        "--set",
        "open_vocab.pretrained=",
        "--set",
        "open_vocab.threshold=-1.0",
        "--set",
        "open_vocab.vocabulary=[kite, pallet jack]",
        *extra,
    ]


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


def _input_rgb(msg) -> np.ndarray:
    """The RGB picture of an input message, decoded here independently of sfs_ros."""
    if hasattr(msg, "format"):
        return cv2.imdecode(msg.data, cv2.IMREAD_COLOR)[:, :, ::-1]
    pixels = msg.data.reshape(msg.height, msg.width, 3)
    return pixels[:, :, ::-1] if msg.encoding == "bgr8" else pixels


def _check_colour_images(output: dict, cam: str, decodable: list, legends: list, alpha: float):
    """semantic_color is the legend colours of the label image; overlay blends them into the
    input in RGB order (so a bgr8 or JPEG frame decoded in the wrong order would show)."""
    from sfs_ros import render

    frames = zip(
        output[f"/sfs/{cam}/semantic"],
        output[f"/sfs/{cam}/semantic_color"],
        output[f"/sfs/{cam}/overlay"],
        decodable,
        strict=True,
    )
    for (receive, sem, _), (_, color, _), (_, over, _), (_, source) in frames:
        legend = [lm for t, lm, _ in legends if t <= receive][-1]
        lut = np.array([c.color for c in sorted(legend.classes, key=lambda c: c.id)], np.uint8)
        labels = np.frombuffer(sem.data.tobytes(), "<u2").reshape(sem.height, sem.width)
        shape = (sem.height, sem.width, 3)
        np.testing.assert_array_equal(color.data.reshape(shape), lut[labels])
        expected = render.overlay(_input_rgb(source), labels, lut, alpha)
        np.testing.assert_array_equal(over.data.reshape(shape), expected)


def check_output(out_bag: Path, input_bag: Path, *, color: bool, alpha: float = 0.5) -> dict:
    """Assert the labelled bag against the input; returns the read output."""
    inputs = read_bag(input_bag)
    output = read_bag(out_bag)
    cams = {
        "front": (FRONT, FRONT_HW, len(FRONT_ENCODINGS), "front_optical"),
        "rear": (REAR, REAR_HW, REAR_FRAMES, "rear_optical"),
    }
    kinds = ["semantic", "semantic_color", "overlay"] if color else ["semantic"]
    expected_topics = {f"/sfs/{c}/{k}" for c in cams for k in [*kinds, "legend"]}
    assert expected_topics <= set(output), sorted(output)
    for cam, (topic, (h, w), count, frame_id) in cams.items():
        decodable = [
            (t, m)
            for t, m, _ in inputs[topic]
            if hasattr(m, "format") or len(m.data) >= m.height * m.step
        ]
        assert len(decodable) == count
        legends = output[f"/sfs/{cam}/legend"]
        assert legends and all(c.msgtype == "sfs_ros/msg/ClassLegend" for _, _, c in legends)
        assert legends[0][2].ext.offered_qos_profiles[0].durability.name == "TRANSIENT_LOCAL"
        for kind in kinds:
            msgs = output[f"/sfs/{cam}/{kind}"]
            assert len(msgs) == count, (cam, kind)
            # receive times, stamps and frame_ids are the input's
            assert [t for t, _, _ in msgs] == [t for t, _ in decodable]
            assert [_stamp(m) for _, m, _ in msgs] == [_stamp(m) for _, m in decodable]
            assert {m.header.frame_id for _, m, _ in msgs} == {frame_id}
            for _, m, _ in msgs:
                assert (m.height, m.width) == (h, w)
                assert m.encoding == ("mono16" if kind == "semantic" else "rgb8")
                assert m.step == w * (2 if kind == "semantic" else 3)
        for receive, m, _ in output[f"/sfs/{cam}/semantic"]:
            # every label id is in the newest legend written at or before this frame
            legend = [lm for t, lm, _ in legends if t <= receive][-1]
            ids = {c.id for c in legend.classes}
            labels = np.frombuffer(m.data.tobytes(), "<u2").reshape(m.height, m.width)
            assert set(np.unique(labels).tolist()) <= ids
            assert _stamp(legend) <= _stamp(m)
        if color:
            _check_colour_images(output, cam, decodable, legends, alpha)
    return output


CASES = {"sqlite3": ("sqlite3", ["--color"]), "mcap": ("mcap", ["--color", "--copy-input"])}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bag_in_labelled_bag_out(tmp_path, test_params_file, tiny_clip_name, request, case):
    storage, extra = CASES[case]
    capsys, caplog = request.getfixturevalue("capsys"), request.getfixturevalue("caplog")
    from sfs_ros.cli.segment import main

    bag = write_input_bag(tmp_path / "drive", storage)
    before = _tree_digest(bag)
    out = tmp_path / "out"
    rc = main(_args(bag, out, test_params_file, tiny_clip_name, *extra))
    assert rc == 0
    assert _tree_digest(bag) == before  # the input is never modified
    out_bag = out / "drive_sfs"
    suffix = ".mcap" if storage == "mcap" else ".db3"
    assert [p.suffix for p in out_bag.iterdir() if p.suffix in {".mcap", ".db3"}] == [suffix]
    from sfs_ros.params import load_config

    alpha = load_config(str(test_params_file), [])["overlay_alpha"]
    output = check_output(out_bag, bag, color=True, alpha=alpha)
    legend = output["/sfs/front/legend"][-1][1]
    assert legend.vocabulary == "ade20k"
    assert all(c.source == 2 for c in legend.classes if c.id > 150)  # appended: open vocabulary
    if "--copy-input" in extra:
        inputs = read_bag(bag)
        for topic in (FRONT, REAR, CHATTER):
            assert [t for t, _, _ in output[topic]] == [t for t, _, _ in inputs[topic]]
    else:
        assert FRONT not in output and CHATTER not in output
    import json

    timings = json.loads((out_bag / "timings.json").read_text())
    assert len(timings) == len(FRONT_ENCODINGS) + REAR_FRAMES
    assert all("open_vocab" in t and "total" in t for t in timings)
    text = capsys.readouterr().out
    assert f"{len(FRONT_ENCODINGS) + REAR_FRAMES} frame(s)" in text
    if "--copy-input" not in extra:
        assert "std_msgs/msg/String: 2" in text
    assert "corrupt: 1" in text and "short_data: 1" in text
    logged = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(logged) == 2
    assert any("(corrupt)" in m and "SerdeError" in m for m in logged)
    assert any("(short_data)" in m and "data has 100 bytes" in m for m in logged)


def test_interrupt_leaves_a_closed_bag_and_resume_completes(
    tmp_path, test_params_file, tiny_clip_name, monkeypatch, capsys
):
    from sfs_ros.bags.labeller import OfflineLabeller
    from sfs_ros.cli.bag import EXIT_INTERRUPTED
    from sfs_ros.cli.segment import main

    bag = write_input_bag(tmp_path / "drive", "sqlite3")
    out = tmp_path / "out"
    original = OfflineLabeller.label
    calls = []

    def interrupted_label(self, camera, rgb):
        calls.append(camera)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return original(self, camera, rgb)

    monkeypatch.setattr(OfflineLabeller, "label", interrupted_label)
    rc = main(_args(bag, out, test_params_file, tiny_clip_name))
    assert rc == EXIT_INTERRUPTED
    text = capsys.readouterr().out
    assert "3 frame(s)" in text and "INTERRUPTED" in text
    partial = read_bag(out / "drive_sfs")  # a valid, closed bag
    assert sum(len(partial[f"/sfs/{c}/semantic"]) for c in ("front", "rear")) == 3

    # Without --resume the output is not touched.
    monkeypatch.setattr(OfflineLabeller, "label", original)
    assert main(_args(bag, out, test_params_file, tiny_clip_name)) == 1
    assert "--resume" in capsys.readouterr().err
    assert (
        sum(len(read_bag(out / "drive_sfs")[f"/sfs/{c}/semantic"]) for c in ("front", "rear")) == 3
    )

    # A crash mid-resume also leaves a closed bag with everything done so far.
    calls.clear()

    def crashing_label(self, camera, rgb):
        calls.append(camera)
        if len(calls) == 2:
            raise RuntimeError("simulated crash")
        return original(self, camera, rgb)

    monkeypatch.setattr(OfflineLabeller, "label", crashing_label)
    assert main(_args(bag, out, test_params_file, tiny_clip_name, "--resume")) == 1
    assert "STOPPED by an error (RuntimeError: simulated crash)" in capsys.readouterr().out
    assert (
        sum(len(read_bag(out / "drive_sfs")[f"/sfs/{c}/semantic"]) for c in ("front", "rear")) == 4
    )

    monkeypatch.setattr(OfflineLabeller, "label", original)
    assert main(_args(bag, out, test_params_file, tiny_clip_name, "--resume")) == 0
    text = capsys.readouterr().out
    assert "7 frame(s)" in text and "4 from the resumed output" in text
    assert sorted(p.name for p in out.iterdir()) == ["drive_sfs"]  # no backup left
    check_output(out / "drive_sfs", bag, color=False)  # no frame missing or written twice
    import json

    timings = json.loads((out / "drive_sfs" / "timings.json").read_text())
    assert len(timings) == 7


def test_missing_or_unreadable_bag_is_one_clear_error(tmp_path, capsys):
    from sfs_ros.cli.segment import main

    out = str(tmp_path / "out")
    assert main([str(tmp_path / "nothing.mcap"), "-o", out]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"sfs-segment: error: bag '{tmp_path / 'nothing.mcap'}' does not exist"]

    garbage = tmp_path / "garbage.mcap"
    garbage.write_bytes(b"not an mcap file at all")
    assert main([str(garbage), "-o", out]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"sfs-segment: error: cannot read bag '{garbage}'")
    assert garbage.read_bytes() == b"not an mcap file at all"

    folder = tmp_path / "broken_bag"
    folder.mkdir()
    (folder / "metadata.yaml").write_text("rosbag2_bagfile_information: [unclosed")
    assert main([str(folder), "-o", out]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot read bag" in err[0] and "metadata.yaml" in err[0]
    assert not Path(out).exists() or not any(Path(out).iterdir())


def test_topics_must_be_image_topics_of_the_bag(tmp_path, capsys):
    from sfs_ros.cli.segment import main

    bag = write_input_bag(tmp_path / "drive", "sqlite3")
    out = str(tmp_path / "out")
    assert main([str(bag), "-o", out, "--topics", CHATTER]) == 2
    assert "not sensor_msgs/msg/Image or CompressedImage: /chatter" in capsys.readouterr().err
    assert main([str(bag), "-o", out, "--topics", "/nope"]) == 2
    assert "not in the bag: /nope" in capsys.readouterr().err


def test_ctrl_c_closes_a_valid_bag_and_the_summary_counts_its_frames(tmp_path, test_params_file):
    bag = write_input_bag(tmp_path / "drive", "mcap")
    out = tmp_path / "out"
    args = [str(bag), "-o", str(out), "--config", str(test_params_file), "--color"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sfs_ros.cli", "segment", *args, "--no-progress"],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not (out / "drive_sfs").exists():  # the output is opened after the models load
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the output bag was never opened"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "stopping after this frame" in stderr and "INTERRUPTED" in stdout
    reported = int(re.search(r": (\d+) frame\(s\) in ", stdout).group(1))
    written = read_bag(out / "drive_sfs")  # closed: metadata.yaml and the MCAP index are there
    counts = {
        kind: sum(len(written[f"/sfs/{c}/{kind}"]) for c in ("front", "rear"))
        for kind in ("semantic", "semantic_color", "overlay")
    }
    assert counts["semantic"] == reported < len(FRONT_ENCODINGS) + REAR_FRAMES
    assert counts["semantic_color"] == counts["overlay"] == reported  # no half-written frame
