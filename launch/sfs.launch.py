"""Launch the sfs segmentation node, and optionally RViz.

    ros2 launch sfs_ros sfs.launch.py image_topic:=/camera/color/image_raw use_rviz:=true

Arguments (name: default):

* ``image_topic``: ``/camera/image_raw``. The camera topic; the node's ``image`` input is
  remapped to it and ``image/compressed`` to ``<image_topic>/compressed`` (used with
  ``input_transport: compressed`` in the parameter file).
* ``params_file``: the installed ``config/sfs.yaml``. Node parameters (``config/sfs_paper.yaml``
  is the paper's setup).
* ``namespace``: ``sfs``. Outputs are ``/<namespace>/semantic``, ``.../overlay``, ...
* ``device``: ``auto``. ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``; overrides the file's value.
* ``use_rviz``: ``false``. Also start RViz with ``rviz_config``.
* ``rviz_config``: the installed ``config/sfs.rviz`` (overlay and colour images of ``/sfs``).
* ``fastdds_profile``: ``$FASTDDS_DEFAULT_PROFILES_FILE`` if set, else the installed
  ``config/fastdds_large_images.xml`` (a larger shared-memory segment, so that large images
  pass between processes). Exported as ``FASTDDS_DEFAULT_PROFILES_FILE`` to the processes of
  this launch; other RMWs ignore it.
* ``use_fastdds_profile``: ``true``. ``false`` leaves ``FASTDDS_DEFAULT_PROFILES_FILE`` alone.

Plain declarations and two nodes: nothing is evaluated as code and no command is run here.
"""

from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.launch_description import LaunchDescription
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = "sfs_ros"


def generate_launch_description() -> LaunchDescription:
    """The sfs node (remapped input, parameter file + device override) and optional RViz."""
    config_dir = PathJoinSubstitution([FindPackageShare(PACKAGE), "config"])
    image_topic = LaunchConfiguration("image_topic")
    params_file = LaunchConfiguration("params_file")
    namespace = LaunchConfiguration("namespace")
    device = LaunchConfiguration("device")
    use_rviz = LaunchConfiguration("use_rviz")
    rviz_config = LaunchConfiguration("rviz_config")
    fastdds_profile = LaunchConfiguration("fastdds_profile")
    use_fastdds_profile = LaunchConfiguration("use_fastdds_profile")
    booleans = ["true", "false", "True", "False"]

    arguments = [
        DeclareLaunchArgument(
            "image_topic",
            default_value="/camera/image_raw",
            description="camera image topic (sensor_msgs/Image); <topic>/compressed for JPEG",
        ),
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([config_dir, "sfs.yaml"]),
            description="ROS 2 parameter file of the sfs node",
        ),
        DeclareLaunchArgument(
            "namespace", default_value="sfs", description="namespace of the node and its topics"
        ),
        DeclareLaunchArgument(
            "device",
            default_value="auto",
            description="auto | cpu | cuda | cuda:N (auto: first GPU, else CPU)",
        ),
        DeclareLaunchArgument(
            "use_rviz",
            default_value="false",
            choices=booleans,
            description="also start RViz with rviz_config",
        ),
        DeclareLaunchArgument(
            "rviz_config",
            default_value=PathJoinSubstitution([config_dir, "sfs.rviz"]),
            description="RViz configuration file",
        ),
        DeclareLaunchArgument(
            "fastdds_profile",
            default_value=EnvironmentVariable(
                "FASTDDS_DEFAULT_PROFILES_FILE",
                default_value=PathJoinSubstitution([config_dir, "fastdds_large_images.xml"]),
            ),
            description="Fast DDS profile exported as FASTDDS_DEFAULT_PROFILES_FILE",
        ),
        DeclareLaunchArgument(
            "use_fastdds_profile",
            default_value="true",
            choices=booleans,
            description="export fastdds_profile to the launched processes",
        ),
    ]

    fastdds_env = SetEnvironmentVariable(
        "FASTDDS_DEFAULT_PROFILES_FILE",
        fastdds_profile,
        condition=IfCondition(use_fastdds_profile),
    )

    sfs_node = Node(
        package=PACKAGE,
        executable="sfs_node",
        name="sfs",
        namespace=namespace,
        parameters=[params_file, {"device": device}],
        remappings=[
            ("image", image_topic),
            ("image/compressed", [image_topic, "/compressed"]),
        ],
        output="screen",
        emulate_tty=True,
    )

    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        arguments=["-d", rviz_config],
        output="screen",
        condition=IfCondition(use_rviz),
    )

    return LaunchDescription([*arguments, fastdds_env, sfs_node, rviz])
