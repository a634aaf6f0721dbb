"""Shared fixtures: random-weight models built once per run, test configs, DDS isolation.

No test downloads anything: models are real architectures with random weights, built and
saved here the way users get real ones, then loaded through the code users run.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from ros_helpers import dds_child_env, require_loopback_only, stop_processes

REPO = Path(__file__).resolve().parents[1]
# Keep the run hermetic: own cache, no hub access, no ultralytics network checks.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    cache = tmp_path_factory.mktemp("sfs_cache")
    old = os.environ.get("SFS_CACHE_DIR")
    os.environ["SFS_CACHE_DIR"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("SFS_CACHE_DIR", None)
    else:
        os.environ["SFS_CACHE_DIR"] = old


# ------------------------------------------------------------------------------ models
@pytest.fixture(scope="session")
def fastsam_pt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A FastSAM-s architecture with random weights, saved by ultralytics from its yaml."""
    from sfs_ros.weights import build_random_fastsam

    return build_random_fastsam("FastSAM-s.pt", tmp_path_factory.mktemp("w") / "FastSAM-s.pt")


@pytest.fixture(scope="session")
def segformer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SegFormer-B0 (ADE20K-150 labels) with random weights, saved with save_pretrained."""
    from sfs_ros.vocabularies import get_vocabulary
    from sfs_ros.weights import build_random_segformer

    names = dict(enumerate(get_vocabulary("ade20k").names))
    return build_random_segformer(
        "segformer-b0", names, tmp_path_factory.mktemp("w") / "segformer-b0-ade"
    )


@pytest.fixture(scope="session")
def test_overrides(fastsam_pt: Path, segformer_dir: Path) -> Mapping[str, Any]:
    """Parameter overrides for fast tests on real architectures with random weights.

    conf 0.003 gives ~100 masks from random FastSAM weights, like the real model does.
    Read-only (shared by the whole run): build a new dict with ``{**test_overrides, ...}``.
    """
    return MappingProxyType({
        "device": "cpu",
        # torch keeps these plumbing tests free of per-shape exports; the shipped default
        # (backend auto → openvino) is tested in test_backends.py and test_no_masks.py
        "backend": "torch",
        "fastsam.model": str(fastsam_pt),
        "fastsam.imgsz": 256,
        "fastsam.conf": 0.003,
        "fastsam.max_masks": 60,
        "closed_set.model": str(segformer_dir),
        "num_threads": 2,
    })


@pytest.fixture(scope="session")
def test_params_file(
    tmp_path_factory: pytest.TempPathFactory, test_overrides: Mapping[str, Any]
) -> Path:
    """The overrides as a ROS 2 parameter file (for the CLI and the node)."""
    import yaml

    tree: dict = {}
    for key, value in test_overrides.items():
        node = tree
        *groups, leaf = key.split(".")
        for group in groups:
            node = node.setdefault(group, {})
        node[leaf] = value
    path = tmp_path_factory.mktemp("cfg") / "test_params.yaml"
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": tree}}))
    return path


def _settings_of(pipeline) -> tuple:
    """Every setting a test could change on a pipeline (config and component state)."""
    generator = pipeline.mask_generator
    return (
        pipeline.config,
        (generator.conf, generator.iou, generator.max_masks),
        tuple(s.min_confidence for s in pipeline.segmenters),
    )


@pytest.fixture(scope="session")
def pipeline(test_overrides: Mapping[str, Any]) -> Iterator:
    """One Pipeline for the whole run (models load once, as in production).

    Shared by many tests, so no test may change it: a test that changes settings takes
    ``own_pipeline``. At the end of the run this fixture fails if its settings changed.
    """
    from sfs_ros.params import load_config
    from sfs_ros.pipeline import Pipeline

    shared = Pipeline.from_config(load_config(None, test_overrides))
    before = _settings_of(shared)
    yield shared
    assert _settings_of(shared) == before, "a test changed the shared session pipeline"


@pytest.fixture
def own_pipeline(pipeline):
    """A Pipeline for one test that may change its settings: the session pipeline's loaded
    networks (shared, read-only), its own copy of every component that holds a setting."""
    import copy

    from sfs_ros.labels import LabelRegistry
    from sfs_ros.pipeline import Pipeline

    segmenters = [copy.copy(s) for s in pipeline.segmenters]
    registry = LabelRegistry(
        [s.vocabulary for s in segmenters], max_classes=pipeline.config.legend.max_classes
    )
    own = Pipeline(
        copy.copy(pipeline.mask_generator),
        segmenters,
        registry,
        config=pipeline.config,
        device=pipeline.device,
        backend=pipeline.backend,
    )
    yield own
    own.close()


@pytest.fixture(scope="session")
def tiny_clip_name(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Register a tiny open_clip architecture in this process (real ViT + text tower)."""
    import open_clip

    cfg = {
        "embed_dim": 32,
        "vision_cfg": {
            "image_size": 32,
            "layers": 1,
            "width": 32,
            "head_width": 16,
            "patch_size": 16,
        },
        "text_cfg": {
            "context_length": 77,
            "vocab_size": 49408,
            "width": 32,
            "heads": 2,
            "layers": 1,
        },
    }
    path = tmp_path_factory.mktemp("clipcfg") / "sfs-test-tiny-clip.json"
    path.write_text(json.dumps(cfg))
    open_clip.add_model_config(path)
    return "sfs-test-tiny-clip"


# ------------------------------------------------------------------------------ DDS
_domain_ids = itertools.count(10 + os.getpid() % 50)


@pytest.fixture
def dds_env() -> dict[str, str]:
    """Environment for ROS 2 child processes: loopback-only, LOCALHOST discovery, own domain.

    Tests that touch DDS require a loopback-only network namespace (the test command runs
    pytest under ``unshare -n``). Elsewhere they are skipped, and under CI they fail.
    """
    require_loopback_only()
    return dds_child_env(next(_domain_ids))


class Processes:
    """Child processes started by one test; all are ended (by PID) at teardown."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, args: list[str], env: dict[str, str], **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(
            args,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO,
            **kwargs,
        )
        self.procs.append(proc)
        return proc

    def python(self, code_or_module: list[str], env: dict[str, str]) -> subprocess.Popen:
        return self.start([sys.executable, *code_or_module], env)

    def stop_all(self) -> None:
        stop_processes(self.procs, timeout=5)


@pytest.fixture
def processes() -> Iterator[Processes]:
    """Start child processes; they are stopped when the test ends, pass or fail."""
    group = Processes()
    yield group
    group.stop_all()


# ------------------------------------------------------------------------------ markers
# Markers follow from what a test uses, so `make test-fast` (-m "not models and not dds") is
# right by construction: a test that takes a model fixture builds or loads a network, one that
# takes a DDS fixture talks DDS.
_MODEL_FIXTURES = frozenset(
    {"fastsam_pt", "segformer_dir", "test_overrides", "test_params_file", "pipeline",
     "own_pipeline", "tiny_clip_name", "sensitive_fastsam", "tiny_world_models"}
)
_DDS_FIXTURES = frozenset({"dds_env", "processes"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & _MODEL_FIXTURES and not item.get_closest_marker("models"):
            item.add_marker(pytest.mark.models)
        if used & _DDS_FIXTURES and not item.get_closest_marker("dds"):
            item.add_marker(pytest.mark.dds)


@pytest.fixture(autouse=True)
def _locale_is_left_alone() -> Iterator[None]:
    """No test (and no library it loads) may leave the process' text encoding changed: later
    tests and the product read and write UTF-8 files and subprocess output."""
    import locale

    before = locale.getpreferredencoding(False)
    yield
    after = locale.getpreferredencoding(False)
    assert after == before, f"the process' preferred encoding changed: {before} -> {after}"
