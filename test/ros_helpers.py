"""Helpers shared by the DDS tests: the driver process (camera, viewer, ``ros2 param`` in one
process, talked to with JSON lines), output collection, node start arguments.

Moved out of ``test_node_e2e.py`` so that ``test_reliability.py`` reuses them.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
NODE = "/sfs/sfs"
START_TIMEOUT_S = 180.0  # model loading on 2 busy cores
FRAME_TIMEOUT_S = 90.0

DRIVER = textwrap.dedent(
    r"""
    import base64, hashlib, json, sys, threading, time
    import cv2
    import numpy as np
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import DescribeParameters, SetParameters
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import CompressedImage, Image
    from sfs_ros.msg import ClassLegend

    rclpy.init()
    node = rclpy.create_node("sfs_test_driver")
    lock = threading.Lock()
    received, subs, pubs = {}, {}, {}
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()

    def qos(reliable=True, latched=False):
        return QoSProfile(
            depth=5 if not latched else 1,
            reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
            durability=(DurabilityPolicy.TRANSIENT_LOCAL if latched
                        else DurabilityPolicy.VOLATILE),
        )

    def summarize(kind, msg, with_data):
        if kind == "diagnostics":
            return {"status": [
                {"name": s.name, "level": int.from_bytes(s.level, "little")
                 if isinstance(s.level, bytes) else int(s.level),
                 "message": s.message, "hardware_id": s.hardware_id,
                 "values": {kv.key: kv.value for kv in s.values}} for s in msg.status]}
        out = {"sec": msg.header.stamp.sec, "nanosec": msg.header.stamp.nanosec,
               "frame_id": msg.header.frame_id}
        if kind == "legend":
            out.update(revision=msg.revision, vocabulary=msg.vocabulary,
                       classes=[[c.id, c.name, [int(v) for v in c.color], c.source]
                                for c in msg.classes])
            return out
        data = bytes(msg.data)
        out.update(encoding=msg.encoding, width=msg.width, height=msg.height, step=msg.step,
                   is_bigendian=msg.is_bigendian, sha1=hashlib.sha1(data).hexdigest())
        if msg.encoding == "mono16":
            out["ids"] = np.unique(np.frombuffer(data, "<u2")).tolist()
        if with_data:
            out["data"] = base64.b64encode(data).decode()
        return out

    keep = {}  # key -> keep only this many newest messages (long runs)

    def on_message(key, kind, with_data, msg):
        item = summarize(kind, msg, with_data)
        with lock:
            items = received.setdefault(key, [])
            items.append(item)
            if key in keep and len(items) > keep[key]:
                del items[: len(items) - keep[key]]

    def make_image(cmd):
        rng = np.random.default_rng(cmd.get("seed", 0))
        h, w = cmd["height"], cmd["width"]
        if "solid" in cmd:  # a flat frame (black, white, grey): no texture at all
            return np.full((h, w, 3), cmd["solid"], np.uint8)
        # smooth blobs + noise: something for the segmenters to chew on
        base = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
        rgb = cv2.resize(base, (w, h), interpolation=cv2.INTER_LINEAR)
        return np.ascontiguousarray(rgb)

    def wait(predicate, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        return None

    def call_service(srv_type, name, request, timeout):
        client = node.create_client(srv_type, name)
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                return None
            future = client.call_async(request)
            if wait(future.done, timeout) is None:
                return None
            return future.result()
        finally:
            node.destroy_client(client)

    def param_value(value):
        if isinstance(value, bool):
            return ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=value)
        if isinstance(value, int):
            return ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
        if isinstance(value, float):
            return ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
        if isinstance(value, list):
            return ParameterValue(type=ParameterType.PARAMETER_STRING_ARRAY,
                                  string_array_value=value)
        return ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=str(value))

    def handle(cmd):
        op = cmd["op"]
        if op == "subscribe":
            key, kind = cmd.get("key", cmd["topic"]), cmd["kind"]
            if cmd.get("keep"):
                keep[key] = cmd["keep"]
            msg_type = {"image": Image, "legend": ClassLegend,
                        "diagnostics": DiagnosticArray}[kind]
            subs[key] = node.create_subscription(
                msg_type, cmd["topic"],
                lambda m, k=key, kd=kind, d=cmd.get("with_data", False): on_message(k, kd, d, m),
                qos(cmd.get("reliable", True), cmd.get("latched", False)))
            return {"ok": True}
        if op == "wait_publishers":
            sub = subs[cmd.get("key", cmd["topic"])]
            return {"ok": bool(wait(lambda: sub.get_publisher_count() > 0, cmd["timeout"]))}
        if op == "advertise":
            msg_type = CompressedImage if cmd.get("compressed") else Image
            pubs[cmd["topic"]] = node.create_publisher(msg_type, cmd["topic"],
                                                       qos(cmd.get("reliable", True)))
            return {"ok": True}
        if op == "wait_subscribers":
            pub = pubs[cmd["topic"]]
            return {"ok": bool(wait(lambda: pub.get_subscription_count() > 0, cmd["timeout"]))}
        if op == "publish":
            rgb = make_image(cmd)
            h, w = rgb.shape[:2]
            if cmd.get("compressed"):
                msg = CompressedImage(format="jpeg")
                ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
                msg.data = jpg.tobytes()
            else:
                msg = Image(height=h, width=w, encoding=cmd.get("encoding", "rgb8"),
                            step=w * 3)
                msg.data = rgb.tobytes()
            msg.header.stamp.sec, msg.header.stamp.nanosec = cmd["sec"], cmd["nanosec"]
            msg.header.frame_id = cmd["frame_id"]
            pubs[cmd["topic"]].publish(msg)
            return {"sha1": hashlib.sha1(rgb.tobytes()).hexdigest(),
                    "data": base64.b64encode(rgb.tobytes()).decode()}
        if op == "wait_stamp":
            key = cmd["key"]
            def find():
                with lock:
                    for item in received.get(key, []):
                        if (item["sec"], item["nanosec"]) == (cmd["sec"], cmd["nanosec"]):
                            return item
                return None
            found = wait(find, cmd["timeout"])
            return {"item": found}
        if op == "wait_count":
            key = cmd["key"]
            def enough():
                with lock:
                    items = list(received.get(key, []))
                return items if len(items) >= cmd["count"] else None
            return {"items": wait(enough, cmd["timeout"]) or []}
        if op == "messages":
            with lock:
                return {"items": list(received.get(cmd["key"], []))}
        if op == "set_parameters":
            request = SetParameters.Request(parameters=[
                Parameter(name=k, value=param_value(v)) for k, v in cmd["params"].items()])
            response = call_service(SetParameters, cmd["node"] + "/set_parameters", request,
                                    cmd.get("timeout", 30))
            if response is None:
                return {"error": "service call timed out"}
            return {"results": [{"successful": r.successful, "reason": r.reason}
                                for r in response.results]}
        if op == "describe":
            request = DescribeParameters.Request(names=cmd["names"])
            response = call_service(DescribeParameters, cmd["node"] + "/describe_parameters",
                                    request, cmd.get("timeout", 30))
            if response is None:
                return {"error": "service call timed out"}
            return {"descriptors": [{
                "name": d.name, "type": d.type, "read_only": d.read_only,
                "description": d.description,
                "additional_constraints": d.additional_constraints,
                "float_range": [[r.from_value, r.to_value] for r in d.floating_point_range],
                "int_range": [[r.from_value, r.to_value] for r in d.integer_range]}
                for d in response.descriptors]}
        if op == "publish_msg":
            # any sensor_msgs/Image or CompressedImage, fields as given (bad input on purpose);
            # data: base64 "data", or "data_len" bytes from a seeded RNG ("fill" for a constant)
            if "data" in cmd:
                data = base64.b64decode(cmd["data"])
            elif "fill" in cmd:
                data = bytes([cmd["fill"]]) * cmd["data_len"]
            else:
                data = np.random.default_rng(cmd.get("seed", 0)).integers(
                    0, 256, cmd["data_len"], dtype=np.uint8).tobytes()
            if cmd.get("compressed"):
                msg = CompressedImage(format=cmd.get("format", "jpeg"))
            else:
                msg = Image(height=cmd["height"], width=cmd["width"], encoding=cmd["encoding"],
                            step=cmd["step"], is_bigendian=cmd.get("is_bigendian", 0))
            msg.data = data
            msg.header.stamp.sec, msg.header.stamp.nanosec = cmd["sec"], cmd["nanosec"]
            msg.header.frame_id = cmd.get("frame_id", "bad")
            pubs[cmd["topic"]].publish(msg)
            return {"ok": True, "bytes": len(data)}
        if op == "burst":
            # cmd["count"] frames spread evenly over cmd["seconds"]; stamps sec, nanosec + i
            rgb = make_image(cmd)
            h, w = rgb.shape[:2]
            data = rgb.tobytes()
            t0 = time.monotonic()
            for i in range(cmd["count"]):
                msg = Image(height=h, width=w, encoding="rgb8", step=w * 3)
                msg.data = data
                msg.header.stamp.sec, msg.header.stamp.nanosec = cmd["sec"], cmd["nanosec"] + i
                msg.header.frame_id = cmd.get("frame_id", "burst")
                pubs[cmd["topic"]].publish(msg)
                delay = t0 + (i + 1) * cmd["seconds"] / cmd["count"] - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            return {"sent": cmd["count"], "elapsed_s": time.monotonic() - t0}
        if op == "latest":
            with lock:
                items = received.get(cmd["key"], [])
                return {"item": items[-1] if items else None, "count": len(items)}
        if op == "latest_status":
            # the newest /diagnostics status named cmd["name"] (with the time it was received)
            with lock:
                for array in reversed(received.get(cmd["key"], [])):
                    for status in array["status"]:
                        if status["name"] == cmd["name"]:
                            return {"status": status}
            return {"status": None}
        if op == "clear":
            with lock:
                received.pop(cmd["key"], None)
            return {"ok": True}
        return {"error": f"unknown op {op}"}

    print("@@ " + json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = handle(json.loads(line))
        except Exception as exc:  # report to the test instead of dying silently
            reply = {"error": repr(exc)}
        print("@@ " + json.dumps(reply), flush=True)
    rclpy.try_shutdown()
    """
)


# ------------------------------------------------------------------------------ helpers
class LineReader:
    """Collects a child's output lines on a thread (so a full pipe never blocks it)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.replies: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for raw_line in self.proc.stdout:
            line = raw_line.rstrip("\n")
            if line.startswith("@@ "):
                self.replies.put(line[3:])
            else:
                with self._lock:
                    self.lines.append(line)

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> str | None:
        """The first output line matching ``pattern`` (regex), waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                for line in self.lines:
                    if re.search(pattern, line):
                        return line
            if time.monotonic() > deadline or self.proc.poll() is not None:
                return None
            time.sleep(0.05)


class Driver:
    """The test's handle on the DRIVER process."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.out = LineReader(proc)
        assert self._reply(60) == {"ready": True}, self.out.text()

    def _reply(self, timeout: float) -> dict:
        try:
            return json.loads(self.out.replies.get(timeout=timeout))
        except queue.Empty:
            pytest.fail(f"driver did not answer within {timeout} s:\n{self.out.text()}")

    def __call__(self, op: str, **kwargs) -> dict:
        self.proc.stdin.write(json.dumps({"op": op, **kwargs}) + "\n")
        self.proc.stdin.flush()
        timeout = float(kwargs.get("timeout", 30)) * 2 + 30
        reply = self._reply(timeout)
        assert "error" not in reply, reply
        return reply

    def roundtrip(self, key: str, topic: str, *, attempts: int = 3, **frame) -> tuple[dict, dict]:
        """Publish a frame (again, same stamp, if no output came) until ``key`` shows it.

        Returns (what was sent, the output summary with the same stamp).
        """
        for _ in range(attempts):
            sent = self("publish", topic=topic, **frame)
            got = self(
                "wait_stamp",
                key=key,
                sec=frame["sec"],
                nanosec=frame["nanosec"],
                timeout=FRAME_TIMEOUT_S / attempts,
            )["item"]
            if got is not None:
                return sent, got
        pytest.fail(f"no output on {key} for stamp {frame['sec']}.{frame['nanosec']}")

    def wait_item(self, key: str, predicate, timeout: float = 30.0) -> dict:
        """The newest message received under ``key`` for which ``predicate`` holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for item in reversed(self("messages", key=key)["items"]):
                if predicate(item):
                    return item
            time.sleep(0.2)
        pytest.fail(f"no matching message on {key} within {timeout} s")

    def last_diagnostics(self, status_name: str, predicate, timeout: float = 30.0) -> dict:
        """The newest status ``status_name`` from /diagnostics for which ``predicate`` holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for array in reversed(self("messages", key="diagnostics")["items"]):
                for status in array["status"]:
                    if status["name"] == status_name and predicate(status):
                        return status
            time.sleep(0.5)
        pytest.fail(f"no diagnostics status '{status_name}' matching within {timeout} s")


def loopback_only() -> bool:
    """True inside a network namespace whose only interface is loopback."""
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def require_loopback_only() -> None:
    """Skip (fail under CI) unless running in a loopback-only network namespace."""
    if not loopback_only():
        msg = "DDS tests need a loopback-only network namespace (run them via `make test`)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


def dds_child_env(domain_id: int) -> dict[str, str]:
    """Environment for ROS 2 child processes: LOCALHOST discovery, own domain, repo on path."""
    env = dict(os.environ)
    env.update(
        ROS_DOMAIN_ID=str(domain_id),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        FASTDDS_DEFAULT_PROFILES_FILE=str(REPO / "config" / "fastdds_large_images.xml"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
    )
    env.pop("ROS_LOCALHOST_ONLY", None)
    return env


class ModuleProcesses:
    """Child processes shared by the tests of this module; ended by PID at teardown."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.procs: list[subprocess.Popen] = []

    def start(self, args: list[str]) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, *args],
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO,
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        stop_processes(self.procs, timeout=10)


def stop_processes(procs: list[subprocess.Popen], timeout: float) -> None:
    """SIGINT every running child, wait up to ``timeout`` each, then SIGKILL (by PID)."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


def node_args(params_file: Path, *params: str) -> list[str]:
    args = ["-m", "sfs_ros.node", "--ros-args", "-r", "__ns:=/sfs", "--params-file"]
    args.append(str(params_file))
    for param in params:
        args += ["-p", param]
    return args


def start_driver(start) -> Driver:
    proc = start(["-c", DRIVER])
    return Driver(proc)


def decode(item: dict, dtype, channels: int) -> np.ndarray:
    data = np.frombuffer(base64.b64decode(item["data"]), dtype)
    shape = (item["height"], item["width"]) + ((channels,) if channels > 1 else ())
    return data.reshape(shape)


def legend_ids(legend: dict) -> set[int]:
    return {c[0] for c in legend["classes"]}


def wait_for_node(driver: Driver, node_out: LineReader, topic: str, key: str) -> None:
    """Subscribe to an output of the node and wait until the node has created it."""
    ok = driver("wait_publishers", key=key, topic=topic, timeout=START_TIMEOUT_S)["ok"]
    assert ok, f"node never published {topic}:\n{node_out.text()}"
