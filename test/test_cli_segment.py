"""sfs-segment end to end, as a user runs it: a folder of images and a short video."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.models
REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "sfs_ros.cli", "segment", *args],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def _write_inputs(root: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(3)
    images = root / "images"
    images.mkdir()
    for i, (h, w) in enumerate([(72, 96), (50, 130)]):
        cv2.imwrite(str(images / f"img{i}.png"), (rng.random((h, w, 3)) * 255).astype(np.uint8))
    video = root / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (80, 64))
    for i in range(4):
        frame = np.full((64, 80, 3), 40 * i, np.uint8)
        cv2.rectangle(frame, (10 + 5 * i, 10), (40 + 5 * i, 40), (0, 200, 255), -1)
        writer.write(frame)
    writer.release()
    return images, video


def test_folder_and_video_end_to_end(tmp_path, test_params_file):
    images, video = _write_inputs(tmp_path)
    out = tmp_path / "out"
    proc = _run(
        [
            str(images),
            str(video),
            "-o",
            str(out),
            "--config",
            str(test_params_file),
            "--no-progress",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    legend = json.loads((out / "legend.json").read_text())
    legend_ids = {c["id"] for c in legend["classes"]}
    assert legend["vocabulary"] == "ade20k"
    assert len(legend_ids) == 151  # unidentified + ADE20K-150
    expected = {
        "img0": (72, 96),
        "img1": (50, 130),
        **{f"clip_{i:06d}": (64, 80) for i in range(4)},
    }
    for stem, size in expected.items():
        label = cv2.imread(str(out / f"{stem}_label.png"), cv2.IMREAD_UNCHANGED)
        assert label.dtype == np.uint16, stem
        assert label.shape == size, stem
        assert set(np.unique(label).tolist()) <= legend_ids, stem
        for kind in ("color", "overlay"):
            image = cv2.imread(str(out / f"{stem}_{kind}.png"))
            assert image.shape == (*size, 3), (stem, kind)
    timings = json.loads((out / "timings.json").read_text())
    assert [t["frame"] for t in timings] == list(expected)
    assert all(t["total"] >= t["fastsam"] > 0 for t in timings)


def test_missing_weights_offline_is_a_clear_error(tmp_path):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    proc = _run(
        [str(image), "-o", str(tmp_path / "o"), "--set", "fastsam.model=/nonexistent/FastSAM-s.pt"]
    )
    assert proc.returncode == 1
    assert "FastSAM weights '/nonexistent/FastSAM-s.pt' not found" in proc.stderr
    assert "--allow-random-weights" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.png"], "does not exist"),
        (["--set", "fastsam.conf=7"], "above the maximum"),
    ],
)
def test_bad_arguments_exit_2(tmp_path, args, message):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    base = [] if args[0] == "missing.png" else [str(image)]
    proc = _run([*base, *args, "-o", str(tmp_path / "o")])
    assert proc.returncode == 2
    assert message in proc.stderr


def test_overlapped_frames_write_the_same_outputs_as_sequential_ones(tmp_path, test_params_file):
    """overlap_frames (default on) finishes frame N while frame N+1's networks run: the label
    maps, the frame order and the legend equal those of a sequential run."""
    images, video = _write_inputs(tmp_path)
    outs = {}
    for overlap in ("true", "false"):
        out = tmp_path / f"out_{overlap}"
        proc = _run(
            [str(images), str(video), "-o", str(out), "--config", str(test_params_file),
             "--set", f"overlap_frames={overlap}", "--no-progress"]
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        outs[overlap] = out
    names = sorted(p.name for p in outs["true"].glob("*_label.png"))
    assert len(names) == 6 and names == sorted(p.name for p in outs["false"].glob("*_label.png"))
    for name in names:
        np.testing.assert_array_equal(
            cv2.imread(str(outs["true"] / name), cv2.IMREAD_UNCHANGED),
            cv2.imread(str(outs["false"] / name), cv2.IMREAD_UNCHANGED),
        )
    frames = [
        [t["frame"] for t in json.loads((outs[o] / "timings.json").read_text())] for o in outs
    ]
    assert frames[0] == frames[1]
    legends = [json.loads((outs[o] / "legend.json").read_text()) for o in outs]
    assert legends[0] == legends[1]


def test_an_earlier_run_is_never_overwritten_without_overwrite(tmp_path, test_params_file):
    """A second run into a folder with an earlier run's results is refused (exit 2, before any
    model loads, the files untouched); --overwrite replaces them with a warning. Files of
    another program in the folder do not count."""
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.full((48, 64, 3), 90, np.uint8))
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    base = [str(image), "-o", str(out), "--config", str(test_params_file), "--no-progress"]
    assert _run(base).returncode == 0  # only foreign files: accepted
    label = out / "a_label.png"
    before = label.read_bytes()
    (out / "timings.json").write_text("[]")  # marks the earlier run: must survive a refusal
    proc = _run(base)
    assert proc.returncode == 2
    assert f"output folder '{out}' already holds" in proc.stderr and "--overwrite" in proc.stderr
    assert "loaded" not in proc.stderr  # refused before the models load
    assert (out / "timings.json").read_text() == "[]" and label.read_bytes() == before
    proc = _run([*base, "--overwrite"])
    assert proc.returncode == 0, proc.stderr
    assert "--overwrite: files of the same names" in proc.stderr
    assert [t["frame"] for t in json.loads((out / "timings.json").read_text())] == ["a"]
    assert (out / "notes.txt").read_text() == "mine"
