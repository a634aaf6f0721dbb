"""sfs-bench runs end to end on tiny sizes and writes a well-formed table and last line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_bench_tiny_run(tmp_path, fastsam_pt, segformer_dir):
    out = tmp_path / "BENCH.md"
    args = [
        sys.executable,
        "-m",
        "sfs_ros.cli.bench",
        "--size", "96x64",
        "--imgsz", "64",
        "--backends", "torch",
        "--frames", "2",
        "--warmup", "0",
        "--threads", "2",
        "--fastsam", str(fastsam_pt),
        "--closed-set", str(segformer_dir),
        "--output", str(out),
    ]  # fmt: skip
    # A peer planted in the working directory must not run: the peer comes from the package.
    planted = tmp_path / "bench"
    planted.mkdir()
    marker = tmp_path / "planted_peer_ran"
    (planted / "peer_pipeline.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        args, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not marker.exists(), "sfs-bench ran bench/peer_pipeline.py from the working directory"
    last = proc.stdout.strip().splitlines()[-1]
    assert re.fullmatch(
        r"ours/floor=\d+\.\d\d peer/ours=\d+\.\d\d fps=\d+\.\d\d rss_gb=\d+\.\d\d", last
    ), last
    text = out.read_text()
    assert text.startswith("# Benchmarks")
    assert "`sfs-bench --size 96x64" in text and "cores" in text and "torch " in text
    rows = [line for line in text.splitlines() if line.startswith("|")]
    header, rule, *body = rows
    width = header.count("|")
    assert set(rule) <= {"|", "-"} and rule.count("|") == width
    assert [r.split("|")[1].strip() for r in body] == ["floor", "ours", "peer"]
    assert all(r.count("|") == width for r in body)
    assert "ours/floor =" in text and "peer/ours =" in text


def test_open_vocab_on_off_bench_in_process(tmp_path, fastsam_pt, segformer_dir, tiny_clip_name):
    from sfs_ros.cli.bench import main

    out = tmp_path / "BENCH.md"
    argv = [
        "--open-vocab", tiny_clip_name,
        "--open-vocab-rate", "50",
        "--size", "96x64",
        "--imgsz", "64",
        "--backends", "torch",
        "--frames", "8",
        "--threads", "2",
        "--fastsam", str(fastsam_pt),
        "--closed-set", str(segformer_dir),
        "--output", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    text = out.read_text()
    assert f"`sfs-bench --open-vocab {tiny_clip_name}" in text
    rows = [line for line in text.splitlines() if line.startswith(("| on ", "| off "))]
    assert [row.split("|")[1].strip() for row in rows] == ["off", "on"]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == "8"  # frames per mode
        assert float(cells[2]) > 0 and float(cells[4]) > 0
    passes = int(re.search(r"CLIP passes completed while on: (\d+)", text).group(1))
    assert passes >= 1


def test_gpu_check_plumbing_on_the_cpu(tmp_path, fastsam_pt, segformer_dir, capsys):
    """The GPU check's whole path, run on the CPU (no GPU here): rows for fp32 and fp16, parity
    with the CPU reference (identical on the same device), a summary line, the table."""
    from sfs_ros.cli.bench import main

    out = tmp_path / "BENCH.md"
    argv = [
        "--gpu", "--gpu-device", "cpu",
        "--size", "96x64",
        "--imgsz", "64",
        "--frames", "1",
        "--warmup", "0",
        "--threads", "2",
        "--fastsam", str(fastsam_pt),
        "--closed-set", str(segformer_dir),
        "--output", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(
        r"fps_64_fp32=[\d.]+ fps_64_fp16=[\d.]+ paper_speedup=[\d.]+", last
    ), last
    text = out.read_text()
    assert "## GPU check" in text and "CPU (plumbing run" in text
    rows = [line for line in text.splitlines() if line.startswith("| 64 |")]
    assert [r.split("|")[2].strip() for r in rows] == ["fp32", "fp16"]
    assert all(r.strip().endswith("100.00% |") for r in rows)  # CPU vs CPU: identical labels
