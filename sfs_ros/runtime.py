"""Process-wide runtime hygiene: offline-safe ultralytics import, device choice, threads."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cache
from types import ModuleType

from sfs_ros.errors import ConfigError

LOG = logging.getLogger("sfs_ros")


@cache
def import_ultralytics() -> ModuleType:
    """Import ultralytics without network access, telemetry or auto-installs.

    ultralytics resolves DNS names at import to decide whether it is online, syncs settings
    and may pip-install missing packages; all of that is switched off here. Its NMS only uses
    torchvision when torchvision was imported first, so that import comes first.

    Checkpoints are always unpickled in ultralytics' restricted mode (``weights_only`` with an
    allow-list of model classes, its ``ULTRALYTICS_SAFE_LOAD``), so a planted ``.pt`` file
    cannot run code; genuine FastSAM / YOLOv8-seg checkpoints load unchanged.
    """
    os.environ["ULTRALYTICS_SAFE_LOAD"] = "1"
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_VERBOSE", "false")
    # ultralytics sets OMP_NUM_THREADS=1 at import when it is unset; keep the user's choice.
    omp = os.environ.get("OMP_NUM_THREADS")
    import torchvision  # noqa: F401  (see docstring)
    import ultralytics
    from ultralytics.utils import SETTINGS

    if omp is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    if SETTINGS.get("sync", False):
        SETTINGS.update({"sync": False})
    from ultralytics.nn import tasks

    # The flag is read once at import; set it on the module too in case ultralytics was
    # imported before this function ran.
    tasks.SAFE_LOAD = True
    return ultralytics


@dataclass(frozen=True)
class DeviceChoice:
    """The torch device to run on and whether half precision is in use."""

    device: str
    half: bool
    reason: str


def select_device(spec: str = "auto", half: bool = False) -> DeviceChoice:
    """Resolve ``auto|cpu|cuda|cuda:N`` to a usable torch device.

    ``auto`` takes the first CUDA device when there is one, else the CPU (never an error).
    An explicit CUDA device that does not exist is an error naming what is available, rather
    than a crash later inside a model. Half precision is only used on CUDA.

    Raises:
        ConfigError: ``spec`` is not a device name, or names a CUDA device that is not there.
    """
    import torch

    spec = (spec or "auto").strip().lower()
    cuda_ok = torch.cuda.is_available()
    if spec == "auto":
        if cuda_ok:
            return DeviceChoice("cuda:0", half, "auto: CUDA available")
        return DeviceChoice("cpu", False, "auto: no CUDA device, using the CPU")
    if spec == "cpu":
        return DeviceChoice("cpu", False, "requested")
    if spec.startswith("cuda"):
        index = 0
        if ":" in spec:
            try:
                index = int(spec.split(":", 1)[1])
            except ValueError as exc:
                raise ConfigError(f"device '{spec}': expected cuda:N with an integer N") from exc
        count = torch.cuda.device_count() if cuda_ok else 0
        if index >= count:
            raise ConfigError(
                f"device '{spec}' requested but {count} CUDA device(s) are available; "
                "use device:=auto to fall back to the CPU"
            )
        return DeviceChoice(f"cuda:{index}", half, "requested")
    raise ConfigError(f"device '{spec}': expected auto, cpu, cuda or cuda:N")


def set_torch_threads(num_threads: int | None) -> int:
    """Set torch's intra-op thread count (None/0: all cores); return the count in effect."""
    import torch

    if num_threads and num_threads > 0:
        torch.set_num_threads(num_threads)
    else:
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    return torch.get_num_threads()
