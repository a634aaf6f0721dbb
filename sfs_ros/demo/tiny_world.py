# SPDX-License-Identifier: AGPL-3.0-or-later
"""The demo's tiny world: a panning sequence with ground truth, and the parameter file that loads
the trained tiny-world models. ROS-free (numpy, OpenCV, PyYAML).

* :func:`scene_stream` - what the demo camera's ``tiny-world`` source plays: a camera panning
  over one wide scene of world ``seed`` (``frames`` crops, ``step`` pixels apart), started over
  at its end when looping. Deterministic: the same arguments give the same pixels and labels.
* :func:`write_params_file` - a ROS 2 parameter file: ``config/sfs.yaml`` (or any base) with
  only the model entries replaced by the trained tiny-world models
  (:meth:`sfs_ros.world.train.TinyWorldModels.overrides`), so that everything else stays at
  the shipped defaults.

Command line (``scripts/run_demo.sh`` uses it)::

    python -m sfs_ros.demo.tiny_world params --base config/sfs.yaml \\
        --models test/fixtures/tiny_world --out /tmp/sfs_tiny_world.yaml

exits 0 after writing the file, 3 when the models folder lacks a part or holds models of
another recipe (the line says which and the command that trains them), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DEFAULT_FRAMES",
    "DEFAULT_SEED",
    "DEFAULT_STEP",
    "FIXTURE_MODELS",
    "SOURCE_NAME",
    "demo_overrides",
    "main",
    "missing_parts",
    "scene_stream",
    "write_params_file",
]

#: The demo camera's ``source`` value for this sequence.
SOURCE_NAME = "tiny-world"
#: World seed of the demo sequence: held out from training (seeds 1 and 2). Its pan shows floor,
#: wall, a ball, a cone, a tire, a barrel and two objects only the open vocabulary can name (a
#: star and two ducks) in every frame; one sequence to look at, not a benchmark (``sfs-world
#: eval`` measures on many scenes, docs/tiny_world.md).
DEFAULT_SEED = 71
#: Frames of one pass over the panorama, and the pan per frame in pixels.
DEFAULT_FRAMES = 30
DEFAULT_STEP = 8
#: The trained models committed with the repository (test/fixtures/tiny_world/README.md).
FIXTURE_MODELS = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "tiny_world"


def scene_stream(
    seed: int = DEFAULT_SEED,
    width: int = 0,
    height: int = 0,
    *,
    frames: int = DEFAULT_FRAMES,
    step: int = DEFAULT_STEP,
    loop: bool = True,
) -> Iterator[Any]:
    """Tiny-world scenes (:class:`sfs_ros.world.scene.Scene`: ``rgb`` + ``semantic``) of a
    camera panning right over world ``seed``; ``width``/``height`` 0 = 640x480.

    The panorama is drawn once; a looping stream starts it over after ``frames`` crops.

    Raises:
        ValueError: ``frames`` < 1, ``step`` < 0 or a size below 32 pixels.
    """
    from sfs_ros.world.scene import DEFAULT_SIZE, generate_sequence

    if step < 0:
        raise ValueError(f"tiny-world pan step must be >= 0 pixels, got {step}")
    size = (height or DEFAULT_SIZE[0], width or DEFAULT_SIZE[1])
    scenes = list(generate_sequence(seed, frames, size, step=step))
    while True:
        yield from scenes
        if not loop:
            return


def demo_overrides(models_dir: Path) -> dict[str, Any]:
    """The model entries of the tiny-world models in ``models_dir``: FastSAM (and the input
    size it was trained at), the closed-set SegFormer and the open-vocabulary CLIP with the
    names only it knows. ``open_vocab.enabled`` is left to the base file (or the command line)."""
    from sfs_ros.world.train import TinyWorldModels

    overrides = TinyWorldModels(Path(models_dir).resolve()).overrides(open_vocab=True)
    overrides.pop("open_vocab.enabled")
    return overrides


def missing_parts(models_dir: Path) -> list[str]:
    """The model parts that ``models_dir`` lacks or holds from another training recipe."""
    from sfs_ros.world.train import MODEL_PARTS, TinyWorldModels

    models = TinyWorldModels(Path(models_dir))
    return [part for part in MODEL_PARTS if not models.has(part)]


def _set_nested(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *groups, leaf = dotted.split(".")
    node = tree
    for group in groups:
        child = node.setdefault(group, {})
        if not isinstance(child, dict):
            raise ValueError(f"{dotted}: '{group}' is not a group in the base parameter file")
        node = child
    node[leaf] = value


def write_params_file(base: Path, out: Path, overrides: Mapping[str, Any]) -> Path:
    """Write ``base`` (a ROS 2 parameter file, ``/**: ros__parameters: ...``) to ``out`` with
    the dotted ``overrides`` replaced. Comments of ``base`` are not kept.

    Raises:
        ValueError: ``base`` is not a parameter file of that layout.
        FileExistsError: ``out`` exists (nothing is overwritten).
    """
    document = yaml.safe_load(Path(base).read_text())
    if not isinstance(document, dict) or len(document) != 1:
        raise ValueError(f"{base}: expected one node entry with ros__parameters")
    (entry,) = document.values()
    params = entry.get("ros__parameters") if isinstance(entry, dict) else None
    if not isinstance(params, dict):
        raise ValueError(f"{base}: expected one node entry with ros__parameters")
    for key, value in overrides.items():
        _set_nested(params, key, value)
    with Path(out).open("x") as handle:  # "x": never overwrite
        handle.write(f"# {Path(base).name} with the trained tiny-world models (sfs_ros.demo)\n")
        yaml.safe_dump(document, handle, sort_keys=False)
    return Path(out)


def main(argv: list[str] | None = None) -> int:
    """``params``: write the tiny-world parameter file (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m sfs_ros.demo.tiny_world")
    sub = parser.add_subparsers(dest="command", required=True)
    params = sub.add_parser("params", help="write a params file for the tiny-world models")
    params.add_argument("--base", type=Path, required=True, help="e.g. config/sfs.yaml")
    params.add_argument("--models", type=Path, default=FIXTURE_MODELS)
    params.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    missing = missing_parts(args.models)
    if missing:
        print(
            f"tiny-world models {missing} missing or of another recipe in {args.models}; "
            f"train them with: python -m sfs_ros.world.train --out {args.models}",
            file=sys.stderr,
        )
        return 3
    try:
        write_params_file(args.base, args.out, demo_overrides(args.models))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        print(f"cannot write the tiny-world params file: {exc}", file=sys.stderr)
        return 2
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
