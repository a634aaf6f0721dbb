# SPDX-License-Identifier: AGPL-3.0-or-later
"""The errors sfs_ros raises on purpose, under one base class.

``except SfsError`` catches every problem the package reports with a user-facing message (a
bad parameter, missing weights, an unreadable input, a full legend, a backend that cannot run
an exported model, an evaluation set-up problem) and nothing else, so a bug still shows as one.

Each class also derives from the built-in exception that callers caught before this module
existed (``ConfigError`` and ``InputError`` are ``ValueError``, ``WeightsNotFoundError`` is a
``FileNotFoundError``, ``LegendFullError`` and ``BackendError`` are ``RuntimeError``), and the
modules that first defined them re-export them, so existing ``except`` clauses and imports keep
working.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "ConfigError",
    "EvaluationError",
    "InputError",
    "LegendError",
    "LegendFullError",
    "SfsError",
    "UnusableWeightsError",
    "WeightsError",
    "WeightsNotFoundError",
]


class SfsError(Exception):
    """Base of every error sfs_ros raises on purpose; the message says what and why."""


class ConfigError(SfsError, ValueError):
    """A parameter value or config file is invalid; the message says which and why."""


class WeightsError(SfsError):
    """Model weights cannot be had or cannot be used."""


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """Model weights are missing and cannot (or may not) be downloaded."""


# Derived from WeightsNotFoundError: callers that handle "no usable weights" by that name
# (the CLIs' start-up) treat a damaged file the same way as a missing one.
class UnusableWeightsError(WeightsNotFoundError):
    """A weights file exists but cannot be used (damaged, wrong format, unsafe to load)."""


class InputError(SfsError, ValueError):
    """An input path that is missing, unreadable or of an unknown kind."""


class LegendError(SfsError):
    """The legend (the label registry) cannot take a change."""


class LegendFullError(LegendError, RuntimeError):
    """The registry reached its capacity (``max_classes``)."""


class BackendError(SfsError, RuntimeError):
    """An inference backend (ONNX Runtime, OpenVINO) cannot run a model exported for it."""


class EvaluationError(SfsError):
    """A user-facing evaluation problem (missing or malformed files); ``sfs-eval`` exits 2."""
