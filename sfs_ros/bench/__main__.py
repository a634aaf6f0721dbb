# SPDX-License-Identifier: AGPL-3.0-or-later
"""``python -m sfs_ros.bench ...``: the ``sfs-bench`` console script without installing it."""

import sys

from sfs_ros.bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
