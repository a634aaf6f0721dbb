# SPDX-License-Identifier: AGPL-3.0-or-later
"""The demo graph's own nodes, kept apart from the product (``sfs_ros/ros/``):

* :mod:`~sfs_ros.demo.camera` - ``demo_camera``: a stand-in camera (sample photos, synthetic
  frames, a video, images, or a panning tiny-world sequence with its ground truth);
* :mod:`~sfs_ros.demo.recorder` - ``recorder``: saves what the sfs node publishes, prints a
  summary of the run, and scores the label maps against the tiny world's ground truth;
* :mod:`~sfs_ros.demo.tiny_world` - the tiny-world source (frames + ground truth, ROS-free)
  and the parameter file that loads the trained tiny-world models (``scripts/run_demo.sh``);
* :mod:`~sfs_ros.demo.scoring` - the recorder's ROS-free scoring of label maps against ground
  truth (matched by stamp), on :mod:`sfs_ros.evaluation`'s metrics.

``scripts/run_demo.sh`` (``make demo``) runs camera → sfs node → recorder. Nothing in the
product imports this package.
"""
