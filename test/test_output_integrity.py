# SPDX-License-Identifier: AGPL-3.0-or-later
"""Nothing lost, nothing overwritten: sfs-segment and sfs-eval under output and input faults.

One batch run (module fixture) mixes colliding names, bad inputs and a planted symlink; the
other tests provoke a full disk (RLIMIT_FSIZE) and read-only folders (a read-only bind mount
in a private mount namespace).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from sfs_ros.cli.inputs import InputError, assign_stems
from sfs_ros.io_safety import OutputWriteError, atomic_write_bytes, atomic_write_image

REPO = Path(__file__).resolve().parents[1]


def _cli(
    module: str, args: list[str], *, cwd: Path = REPO, preexec=None, wrap: list[str] = ()
) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [*wrap, sys.executable, "-m", module, *args],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        preexec_fn=preexec,
    )


def _noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def _video(path: Path, frames: int) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), 30 * i, np.uint8))
    writer.release()


# ----------------------------------------------------------------------- unit: naming
def test_colliding_inputs_get_distinct_stems(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    files = [
        tmp_path / "a" / "x.png",
        tmp_path / "b" / "x.png",
        tmp_path / "y.png",
        tmp_path / "y.jpg",
        tmp_path / "clip.avi",
        tmp_path / "clip_000000.png",
        tmp_path / "solo.png",
    ]
    stems = [item.stem for item in assign_stems(files)]
    assert stems == [
        "a__x_png",
        "b__x_png",
        "y_png",
        "y_jpg",
        "clip_avi",
        "clip_000000_png",
        "solo",
    ]


def test_unresolvable_collision_is_refused_naming_both_inputs(tmp_path):
    (tmp_path / "a").mkdir()
    # a/x.png and a/x.jpg clash (x) and become a__x_png / a__x_jpg; a file really named
    # a__x_png.png then still clashes with the first one.
    files = [tmp_path / "a" / "x.png", tmp_path / "a__x_png.png", tmp_path / "a" / "x.jpg"]
    with pytest.raises(InputError, match=r"inputs '.*' and '.*' would write the same output"):
        assign_stems(files)


# -------------------------------------------------------------------- unit: atomic writes
def test_atomic_write_replaces_a_symlink_instead_of_following_it(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "legend.json").symlink_to(outside)
    atomic_write_bytes(out / "legend.json", b"{}")
    assert outside.read_text() == "precious"
    assert not (out / "legend.json").is_symlink()
    assert (out / "legend.json").read_bytes() == b"{}"


def test_unencodable_image_is_an_error_not_a_missing_file(tmp_path):
    with pytest.raises(OutputWriteError, match="could not encode"):
        atomic_write_image(tmp_path / "bad.png", np.zeros((4, 4, 3), np.float64))
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ one mixed batch run
@pytest.fixture(scope="module")
def batch(tmp_path_factory, test_params_file):
    """Colliding names, five kinds of bad input and a planted symlink, in one sfs-segment run."""
    root = tmp_path_factory.mktemp("batch")
    inp = root / "in"
    for sub in ("a", "b"):
        (inp / sub).mkdir(parents=True)
    cv2.imwrite(str(inp / "a" / "x.png"), _noise(40, 56, 1))
    cv2.imwrite(str(inp / "b" / "x.png"), _noise(48, 40, 2))
    cv2.imwrite(str(inp / "y.png"), _noise(32, 48, 3))
    cv2.imwrite(str(inp / "y.jpg"), _noise(36, 44, 4))
    _video(inp / "clip.avi", 2)
    cv2.imwrite(str(inp / "clip_000000.png"), _noise(30, 30, 5))
    ok_png = cv2.imencode(".png", _noise(40, 40, 6))[1].tobytes()
    (inp / "corrupt.png").write_bytes(ok_png[: len(ok_png) // 3])
    (inp / "empty.png").write_bytes(b"")
    (inp / "text.jpg").write_text("this is not a JPEG\n")
    (inp / "noframes.avi").write_bytes(b"RIFF\x00\x00\x00\x00AVI junk")
    cv2.imwrite(str(inp / "zz_last.png"), _noise(24, 24, 7))
    out = root / "out"
    out.mkdir()
    outside = root / "outside.png"
    outside.write_bytes(b"not yours")
    (out / "zz_last_label.png").symlink_to(outside)
    args = [str(inp / "a"), str(inp / "b"), str(inp), "-o", str(out)]
    # --overwrite: the planted link has an output's name, which alone refuses the folder
    # (test_cli_segment.py); here the write over it must replace the link, not follow it
    args += ["--config", str(test_params_file), "--no-progress", "--overwrite"]
    proc = _cli("sfs_ros.cli", ["segment", *args])
    return proc, out, outside


EXPECTED_FRAMES = {
    "a__x_png": (40, 56),
    "b__x_png": (48, 40),
    "y_png": (32, 48),
    "y_jpg": (36, 44),
    "clip_avi_000000": (48, 64),
    "clip_avi_000001": (48, 64),
    "clip_000000_png": (30, 30),
    "zz_last": (24, 24),
}


def test_name_collisions_never_overwrite_and_timings_use_the_same_keys(batch):
    """Issue item 2: a/x.png + b/x.png, y.png + y.jpg, clip.avi frame 0 + clip_000000.png."""
    _, out, _ = batch
    for stem, size in EXPECTED_FRAMES.items():
        label = cv2.imread(str(out / f"{stem}_label.png"), cv2.IMREAD_UNCHANGED)
        assert label is not None and label.shape == size and label.dtype == np.uint16, stem
        for kind in ("color", "overlay"):
            assert cv2.imread(str(out / f"{stem}_{kind}.png")).shape == (*size, 3), (stem, kind)
    timings = json.loads((out / "timings.json").read_text())
    names = [t["frame"] for t in timings]
    assert sorted(names) == sorted(EXPECTED_FRAMES) and len(set(names)) == len(names)
    assert {t["frame"]: t["input"] for t in timings}["b__x_png"].endswith("b/x.png")
    assert not any(p.name.endswith(".tmp") for p in out.iterdir())


def test_bad_inputs_are_skipped_listed_and_make_the_exit_status_non_zero(batch):
    """Issue item 7: corrupt PNG, 0-byte file, text named .jpg, 0-frame video."""
    proc, out, _ = batch
    assert proc.returncode == 1, proc.stderr[-2000:]
    summary = proc.stderr[proc.stderr.index("sfs-segment: 4 input(s) failed:") :]
    for name in ("corrupt.png", "empty.png", "text.jpg", "noframes.avi"):
        assert name in summary, name
    assert "empty (0 bytes)" in summary
    # inputs after the bad ones were still processed (sorted: zz_last comes last)
    assert (out / "zz_last_label.png").is_file()
    assert "8 frame(s)" in proc.stdout


def test_symlink_in_the_output_folder_is_replaced_not_followed(batch):
    """Issue item 8: a planted link must not redirect a write outside the output folder."""
    _, out, outside = batch
    assert outside.read_bytes() == b"not yours"
    assert not (out / "zz_last_label.png").is_symlink()


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="needs RLIMIT_FSIZE")
def test_disk_full_stops_with_an_error_and_leaves_no_partial_files(tmp_path, test_params_file):
    """Issue item 1: imwrite's False was ignored; 'N frame(s) → out' and exit 0 on a full disk.

    RLIMIT_FSIZE makes every write past 60 KB fail (EFBIG), like a nearly full disk.
    """
    inp = tmp_path / "in"
    inp.mkdir()
    for i in range(3):
        cv2.imwrite(str(inp / f"img{i}.png"), _noise(160, 200, i))
    out = tmp_path / "out"
    limit = 60_000

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    args = ["segment", str(inp), "-o", str(out), "--config", str(test_params_file)]
    proc = _cli("sfs_ros.cli", [*args, "--no-progress"], preexec=small_disk)
    assert proc.returncode == 1, proc.stdout + proc.stderr[-2000:]
    assert "frame(s) →" not in proc.stdout
    assert "could not write" in proc.stderr and "_overlay.png" in proc.stderr
    assert "stopped after 0 frame(s) saved" in proc.stderr
    leftovers = sorted(p.name for p in out.iterdir())
    assert all(p.stat().st_size > 0 for p in out.iterdir()), leftovers
    assert not any(n.endswith(".tmp") for n in leftovers), leftovers
    assert "img0_overlay.png" not in leftovers


def _read_only_mount(folder: Path) -> list[str]:
    """A command prefix that runs the CLI with ``folder`` mounted read-only (private mounts)."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare for a read-only bind mount")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("mount namespaces are not permitted here")
    script = f'mount --bind "{folder}" "{folder}" && mount -o remount,bind,ro "{folder}" && '
    return ["unshare", "-m", "bash", "-c", script + 'exec "$0" "$@"']


def test_read_only_output_folder_is_refused_before_models_load(tmp_path):
    """Issue item 8: a read-only folder was found only after every frame was computed."""
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), _noise(16, 16))
    ro = tmp_path / "ro"
    ro.mkdir()
    # A missing model would fail at load: exit 2 + the folder message proves we stop before.
    args = ["segment", str(image), "-o", str(ro), "--set", "fastsam.model=/nonexistent/x.pt"]
    proc = _cli("sfs_ros.cli", args, wrap=_read_only_mount(ro))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"output folder '{ro}' is not writable" in proc.stderr
    assert "read-only file system" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_output_path_that_is_a_file_is_refused(tmp_path):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), _noise(16, 16))
    proc = _cli("sfs_ros.cli", ["segment", str(image), "-o", str(image)])
    assert proc.returncode == 2
    assert "exists and is not a folder" in proc.stderr


def test_read_only_eval_out_is_a_clear_error(tmp_path):
    """Issue item 8: a read-only sfs-eval --out gave a traceback."""
    ro = tmp_path / "ro"
    ro.mkdir()
    args = ["--dataset", "ade20k", "--root", str(tmp_path / "nodata"), "--predictions"]
    args += [str(tmp_path), "--out", str(ro)]
    proc = _cli("sfs_ros.evaluation.cli", args, wrap=_read_only_mount(ro))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"sfs-eval: error: output folder '{ro}' is not writable" in proc.stderr
    assert "Traceback" not in proc.stderr
