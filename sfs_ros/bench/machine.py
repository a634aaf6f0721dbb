# SPDX-License-Identifier: AGPL-3.0-or-later
"""Where a benchmark ran: the machine (CPU, cores, memory, library versions) and its load."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

LIBRARIES = ("torch", "onnxruntime", "openvino", "ultralytics", "transformers", "open_clip")
"""Libraries whose versions the machine line names ("-" when not installed)."""


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (else what :mod:`platform` says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def library_versions() -> list[str]:
    """``"name version"`` of each of :data:`LIBRARIES` (imports them: call after the run)."""
    versions = []
    for name in LIBRARIES:
        try:
            versions.append(f"{name} {__import__(name).__version__}")
        except (ImportError, AttributeError):
            versions.append(f"{name} -")
    return versions


def machine_description() -> str:
    """One line: CPU, cores, memory, OS, Python and the library versions."""
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return (
        f"{cpu_model()}, {os.cpu_count()} cores, {mem_gb:.0f} GiB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}; "
        + ", ".join(library_versions())
    )


@dataclass
class LoadMeter:
    """The 1-minute load average at the start and at the end of a run."""

    start: float
    end: float | None = None

    @classmethod
    def begin(cls) -> LoadMeter:
        """A meter that read the load now."""
        return cls(os.getloadavg()[0])

    def finish(self) -> None:
        """Read the load at the end of the run."""
        self.end = os.getloadavg()[0]

    def line(self) -> str:
        """The report's load line."""
        end = "–" if self.end is None else f"{self.end:.2f}"
        return (
            f"Load average (1 min) at start / end: {self.start:.2f} / {end} on "
            f"{os.cpu_count()} cores; other processes share the CPU, so ratios from interleaved "
            "runs are steadier than absolute times."
        )
