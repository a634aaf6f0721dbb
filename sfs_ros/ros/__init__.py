"""Thin ROS 2 layer of sfs_ros: message conversions, node, parameters and diagnostics."""
