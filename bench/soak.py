"""Soak test of the real ``sfs`` node over DDS: many small frames, memory and threads sampled.

Not part of the default test run (``test/test_reliability.py`` has a 300-frame version). It
starts ``python -m sfs_ros.node`` as a child process (random-weight FastSAM-s and SegFormer-B0
built once into a temporary folder unless ``--params-file`` is given), plays the camera
itself (one rclpy node in this process, reliable QoS, one frame in flight: publish, wait for
the output with the same stamp, next), and samples the node's ``VmRSS`` and thread count from
``/proc/<pid>/status``. At the end it stops the node with SIGTERM and times the exit.

DDS traffic must stay on this machine, so run it in a loopback-only network namespace::

    unshare -n -- bash -c 'ip link set lo up && exec .venv/bin/python bench/soak.py'

Exit status 0 when RSS growth after warm-up is below ``--max-growth-mb``, the thread count
stays constant after warm-up, every frame is accounted for, and the node exits cleanly.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def proc_status(pid: int) -> dict[str, int]:
    """``VmRSS`` (kB) and ``Threads`` of a process."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "Threads"):
            fields[key] = int(value.split()[0])
    return fields


def build_params(folder: Path, imgsz: int) -> Path:
    """Random-weight models saved like real ones, and a ROS parameter file naming them."""
    import yaml

    from sfs_ros.vocabularies import get_vocabulary
    from sfs_ros.weights import build_random_fastsam, build_random_segformer

    fastsam = build_random_fastsam("FastSAM-s.pt", folder / "FastSAM-s.pt")
    names = dict(enumerate(get_vocabulary("ade20k").names))
    # 128 px SegFormer input: the soak measures memory and threads, not model quality
    segformer = build_random_segformer(
        "segformer-b0", names, folder / "segformer-b0-ade", input_size=128
    )
    params = {
        "device": "cpu",
        "num_threads": 2,
        "fastsam": {"model": str(fastsam), "imgsz": imgsz, "conf": 0.003, "max_masks": 60},
        "closed_set": {"model": str(segformer)},
    }
    path = folder / "soak_params.yaml"
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--height", type=int, default=48)
    parser.add_argument("--imgsz", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=500, help="frames before the baseline")
    parser.add_argument("--sample-every", type=int, default=250)
    parser.add_argument("--max-growth-mb", type=float, default=50.0)
    parser.add_argument("--params-file", type=Path, help="use these models instead")
    parser.add_argument("--json", type=Path, help="write the summary here")
    args = parser.parse_args()

    if [name for _, name in socket.if_nameindex()] != ["lo"]:
        print(
            "run in a loopback-only network namespace:\n"
            "  unshare -n -- bash -c 'ip link set lo up && exec .venv/bin/python bench/soak.py'",
            file=sys.stderr,
        )
        return 2

    tmp = tempfile.TemporaryDirectory(prefix="sfs_soak_")
    params = args.params_file or build_params(Path(tmp.name), args.imgsz)
    env = dict(os.environ)
    env.update(
        ROS_DOMAIN_ID=str(40 + os.getpid() % 20),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        FASTDDS_DEFAULT_PROFILES_FILE=str(REPO / "config" / "fastdds_large_images.xml"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        SFS_CACHE_DIR=tmp.name,
        YOLO_OFFLINE="1",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE")})
    os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = env["FASTDDS_DEFAULT_PROFILES_FILE"]
    log_path = Path(tmp.name) / "node.log"
    log = log_path.open("w")
    node_cmd = [sys.executable, "-m", "sfs_ros.node", "--ros-args", "-r", "__ns:=/sfs"]
    node_cmd += ["--params-file", str(params), "-p", f"fastsam.imgsz:={args.imgsz}"]
    node_cmd += ["-p", "input_qos:=reliable"]
    # argv is this interpreter plus fixed options and integers parsed by argparse; no shell
    node = subprocess.Popen(  # noqa: S603
        node_cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
    )

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    rclpy.init()
    ros = rclpy.create_node("sfs_soak")
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    pub = ros.create_publisher(Image, "/sfs/image", qos)
    got: dict[int, threading.Event] = {}
    last_diag: list = [None]

    def on_semantic(msg: Image) -> None:
        ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        event = got.get(ns)
        if event is not None:
            event.set()

    def on_diag(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == "/sfs/sfs: camera":
                last_diag[0] = {kv.key: kv.value for kv in status.values}

    ros.create_subscription(Image, "/sfs/semantic", on_semantic, qos)
    ros.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    executor = SingleThreadedExecutor()
    executor.add_node(ros)
    threading.Thread(target=executor.spin, daemon=True).start()

    result: dict = {"frames": args.frames, "size": [args.width, args.height]}
    result["imgsz"] = args.imgsz
    code = 1
    try:
        deadline = time.monotonic() + 300
        while pub.get_subscription_count() == 0:
            if node.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"node did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        rng = np.random.default_rng(0)
        frames = [
            rng.integers(0, 256, (args.height, args.width, 3), dtype=np.uint8).tobytes()
            for _ in range(8)
        ]
        samples, lost = [], 0
        t0 = time.monotonic()
        for i in range(args.frames):
            msg = Image(height=args.height, width=args.width, encoding="rgb8")
            msg.step = args.width * 3
            msg.data = frames[i % len(frames)]
            msg.header.frame_id = "soak"
            ns = time.time_ns()
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(ns, 1_000_000_000)
            event = got[ns] = threading.Event()
            pub.publish(msg)
            if not event.wait(10.0):
                lost += 1
            del got[ns]
            if (i + 1) % args.sample_every == 0 or i + 1 == args.frames:
                sample = {"frame": i + 1, "t_s": round(time.monotonic() - t0, 1)}
                sample.update(proc_status(node.pid))
                samples.append(sample)
                print(json.dumps(sample), flush=True)
            if node.poll() is not None:
                raise RuntimeError(f"node died:\n{log_path.read_text()[-3000:]}")
        elapsed = time.monotonic() - t0
        time.sleep(2.5)  # one more diagnostics period
        warm = [s for s in samples if s["frame"] >= args.warmup] or samples
        growth_mb = (warm[-1]["VmRSS"] - warm[0]["VmRSS"]) / 1024
        threads = sorted({s["Threads"] for s in warm})
        diag = last_diag[0] or {}
        accounting = {
            k: int(diag[k])
            for k in ("frames_in", "frames_processed", "frames_dropped", "frames_pending")
            if k in diag
        }
        accounting.update({k: int(v) for k, v in diag.items() if k.startswith("dropped.")})
        node.send_signal(signal.SIGTERM)
        t_stop = time.monotonic()
        exit_code = node.wait(timeout=60)
        shutdown_s = time.monotonic() - t_stop
        result.update(
            elapsed_s=round(elapsed, 1),
            fps=round(args.frames / elapsed, 1),
            lost=lost,
            rss_mb_first=round(samples[0]["VmRSS"] / 1024, 1),
            rss_mb_baseline=round(warm[0]["VmRSS"] / 1024, 1),
            rss_mb_last=round(warm[-1]["VmRSS"] / 1024, 1),
            rss_growth_mb_after_warmup=round(growth_mb, 1),
            rss_mb_max=round(max(s["VmRSS"] for s in samples) / 1024, 1),
            threads_after_warmup=threads,
            accounting=accounting,
            shutdown_s=round(shutdown_s, 2),
            exit_code=exit_code,
            samples=samples,
        )
        balanced = accounting.get("frames_in") == accounting.get(
            "frames_processed", -1
        ) + accounting.get("frames_dropped", 0)
        ok = (
            growth_mb < args.max_growth_mb
            and len(threads) == 1
            and balanced
            and exit_code == 0
            and lost == 0
        )
        code = 0 if ok else 1
    finally:
        if node.poll() is None:
            node.kill()
            node.wait(timeout=10)
        executor.shutdown(timeout_sec=1)
        ros.destroy_node()
        rclpy.try_shutdown()
        log.close()
    summary = {k: v for k, v in result.items() if k != "samples"}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    tmp.cleanup()
    return code


if __name__ == "__main__":
    sys.exit(main())
