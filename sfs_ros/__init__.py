"""sfs_ros: Semantic-Fast-SAM for ROS 2 and plain Python.

This module stays light on purpose: every ``from sfs_ros.msg import ...`` in any robot node
imports it, so it must not pull in torch, rclpy or OpenCV.
"""

from pkgutil import extend_path

# The generated message package (``sfs_ros.msg``) is installed by CMake into site-packages,
# while the hand-written modules may come from a source checkout: let both directories
# contribute to the one ``sfs_ros`` package.
__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"
