# SPDX-License-Identifier: AGPL-3.0-or-later
"""``sfs-segment BAG -o OUT``: label recorded ROS 2 bags offline, bag in, labelled bag out.

BAG is a rosbag2 directory (with ``metadata.yaml``) or an ``.mcap`` / ``.db3`` file. Every
``sensor_msgs/msg/Image`` and ``CompressedImage`` topic (or those named by ``--topics``) is
decoded as the node decodes it and labelled with the open-vocabulary branch on every frame. The
output bag ``OUT/<bag name>_sfs/`` holds, per camera, the node's topics: ``…/semantic``
(mono16), ``…/semantic_color`` and ``…/overlay`` with ``--color``, ``…/legend``
(``sfs_ros/msg/ClassLegend``), with the input's header stamps, frame_ids and receive times, plus
the input topics with ``--copy-input``, and ``timings.json``. Ctrl-C (or a crash) closes the
output as a valid bag; ``--resume`` continues it. The input bag is only read.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sfs_ros.bags.cameras import Camera, TopicSelectionError, select_cameras
from sfs_ros.bags.messages import (
    CLASS_LEGEND,
    IMAGE,
    IMAGE_TYPES,
    decode_rgb,
    image_message,
    legend_message,
)
from sfs_ros.bags.output import STORAGES, OutputExistsError, ResumableOutput, legend_qos
from sfs_ros.cli.arguments import add_model_arguments, load_model_config
from sfs_ros.params import ConfigError, as_config
from sfs_ros.ros.conversions import ImageConversionError
from sfs_ros.ros.frame_slot import DropLogLimiter

LOG = logging.getLogger("sfs_ros")
BAG_SUFFIXES = frozenset({".mcap", ".db3"})
OUTPUT_SUFFIX = "_sfs"
EXIT_INTERRUPTED = 130
# Options (of both sfs-segment forms) that take a value: their value is not an input path.
_VALUE_OPTIONS = frozenset(
    {
        "-o",
        "--output",
        "--config",
        "--set",
        "--device",
        "--imgsz",
        "--topics",
        "--storage",
        "--namespace",
        "--max-frames",
        "--video-stride",
    }
)


class BagError(RuntimeError):
    """A bag that is missing or cannot be read (one clear message, non-zero exit)."""


# ------------------------------------------------------------------------------ arguments
def is_bag_path(arg: str) -> bool:
    """True for an ``.mcap`` / ``.db3`` path (existing or not) or a folder with
    ``metadata.yaml``."""
    path = Path(arg)
    return path.suffix.lower() in BAG_SUFFIXES or (path / "metadata.yaml").is_file()


def names_bag(argv: Sequence[str]) -> bool:
    """Whether an ``sfs-segment`` command line names a bag among its inputs."""
    after_option = False
    for token in argv:
        if after_option:
            after_option = False
            continue
        if token.startswith("-"):
            after_option = token in _VALUE_OPTIONS
            continue
        if is_bag_path(token):
            return True
    return False


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the bag form of ``sfs-segment``."""
    parser = argparse.ArgumentParser(
        prog="sfs-segment",
        description="Semantic-Fast-SAM on recorded ROS 2 bags: writes OUT/<bag name>_sfs/.",
    )
    parser.add_argument(
        "bags", nargs="+", metavar="BAG", help="rosbag2 folder (metadata.yaml) or .mcap file"
    )
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    parser.add_argument(
        "--topics",
        action="append",
        default=[],
        metavar="TOPIC[,TOPIC]",
        help="label only these image topics (default: every Image / CompressedImage topic)",
    )
    parser.add_argument(
        "--storage", choices=STORAGES, help="output storage (default: that of the input)"
    )
    parser.add_argument(
        "--color", action="store_true", help="also write semantic_color and overlay (rgb8)"
    )
    parser.add_argument("--copy-input", action="store_true", help="copy the input topics too")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted output bag")
    parser.add_argument(
        "--namespace", default="sfs", help="namespace of the output topics (default: sfs)"
    )
    add_model_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


# ------------------------------------------------------------------------------ input bags
@dataclass(frozen=True)
class InputBag:
    """A bag to label: its path, name (for ``<name>_sfs``) and storage plugin."""

    path: Path
    name: str
    storage: str


def inspect_bag(arg: str) -> InputBag:
    """Check that ``arg`` is a readable bag.

    Raises:
        BagError: missing, not a bag, or unreadable.
    """
    path = Path(arg)
    if not path.exists():
        raise BagError(f"bag '{path}' does not exist")
    if path.is_dir():
        if not (path / "metadata.yaml").is_file():
            raise BagError(f"'{path}' is a folder without metadata.yaml, not a rosbag2 bag")
        import yaml

        try:
            info = yaml.safe_load((path / "metadata.yaml").read_text())
            storage = str(info["rosbag2_bagfile_information"]["storage_identifier"])
        except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
            detail = " ".join(str(exc).split())  # YAML errors span several lines
            raise BagError(f"cannot read bag '{path}': bad metadata.yaml ({detail})") from exc
        name = path.resolve().name
    elif path.suffix.lower() in BAG_SUFFIXES:
        storage = "mcap" if path.suffix.lower() == ".mcap" else "sqlite3"
        name = path.stem
    else:
        raise BagError(
            f"'{path}' is not a bag (a rosbag2 folder with metadata.yaml or an .mcap file); "
            "images and videos cannot be mixed with bags in one command"
        )
    if storage not in STORAGES:
        raise BagError(f"bag '{path}': unsupported storage '{storage}' ({', '.join(STORAGES)})")
    return InputBag(path, name, storage)


def output_path(bag: InputBag, out_root: Path) -> Path:
    """``OUT/<bag name>_sfs``.

    Raises:
        BagError: that path would lie inside the input bag folder.
    """
    path = out_root / f"{bag.name}{OUTPUT_SUFFIX}"
    if bag.path.is_dir() and path.resolve().is_relative_to(bag.path.resolve()):
        raise BagError(f"the output '{path}' would be inside the input bag '{bag.path}'")
    return path


def read_topics(bag: InputBag) -> dict[str, str]:
    """topic → message type of a bag (image types win when a topic has several).

    Raises:
        BagError: the bag cannot be opened.
    """
    from rosbags.rosbag2 import Reader

    try:
        with Reader(bag.path) as reader:
            topics: dict[str, str] = {}
            for conn in reader.connections:
                if topics.get(conn.topic) not in IMAGE_TYPES:
                    topics[conn.topic] = conn.msgtype
            return topics
    except Exception as exc:  # rosbags raises many kinds for broken files
        detail = " ".join(str(exc).split())
        raise BagError(f"cannot read bag '{bag.path}': {type(exc).__name__}: {detail}") from exc


# ------------------------------------------------------------------------------ stopping
class StopRequest:
    """First Ctrl-C (or SIGTERM): finish the current frame, then close the output. A second
    one stops at once (the output is still closed)."""

    def __init__(self) -> None:
        self.requested = False
        self._shielded = False
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Take over SIGINT and SIGTERM (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        """Give SIGINT and SIGTERM back to their previous handlers."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    @contextlib.contextmanager
    def shielded(self) -> Iterator[None]:
        """Signals only set :attr:`requested` inside this block (closing the output)."""
        self._shielded = True
        try:
            yield
        finally:
            self._shielded = False

    def _handle(self, signum: int, frame: Any) -> None:
        if self._shielded:
            self.requested = True
            LOG.warning("closing the output bag, one moment")
            return
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        LOG.warning(
            "stopping after this frame (%s again to stop at once)", signal.Signals(signum).name
        )


# ------------------------------------------------------------------------------ one bag
@dataclass
class BagSummary:
    """What happened to one bag."""

    bag: InputBag
    output: Path
    storage: str
    frames: int = 0  # labelled by this run
    earlier_frames: int = 0  # found in the output being resumed
    copied: int = 0  # input messages copied (--copy-input)
    skipped: Counter = field(default_factory=Counter)  # message type → not labelled / copied
    dropped: Counter = field(default_factory=Counter)  # reason → image messages not labelled
    interrupted: bool = False
    error: str | None = None
    total_ms: list[float] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The human-readable summary."""
        mean = float(np.mean(self.total_ms)) if self.total_ms else 0.0
        done = self.frames + self.earlier_frames
        head = f"{self.bag.path}: {done} frame(s) in {self.output} ({self.storage})"
        if self.earlier_frames:
            head += f", {self.earlier_frames} from the resumed output"
        out = [f"{head}; mean {mean:.1f} ms/frame"]
        if self.copied:
            out.append(f"  copied {self.copied} input message(s)")
        if self.skipped:
            kinds = ", ".join(f"{t}: {n}" for t, n in sorted(self.skipped.items()))
            skipped = sum(self.skipped.values())
            out.append(f"  skipped {skipped} message(s), neither labelled nor copied ({kinds})")
        if self.dropped:
            kinds = ", ".join(f"{r}: {n}" for r, n in sorted(self.dropped.items()))
            out.append(f"  dropped {sum(self.dropped.values())} image message(s) ({kinds})")
        if self.interrupted or self.error:
            why = "INTERRUPTED" if self.interrupted else f"STOPPED by an error ({self.error})"
            out.append(
                f"  {why} after {done} frame(s): the output is a valid, closed bag with every "
                "frame done so far; run again with --resume to continue it"
            )
        return out


@dataclass
class BagOptions:
    """Per-run settings of the bag form (from the command line and the config)."""

    out_root: Path
    topics: list[str] | None
    storage: str | None
    color: bool
    copy_input: bool
    resume: bool
    namespace: str
    overlay_alpha: float
    progress: bool


def label_bag(
    bag: InputBag, labeller: Any, typestore: Any, options: BagOptions, stop: StopRequest
) -> BagSummary:
    """Label one bag into ``OUT/<name>_sfs`` (see the module docstring).

    Raises:
        BagError, TopicSelectionError, OutputExistsError: nothing was labelled (an output being
            resumed is left as it was).
    """
    return _BagRun(bag, labeller, typestore, options).run(stop)


class _BagRun:
    """One pass over one input bag."""

    def __init__(self, bag: InputBag, labeller: Any, typestore: Any, options: BagOptions) -> None:
        self.bag = bag
        self.labeller = labeller
        self.typestore = typestore
        self.options = options
        self.cameras = select_cameras(read_topics(bag), options.topics, options.namespace)
        self.by_topic = {cam.topic: cam for cam in self.cameras}
        storage = options.storage or bag.storage
        out_path = output_path(bag, options.out_root)
        self.summary = BagSummary(bag, out_path, storage)
        self.output = ResumableOutput(out_path, storage, typestore, resume=options.resume)
        self.out: Any = None
        self.timings: list[dict] = []
        self.log_limiter = DropLogLimiter()
        self.legend_written: dict[str, int] = {}  # camera → legend revision last written

    def run(self, stop: StopRequest) -> BagSummary:
        from rosbags.rosbag2 import Reader

        summary = self.summary
        try:
            with Reader(self.bag.path) as reader:
                if self.options.copy_input:
                    _check_no_clash(reader.connections, self.cameras)
                self._open_output()
                wanted = self._select_connections(reader.connections)
                self._process(reader.messages(connections=wanted), wanted, stop)
        except KeyboardInterrupt:
            summary.interrupted = True
        except (BagError, TopicSelectionError, OutputExistsError):
            raise
        except Exception as exc:  # reported; the output is still closed below
            LOG.exception("labelling '%s' failed", self.bag.path)
            summary.error = f"{type(exc).__name__}: {exc}"
        finally:
            with stop.shielded():
                self.output.close(self.timings)
        return summary

    def _open_output(self) -> None:
        self.out = self.output.open()
        earlier = self.output.earlier
        self.timings = list(earlier.timings)
        if earlier.legend is not None:
            try:
                self.labeller.restore_legend(earlier.legend)
            except ValueError as exc:
                raise BagError(f"cannot resume '{self.output.path}': {exc}") from exc

    def _select_connections(self, connections: Sequence[Any]) -> list[Any]:
        """Connections to read: the cameras' (and every copyable one with --copy-input); the
        others are counted as skipped by message type."""
        wanted = []
        for conn in connections:
            cam = self.by_topic.get(conn.topic)
            labelled = cam is not None and conn.msgtype == cam.msgtype
            if labelled or (self.options.copy_input and _copyable(conn, self.typestore)):
                wanted.append(conn)
            else:
                self.summary.skipped[conn.msgtype] += conn.msgcount
        return wanted

    def _process(self, messages: Any, wanted: Sequence[Any], stop: StopRequest) -> None:
        from tqdm import tqdm

        summary, earlier = self.summary, self.output.earlier
        bar = tqdm(
            total=sum(c.msgcount for c in wanted),
            unit="msg",
            desc=self.bag.name,
            disable=not self.options.progress,
            file=sys.stderr,
        )
        try:
            for conn, timestamp, raw in messages:
                if stop.requested:
                    summary.interrupted = True
                    break
                bar.update(1)
                if self.options.copy_input and not earlier.take(conn.topic, timestamp):
                    self.out.write_raw(_copy_connection(self.out, conn), timestamp, raw)
                    summary.copied += 1
                cam = self.by_topic.get(conn.topic)
                if cam is None or conn.msgtype != cam.msgtype:
                    continue
                if earlier.take(cam.output("semantic"), timestamp):
                    summary.earlier_frames += 1
                    continue
                record = self._label_message(cam, conn.msgtype, timestamp, raw)
                if record is not None:
                    self.timings.append(record)
                    summary.frames += 1
                    summary.total_ms.append(record["total"])
        finally:
            bar.close()

    def _label_message(self, cam: Camera, msgtype: str, timestamp: int, raw: bytes) -> dict | None:
        """Decode, label and write one image message; its timings record, or None if dropped."""
        from sfs_ros import render

        store = self.typestore
        try:
            msg = store.deserialize_cdr(raw, msgtype)
        except Exception as exc:  # any deserialisation failure means corrupt data: counted
            self._drop(cam, timestamp, "corrupt", f"{type(exc).__name__}: {exc}")
            return None
        try:
            rgb = decode_rgb(msg, msgtype)
        except ImageConversionError as exc:
            self._drop(cam, timestamp, exc.reason, str(exc))
            return None
        result = self.labeller.label(cam.name, rgb)
        header = msg.header
        # Every message of the frame is built first, then they are written together.
        frame_msgs: list[tuple[str, str, Any, dict]] = []
        legend = self.labeller.legend
        if self.legend_written.get(cam.name) != legend["revision"]:
            # the legend first: whoever reads a label image with new ids can already name them
            legend_msg = legend_message(store, legend, header)
            frame_msgs.append(
                (cam.output("legend"), CLASS_LEGEND, legend_msg, {"qos": legend_qos()})
            )
        label_map = result.label_map
        frame_msgs.append(
            (cam.output("semantic"), IMAGE, image_message(store, label_map, "mono16", header), {})
        )
        if self.options.color:
            lut = self.labeller.color_lut()
            color = render.colorize(label_map, lut)
            blended = render.overlay(rgb, label_map, lut, self.options.overlay_alpha)
            color_msg = image_message(store, color, "rgb8", header)
            frame_msgs.append((cam.output("semantic_color"), IMAGE, color_msg, {}))
            overlay_msg = image_message(store, blended, "rgb8", header)
            frame_msgs.append((cam.output("overlay"), IMAGE, overlay_msg, {}))
        for topic, out_type, out_msg, conn_args in frame_msgs:
            self.out.write(topic, out_type, timestamp, out_msg, **conn_args)
        self.legend_written[cam.name] = legend["revision"]
        return {
            "topic": cam.topic,
            "stamp": f"{header.stamp.sec}.{header.stamp.nanosec:09d}",
            "receive_ns": int(timestamp),
            "masks": len(result.masks),
            **{k: round(v, 3) for k, v in result.timings.items()},
        }

    def _drop(self, cam: Camera, timestamp: int, reason: str, detail: str) -> None:
        self.summary.dropped[reason] += 1
        count = self.log_limiter.report(reason)
        if count is not None:
            LOG.warning(
                "%s: dropped %d image message(s) (%s), latest at receive time %d ns: %s",
                cam.topic,
                count,
                reason,
                timestamp,
                detail,
            )


def _check_no_clash(connections: Sequence[Any], cameras: Sequence[Camera]) -> None:
    kinds = ("semantic", "semantic_color", "overlay", "legend")
    outputs = {cam.output(kind) for cam in cameras for kind in kinds}
    clash = sorted({c.topic for c in connections} & outputs)
    if clash:
        raise TopicSelectionError(
            f"--copy-input: input topics {', '.join(clash)} have the names of output topics; "
            "choose another --namespace"
        )


def _copyable(conn: Any, typestore: Any) -> bool:
    """An input connection can be copied when the bag carries its definition (or the
    typestore knows the type)."""
    return bool(conn.msgdef.data and conn.digest) or conn.msgtype in typestore.types


def _copy_connection(out: Any, conn: Any) -> Any:
    if conn.msgdef.data and conn.digest:
        return out.connection(
            conn.topic,
            conn.msgtype,
            msgdef=conn.msgdef.data,
            digest=conn.digest,
            qos=conn.ext.offered_qos_profiles,
        )
    return out.connection(conn.topic, conn.msgtype, qos=conn.ext.offered_qos_profiles)


# ------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    """Run the bag form of sfs-segment; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[sfs-segment] %(levelname)s %(message)s")
    topics = [t.strip() for group in args.topics for t in group.split(",") if t.strip()] or None
    try:
        config = load_model_config(args)
        bags = [inspect_bag(b) for b in args.bags]
        for bag in bags:  # everything that can be checked before the models load
            select_cameras(read_topics(bag), topics, args.namespace)
            ResumableOutput.check_free(output_path(bag, Path(args.output)), args.resume)
    except (ConfigError, BagError, TopicSelectionError, OutputExistsError) as exc:
        print(f"sfs-segment: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError | TopicSelectionError) else 1
    out_root = Path(args.output)
    out_root.mkdir(parents=True, exist_ok=True)
    options = BagOptions(
        out_root=out_root,
        topics=topics,
        storage=args.storage,
        color=args.color,
        copy_input=args.copy_input,
        resume=args.resume,
        namespace=args.namespace,
        overlay_alpha=config["overlay_alpha"],
        progress=not args.no_progress,
    )

    from sfs_ros.bags.labeller import OfflineLabeller
    from sfs_ros.bags.messages import MessageDefinitionsNotFoundError, make_typestore
    from sfs_ros.pipeline import Pipeline
    from sfs_ros.weights import WeightsNotFoundError

    try:
        typestore = make_typestore()
        pipeline = Pipeline.from_config(as_config(config).offline())
    except (WeightsNotFoundError, ConfigError, ValueError, MessageDefinitionsNotFoundError) as exc:
        print(f"sfs-segment: error: {exc}", file=sys.stderr)
        return 1
    labeller = OfflineLabeller(pipeline)
    stop = StopRequest()
    stop.install()
    code = 0
    try:
        for bag in bags:
            try:
                summary = label_bag(bag, labeller, typestore, options, stop)
            except (BagError, TopicSelectionError, OutputExistsError, ValueError) as exc:
                print(f"sfs-segment: error: {exc}", file=sys.stderr)
                return 1
            for line in summary.lines():
                print(f"sfs-segment: {line}")
            if summary.interrupted:
                return EXIT_INTERRUPTED
            if summary.error:
                code = 1
    finally:
        stop.restore()
        pipeline.close()
        if pipeline.random_weights:
            LOG.warning(
                "these outputs come from RANDOM WEIGHTS (%s)", ", ".join(pipeline.random_weights)
            )
    return code
