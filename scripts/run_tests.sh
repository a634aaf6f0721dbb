#!/usr/bin/env bash
# The test command (README, .ci/run): ruff, then pytest inside a loopback-only network
# namespace, so that no DDS traffic (or any other traffic) can leave the machine.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SFS_VENV:-$ROOT/.venv}"
cd "$ROOT"

echo "== ruff"
"$VENV/bin/ruff" check .

echo "== pytest (loopback-only network namespace)"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export FASTDDS_DEFAULT_PROFILES_FILE="$ROOT/config/fastdds_large_images.xml"
export YOLO_OFFLINE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if unshare -n true 2>/dev/null; then
  exec unshare -n -- bash -c 'ip link set lo up && exec "$0" -m pytest "$@"' \
    "$VENV/bin/python" "$@"
fi
echo "unshare -n is not permitted here (needs root or user namespaces): tests that use DDS" \
     "will be skipped, since DDS traffic must stay on this machine." >&2
exec "$VENV/bin/python" -m pytest "$@"
