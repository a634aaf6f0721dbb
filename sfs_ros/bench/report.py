# SPDX-License-Identifier: AGPL-3.0-or-later
"""The one report writer of ``sfs-bench``.

Every benchmark builds a :class:`Report` (what was measured, a Markdown table, notes) and hands
it to :func:`publish`, which prints the Markdown block (heading with the exact command, the
machine line, the load line, the setup, the table, the notes), then appends exactly that block
to ``--append FILE`` when one was given, and prints the benchmark's summary line last.
Without ``--append`` nothing is written to any file.

``--append`` takes a Markdown file only (its name must end in ``.md``) in an existing folder:
:func:`append_path` checks this when the arguments are parsed, before minutes of measuring. A
file that does not exist yet is created with a ``# Benchmarks`` heading.
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sfs_ros.bench.machine import LoadMeter, machine_description

NEW_FILE_HEADING = (
    "# Benchmarks\n\nAppended by `sfs-bench ... --append FILE` (see README.md). Random weights: "
    "timings are real, segmentations are not.\n"
)


def fmt(value: float | None, digits: int = 1) -> str:
    """A table cell: ``value`` with ``digits`` decimals, "–" for None."""
    return "–" if value is None else f"{value:.{digits}f}"


def command_line(argv: Sequence[str]) -> str:
    """The exact command as a user would type it."""
    return " ".join(["sfs-bench", shlex.join(argv)]).strip()


def append_path(text: str) -> Path:
    """argparse type of ``--append``: a ``.md`` file in an existing folder.

    Raises:
        argparse.ArgumentTypeError: another suffix, or a missing folder.
    """
    path = Path(text).expanduser()
    if path.suffix.lower() != ".md":
        raise argparse.ArgumentTypeError(f"{text!r} is not a Markdown file (*.md)")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"folder {str(path.parent)!r} does not exist")
    if path.exists() and not path.is_file():
        raise argparse.ArgumentTypeError(f"{text!r} is not a file")
    return path


@dataclass
class Report:
    """One benchmark's result as a Markdown block.

    Attributes:
        title: what was measured (the heading names it with the command).
        command: the exact command (:func:`command_line`).
        setup: bullet lines describing inputs, models and method.
        headers: the table's column headers.
        rows: the table's rows (cells already formatted).
        notes: bullet lines after the table (ratios, verdicts).
        load: the load at start and end, when measured.
        machine: the machine line (default: :func:`machine_description` when rendered).
    """

    title: str
    command: str
    setup: list[str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    load: LoadMeter | None = None
    machine: str | None = None

    def markdown(self, now: datetime.datetime | None = None) -> str:
        """The block: starts with a blank line and a ``##`` heading, ends with a newline."""
        when = (now or datetime.datetime.now()).strftime("%Y-%m-%d %H:%M")
        lines = [f"\n## {when} — {self.title}: `{self.command}`\n"]
        lines.append(f"- Machine: {self.machine or machine_description()}")
        if self.load is not None:
            lines.append(f"- {self.load.line()}")
        lines += [f"- {line}" for line in self.setup]
        if self.headers:
            lines += ["", "| " + " | ".join(self.headers) + " |"]
            lines.append("|" + "---|" * len(self.headers))
            for row in self.rows:
                if len(row) != len(self.headers):
                    raise ValueError(f"row of {len(row)} cells, {len(self.headers)} headers")
                lines.append("| " + " | ".join(row) + " |")
        if self.notes:
            lines.append("")
            lines += [f"- {line}" for line in self.notes]
        return "\n".join(lines) + "\n"


def append_block(path: Path, block: str) -> None:
    """Append ``block`` to ``path`` (created with :data:`NEW_FILE_HEADING` when missing)."""
    if not path.exists():
        path.write_text(NEW_FILE_HEADING)
    with open(path, "a") as handle:
        handle.write(block)


def publish(report: Report, append: Path | None, summary: str | None = None) -> str:
    """Print the report (and append it to ``append`` when given), then ``summary`` last.

    Returns the Markdown block.
    """
    block = report.markdown()
    print(block)
    if append is not None:
        append_block(append, block)
        print(f"[bench] appended to {append}", file=sys.stderr)
    if summary is not None:
        print(summary, flush=True)
    return block
