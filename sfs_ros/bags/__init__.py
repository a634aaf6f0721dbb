# SPDX-License-Identifier: AGPL-3.0-or-later
"""Offline labelling of recorded ROS 2 bags (rosbag2 directories and ``.mcap`` files).

Reading and writing go through the ``rosbags`` package (no ROS install needed); images are
decoded by the node's own conversions (:mod:`sfs_ros.ros.conversions`) and labelled by the same
:class:`~sfs_ros.pipeline.Pipeline`. Entry point: ``sfs-segment BAG -o OUT``
(:mod:`sfs_ros.cli.bag`).
"""
