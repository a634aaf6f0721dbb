"""launch/sfs.launch.py and config/sfs.rviz, without ROS launch installed.

``launch`` / ``launch_ros`` are not available as wheels, so the launch file is checked twice:
statically (``ast``: the entry point exists, no eval/exec/subprocess/OpaqueFunction) and by
executing it against small fakes of the launch API injected into ``sys.modules``. The fakes
accept only the real signatures (a misspelt keyword fails) and resolve substitutions, so the
test sees the same argument defaults, parameters and remappings ``ros2 launch`` would.
Where the real ``launch_ros`` is installed (a colcon workspace), it is loaded for real too.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILE = REPO / "launch" / "sfs.launch.py"
RVIZ_FILE = REPO / "config" / "sfs.rviz"

# The documented launch arguments (README "Launch arguments", the launch file's docstring),
# with their defaults resolved for a package share directory laid out like the repository.
DOCUMENTED_DEFAULTS = {
    "image_topic": "/camera/image_raw",
    "params_file": str(REPO / "config" / "sfs.yaml"),
    "namespace": "sfs",
    "device": "",
    "input_qos": "",
    "input_transport": "",
    "allow_random_weights": "",
    "use_rviz": "false",
    "rviz_config": str(REPO / "config" / "sfs.rviz"),
    "fastdds_profile": str(REPO / "config" / "fastdds_large_images.xml"),
    "use_fastdds_profile": "true",
}
PROFILE_VAR = "FASTDDS_DEFAULT_PROFILES_FILE"


# ------------------------------------------------------------------------------ fake launch
@dataclass
class Context:
    """What a launch context provides to substitutions and conditions."""

    configs: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    shares: dict[str, str] = field(default_factory=lambda: {"sfs_ros": str(REPO)})


class Substitution:
    """Base of the fake substitutions."""

    def perform(self, ctx: Context) -> str:
        raise NotImplementedError


def resolve(value: Any, ctx: Context) -> Any:
    """A launch value (text, substitution, list of them, dict, tuple) with substitutions done."""
    if isinstance(value, str):
        return value
    if isinstance(value, Substitution):
        return value.perform(ctx)
    if isinstance(value, list):
        return "".join(resolve(v, ctx) for v in value)
    if isinstance(value, tuple):
        return tuple(resolve(v, ctx) for v in value)
    if isinstance(value, dict):
        return {resolve(k, ctx): resolve(v, ctx) for k, v in value.items()}
    raise TypeError(f"not a launch value: {value!r}")


def _fake_modules(record: list[Any]) -> dict[str, types.ModuleType]:
    """Fakes of the launch / launch_ros / ament_index_python API the launch file may use."""

    class LaunchConfiguration(Substitution):
        def __init__(self, variable_name: str, *, default: Any = None) -> None:
            self.name, self.default = variable_name, default
            record.append(self)

        def perform(self, ctx: Context) -> str:
            if self.name in ctx.configs:
                return ctx.configs[self.name]
            if self.default is not None:
                return resolve(self.default, ctx)
            raise KeyError(f"launch configuration '{self.name}' is not set")

    class PathJoinSubstitution(Substitution):
        def __init__(self, substitutions: list[Any]) -> None:
            self.parts = list(substitutions)

        def perform(self, ctx: Context) -> str:
            return os.path.join(*(resolve(p, ctx) for p in self.parts))

    class EnvironmentVariable(Substitution):
        def __init__(self, name: Any, *, default_value: Any = "") -> None:
            self.name, self.default_value = name, default_value

        def perform(self, ctx: Context) -> str:
            value = ctx.env.get(resolve(self.name, ctx))
            return value if value is not None else resolve(self.default_value, ctx)

    class FindPackageShare(Substitution):
        def __init__(self, package: Any) -> None:
            self.package = package

        def perform(self, ctx: Context) -> str:
            return ctx.shares[resolve(self.package, ctx)]

    def get_package_share_directory(package_name: str) -> str:
        return Context().shares[package_name]

    class Action:
        def __init__(self, *, condition: Any = None) -> None:
            self.condition = condition
            record.append(self)

    class DeclareLaunchArgument(Action):
        def __init__(
            self,
            name: str,
            *,
            default_value: Any = None,
            description: str | None = None,
            choices: list[str] | None = None,
            **kwargs: Any,
        ) -> None:
            super().__init__(**kwargs)
            self.name, self.default_value = name, default_value
            self.description, self.choices = description, choices

    class SetEnvironmentVariable(Action):
        def __init__(self, name: Any, value: Any, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.name, self.value = name, value

    execute_process_kwargs = {
        "output",
        "emulate_tty",
        "additional_env",
        "env",
        "cwd",
        "respawn",
        "respawn_delay",
        "sigterm_timeout",
        "sigkill_timeout",
        "prefix",
        "shell",
        "log_cmd",
        "on_exit",
    }

    class Node(Action):
        def __init__(
            self,
            *,
            executable: Any,
            package: Any = None,
            name: Any = None,
            namespace: Any = None,
            exec_name: Any = None,
            parameters: list[Any] | None = None,
            remappings: list[tuple[Any, Any]] | None = None,
            ros_arguments: list[Any] | None = None,
            arguments: list[Any] | None = None,
            condition: Any = None,
            **kwargs: Any,
        ) -> None:
            unknown = set(kwargs) - execute_process_kwargs
            if unknown:
                raise TypeError(f"Node() got unexpected keyword arguments {sorted(unknown)}")
            super().__init__(condition=condition)
            self.executable, self.package, self.name = executable, package, name
            self.namespace, self.parameters = namespace, parameters or []
            self.remappings, self.arguments = remappings or [], arguments or []
            self.ros_arguments, self.kwargs = ros_arguments or [], kwargs

    class IfCondition:
        def __init__(self, predicate_expression: Any) -> None:
            self.predicate = predicate_expression

        def evaluate(self, ctx: Context) -> bool:
            text = resolve(self.predicate, ctx).strip().lower()
            if text not in {"true", "false", "1", "0"}:
                raise ValueError(f"IfCondition: {text!r} is not a boolean")
            return text in {"true", "1"}

    class LaunchDescription:
        def __init__(self, initial_entities: list[Any] | None = None) -> None:
            self.entities = list(initial_entities or [])

    def module(name: str, **attrs: Any) -> types.ModuleType:
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        return mod

    actions = module(
        "launch.actions",
        DeclareLaunchArgument=DeclareLaunchArgument,
        SetEnvironmentVariable=SetEnvironmentVariable,
    )
    conditions = module("launch.conditions", IfCondition=IfCondition)
    substitutions = module(
        "launch.substitutions",
        LaunchConfiguration=LaunchConfiguration,
        PathJoinSubstitution=PathJoinSubstitution,
        EnvironmentVariable=EnvironmentVariable,
    )
    description = module("launch.launch_description", LaunchDescription=LaunchDescription)
    launch = module(
        "launch",
        Substitution=Substitution,
        LaunchDescription=LaunchDescription,
        actions=actions,
        conditions=conditions,
        substitutions=substitutions,
        launch_description=description,
    )
    ros_actions = module("launch_ros.actions", Node=Node)
    ros_substitutions = module("launch_ros.substitutions", FindPackageShare=FindPackageShare)
    launch_ros = module("launch_ros", actions=ros_actions, substitutions=ros_substitutions)
    packages = module(
        "ament_index_python.packages", get_package_share_directory=get_package_share_directory
    )
    ament = module("ament_index_python", packages=packages)
    return {
        m.__name__: m
        for m in (
            launch,
            actions,
            conditions,
            substitutions,
            description,
            launch_ros,
            ros_actions,
            ros_substitutions,
            ament,
            packages,
        )
    }


@dataclass
class Loaded:
    """The launch description built with the fakes, and everything the file constructed."""

    entities: list[Any]
    record: list[Any]

    def of_type(self, name: str) -> list[Any]:
        return [e for e in self.entities if type(e).__name__ == name]

    def arguments(self) -> dict[str, Any]:
        return {a.name: a for a in self.of_type("DeclareLaunchArgument")}

    def node(self, executable: str) -> Any:
        (node,) = [n for n in self.of_type("Node") if n.executable == executable]
        return node

    def context(self, env: dict[str, str] | None = None, **overrides: str) -> Context:
        """A context with every argument at its default, except ``overrides``."""
        ctx = Context(env=dict(env or {}))
        for name, arg in self.arguments().items():
            ctx.configs[name] = resolve(arg.default_value, ctx)
        ctx.configs.update(overrides)
        return ctx


@pytest.fixture
def loaded(monkeypatch: pytest.MonkeyPatch) -> Iterator[Loaded]:
    record: list[Any] = []
    for name, mod in _fake_modules(record).items():
        monkeypatch.setitem(sys.modules, name, mod)
    spec = importlib.util.spec_from_file_location("sfs_launch_under_test", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    yield Loaded(description.entities, record)


# ------------------------------------------------------------------------------ static checks
def _tree() -> ast.Module:
    return ast.parse(LAUNCH_FILE.read_text(), filename=str(LAUNCH_FILE))


def test_generate_launch_description_is_defined():
    tree = _tree()
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert "generate_launch_description" in names


def test_no_eval_exec_subprocess_or_opaque_function():
    text = LAUNCH_FILE.read_text()
    tree = _tree()
    called = {
        node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
    }
    assert not called & {"eval", "exec", "compile", "__import__", "system", "popen", "run"}
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert "subprocess" not in imported
    for word in ("eval(", "exec(", "subprocess", "OpaqueFunction", "PythonExpression"):
        assert word not in text


def test_sfs_node_call_is_literal():
    """package / executable / name of the sfs Node, read from the source (constants resolved)."""
    tree = _tree()
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name)
    }

    def value(expr: ast.expr) -> Any:
        if isinstance(expr, ast.Constant):
            return expr.value
        if isinstance(expr, ast.Name):
            return constants.get(expr.id)
        return None

    calls = [
        {kw.arg: value(kw.value) for kw in node.keywords}
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Node"
    ]
    assert {"package": "sfs_ros", "executable": "sfs_node", "name": "sfs"} in [
        {k: c.get(k) for k in ("package", "executable", "name")} for c in calls
    ]


def test_documented_arguments_are_in_docstring_and_readme():
    doc = ast.get_docstring(_tree()) or ""
    for name, default in DOCUMENTED_DEFAULTS.items():
        assert f"``{name}``" in doc, f"launch argument {name} is not documented in the file"
        if "/" not in default:
            shown = default or '""'
            assert f"``{name}``: ``{shown}``" in doc
    readme = (REPO / "README.md").read_text()
    line = re.search(r"Launch arguments:(.*?)\.\s", readme, re.S)
    assert line, "README has no 'Launch arguments:' sentence"
    for name in re.findall(r"`(\w+)`", line.group(1)):
        if name in {"auto", "sfs"}:  # defaults quoted next to the names
            continue
        assert name in DOCUMENTED_DEFAULTS, f"README documents an unknown launch argument {name}"


# ------------------------------------------------------------------------------ with fakes
def test_arguments_are_declared_with_documented_defaults(loaded: Loaded):
    args = loaded.arguments()
    assert set(args) == set(DOCUMENTED_DEFAULTS)
    ctx = loaded.context()
    assert ctx.configs == DOCUMENTED_DEFAULTS
    for arg in args.values():
        assert arg.description, f"{arg.name} has no description"
        if arg.choices is not None:
            assert ctx.configs[arg.name] in arg.choices


def test_default_files_exist_in_the_repository(loaded: Loaded):
    ctx = loaded.context()
    for name in ("params_file", "rviz_config", "fastdds_profile"):
        path = Path(ctx.configs[name])
        assert path.is_file(), f"default of {name} ({path}) does not exist"
        assert path.parent == REPO / "config"


def test_fastdds_profile_defaults_to_the_environment(loaded: Loaded):
    ctx = loaded.context(env={PROFILE_VAR: "/etc/my_profile.xml"})
    assert ctx.configs["fastdds_profile"] == "/etc/my_profile.xml"
    (setenv,) = loaded.of_type("SetEnvironmentVariable")
    assert resolve(setenv.name, ctx) == PROFILE_VAR
    assert resolve(setenv.value, ctx) == "/etc/my_profile.xml"
    assert setenv.condition.evaluate(ctx)
    assert not setenv.condition.evaluate(loaded.context(use_fastdds_profile="false"))
    # The variable is set before the nodes start.
    assert loaded.entities.index(setenv) < loaded.entities.index(loaded.node("sfs_node"))


def _overrides(node: Any, ctx: Context) -> dict:
    path = Path(resolve(node.parameters[1], ctx))
    try:
        return yaml.safe_load(path.read_text())["/**"]["ros__parameters"]
    finally:
        path.unlink()


def test_sfs_node(loaded: Loaded):
    node = loaded.node("sfs_node")
    ctx = loaded.context()
    assert (node.package, node.executable, node.name) == ("sfs_ros", "sfs_node", "sfs")
    assert node.condition is None
    assert resolve(node.namespace, ctx) == "sfs"
    assert node.kwargs.get("output") == "screen"
    assert resolve(node.parameters[0], ctx) == DOCUMENTED_DEFAULTS["params_file"]
    assert _overrides(node, ctx) == {}  # nothing given: the params file decides
    assert [resolve(r, ctx) for r in node.remappings] == [
        ("image", "/camera/image_raw"),
        ("image/compressed", "/camera/image_raw/compressed"),
    ]
    custom = loaded.context(
        image_topic="/front/color/image_raw",
        device="cuda:1",
        namespace="seg",
        params_file="/p.yaml",
        input_qos="reliable",
        input_transport="compressed",
        allow_random_weights="true",
    )
    assert resolve(node.namespace, custom) == "seg"
    assert resolve(node.parameters[0], custom) == "/p.yaml"
    assert _overrides(node, custom) == {
        "device": "cuda:1",
        "input_qos": "reliable",
        "input_transport": "compressed",
        "allow_random_weights": True,
    }
    assert [resolve(r, custom) for r in node.remappings] == [
        ("image", "/front/color/image_raw"),
        ("image/compressed", "/front/color/image_raw/compressed"),
    ]
    with pytest.raises(ValueError, match="allow_random_weights"):
        _overrides(node, loaded.context(allow_random_weights="maybe"))


def test_node_overrides_are_real_parameters_with_shipped_choices(loaded: Loaded):
    from sfs_ros.params import SPECS

    args = loaded.arguments()
    for name in ("input_qos", "input_transport"):
        assert set(args[name].choices) == {"", *SPECS[name].choices}
    for name in ("device", "input_qos", "input_transport", "allow_random_weights"):
        assert name in SPECS


def test_rviz_is_conditional_and_in_the_node_namespace(loaded: Loaded):
    rviz = loaded.node("rviz2")
    assert rviz.package == "rviz2"
    ctx = loaded.context()
    assert [resolve(a, ctx) for a in rviz.arguments] == ["-d", DOCUMENTED_DEFAULTS["rviz_config"]]
    assert rviz.condition.evaluate(ctx) is False
    assert rviz.condition.evaluate(loaded.context(use_rviz="true")) is True
    assert resolve(rviz.namespace, loaded.context(namespace="x")) == "x"


def test_rviz_fixed_frame_is_provided_with_rviz(loaded: Loaded):
    """Without TF on the robot, RViz still finds its Fixed Frame (no error shown)."""
    frame = loaded.node("static_transform_publisher")
    assert frame.package == "tf2_ros"
    ctx = loaded.context(use_rviz="true")
    assert frame.condition.evaluate(ctx) is True
    assert frame.condition.evaluate(loaded.context()) is False
    args = [resolve(a, ctx) for a in frame.arguments]
    fixed = yaml.safe_load(RVIZ_FILE.read_text())["Visualization Manager"]["Global Options"]
    assert args[args.index("--frame-id") + 1] == fixed["Fixed Frame"]


def test_every_launch_configuration_is_declared(loaded: Loaded):
    declared = set(loaded.arguments())
    used = {r.name for r in loaded.record if type(r).__name__ == "LaunchConfiguration"}
    assert used <= declared, f"undeclared launch configurations: {used - declared}"


def test_executables_exist_and_are_installed():
    cmake = (REPO / "CMakeLists.txt").read_text()
    programs = re.search(r"install\(PROGRAMS(.*?)DESTINATION\s+lib/\$\{PROJECT_NAME\}", cmake, re.S)
    assert programs, "CMakeLists.txt has no install(PROGRAMS ... DESTINATION lib/${PROJECT_NAME})"
    listed = programs.group(1).split()
    for name in ("sfs_node", "sfs_demo_camera", "sfs_recorder"):
        script = REPO / "scripts" / name
        assert script.is_file() and os.access(script, os.X_OK), f"{script} is not executable"
        assert script.read_text().startswith("#!/usr/bin/env python3")
        assert f"scripts/{name}" in listed, f"scripts/{name} is not installed"
    share = re.search(r"install\(DIRECTORY([^)]*)DESTINATION\s+share/\$\{PROJECT_NAME\}\)", cmake)
    assert share and {"launch", "config"} <= set(share.group(1).split())


@pytest.mark.parametrize("script", ["sfs_demo_camera", "sfs_recorder"])
def test_entry_point_scripts_import_main(script: str):
    text = (REPO / "scripts" / script).read_text()
    module = re.search(r"from (\S+) import main", text).group(1)
    assert importlib.import_module(module).main


def test_with_real_launch_ros_when_installed():
    """In a ROS workspace (launch_ros importable), the file also loads with the real API."""
    pytest.importorskip("launch_ros")
    spec = importlib.util.spec_from_file_location("sfs_launch_real", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    names = [getattr(e, "name", None) for e in description.entities]
    assert set(DOCUMENTED_DEFAULTS) <= set(names)


# ------------------------------------------------------------------------------ RViz
def _image_displays() -> list[dict]:
    config = yaml.safe_load(RVIZ_FILE.read_text())
    displays = config["Visualization Manager"]["Displays"]
    return [d for d in displays if d["Class"] == "rviz_default_plugins/Image"]


def test_rviz_config_shows_overlay_colour_and_legend_with_publisher_qos():
    displays = _image_displays()
    topics = {d["Topic"]["Value"] for d in displays}
    assert topics == {"overlay", "semantic_color", "legend_image"}
    for display in displays:
        topic = display["Topic"]
        assert display["Enabled"] is True
        assert topic["Reliability Policy"] == "Reliable"
        assert topic["Durability Policy"] == "Volatile"
        assert topic["History Policy"] == "Keep Last"
        assert topic["Depth"] == 5


def test_rviz_config_global_options():
    config = yaml.safe_load(RVIZ_FILE.read_text())
    options = config["Visualization Manager"]["Global Options"]
    assert isinstance(options["Fixed Frame"], str) and options["Fixed Frame"]
    # A dock is named after each image display.
    for display in _image_displays():
        assert display["Name"] in config["Window Geometry"]


def test_rviz_topics_follow_the_launch_namespace(loaded: Loaded):
    """Relative topic names, resolved in RViz's namespace = the node's namespace."""
    node = loaded.node("sfs_node")
    rviz = loaded.node("rviz2")
    assert node.namespace is rviz.namespace or resolve(node.namespace, loaded.context()) == (
        resolve(rviz.namespace, loaded.context())
    )
    for display in _image_displays():
        assert not display["Topic"]["Value"].startswith("/")
