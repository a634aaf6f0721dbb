"""``python -m sfs_ros.cli segment|eval ARGS``: the console scripts without installing them."""

from __future__ import annotations

import sys

COMMANDS = {
    "segment": "sfs_ros.cli.segment",
    "eval": "sfs_ros.evaluation.cli",
}


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a sub-command's ``main``."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m sfs_ros.cli {{{','.join(COMMANDS)}}} ...", file=sys.stderr)
        return 2
    import importlib

    return importlib.import_module(COMMANDS[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
