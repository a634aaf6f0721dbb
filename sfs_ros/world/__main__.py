# SPDX-License-Identifier: AGPL-3.0-or-later
"""``python -m sfs_ros.world ...`` = ``sfs-world ...``."""

import sys

from sfs_ros.world.cli import main

sys.exit(main())
