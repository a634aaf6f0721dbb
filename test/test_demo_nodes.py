"""The demo graph's own nodes (``sfs_ros.demo``): samples, demo_camera and recorder.

Unit tests cover ``sfs_ros.samples``, the tiny-world source and params file, and the
recorder's ROS-free bookkeeping and scoring. The DDS tests run the real processes:
demo_camera → a small echo process standing in for the sfs node (it republishes label images
with the input's header and a latched legend; the node's own tests cover the node) →
recorder, and check what the recorder wrote.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from sfs_ros import samples
from sfs_ros.demo import tiny_world
from sfs_ros.demo.recorder import (
    RecorderStats,
    StatusView,
    format_summary,
    label_image,
    legend_to_dict,
)
from sfs_ros.demo.scoring import GroundTruthScorer
from sfs_ros.world.classes import CLASS_NAMES, class_index, tiny_world_vocabulary

WIDTH, HEIGHT, FRAMES = 64, 48, 5
CAMERA_TOPIC = "/camera/image_raw"
FRAME_ID = "test_camera"


# ------------------------------------------------------------------------------ samples
def test_synthetic_scene_is_deterministic():
    a = samples.synthetic_scene(96, 64, seed=3)
    b = samples.synthetic_scene(96, 64, seed=3)
    assert a.shape == (64, 96, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, samples.synthetic_scene(96, 64, seed=4))
    assert len(np.unique(a.reshape(-1, 3), axis=0)) > 20  # gradient + several shapes
    with pytest.raises(ValueError, match="empty"):
        samples.synthetic_scene(0, 10)


def test_bundled_sample_images():
    pytest.importorskip("ultralytics")
    paths = samples.sample_image_paths()
    assert [p.name for p in paths] == ["bus.jpg", "zidane.jpg"]
    images = samples.sample_images()
    assert all(img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8 for img in images)


def test_missing_samples_give_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setattr(samples, "_ultralytics_dir", lambda: None)
    with pytest.raises(samples.SamplesNotFoundError, match="'ultralytics' package"):
        samples.frame_sequence("samples", 32, 24)
    monkeypatch.setattr(samples, "_ultralytics_dir", lambda: tmp_path)
    with pytest.raises(samples.SamplesNotFoundError, match=r"bus\.jpg"):
        samples.sample_image_paths()


def test_synthetic_pan_sequence():
    frames = list(samples.frame_sequence("synthetic", WIDTH, HEIGHT, loop=False))
    assert len(frames) == 2 * (2 * 24 - 2)  # two scenes, there and back
    assert all(f.shape == (HEIGHT, WIDTH, 3) and f.dtype == np.uint8 for f in frames)
    assert not np.array_equal(frames[0], frames[1])  # the window moves
    again = samples.frame_sequence("synthetic", WIDTH, HEIGHT, loop=True)
    looped = [next(again) for _ in range(len(frames) + 3)]
    assert np.array_equal(looped[len(frames)], frames[0])


def test_folder_and_video_sources(tmp_path: Path):
    folder = tmp_path / "frames"
    folder.mkdir()
    scenes = [samples.synthetic_scene(40, 30, seed=s) for s in range(3)]
    for index, scene in enumerate(scenes):
        cv2.imwrite(str(folder / f"{index:02d}.png"), cv2.cvtColor(scene, cv2.COLOR_RGB2BGR))
    (folder / "notes.txt").write_text("ignored")
    frames = list(samples.frame_sequence(str(folder), 0, 0, loop=False))
    assert len(frames) == 3
    assert all(np.array_equal(f, s) for f, s in zip(frames, scenes, strict=True))
    resized = next(samples.frame_sequence(str(folder), 20, 16))
    assert resized.shape == (16, 20, 3)

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (40, 30))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write MJPG/AVI")
    for scene in scenes:
        writer.write(cv2.cvtColor(scene, cv2.COLOR_RGB2BGR))
    writer.release()
    played = list(samples.frame_sequence(str(video), 40, 30, loop=False))
    assert len(played) == 3 and played[0].shape == (30, 40, 3)
    assert np.abs(played[1].astype(int) - scenes[1]).mean() < 12  # JPEG-compressed frames


def test_bad_sources(tmp_path: Path):
    with pytest.raises(ValueError, match="does not exist"):
        samples.frame_sequence(str(tmp_path / "nope.mp4"))
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(ValueError, match="unknown file type"):
        samples.frame_sequence(str(tmp_path / "x.txt"))
    with pytest.raises(ValueError, match="no images"):
        samples.frame_sequence(str(tmp_path))


# ------------------------------------------------------------------------------ recorder
def test_label_image_honours_step_and_byte_order():
    labels = np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000
    padded = np.zeros((3, 6), np.uint16)
    padded[:, :4] = labels
    for big in (False, True):
        data = padded.astype(">u2" if big else "<u2").tobytes()
        msg = SimpleNamespace(
            encoding="mono16", height=3, width=4, step=12, is_bigendian=int(big), data=data
        )
        assert np.array_equal(label_image(msg), labels)
    with pytest.raises(ValueError, match="mono16"):
        label_image(SimpleNamespace(encoding="rgb8", height=1, width=1, step=3, data=b"abc"))


def _status(name: str, message: str = "", **values: str) -> StatusView:
    return StatusView(name=name, hardware_id="hw", level=0, message=message, values=values)


def test_recorder_summary_from_frames_and_diagnostics():
    stats = RecorderStats(semantic_topic="/sfs/semantic")
    frame = np.array([[0, 1], [1, 3]], np.uint16)
    for i, now in enumerate((10.0, 10.5, 11.0)):
        stats.on_semantic(frame, "mono16", "cam", latency_ms=100.0 + 10 * i, now=now)
        stats.on_overlay(now)
    stats.legend = {
        "revision": 2,
        "vocabulary": "ade20k",
        "classes": [
            {"id": 0, "name": "unidentified", "color": [0, 0, 0], "source": 0},
            {"id": 1, "name": "wall", "color": [1, 2, 3], "source": 1},
            {"id": 3, "name": "floor", "color": [4, 5, 6], "source": 1},
        ],
    }
    stats.on_status(
        _status(
            "/sfs/sfs: default",
            "RANDOM WEIGHTS in use (FastSAM): outputs are not meaningful",
            input_topic="/camera/image_raw",
            output_topic="/sfs/semantic",
            frames_in="9",
            frames_processed="3",
            frames_dropped="6",
            **{"dropped.superseded": "5", "dropped.bad_step": "1"},
        )
    )
    stats.on_status(
        _status("/sfs/sfs: other", output_topic="/sfs/other/semantic", frames_dropped="7")
    )
    stats.on_status(_status("demo_camera: /camera/image_raw", frames_published="10"))
    stats.on_status(_status("demo_camera: /elsewhere", frames_published="99"))
    summary = stats.summary("max_frames", 4.0)
    assert summary["frames_in"] == 10 and summary["frames_in_source"] == "camera"
    assert summary["frames_out"] == 3 and summary["overlays_received"] == 3
    assert summary["node_frames_in"] == 9 and summary["drops"] == 6
    assert summary["drops_by_reason"] == {"superseded": 5, "bad_step": 1}
    assert summary["fps"] == pytest.approx(2.0)
    assert summary["latency_ms"] == {"median": 110.0, "p90": 118.0, "min": 100.0, "max": 120.0}
    assert summary["class_ids_seen"] == [0, 1, 3]
    assert [c["name"] for c in summary["classes_seen"]] == ["unidentified", "wall", "floor"]
    assert summary["classes_seen"][1]["pixel_share"] == pytest.approx(0.5)
    assert summary["random_weights"] is True
    assert summary["legend_revision"] == 2 and summary["frame_ids"] == ["cam"]
    assert json.loads(json.dumps(summary)) == summary
    text = format_summary(summary, "out")
    assert "RANDOM WEIGHTS" in text and "frames in:     10 (from the camera)" in text


def test_recorder_summary_without_anything():
    summary = RecorderStats().summary("startup_timeout", 1.0)
    assert summary["frames_out"] == 0 and summary["frames_in"] is None
    assert summary["fps"] is None and summary["latency_ms"]["median"] is None
    assert summary["random_weights"] is None and summary["drops"] is None
    assert "unknown" in format_summary(summary, "out")


def test_legend_to_dict():
    msg = SimpleNamespace(
        revision=4,
        vocabulary="coco",
        classes=[SimpleNamespace(id=7, name="kite", color=bytes([1, 2, 3]), source=2)],
    )
    assert legend_to_dict(msg) == {
        "revision": 4,
        "vocabulary": "coco",
        "classes": [{"id": 7, "name": "kite", "color": [1, 2, 3], "source": 2}],
    }


# ------------------------------------------------------------------------------ scoring
def _tw_legend(extra: dict[int, str] | None = None) -> dict:
    """A legend whose id i + 1 is tiny-world class i (as the node's registry numbers them),
    plus ``extra`` ids."""
    names = {0: "unidentified", **{i + 1: n for i, n in enumerate(CLASS_NAMES)}, **(extra or {})}
    return {
        "revision": 1,
        "vocabulary": "tiny-world",
        "classes": [
            {"id": i, "name": n, "color": [0, 0, 0], "source": 1} for i, n in names.items()
        ],
    }


def test_scorer_pairs_by_stamp_and_scores_planted_label_maps():
    floor, wall, ball = class_index("floor"), class_index("wall"), class_index("ball")
    truth = np.full((4, 10), floor, np.uint8)
    truth[:2] = wall
    truth[3, :4] = ball  # 4 ball pixels
    labels = truth.astype(np.uint16) + 1  # perfect ...
    labels[0, :5] = floor + 1  # ... but 5 wall pixels called floor
    labels[3, :2] = 0  # 2 ball pixels unidentified (a miss, no class gains)
    labels[2, 9] = 200  # 1 floor pixel as "person": no tiny-world class (a miss)
    other = np.full((4, 10), wall, np.uint8)  # a second frame: all wall, labelled all wall
    scorer = GroundTruthScorer(tiny_world_vocabulary())
    # arrival order differs per side: truth of frame 2, labels of frame 1, labels of 2, truth 1
    assert not scorer.on_ground_truth(2, other)
    assert not scorer.on_labels(1, labels)
    assert scorer.on_labels(2, other.astype(np.uint16) + 1)
    assert scorer.on_ground_truth(1, truth)
    assert not scorer.on_ground_truth(3, truth)  # its label map never comes (a node drop)
    result = scorer.results(_tw_legend({200: "person"}))
    assert result["frames_scored"] == 2
    assert result["ground_truth_without_label_map"] == 1
    assert result["label_maps_without_ground_truth"] == 0
    # wall: truth 20 + 40 = 60, hit 55, predicted 55 -> 55 / 60
    # floor: truth 16, hit 15 (one "person"), predicted 15 + 5 -> 15 / 21
    # ball: truth 4, hit 2, predicted 2 -> 2 / 4
    assert result["iou"] == {
        "floor": pytest.approx(15 / 21, abs=1e-4),
        "wall": pytest.approx(55 / 60, abs=1e-4),
        "ball": pytest.approx(0.5, abs=1e-4),
    }
    assert result["miou"] == pytest.approx((15 / 21 + 55 / 60 + 0.5) / 3, abs=1e-4)
    assert result["pixel_accuracy"] == pytest.approx(72 / 80, abs=1e-4)
    assert result["classes_scored"] == 3
    assert result["unmapped_ids"] == {"0": "unidentified", "200": "person"}
    assert result["error"] is None


def test_scorer_bounded_buffers_and_no_score_without_pairs():
    scorer = GroundTruthScorer(tiny_world_vocabulary(), max_pending=2)
    assert scorer.results(_tw_legend()) is None  # no ground truth at all: no section
    for stamp in range(5):
        scorer.on_ground_truth(stamp, np.zeros((2, 2), np.uint8))
    result = scorer.results(_tw_legend())
    assert result["frames_scored"] == 0 and result["ground_truth_without_label_map"] == 5
    assert result["miou"] is None and "paired" in result["error"]
    assert scorer.on_labels(4, np.ones((2, 2), np.uint16))  # still waiting: the newest two
    assert not scorer.on_labels(0, np.ones((2, 2), np.uint16))  # given up on
    assert scorer.results(None)["error"].startswith("no legend")
    assert scorer.results(_tw_legend())["pixel_accuracy"] == 1.0


def test_recorder_summary_ends_with_the_miou():
    stats = RecorderStats(semantic_topic="/sfs/semantic", models="tiny world (trained)")
    truth = np.full((4, 4), class_index("sky"), np.uint8)
    truth[2:] = class_index("duck")
    labels = truth.astype(np.uint16) + 1
    labels[3] = 0
    stats.on_semantic(labels, "mono16", "cam", latency_ms=5.0, now=1.0)
    stats.scorer.on_labels(7, labels)
    stats.scorer.on_ground_truth(7, truth)
    stats.legend = _tw_legend()
    summary = stats.summary("max_frames", 2.0)
    score = summary["ground_truth"]
    assert score["iou"] == {"sky": 1.0, "duck": 0.5} and score["miou"] == 0.75
    assert score["pixel_accuracy"] == 0.75
    assert summary["models"] == "tiny world (trained)"
    assert [c["name"] for c in summary["classes_seen"]] == ["unidentified", "sky", "duck"]
    assert json.loads(json.dumps(summary)) == summary
    lines = format_summary(summary, "out").splitlines()
    assert lines[-1].startswith("mIoU:          0.750 over the 2 classes")
    assert lines[-2].startswith("pixel acc.:    0.750")
    assert lines[-3] == "IoU per class: sky 1.00, duck 0.50"
    assert "tiny world (trained)" in "\n".join(lines)
    assert "mIoU" not in format_summary(RecorderStats().summary("timeout", 1.0), "out")
    assert summary["open_vocabulary_names"] == [] and "open vocab." not in "\n".join(lines)
    # a later legend revision in which the open vocabulary named the duck
    legend = _tw_legend()
    legend["revision"] = 3
    for entry in legend["classes"]:
        if entry["name"] == "duck":
            entry["source"] = 2
    stats.legend = legend
    summary = stats.summary("max_frames", 2.0)
    assert summary["open_vocabulary_names"] == ["duck"]
    lines = format_summary(summary, "out").splitlines()
    assert "open vocab.:   legend revision 3 added duck (IoU 0.50)" in lines
    assert lines[-1].startswith("mIoU:")


# ------------------------------------------------------------------------------ tiny world
def test_tiny_world_stream_is_deterministic_pans_and_loops():
    first = list(tiny_world.scene_stream(5, 96, 64, frames=3, step=4, loop=False))
    again = list(tiny_world.scene_stream(5, 96, 64, frames=3, step=4, loop=False))
    assert len(first) == 3
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.semantic, b.semantic)
    assert first[0].rgb.shape == (64, 96, 3) and first[0].semantic.shape == (64, 96)
    assert np.array_equal(first[1].semantic[:, :-4], first[0].semantic[:, 4:])  # pans right
    looped = tiny_world.scene_stream(5, 96, 64, frames=3, step=4, loop=True)
    played = [next(looped) for _ in range(4)]
    assert np.array_equal(played[3].rgb, first[0].rgb)
    assert next(tiny_world.scene_stream(5)).rgb.shape == (480, 640, 3)  # 0 x 0: 640x480


def test_tiny_world_params_file_changes_only_the_model_entries(tmp_path: Path):
    from sfs_ros.params import load_config

    models = tiny_world.FIXTURE_MODELS
    if tiny_world.missing_parts(models):
        pytest.skip(f"tiny-world models missing in {models}")
    base = Path(__file__).resolve().parents[1] / "config" / "sfs.yaml"
    out = tmp_path / "tw.yaml"
    assert tiny_world.main(["params", "--base", str(base), "--out", str(out)]) == 0
    shipped, written = load_config(str(base)), load_config(str(out))
    changed = {k for k in shipped if shipped[k] != written[k]}
    model_keys = set(tiny_world.demo_overrides(models))
    assert changed <= model_keys  # everything else stays at the shipped defaults
    assert {"fastsam.model", "closed_set.model", "open_vocab.model"} <= changed
    assert model_keys <= {  # the model entries, and what belongs to them
        "fastsam.model",
        "fastsam.imgsz",
        "closed_set.model",
        "open_vocab.model",
        "open_vocab.pretrained",
        "open_vocab.vocabulary",
        "open_vocab.templates",
        "openvino_int8_calibration",  # INT8 calibrated on the models' own world
    }
    assert Path(written["openvino_int8_calibration"]).is_dir()
    assert Path(written["fastsam.model"]) == (models / "fastsam.pt").resolve()
    assert written["closed_set.model"] == str((models / "segformer").resolve())
    assert written["open_vocab.model"] == f"local-dir:{(models / 'clip').resolve()}"
    assert written["open_vocab.vocabulary"] == ["duck", "star", "kite"]
    assert written["open_vocab.enabled"] is shipped["open_vocab.enabled"]
    assert written["fastsam.conf"] == 0.4
    with pytest.raises(FileExistsError):  # never overwrites
        tiny_world.write_params_file(base, out, {})
    assert (
        tiny_world.main(
            [
                "params",
                "--base",
                str(base),
                "--models",
                str(tmp_path),
                "--out",
                str(tmp_path / "x.yaml"),
            ]
        )
        == 3
    )


# ------------------------------------------------------------------------------ DDS
ECHO_NODE = textwrap.dedent(
    """
    # Stands in for the sfs node: label = R // 64 + 1, overlay = input, same header.
    import signal
    import sys
    import time

    import numpy as np
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import Image

    from sfs_ros.msg import ClassInfo, ClassLegend
    from sfs_ros.ros.conversions import image_msg_to_rgb, to_image_msg

    stop = []
    signal.signal(signal.SIGINT, lambda *a: stop.append(1))
    rclpy.init(args=sys.argv, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("sfs", namespace="/sfs")
    out_qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    latched = QoSProfile(
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
    semantic = node.create_publisher(Image, "semantic", out_qos)
    overlay = node.create_publisher(Image, "overlay", out_qos)
    legend = node.create_publisher(ClassLegend, "legend", latched)
    diagnostics = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
    msg = ClassLegend(revision=3, vocabulary="test")
    msg.classes = [ClassInfo(id=0, name="unidentified", color=[0, 0, 0], source=0)] + [
        ClassInfo(id=i, name=f"red{i}", color=[60 * i, 0, 0], source=1) for i in range(1, 5)
    ]
    legend.publish(msg)
    while (semantic.get_subscription_count() == 0 or overlay.get_subscription_count() == 0):
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(0.5)  # let the recorder match us back
    count = [0]

    def on_image(msg):
        rgb = image_msg_to_rgb(msg)
        labels = (rgb[:, :, 0] // 64 + 1).astype(np.uint16)
        semantic.publish(to_image_msg(labels, "mono16", msg.header))
        overlay.publish(to_image_msg(np.ascontiguousarray(rgb), "rgb8", msg.header))
        count[0] += 1

    def report():
        array = DiagnosticArray()
        array.status = [DiagnosticStatus(
            level=DiagnosticStatus.WARN, name="/sfs/sfs: default", hardware_id="cpu",
            message="RANDOM WEIGHTS in use (FastSAM): outputs are not meaningful",
            values=[KeyValue(key=k, value=str(v)) for k, v in {
                "input_topic": "/camera/image_raw", "output_topic": semantic.topic_name,
                "frames_in": count[0], "frames_processed": count[0], "frames_dropped": 0,
                "random_weights": "FastSAM"}.items()])]
        diagnostics.publish(array)

    node.create_subscription(Image, "image", on_image, QoSProfile(depth=10))
    node.create_timer(0.3, report)
    print("READY", flush=True)
    while not stop:
        rclpy.spin_once(node, timeout_sec=0.05)
    node.destroy_node()
    rclpy.try_shutdown()
    """
)


def _camera_args(**params: object) -> list[str]:
    base = {
        "source": "synthetic",
        "width": WIDTH,
        "height": HEIGHT,
        "rate_hz": 10.0,
        "max_frames": FRAMES,
        "frame_id": FRAME_ID,
    }
    base.update(params)
    args = ["-m", "sfs_ros.demo.camera", "--ros-args", "-r", f"image:={CAMERA_TOPIC}"]
    for key, value in base.items():
        args += ["-p", f"{key}:={value}"]
    return args


def _recorder_args(out: Path, **params: object) -> list[str]:
    base = {"output_dir": str(out), "max_frames": FRAMES, "timeout_s": 10.0}
    base.update(params)
    args = ["-m", "sfs_ros.demo.recorder", "--ros-args", "-r", "__ns:=/sfs"]
    for key, value in base.items():
        args += ["-p", f"{key}:={value}"]
    return args


@pytest.mark.dds
def test_camera_echo_recorder_graph(dds_env, processes, tmp_path: Path):
    out = tmp_path / "rec"
    recorder = processes.python(_recorder_args(out, save_every=2, startup_timeout_s=60.0), dds_env)
    processes.python(["-c", ECHO_NODE, "--ros-args", "-r", f"image:={CAMERA_TOPIC}"], dds_env)
    camera = processes.python(_camera_args(), dds_env)
    rec_out, _ = recorder.communicate(timeout=90)
    cam_out, _ = camera.communicate(timeout=30)
    assert recorder.returncode == 0, rec_out
    assert camera.returncode == 0, cam_out
    assert "waiting for a subscriber on /camera/image_raw" in cam_out

    frames = list(samples.frame_sequence("synthetic", WIDTH, HEIGHT, loop=False))[:FRAMES]
    expected_pixels = np.zeros(5, np.int64)
    for frame in frames:
        expected_pixels += np.bincount((frame[:, :, 0] // 64 + 1).ravel(), minlength=5)

    summary = json.loads((out / "summary.json").read_text())
    assert summary["exit_reason"] == "max_frames"
    assert summary["frames_out"] == FRAMES
    assert summary["frames_in"] == FRAMES and summary["frames_in_source"] == "camera"
    assert summary["overlays_received"] == FRAMES
    assert summary["drops"] == 0
    assert summary["class_ids_seen"] == [int(i) for i in np.flatnonzero(expected_pixels)]
    shares = {c["id"]: c["pixel_share"] for c in summary["classes_seen"]}
    for class_id, pixels in enumerate(expected_pixels):
        if pixels:
            assert shares[class_id] == pytest.approx(pixels / expected_pixels.sum(), abs=1e-4)
    assert summary["random_weights"] is True
    assert summary["frame_ids"] == [FRAME_ID]
    assert summary["resolutions"] == [[WIDTH, HEIGHT]]
    assert summary["encodings"] == ["mono16"]
    assert 0 < summary["latency_ms"]["median"] < 5000
    assert summary["fps"] > 0
    assert summary["legend_revision"] == 3 and summary["vocabulary"] == "test"

    legend = json.loads((out / "legend.json").read_text())
    assert legend["revision"] == 3 and legend["vocabulary"] == "test"
    assert legend["classes"][2] == {"id": 2, "name": "red2", "color": [120, 0, 0], "source": 1}
    # save_every 2 → frames 0, 2, 4 of each topic; the overlay is the camera frame itself.
    for index in (0, 2, 4):
        overlay = cv2.imread(str(out / f"overlay_{index:06d}.png"))
        assert np.array_equal(overlay[:, :, ::-1], frames[index])
        labels = cv2.imread(str(out / f"semantic_{index:06d}.png"), cv2.IMREAD_UNCHANGED)
        assert labels.dtype == np.uint16
        assert np.array_equal(labels, frames[index][:, :, 0] // 64 + 1)
    assert not (out / "overlay_000001.png").exists()
    assert summary["images_saved"] == 6
    assert "frames out:    5 label images received" in (out / "summary.txt").read_text()
    assert "== sfs recorder summary (/sfs/semantic) ==" in rec_out


TRUTH_ECHO = textwrap.dedent(
    """
    # Stands in for the sfs node on the tiny-world source: for every other frame it labels
    # each pixel with its true class (id = class + 1, legend named after the tiny world), so a
    # recorder that pairs by stamp scores 1.0 and one that pairs by arrival order does not.
    import signal, sys
    import numpy as np
    import rclpy
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import Image
    from sfs_ros.msg import ClassInfo, ClassLegend
    from sfs_ros.ros.conversions import to_image_msg
    from sfs_ros.demo.recorder import label_image
    from sfs_ros.world.classes import CLASS_NAMES

    stop = []
    signal.signal(signal.SIGINT, lambda *a: stop.append(1))
    rclpy.init(args=sys.argv, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("sfs", namespace="/sfs")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    semantic = node.create_publisher(Image, "semantic", qos)
    legend = node.create_publisher(ClassLegend, "legend", QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL))
    msg = ClassLegend(revision=1, vocabulary="tiny-world")
    msg.classes = [ClassInfo(id=0, name="unidentified", color=[0, 0, 0], source=0)] + [
        ClassInfo(id=i + 1, name=n, color=[0, 0, 0], source=1) for i, n in enumerate(CLASS_NAMES)
    ]
    legend.publish(msg)
    images, truths, pairs = set(), {}, [0]

    def stamp(m):
        return (m.header.stamp.sec, m.header.stamp.nanosec)

    def maybe_publish(key):
        if key in images and key in truths:
            header, truth = truths.pop(key)
            images.discard(key)
            pairs[0] += 1
            if pairs[0] % 2:  # frames 1, 3, 5, ...: the others are "dropped"
                labels = truth.astype(np.uint16) + 1
                semantic.publish(to_image_msg(labels, "mono16", header))

    def on_image(m):
        images.add(stamp(m))
        maybe_publish(stamp(m))

    def on_truth(m):
        truths[stamp(m)] = (m.header, label_image(m))
        maybe_publish(stamp(m))

    node.create_subscription(Image, "image", on_image, qos)
    node.create_subscription(Image, "image/ground_truth", on_truth, qos)
    while not stop:
        rclpy.spin_once(node, timeout_sec=0.05)
    node.destroy_node()
    rclpy.try_shutdown()
    """
)


@pytest.mark.dds
def test_tiny_world_camera_ground_truth_is_scored_by_stamp(dds_env, processes, tmp_path: Path):
    out, frames = tmp_path / "tw", 6
    recorder = processes.python(
        [
            *_recorder_args(out, max_frames=frames // 2, startup_timeout_s=60.0),
            "-r",
            f"ground_truth:={CAMERA_TOPIC}/ground_truth",
        ],
        dds_env,
    )
    processes.python(
        [
            "-c",
            TRUTH_ECHO,
            "--ros-args",
            "-r",
            f"image:={CAMERA_TOPIC}",
            "-r",
            f"image/ground_truth:={CAMERA_TOPIC}/ground_truth",
        ],
        dds_env,
    )
    camera = processes.python(
        _camera_args(source="tiny-world", max_frames=frames, tiny_world_step=16), dds_env
    )
    rec_out, _ = recorder.communicate(timeout=120)
    cam_out, _ = camera.communicate(timeout=30)
    assert recorder.returncode == 0, rec_out
    assert camera.returncode == 0, cam_out
    assert f"ground truth → {CAMERA_TOPIC}/ground_truth" in cam_out
    summary = json.loads((out / "summary.json").read_text())
    score = summary["ground_truth"]
    assert summary["frames_out"] == frames // 2
    assert score is not None, rec_out
    assert score["frames_scored"] == frames // 2
    assert score["label_maps_without_ground_truth"] == 0
    assert score["pixel_accuracy"] == 1.0 and score["miou"] == 1.0
    scenes = list(tiny_world.scene_stream(width=WIDTH, height=HEIGHT, step=16, loop=False))
    present = set()
    for scene in scenes[:frames:2]:  # the frames the stand-in labelled: 0, 2, 4
        present |= {CLASS_NAMES[c] for c in np.unique(scene.semantic)}
    assert set(score["iou"]) == present
    labels = cv2.imread(str(out / "semantic_000001.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(labels, scenes[2].semantic.astype(np.uint16) + 1)
    text = (out / "summary.txt").read_text().splitlines()
    assert text[-1].startswith("mIoU:          1.000")


CHECKER = textwrap.dedent(
    """
    # Receives the demo camera's frames and prints them as JSON lines.
    import json, sys, time
    import numpy as np
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage, Image
    from sfs_ros.ros.conversions import compressed_msg_to_rgb, image_msg_to_rgb

    transport, count = sys.argv[1], int(sys.argv[2])
    rclpy.init()
    node = rclpy.create_node("checker")
    got = []
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
    if transport == "compressed":
        node.create_subscription(CompressedImage, "/camera/image_raw/compressed", got.append, qos)
    else:
        node.create_subscription(Image, "/camera/image_raw", got.append, qos)
    deadline = time.monotonic() + 30
    while len(got) < count and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    for msg in got:
        if transport == "compressed":
            rgb, extra = compressed_msg_to_rgb(msg), {"format": msg.format}
        else:
            rgb, extra = image_msg_to_rgb(msg), {"encoding": msg.encoding}
        print("FRAME " + json.dumps({"frame_id": msg.header.frame_id,
              "stamp": msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9,
              "rgb": rgb.tolist(), **extra}), flush=True)
    """
)


@pytest.mark.dds
@pytest.mark.parametrize(
    ("transport", "encoding", "qos"),
    [
        ("raw", "rgb8", "reliable"),
        ("raw", "bgr8", "best_effort"),
        ("compressed", "rgb8", "reliable"),
    ],
)
def test_demo_camera_publishes_the_sequence(dds_env, processes, transport, encoding, qos):
    count = 3
    checker = processes.python(["-c", CHECKER, transport, str(count)], dds_env)
    camera = processes.python(
        _camera_args(transport=transport, encoding=encoding, qos=qos, max_frames=count), dds_env
    )
    out, _ = checker.communicate(timeout=60)
    cam_out, _ = camera.communicate(timeout=30)
    assert camera.returncode == 0, cam_out
    received = [json.loads(line[6:]) for line in out.splitlines() if line.startswith("FRAME ")]
    assert len(received) == count, out + cam_out
    expected = list(samples.frame_sequence("synthetic", WIDTH, HEIGHT, loop=False))[:count]
    stamps = [r["stamp"] for r in received]
    assert stamps == sorted(stamps) and stamps[0] > 1e9  # stamped with the wall clock
    for got, frame in zip(received, expected, strict=True):
        rgb = np.array(got["rgb"], np.uint8)
        assert got["frame_id"] == FRAME_ID
        if transport == "compressed":
            assert got["format"] == "rgb8; jpeg compressed bgr8"
            assert np.abs(rgb.astype(int) - frame).mean() < 6
        else:
            assert got["encoding"] == encoding
            assert np.array_equal(rgb, frame)  # decoded by the node's converter: channel order


@pytest.mark.dds
def test_recorder_without_frames_exits_1(dds_env, processes, tmp_path: Path):
    out = tmp_path / "empty"
    recorder = processes.python(_recorder_args(out, startup_timeout_s=1.5), dds_env)
    text, _ = recorder.communicate(timeout=60)
    assert recorder.returncode == 1, text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames_out"] == 0 and summary["exit_reason"] == "startup_timeout"


@pytest.mark.dds
def test_bad_parameters_exit_2(dds_env, processes, tmp_path: Path):
    camera = processes.python(_camera_args(encoding="yuv422"), dds_env)
    text, _ = camera.communicate(timeout=60)
    assert camera.returncode == 2 and "encoding" in text
    missing = processes.python(_camera_args(source=str(tmp_path / "missing.mp4")), dds_env)
    text, _ = missing.communicate(timeout=60)
    assert missing.returncode == 2 and "does not exist" in text


@pytest.fixture
def restored_signal_handlers():
    """run_tool_node installs SIGINT/SIGTERM handlers (a StopFlag): put pytest's back."""
    import signal

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


class _StubNode:
    destroyed = 0

    def destroy_node(self) -> None:
        _StubNode.destroyed += 1


@pytest.mark.parametrize(
    ("error", "code"),
    [(samples.SamplesNotFoundError("no photos"), 1), (ValueError("bad rate"), 2)],
)
def test_tool_node_start_errors_give_their_exit_code(restored_signal_handlers, error, code, capfd):
    """A start-up error listed for the helper nodes is one 'cannot start' line and its exit code
    (SamplesNotFoundError is a FileNotFoundError, not a ValueError: the camera's 1, not 2), and
    rclpy is shut down after it."""
    import rclpy

    from sfs_ros.ros.tool_node import run_tool_node

    def fail() -> _StubNode:
        raise error

    start_errors = {samples.SamplesNotFoundError: 1, ValueError: 2}
    assert run_tool_node(["x"], "demo_camera", fail, lambda node, stop: 0, start_errors) == code
    assert f"cannot start: {error}" in capfd.readouterr().err
    assert not rclpy.ok()


def test_tool_node_returns_the_run_code_and_always_cleans_up(restored_signal_handlers):
    """The run function's code is the exit code; the node is destroyed and rclpy shut down
    also when the run raises (an error that is not a start-up error propagates)."""
    import rclpy

    from sfs_ros.ros.tool_node import run_tool_node

    before = _StubNode.destroyed
    seen = []

    def run(node: _StubNode, stop: object) -> int:
        seen.append((rclpy.ok(), bool(stop)))
        return 7

    assert run_tool_node(["x"], "recorder", _StubNode, run, {ValueError: 2}) == 7
    assert seen == [(True, False)] and _StubNode.destroyed == before + 1 and not rclpy.ok()

    def broken(node: _StubNode, stop: object) -> int:
        raise RuntimeError("spin failed")

    with pytest.raises(RuntimeError, match="spin failed"):
        run_tool_node(["x"], "recorder", _StubNode, broken, {ValueError: 2})
    assert _StubNode.destroyed == before + 2 and not rclpy.ok()
    with pytest.raises(KeyError):  # not a start-up error: propagates, nothing is logged
        run_tool_node(["x"], "recorder", lambda: {}["missing"], run, {ValueError: 2})
    assert not rclpy.ok()
