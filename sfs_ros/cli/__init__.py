"""Command-line tools: ``python -m sfs_ros.cli {segment,eval} ...`` or the console scripts."""
