"""pip install . — the ROS-free core and its command-line tools (sfs-segment, sfs-eval).

ROS users build the package with colcon instead (CMakeLists.txt), which also generates the
sfs_ros.msg interfaces.
"""

from setuptools import setup

setup()
