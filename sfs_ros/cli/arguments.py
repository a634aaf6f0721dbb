# SPDX-License-Identifier: AGPL-3.0-or-later
"""Command-line options shared by the offline commands (sfs-segment on files and on bags)."""

from __future__ import annotations

import argparse
from typing import Any


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The parameter options every offline command shares: --config, --set, --device, --imgsz,
    --allow-random-weights."""
    parser.add_argument("--config", help="parameter file (config/sfs.yaml, config/sfs_paper.yaml)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a parameter, value parsed as YAML (repeatable)",
    )
    parser.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--imgsz", type=int, help="FastSAM input size")
    parser.add_argument(
        "--allow-random-weights",
        action="store_true",
        help="run with random weights when real ones are missing (testing only)",
    )


def load_model_config(args: argparse.Namespace) -> dict[str, Any]:
    """The validated configuration of :func:`add_model_arguments`' options: the file, then
    ``--set``, then the shortcuts ``--device``, ``--imgsz`` and ``--allow-random-weights``.

    Raises:
        sfs_ros.params.ConfigError: a bad file or value.
    """
    from sfs_ros.params import load_config

    overrides = list(args.overrides)
    if args.device:
        overrides.append(f"device={args.device}")
    if args.imgsz:
        overrides.append(f"fastsam.imgsz={args.imgsz}")
    if args.allow_random_weights:
        overrides.append("allow_random_weights=true")
    return load_config(args.config, overrides)
