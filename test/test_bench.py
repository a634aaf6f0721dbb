# SPDX-License-Identifier: AGPL-3.0-or-later
"""sfs-bench: subcommand parsing, the one report writer (--append), the pipeline run's table and
last line, soak accounting, the open-vocab and GPU plumbing, import order, and that the bench's
``ours`` and the node publish through the same function."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from sfs_ros.bench import cli, report
from sfs_ros.bench.soak import PIPELINE_ERROR, SoakResult, passed, run_soak

REPO = Path(__file__).resolve().parents[1]
BENCH_MODULES = (
    "sfs_ros.bench.cli",
    "sfs_ros.bench.clip",
    "sfs_ros.bench.closed_set",
    "sfs_ros.bench.gpu",
    "sfs_ros.bench.inputs",
    "sfs_ros.bench.machine",
    "sfs_ros.bench.open_vocab",
    "sfs_ros.bench.peer",
    "sfs_ros.bench.pipeline",
    "sfs_ros.bench.report",
    "sfs_ros.bench.soak",
)
LAST_LINE = r"ours/floor=\d+\.\d\d peer/ours=\d+\.\d\d fps=\d+\.\d\d rss_gb=\d+\.\d\d"


def _subprocess_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


# ------------------------------------------------------------------------------ modules
def test_every_bench_module_is_listed_here():
    package = REPO / "sfs_ros" / "bench"
    found = {f"sfs_ros.bench.{p.stem}" for p in package.glob("*.py") if not p.stem.startswith("_")}
    assert found == set(BENCH_MODULES)


@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_bench_modules_import_in_a_fresh_interpreter_in_either_order(order):
    """No import cycle: a cycle fails when its modules are imported in one of the orders."""
    modules = BENCH_MODULES if order == "forward" else tuple(reversed(BENCH_MODULES))
    code = "".join(f"import {m}\n" for m in modules)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_subprocess_env(),
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_each_bench_module_imports_alone_in_a_fresh_interpreter():
    code = (
        "import subprocess, sys\n"
        f"for m in {BENCH_MODULES!r}:\n"
        "    r = subprocess.run([sys.executable, '-c', 'import ' + m])\n"
        "    if r.returncode: sys.exit(m)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_subprocess_env(),
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_the_old_benchmark_modules_are_gone():
    for old in ("sfs_ros/cli/bench.py", "sfs_ros/cli/bench_open_vocab.py",
                "sfs_ros/cli/bench_gpu.py", "sfs_ros/bench_peer.py"):  # fmt: skip
        assert not (REPO / old).exists(), old


def test_no_bench_module_locates_files_relative_to_itself():
    """The installed script never reads a source tree: nothing is found from ``__file__``."""
    for path in (REPO / "sfs_ros" / "bench").glob("*.py"):
        assert "__file__" not in path.read_text(), path.name


def test_console_script_points_at_the_package():
    text = (REPO / "setup.cfg").read_text()
    assert "sfs-bench = sfs_ros.bench.cli:main" in text


# ------------------------------------------------------------------------------ parsing
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], ["pipeline"]),
        (["--quick"], ["pipeline", "--quick"]),
        (["--quick", "--compare", "a=1"], ["pipeline", "--quick", "--compare", "a=1"]),
        (["clip", "ViT-B-32"], ["clip", "ViT-B-32"]),
        (["--gpu", "--gpu-device", "cpu"], ["gpu", "--gpu-device", "cpu"]),
        (["--imgsz", "320", "--gpu"], ["gpu", "--imgsz", "320"]),
        (["soak", "--frames", "3"], ["soak", "--frames", "3"]),
        (["--help"], ["--help"]),
    ],
)
def test_the_subcommand_goes_first_and_pipeline_is_the_default(argv, expected):
    assert cli.with_subcommand(argv) == expected


def _parse(argv: list[str]) -> argparse.Namespace:
    return cli.build_parser().parse_args(cli.with_subcommand(argv))


def test_subcommands_parse_their_own_options():
    args = _parse(["--quick", "--compare", "fastsam.imgsz=320", "parallel_networks=true"])
    assert (args.command, args.quick) == ("pipeline", True)
    assert args.compare == ["fastsam.imgsz=320", "parallel_networks=true"]
    assert args.append is None and args.outputs == "all" and args.size == (640, 480)
    args = _parse(["clip", "ViT-B-32", "ViT-S-16", "--size", "96x64"])
    assert (args.command, args.models, args.size) == ("clip", ["ViT-B-32", "ViT-S-16"], (96, 64))
    args = _parse(["open-vocab", "ViT-B-32", "--rate", "2"])
    assert (args.command, args.model, args.rate, args.backend, args.imgsz) == (
        "open-vocab",
        "ViT-B-32",
        2,
        None,  # the shipped preset's, resolved when the benchmark runs
        None,
    )
    args = _parse(["soak", "--seconds", "30", "--set", "fastsam.imgsz=320", "--rate", "5"])
    assert (args.command, args.seconds, args.overrides, args.rate) == (
        "soak", 30.0, ["fastsam.imgsz=320"], 5.0,
    )  # fmt: skip
    assert args.frames is None and args.window == 20
    args = _parse(["--gpu", "--gpu-device", "cpu", "--imgsz", "64"])
    assert (args.command, args.device, args.imgsz) == ("gpu", "cpu", [64])
    assert _parse(["gpu"]).device == "cuda"


def test_an_option_of_another_subcommand_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        _parse(["soak", "--compare", "a=1"])
    assert exc.value.code == 2
    assert "--compare" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["out.txt", "BENCHMARKS", "table.markdown"])
def test_append_refuses_a_file_that_is_not_markdown(tmp_path, name, capsys):
    with pytest.raises(SystemExit) as exc:
        _parse(["--quick", "--append", str(tmp_path / name)])
    assert exc.value.code == 2
    assert "not a Markdown file" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_append_refuses_a_missing_folder(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _parse(["--quick", "--append", str(tmp_path / "nowhere" / "B.md")])
    assert "does not exist" in capsys.readouterr().err
    assert _parse(["--quick", "--append", str(tmp_path / "B.MD")]).append == tmp_path / "B.MD"


# ------------------------------------------------------------------------------ report writer
def _report() -> report.Report:
    return report.Report(
        title="demo",
        command=report.command_line(["soak", "--frames", "3", "--set", "a=b c"]),
        setup=["one setup line"],
        headers=["a", "b"],
        rows=[["1", "2"], ["3", report.fmt(None)]],
        notes=["a note"],
        machine="test machine",
    )


def test_report_markdown_has_command_machine_table_and_notes():
    text = _report().markdown()
    assert text.startswith("\n## ") and text.endswith("\n")
    heading = text.splitlines()[1]
    assert heading.endswith("— demo: `sfs-bench soak --frames 3 --set 'a=b c'`")
    assert "- Machine: test machine" in text and "- one setup line" in text
    assert "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | – |" in text
    assert text.rstrip().endswith("- a note")
    with pytest.raises(ValueError, match="row of 1 cells"):
        report.Report("x", "y", headers=["a", "b"], rows=[["1"]], machine="m").markdown()


def test_publish_writes_nothing_without_append(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    block = report.publish(_report(), None, "summary=1")
    out = capsys.readouterr().out
    assert block in out and out.strip().splitlines()[-1] == "summary=1"
    assert list(tmp_path.iterdir()) == []


def test_append_adds_exactly_one_block_per_run(tmp_path, capsys):
    target = tmp_path / "B.md"
    first = report.publish(_report(), target, "summary=1")
    assert target.read_text() == report.NEW_FILE_HEADING + first
    second = report.publish(_report(), target)
    assert target.read_text() == report.NEW_FILE_HEADING + first + second
    assert target.read_text().count("\n## ") == 2
    assert "summary=1" not in target.read_text()  # the summary line is printed only
    capsys.readouterr()


# ------------------------------------------------------------------------------ pipeline
def test_quick_measures_the_shipped_preset():
    """--quick: the shipped fastsam.imgsz and the backend that `backend: auto` resolves to."""
    from sfs_ros.bench.pipeline import configurations
    from sfs_ros.models.backends import resolve_backend
    from sfs_ros.params import defaults

    imgszs, backends = configurations(_parse(["--quick"]))
    assert defaults()["backend"] == "auto"
    assert imgszs == [defaults()["fastsam.imgsz"]]
    assert backends == [resolve_backend("auto", "cpu", False)[0]]
    imgszs, backends = configurations(_parse(["--quick", "--imgsz", "64", "--backends", "torch"]))
    assert (imgszs, backends) == ([64], ["torch"])


def test_pipeline_tiny_run_appends_one_block_and_prints_the_summary_last(
    tmp_path, fastsam_pt, segformer_dir
):
    out = tmp_path / "BENCH.md"
    args = [
        sys.executable,
        "-m",
        "sfs_ros.bench",
        "--quick",
        "--size", "96x64",
        "--imgsz", "64",
        "--backends", "torch",
        "--frames", "2",
        "--warmup", "0",
        "--threads", "2",
        "--fastsam", str(fastsam_pt),
        "--closed-set", str(segformer_dir),
        "--compare", "fastsam.mask_resolution=input",
        "--append", str(out),
    ]  # fmt: skip
    # A peer planted in the working directory must not run: the peer comes from the package.
    planted = tmp_path / "bench"
    planted.mkdir()
    marker = tmp_path / "planted_peer_ran"
    (planted / "peer_pipeline.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    (planted / "peer.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    proc = subprocess.run(
        args,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_subprocess_env(),
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not marker.exists(), "sfs-bench ran a peer from the working directory"
    last = proc.stdout.strip().splitlines()[-1]
    assert re.fullmatch(LAST_LINE, last), last
    assert sorted(p.name for p in tmp_path.iterdir()) == ["BENCH.md", "bench"]
    text = out.read_text()
    assert text.startswith("# Benchmarks")
    assert text.count("\n## ") == 1
    assert "pipeline: `sfs-bench --quick --size 96x64" in text
    assert "cores" in text and "torch " in text and "OutputEncoder.encode" in text
    rows = [line for line in text.splitlines() if line.startswith("|")]
    header, rule, *body = rows
    width = header.count("|")
    assert "| outputs |" in header and "render" not in header
    assert set(rule) <= {"|", "-"} and rule.count("|") == width
    assert [r.split("|")[1].strip() for r in body] == [
        "floor", "ours", "ours fastsam.mask_resolution=input", "peer",
    ]  # fmt: skip
    assert all(r.count("|") == width for r in body)
    assert "ours/floor =" in text and "peer/ours =" in text and "x the time of ours" in text
    assert re.search(r"ours/floor = \d+\.\d\d \(per frame round: \d+\.\d\d\)", text)
    assert text.rstrip().endswith("fps)")  # the block holds no summary line
    assert last not in text


def test_paired_ratio_divides_the_samples_of_each_frame_round():
    """A machine that slows down for two rounds moves both samples of a round: the paired
    median stays at the true 1.2 where the ratio of the medians reads 1.5."""
    from sfs_ros.bench.pipeline import Run, paired_ratio

    floor = Run("floor", "openvino", 640, samples=[{"total": t} for t in (100, 100, 100, 200, 200)])
    ours = Run("ours", "openvino", 640, samples=[{"total": t} for t in (120, 120, 240, 240, 240)])
    ours.samples[2]["total"] = 150  # round 3: ours already slow, the floor not yet (1.5)
    assert paired_ratio(ours, floor) == pytest.approx(1.2)
    assert ours.stat("total", 50) / floor.stat("total", 50) == pytest.approx(1.5)
    assert paired_ratio(ours, Run("floor", "openvino", 640)) is None


def _spy_encode(monkeypatch) -> list[tuple]:
    """Record every call of OutputEncoder.encode: (result, rgb, returned messages)."""
    from sfs_ros.ros.outputs import OutputEncoder

    calls = []
    original = OutputEncoder.encode

    def spy(self, result, rgb, header, **kwargs):
        messages = original(self, result, rgb, header, **kwargs)
        calls.append((result, rgb, messages, kwargs))
        return messages

    monkeypatch.setattr(OutputEncoder, "encode", spy)
    return calls


def test_bench_ours_and_the_node_publish_through_the_same_function(monkeypatch, pipeline):
    """The bench's ``ours`` calls OutputEncoder.encode, and the node's _publish publishes
    exactly what that function returns: the same messages on the same result."""
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from sfs_ros.bench.inputs import rgb8_message
    from sfs_ros.bench.pipeline import make_ours
    from sfs_ros.ros import node as node_module
    from sfs_ros.ros import outputs
    from sfs_ros.ros.diagnostics import CameraMonitor
    from sfs_ros.samples import synthetic_scene

    assert node_module.OutputEncoder is outputs.OutputEncoder
    calls = _spy_encode(monkeypatch)
    rgb = synthetic_scene(96, 64)
    make_ours(pipeline, rgb8_message(rgb), "all", 0.5)()
    assert len(calls) == 1
    result, bench_rgb, bench_msgs, kwargs = calls[0]
    assert list(bench_msgs) == list(outputs.IMAGE_OUTPUTS)
    encodings = {name: msg.encoding for name, msg in bench_msgs.items()}
    assert encodings == {
        "semantic": "mono16", "semantic_color": "rgb8", "overlay": "rgb8",
        "instances": "mono16", "legend_image": "rgb8",
    }  # fmt: skip
    assert all(isinstance(m, Image) for m in bench_msgs.values())

    class Publisher:
        def __init__(self) -> None:
            self.sent: list = []

        def get_subscription_count(self) -> int:
            return 1

        def publish(self, msg) -> None:
            self.sent.append(msg)

    cam = node_module._Camera(spec=None, decode=None, monitor=CameraMonitor())
    for attr in ("semantic", "color", "overlay", "instances", "legend_image"):
        setattr(cam, attr, Publisher())
    cam.legend_key = (pipeline.registry.revision, "camera")
    fake_node = types.SimpleNamespace(
        _publish_lock=node_module.threading.Lock(),
        _closing=False,
        _outputs=outputs.OutputEncoder(pipeline.registry, Image),
        _settings=types.SimpleNamespace(get={"overlay_alpha": kwargs["overlay_alpha"]}.get),
        pipeline=pipeline,
        get_clock=lambda: types.SimpleNamespace(now=lambda: types.SimpleNamespace(nanoseconds=0)),
    )
    header = Header(frame_id="camera")
    assert node_module.SfsNode._publish(fake_node, cam, header, bench_rgb, result) is True
    assert len(calls) == 2  # the node called the same (spied) function
    published = {name: pub.sent for name, pub in cam.image_publishers().items()}
    assert all(len(sent) == 1 for sent in published.values())
    for name, sent in published.items():
        ours = bench_msgs[name]
        assert sent[0] is calls[1][2][name]
        assert (sent[0].encoding, sent[0].height, sent[0].width, sent[0].step) == (
            ours.encoding, ours.height, ours.width, ours.step,
        )  # fmt: skip
        assert bytes(sent[0].data) == bytes(ours.data), name
    semantic = np.frombuffer(bytes(published["semantic"][0].data), np.uint16).reshape(64, 96)
    assert np.array_equal(semantic, result.label_map)


def test_output_encoder_builds_semantic_always_and_others_on_request(pipeline):
    from types import SimpleNamespace

    from sfs_ros.ros.outputs import OutputEncoder
    from sfs_ros.samples import synthetic_scene

    rgb = synthetic_scene(96, 64)
    result = pipeline.process(rgb)
    encoder = OutputEncoder(pipeline.registry, SimpleNamespace)
    header = SimpleNamespace(frame_id="f")
    only = encoder.encode(result, rgb, header, overlay_alpha=0.5, wanted=())
    assert list(only) == ["semantic"] and only["semantic"].header is header
    some = encoder.encode(result, rgb, header, overlay_alpha=0.5, wanted=["instances"])
    assert list(some) == ["semantic", "instances"]
    instances = np.frombuffer(some["instances"].data, np.uint16).reshape(64, 96)
    assert np.array_equal(instances, result.instance_map)
    with pytest.raises(ValueError, match="unknown outputs"):
        encoder.encode(result, rgb, header, overlay_alpha=0.5, wanted=["colour"])


# ------------------------------------------------------------------------------ soak
class _FlakyPipeline:
    """The test pipeline, failing on every second call (as a model error would)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.registry = inner.registry
        self.calls = 0

    def process(self, rgb):
        self.calls += 1
        if self.calls % 2 == 0:
            raise RuntimeError("injected model failure")
        return self.inner.process(rgb)


def test_soak_accounts_for_every_frame(pipeline):
    """in = processed + dropped by reason: pipeline failures and undecodable frames."""
    from sfs_ros.bench.inputs import rgb8_message
    from sfs_ros.samples import synthetic_scene

    good = rgb8_message(synthetic_scene(96, 64))
    bad = rgb8_message(synthetic_scene(96, 64))
    bad.data = bytes(bad.data)[:100]  # short data: a decode drop, as in the node
    flaky = _FlakyPipeline(pipeline)
    result = run_soak(flaky, [good, good, bad], frames=7, seconds=None, warmup=0)
    # frames: ok, fail, bad, ok, fail, bad, ok
    assert (result.frames_in, result.processed) == (7, 3)
    assert result.dropped == {PIPELINE_ERROR: 2, "short_data": 2}
    assert result.balanced
    assert len(result.latencies_ms) == 3 and all(v > 0 for v in result.latencies_ms)
    assert flaky.calls == 5
    assert result.rss_start_mb is not None and result.rss_end_mb is not None


def test_soak_needs_a_limit(pipeline):
    with pytest.raises(ValueError, match="frames or seconds"):
        run_soak(pipeline, [], frames=None, seconds=None)


def test_soak_drift_and_verdict():
    result = SoakResult(
        frames_in=10, processed=10, dropped={}, balanced=True,
        latencies_ms=[10.0] * 5 + [20.0] * 5, rss_start_mb=100.0, rss_end_mb=150.0,
    )  # fmt: skip
    drift = result.drift(3)
    assert (drift["p50_first"], drift["p50_last"], drift["ratio"]) == (10.0, 20.0, 2.0)
    assert result.drift(50)["p50_first"] == 10.0  # windows shrink to the halves of a short run
    assert result.rss_growth_mb == 50.0
    assert passed(result, 60.0) and not passed(result, 40.0)
    result.balanced = False
    assert not passed(result, 60.0)


def test_soak_command_runs_the_preset_and_writes_nothing(
    tmp_path, monkeypatch, capsys, fastsam_pt, segformer_dir
):
    """End to end in process: the shipped preset with the test models, from a clean folder."""
    monkeypatch.chdir(tmp_path)
    argv = [
        "soak",
        "--frames", "4",
        "--warmup", "0",
        "--size", "96x64",
        "--imgsz", "64",
        "--threads", "2",
        "--fastsam", str(fastsam_pt),
        "--closed-set", str(segformer_dir),
        "--set", "backend=torch",
    ]  # fmt: skip
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    last = out.strip().splitlines()[-1]
    match = re.fullmatch(
        r"frames_in=(\d+) processed=(\d+) dropped=(\d+) rss_growth_mb=-?[\d.]+ "
        r"p50_first=[\d.]+ p50_last=[\d.]+",
        last,
    )
    assert match, last
    assert [int(v) for v in match.groups()] == [4, 4, 0]
    assert "soak: `sfs-bench soak --frames 4" in out and "balanced" in out
    assert "backend torch → torch" in out
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------ open vocab, GPU
def test_closed_set_bench_times_both_heads_and_they_agree(tmp_path, segformer_dir):
    """``sfs-bench closed-set``: transformers' head and the folded head, on torch and OpenVINO
    f32, in one table; f32 variants give transformers' classes on every pixel."""
    pytest.importorskip("openvino")
    out = tmp_path / "BENCH.md"
    argv = [
        "closed-set",
        "--closed-set", str(segformer_dir),
        "--size", "96x64",
        "--frames", "2",
        "--precisions", "f32",
        "--append", str(out),
    ]  # fmt: skip
    assert cli.main(argv) == 0
    text = out.read_text()
    assert text.count("\n## ") == 1
    rows = [line for line in text.splitlines() if line.startswith(("| transformers", "| folded"))]
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    assert sorted((c[0], c[1], c[2]) for c in cells) == [
        ("folded", "openvino", "f32"),
        ("folded", "torch", "f32"),
        ("transformers", "openvino", "f32"),
        ("transformers", "torch", "f32"),
    ]
    for c in cells:
        assert float(c[3]) > 0
        assert c[5] == "100.00%", c


def test_open_vocab_on_off_bench_in_process(tmp_path, fastsam_pt, segformer_dir, tiny_clip_name):
    """Runs off, on per --clip-precision and --masks-per-pass value, off again; each row with
    its CLIP precision, frames, rates, CLIP passes and the labelled share; the last pass's mask
    count respects the budget."""
    out = tmp_path / "BENCH.md"
    argv = [
        "open-vocab", tiny_clip_name,
        "--rate", "50",
        "--masks-per-pass", "2", "1000",
        "--clip-precision", "f32", "bf16",
        "--size", "96x64",
        "--imgsz", "64",
        "--frames", "8",
        "--threads", "2",
        "--fastsam", str(fastsam_pt),
        "--closed-set", str(segformer_dir),
        "--append", str(out),
    ]  # fmt: skip
    assert cli.main(argv) == 0
    text = out.read_text()
    assert text.count("\n## ") == 1
    assert f"`sfs-bench open-vocab {tiny_clip_name}" in text
    rows = [line for line in text.splitlines() if line.startswith(("| on ", "| off "))]
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    runs = [(c[0], c[1], c[2]) for c in cells]
    assert runs == [
        ("off", "–", "–"),
        ("on", "f32", "2"),
        ("on", "f32", "1000"),
        ("on", "bf16", "2"),
        ("on", "bf16", "1000"),
        ("off", "–", "–"),
    ]
    for c in cells:
        assert c[3] == "8"  # frames per run
        assert float(c[4]) > 0 and float(c[6]) > 0
    masks = int(re.search(r"random weights, (\d+) masks per frame", text).group(1))
    assert masks > 4
    for c in cells[1:5]:
        assert int(c[7]) >= 1  # the pass each 'on' run started is waited for and counted
        assert re.fullmatch(r"\d+%", c[9])
    assert int(cells[1][8]) == int(cells[3][8]) == 2
    assert int(cells[2][8]) == int(cells[4][8]) == masks  # room for every mask
    assert f"ms over {masks} masks)" in text
    # no --backend: the shipped preset's backend as it resolves on this CPU, named in the report
    from sfs_ros.bench.inputs import shipped
    from sfs_ros.models.backends import resolve_backend

    assert f"backend {resolve_backend(shipped('backend'), 'cpu', False)[0]}," in text


def test_gpu_check_plumbing_on_the_cpu(tmp_path, fastsam_pt, segformer_dir, capsys):
    """The GPU check's whole path (through the ``--gpu`` alias), run on the CPU: fp32 and fp16
    rows for the shipped setting and for the paper's (its own frame size, masks at the input
    resolution), parity with the CPU reference (identical on the same device), and a summary
    line whose paper speed-up comes from the paper rows alone."""
    out = tmp_path / "BENCH.md"
    argv = [
        "--gpu", "--gpu-device", "cpu",
        "--size", "96x64",
        "--imgsz", "64",
        "--paper-size", "160x80",
        "--paper-imgsz", "96",
        "--frames", "1",
        "--warmup", "0",
        "--threads", "2",
        "--fastsam", str(fastsam_pt),
        "--closed-set", str(segformer_dir),
        "--append", str(out),
    ]  # fmt: skip
    assert cli.main(argv) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    pattern = (
        r"fps_64_fp32=([\d.]+) fps_64_fp16=([\d.]+) "
        r"fps_paper_fp32=([\d.]+) fps_paper_fp16=([\d.]+) paper_speedup=([\d.]+)"
    )
    match = re.fullmatch(pattern, last)
    assert match, last
    paper_fps = [float(match.group(3)), float(match.group(4))]
    assert float(match.group(5)) == pytest.approx(max(paper_fps) * 0.08, abs=0.06)
    text = out.read_text()
    assert "GPU check: `sfs-bench --gpu" in text and "CPU (plumbing run" in text
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| shipped |")]
    rows += [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| paper |")]
    cells = [[c.strip() for c in row] for row in rows]
    assert [row[:5] for row in cells] == [
        ["shipped", "96×64", "64", "edges", "fp32"],
        ["shipped", "96×64", "64", "edges", "fp16"],
        ["paper", "160×80", "96", "input", "fp32"],
        ["paper", "160×80", "96", "input", "fp16"],
    ]
    assert all(row[-1] == "100.00%" for row in cells)  # CPU vs CPU: identical labels


def test_gpu_check_without_the_paper_setting_says_so(tmp_path, fastsam_pt, segformer_dir, capsys):
    """``--no-paper`` runs the shipped setting alone and reports no paper speed-up."""
    argv = [
        "gpu", "--device", "cpu", "--no-paper",
        "--size", "96x64", "--imgsz", "64", "--frames", "1", "--warmup", "0",
        "--fastsam", str(fastsam_pt), "--closed-set", str(segformer_dir),
    ]  # fmt: skip
    assert cli.main(argv) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"fps_64_fp32=[\d.]+ fps_64_fp16=[\d.]+ paper_speedup=n/a", last), last


def _dummy_wheel(folder: Path) -> Path:
    """A minimal pure-Python wheel (one empty package) for the install step of gpu_check.sh."""
    import zipfile

    folder.mkdir()
    wheel = folder / "sfs_dummy-0.1-py3-none-any.whl"
    files = {
        "sfs_dummy/__init__.py": "",
        "sfs_dummy-0.1.dist-info/METADATA": (
            "Metadata-Version: 2.1\nName: sfs-dummy\nVersion: 0.1\n"
        ),
        "sfs_dummy-0.1.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    files["sfs_dummy-0.1.dist-info/RECORD"] = "".join(f"{name},,\n" for name in files) + (
        "sfs_dummy-0.1.dist-info/RECORD,,\n"
    )
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return folder


def test_gpu_check_script_runs_the_check_from_the_checkout(tmp_path, fastsam_pt, segformer_dir):
    """bench/gpu_check.sh installs SFS_WHEELS into a temporary folder and runs the check of
    this checkout (here on the CPU); an SFS_WHEELS folder without wheels is refused."""
    script = Path(__file__).resolve().parents[1] / "bench" / "gpu_check.sh"
    env = {**os.environ, "PYTHON": sys.executable, "SFS_WHEELS": str(_dummy_wheel(tmp_path / "w"))}
    args = [
        "--device", "cpu", "--no-paper", "--size", "96x64", "--imgsz", "64",
        "--frames", "1", "--warmup", "0",
        "--fastsam", str(fastsam_pt), "--closed-set", str(segformer_dir),
    ]  # fmt: skip
    done = subprocess.run(
        ["bash", str(script), *args],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "gpu_check: installed 1 wheel(s)" in done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"fps_64_fp32=[\d.]+ fps_64_fp16=[\d.]+ paper_speedup=n/a", last), last

    (tmp_path / "empty").mkdir()
    env["SFS_WHEELS"] = str(tmp_path / "empty")
    refused = subprocess.run(
        ["bash", str(script)], check=False, env=env, capture_output=True, text=True
    )
    assert refused.returncode == 2
    assert "no .whl files in SFS_WHEELS" in refused.stderr


def test_floor_pass_of_a_processor_model_is_its_whole_call(tmp_path, segformer_dir):
    """The floor runs a SegFormer's network pass on its prepared tensor, and a Mask2Former
    (no separable pass) through its whole call, instead of failing."""
    from sfs_ros.bench.pipeline import _network_pass
    from sfs_ros.models.closed_set import load_segmenter
    from sfs_ros.runtime import select_device
    from sfs_ros.vocabularies import get_vocabulary
    from sfs_ros.weights import build_random_mask2former

    rgb = np.zeros((48, 64, 3), np.uint8)
    names = dict(enumerate(get_vocabulary("cityscapes").names))
    m2f = load_segmenter(
        str(build_random_mask2former(names, tmp_path / "m2f", shortest_edge=64)),
        select_device("cpu"),
    )
    index = _network_pass(m2f, rgb, (12, 16))()
    assert index.shape == (12, 16) and index.dtype == np.int32
    segformer = load_segmenter(str(segformer_dir), select_device("cpu"))
    logits = _network_pass(segformer, rgb, (12, 16))()
    assert tuple(logits.shape[:2]) == (1, len(segformer.vocabulary))


def test_bench_ours_with_overlap_times_bursts_as_the_node_runs_them(monkeypatch, pipeline):
    """overlap_frames: one sample = a burst through FrameOverlap; every frame is encoded once,
    ``total`` is the interval between finished frames and ``latency`` a frame's own time."""
    from sfs_ros.bench.inputs import rgb8_message
    from sfs_ros.bench.pipeline import OVERLAP_BURST, make_ours
    from sfs_ros.samples import synthetic_scene

    calls = _spy_encode(monkeypatch)
    timings, masks = make_ours(pipeline, rgb8_message(synthetic_scene(96, 64)), overlap=True)()
    assert len(calls) == OVERLAP_BURST
    assert masks == len(calls[-1][0].masks)
    assert {"decode", "fastsam_forward", "fastsam_post", "closed_set", "outputs"} <= set(timings)
    assert timings["total"] > 0 and timings["latency"] > 0
    # a frame cannot take less than its own stages
    assert timings["latency"] >= timings["fastsam_forward"] + timings["outputs"]


def test_bench_overlap_burst_raises_the_finishing_error(monkeypatch, pipeline):
    """A failure on the finishing thread ends the benchmark with that error, not with an
    empty burst."""
    from sfs_ros.bench.inputs import rgb8_message
    from sfs_ros.bench.pipeline import make_ours
    from sfs_ros.samples import synthetic_scene

    def broken(net):
        raise RuntimeError("finish broke")

    monkeypatch.setattr(pipeline, "finish", broken)
    step = make_ours(pipeline, rgb8_message(synthetic_scene(96, 64)), overlap=True)
    with pytest.raises(RuntimeError, match="finish broke"):
        step()


def test_clip_bench_times_crop_per_backend_and_precision(tmp_path, tiny_clip_name):
    """``sfs-bench clip``: one row per model with the crop pass in torch and on OpenVINO in
    f32 and bf16, dense mode, and the two ratios."""
    out = tmp_path / "BENCH.md"
    argv = [
        "clip", tiny_clip_name, "--size", "96x64", "--max-masks", "6", "--frames", "2",
        "--threads", "2", "--append", str(out),
    ]  # fmt: skip
    assert cli.main(argv) == 0
    text = out.read_text()
    header = next(line for line in text.splitlines() if line.startswith("| model |"))
    assert [c.strip() for c in header.strip("|").split("|")][4:] == [
        "crop torch p50 ms",
        "crop openvino f32 p50 ms",
        "crop openvino bf16 p50 ms",
        "dense torch p50 ms",
        "crop torch / dense",
        "openvino f32 / bf16",
    ]
    row = next(line for line in text.splitlines() if line.startswith(f"| {tiny_clip_name} |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert all(float(c) > 0 for c in cells[4:10]), cells
    assert "OpenVINO tower on 1 (open_vocab.num_threads)" in text
