# SPDX-License-Identifier: AGPL-3.0-or-later
"""The output bag: one ``rosbags`` writer, connections made on first use, and ``--resume``.

``rosbags`` only creates new bags, so resuming works by moving the earlier output aside
(``<name>_sfs.resume-backup``), writing a new bag at the same path that starts with a copy of
every earlier message, then going on with the frames not yet labelled. The backup is removed
once the new bag is closed after a complete copy; an interruption during the copy puts the
backup back in place. Either way one valid, closed bag remains at ``<name>_sfs``.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sfs_ros.bags.messages import CLASS_LEGEND, legend_dict_of

STORAGES = ("sqlite3", "mcap")
BACKUP_SUFFIX = ".resume-backup"
TIMINGS_FILE = "timings.json"
BAG_VERSION = 9


class OutputExistsError(FileExistsError):
    """The output bag exists and ``--resume`` was not given (it is never overwritten)."""


def legend_qos() -> list[Any]:
    """QoS offered by the node's legend publisher: RELIABLE, TRANSIENT_LOCAL, depth 1, so that
    ``ros2 bag play`` latches the legend like the live node does."""
    from rosbags.interfaces import (
        Qos,
        QosDurability,
        QosHistory,
        QosLiveliness,
        QosReliability,
        QosTime,
    )

    never = QosTime(0, 0)
    return [
        Qos(
            QosHistory.KEEP_LAST,
            1,
            QosReliability.RELIABLE,
            QosDurability.TRANSIENT_LOCAL,
            never,
            never,
            QosLiveliness.AUTOMATIC,
            never,
            False,
        )
    ]


@dataclass
class EarlierOutput:
    """What an interrupted output already holds (for ``--resume``)."""

    messages: Counter = field(default_factory=Counter)  # (topic, receive time ns) → count
    legend: dict | None = None  # the last legend written
    timings: list[dict] = field(default_factory=list)

    def take(self, topic: str, timestamp: int) -> bool:
        """True (once per earlier message) when ``topic`` already has a message at
        ``timestamp``: that message was copied, so it is not written again."""
        key = (topic, timestamp)
        if self.messages[key] > 0:
            self.messages[key] -= 1
            return True
        return False


class OutputBag:
    """Writes serialised messages to a new rosbag2 bag at ``path``."""

    def __init__(self, path: Path, storage: str, typestore: Any) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        if storage not in STORAGES:
            raise ValueError(f"unknown storage '{storage}' (one of {', '.join(STORAGES)})")
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self.path = path
        self.typestore = typestore
        self.writer = Writer(path, version=BAG_VERSION, storage_plugin=plugin)
        self.counts: Counter = Counter()  # topic → messages written
        self._connections: dict[tuple[str, str], Any] = {}
        self._open = False

    def open(self) -> None:
        """Create the bag folder and its storage file."""
        self.writer.open()
        self._open = True

    def connection(
        self,
        topic: str,
        msgtype: str,
        *,
        msgdef: str | None = None,
        digest: str | None = None,
        qos: Sequence[Any] = (),
    ) -> Any:
        """The connection for ``topic`` (created on first use; the definition comes from
        ``msgdef``/``digest`` when given, else from the typestore)."""
        key = (topic, msgtype)
        conn = self._connections.get(key)
        if conn is None:
            if msgdef and digest:
                conn = self.writer.add_connection(
                    topic, msgtype, msgdef=msgdef, rihs01=digest, offered_qos_profiles=qos
                )
            else:
                conn = self.writer.add_connection(
                    topic, msgtype, typestore=self.typestore, offered_qos_profiles=qos
                )
            self._connections[key] = conn
        return conn

    def write_raw(self, conn: Any, timestamp: int, data: bytes | memoryview) -> None:
        """Write one serialised message."""
        self.writer.write(conn, timestamp, data)
        self.counts[conn.topic] += 1

    def write(self, topic: str, msgtype: str, timestamp: int, msg: Any, **conn_args: Any) -> None:
        """Serialise (CDR) and write one ``rosbags`` message."""
        data = self.typestore.serialize_cdr(msg, msgtype)
        self.write_raw(self.connection(topic, msgtype, **conn_args), timestamp, data)

    def copy_from(self, earlier: Path) -> Iterator[tuple[str, str, int, bytes]]:
        """Copy every message of the bag at ``earlier``; yields each (topic, type, time, raw)
        after writing it."""
        from rosbags.rosbag2 import Reader

        with Reader(earlier) as reader:
            for conn, timestamp, raw in reader.messages():
                out = self.connection(
                    conn.topic,
                    conn.msgtype,
                    msgdef=conn.msgdef.data,
                    digest=conn.digest,
                    qos=conn.ext.offered_qos_profiles,
                )
                self.write_raw(out, timestamp, raw)
                yield conn.topic, conn.msgtype, timestamp, raw

    def close(self) -> None:
        """Write the index and ``metadata.yaml`` (idempotent)."""
        if self._open:
            self._open = False
            self.writer.close()


class ResumableOutput:
    """Start or resume the output bag of one input bag (see module docstring)."""

    def __init__(self, path: Path, storage: str, typestore: Any, *, resume: bool) -> None:
        self.path = path
        self.backup = path.with_name(path.name + BACKUP_SUFFIX)
        self.storage = storage
        self.typestore = typestore
        self.resume = resume
        self.bag: OutputBag | None = None
        self.earlier = EarlierOutput()
        self.resumed_from: Path | None = None
        self._copy_complete = False

    @staticmethod
    def check_free(path: Path, resume: bool) -> None:
        """Raise :class:`OutputExistsError` when ``path`` (or a resume backup of it) exists and
        ``resume`` is false."""
        if resume:
            return
        backup = path.with_name(path.name + BACKUP_SUFFIX)
        if backup.exists():
            raise OutputExistsError(
                f"'{backup}' is left from an interrupted --resume; run again with --resume to "
                "continue it"
            )
        if path.exists():
            raise OutputExistsError(
                f"output '{path}' exists; --resume continues it, or remove it first"
            )

    def open(self) -> OutputBag:
        """Open the bag (copying the earlier output when resuming).

        Raises:
            OutputExistsError: the output exists and ``resume`` is false.
        """
        self.check_free(self.path, self.resume)
        if self.backup.exists():
            # A resume was killed (no chance to tidy up): the backup is the last closed bag.
            if self.path.exists():
                shutil.rmtree(self.path)
            self.resumed_from = self.backup
        elif self.path.exists():
            self.path.rename(self.backup)
            self.resumed_from = self.backup
        bag = self.bag = OutputBag(self.path, self.storage, self.typestore)
        bag.open()
        if self.resumed_from is not None:
            self._copy_earlier(bag, self.resumed_from)
        self._copy_complete = True
        return bag

    def _copy_earlier(self, bag: OutputBag, earlier: Path) -> None:
        """Copy every message of the ``earlier`` run into ``bag`` and remember what it held."""
        timings = earlier / TIMINGS_FILE
        if timings.is_file():
            self.earlier.timings = json.loads(timings.read_text())
        legend_raw = None
        for topic, msgtype, timestamp, raw in bag.copy_from(earlier):
            self.earlier.messages[(topic, timestamp)] += 1
            if msgtype == CLASS_LEGEND:
                legend_raw = raw
        if legend_raw is not None:
            msg = self.typestore.deserialize_cdr(legend_raw, CLASS_LEGEND)
            self.earlier.legend = legend_dict_of(msg)

    def close(self, timings: list[dict]) -> None:
        """Close the bag, write ``timings.json`` into it, and settle the resume backup."""
        if self.bag is None:
            return
        self.bag.close()
        if self.resumed_from is None:
            (self.path / TIMINGS_FILE).write_text(json.dumps(timings, indent=1))
            return
        if self._copy_complete:
            (self.path / TIMINGS_FILE).write_text(json.dumps(timings, indent=1))
            shutil.rmtree(self.resumed_from)
        else:  # interrupted while copying: the earlier bag is still the better one
            shutil.rmtree(self.path)
            self.resumed_from.rename(self.path)
