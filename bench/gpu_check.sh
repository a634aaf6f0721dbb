#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# The GPU check (`sfs-bench gpu`) run from this checkout, on a machine with a CUDA GPU where
# sfs_ros is not installed. Its python needs torch, torchvision, transformers, opencv and
# ultralytics (no ROS, OpenVINO or open_clip). Without internet, put wheels of the missing
# packages (e.g. ultralytics, py3-none-any) into a folder and name it in SFS_WHEELS: they are
# installed into a temporary folder for this run only.
#
#   bench/gpu_check.sh [sfs-bench gpu options]     e.g. --append BENCHMARKS.md
#
# Environment: PYTHON (default python3); SFS_WHEELS (a folder of .whl files to install first).
# Random weights are built when no real ones are found (timings are real, labels are not);
# about two minutes on a GPU, most of it the CPU reference runs.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python3}
path=$root
if [[ -n "${SFS_WHEELS:-}" ]]; then
    shopt -s nullglob
    wheels=("$SFS_WHEELS"/*.whl)
    if ((${#wheels[@]} == 0)); then
        echo "gpu_check: no .whl files in SFS_WHEELS=$SFS_WHEELS" >&2
        exit 2
    fi
    site=$(mktemp -d)
    trap 'rm -rf "$site"' EXIT
    "$python" -m pip install --quiet --no-index --no-deps --no-compile --target "$site" "${wheels[@]}"
    echo "gpu_check: installed ${#wheels[@]} wheel(s) from $SFS_WHEELS for this run" >&2
    path=$path:$site
fi
export PYTHONPATH=$path${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
"$python" -m sfs_ros.bench gpu "$@"
