# SPDX-License-Identifier: AGPL-3.0-or-later
"""sfs_ros.errors: one base class, compatible built-in bases, the old import paths still work."""

from __future__ import annotations

import importlib

import pytest

from sfs_ros import errors
from sfs_ros.errors import SfsError

#: error class -> (its parent in the hierarchy, the built-in callers caught before, old homes)
HIERARCHY = {
    "ConfigError": (SfsError, ValueError, ["sfs_ros.params"]),
    "WeightsError": (SfsError, Exception, []),
    "WeightsNotFoundError": (errors.WeightsError, FileNotFoundError, ["sfs_ros.weights"]),
    "UnusableWeightsError": (errors.WeightsNotFoundError, FileNotFoundError, ["sfs_ros.weights"]),
    "InputError": (SfsError, ValueError, ["sfs_ros.cli.inputs"]),
    "LegendError": (SfsError, Exception, []),
    "LegendFullError": (errors.LegendError, RuntimeError, ["sfs_ros.labels"]),
    "BackendError": (SfsError, RuntimeError, []),
    "EvaluationError": (SfsError, Exception, ["sfs_ros.evaluation.datasets"]),
}


def test_every_error_is_listed_and_derives_from_sfs_error():
    assert set(errors.__all__) == {*HIERARCHY, "SfsError"}
    for name, (parent, builtin, _) in HIERARCHY.items():
        cls = getattr(errors, name)
        assert issubclass(cls, parent) and issubclass(cls, SfsError), name
        assert issubclass(cls, builtin), name
    assert not issubclass(SfsError, ValueError | RuntimeError | OSError)


@pytest.mark.parametrize("name", [n for n, (_, _, homes) in HIERARCHY.items() if homes])
def test_old_import_paths_give_the_same_class(name):
    for module in HIERARCHY[name][2]:
        assert getattr(importlib.import_module(module), name) is getattr(errors, name)


def test_select_device_raises_config_error():
    from sfs_ros.runtime import select_device

    with pytest.raises(errors.ConfigError, match="expected auto, cpu, cuda or cuda:N"):
        select_device("tpu")
