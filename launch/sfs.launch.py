"""Launch the sfs segmentation node, and optionally RViz.

    ros2 launch sfs_ros sfs.launch.py image_topic:=/camera/color/image_raw use_rviz:=true

Arguments (name: default):

* ``image_topic``: ``/camera/image_raw``. The camera topic; the node's ``image`` input is
  remapped to it and ``image/compressed`` to ``<image_topic>/compressed`` (used with
  ``input_transport: compressed`` in the parameter file).
* ``params_file``: the installed ``config/sfs.yaml``. Node parameters (``config/sfs_paper.yaml``
  is the paper's setup).
* ``namespace``: ``sfs``. Outputs are ``/<namespace>/semantic``, ``.../overlay``, ...
* ``device``: ``""`` (the params file's value). ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``.
* ``input_qos``: ``""`` (the params file's value). ``auto`` | ``sensor_data`` | ``reliable``.
* ``input_transport``: ``""`` (the params file's value). ``raw`` | ``compressed``.
* ``allow_random_weights``: ``""`` (the params file's value). ``true`` runs with random weights
  where real ones are missing (testing only).
* ``use_rviz``: ``false``. Also start RViz with ``rviz_config``.
* ``rviz_config``: the installed ``config/sfs.rviz``: overlay, colour and legend images, with
  topic names relative to ``namespace`` (RViz runs in that namespace), and a Fixed Frame
  (``sfs_view``) that a static transform publisher started with RViz provides, so RViz shows
  no TF error on a robot without TF.
* ``fastdds_profile``: ``$FASTDDS_DEFAULT_PROFILES_FILE`` if set, else the installed
  ``config/fastdds_large_images.xml`` (a larger shared-memory segment, so that large images
  pass between processes). Exported as ``FASTDDS_DEFAULT_PROFILES_FILE`` to the processes of
  this launch (so also to a camera driver started from a launch file that includes this one;
  the camera is the side that needs it); other RMWs ignore it.
* ``use_fastdds_profile``: ``true``. ``false`` leaves ``FASTDDS_DEFAULT_PROFILES_FILE`` alone.

The four node arguments that default to ``""`` are passed to the node only when given, in a
small parameter file written at launch time (after ``params_file``, so they win), so
``params_file`` keeps its say otherwise. Nothing is evaluated as code and no command is run.
"""

import os
import tempfile

import yaml
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.launch_description import LaunchDescription
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import Substitution

PACKAGE = "sfs_ros"
RVIZ_FRAME = "sfs_view"
NODE_OVERRIDES = ("device", "input_qos", "input_transport", "allow_random_weights")
"""Launch arguments handed to the node as parameters of the same name, when not empty."""
BOOLEAN_OVERRIDES = ("allow_random_weights",)


class NodeOverridesFile(Substitution):
    """A parameter file with the launch arguments of :data:`NODE_OVERRIDES` that were given
    (not empty); performs to its path."""

    def __init__(self, arguments: dict) -> None:
        super().__init__()
        self.arguments = arguments

    def describe(self) -> str:
        """Text for launch's introspection."""
        return f"NodeOverridesFile({', '.join(self.arguments)})"

    def perform(self, context) -> str:
        """Write the file (a new one per launch) and return its path."""
        values = {}
        for name, argument in self.arguments.items():
            text = argument.perform(context).strip()
            if not text:
                continue
            if name in BOOLEAN_OVERRIDES:
                if text.lower() not in ("true", "false"):
                    raise ValueError(f"launch argument {name}: expected true or false, got {text}")
                values[name] = text.lower() == "true"
            else:
                values[name] = text
        handle, path = tempfile.mkstemp(prefix="sfs_launch_", suffix=".yaml")
        with os.fdopen(handle, "w") as stream:
            yaml.safe_dump({"/**": {"ros__parameters": values}}, stream)
        return path


def generate_launch_description() -> LaunchDescription:
    """The sfs node (remapped input, parameter file + device override) and optional RViz."""
    config_dir = PathJoinSubstitution([FindPackageShare(PACKAGE), "config"])
    image_topic = LaunchConfiguration("image_topic")
    params_file = LaunchConfiguration("params_file")
    namespace = LaunchConfiguration("namespace")
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
            default_value="",
            description="auto | cpu | cuda | cuda:N; empty = the params file's value",
        ),
        DeclareLaunchArgument(
            "input_qos",
            default_value="",
            choices=["", "auto", "sensor_data", "reliable"],
            description="auto | sensor_data | reliable; empty = the params file's value",
        ),
        DeclareLaunchArgument(
            "input_transport",
            default_value="",
            choices=["", "raw", "compressed"],
            description="raw | compressed; empty = the params file's value",
        ),
        DeclareLaunchArgument(
            "allow_random_weights",
            default_value="",
            choices=["", *booleans],
            description="true: random weights where real ones are missing (testing only); "
            "empty = the params file's value",
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
        parameters=[
            params_file,
            NodeOverridesFile({name: LaunchConfiguration(name) for name in NODE_OVERRIDES}),
        ],
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
        namespace=namespace,  # the config's topic names are relative: they follow namespace
        arguments=["-d", rviz_config],
        output="screen",
        condition=IfCondition(use_rviz),
    )
    # RViz's Fixed Frame must exist in TF or RViz shows an error; image displays need no TF.
    rviz_frame = Node(
        package="tf2_ros",
        executable="static_transform_publisher",
        name="sfs_rviz_frame",
        namespace=namespace,
        arguments=["--frame-id", RVIZ_FRAME, "--child-frame-id", f"{RVIZ_FRAME}_image"],
        output="screen",
        condition=IfCondition(use_rviz),
    )

    return LaunchDescription([*arguments, fastdds_env, sfs_node, rviz, rviz_frame])
