#!/usr/bin/env bash
# README command (1), run by `make demo` after scripts/setup_env.sh: the whole ROS 2 graph
#   demo_camera → sfs node → recorder   (sfs_ros/demo/: camera.py, recorder.py)
# on this machine only (a loopback-only network namespace when possible), then the recorder's
# summary. Outputs in demo_out/: overlay_*.png, semantic_*.png (16-bit ids), legend.json,
# summary.json, summary.txt and one log per process. Exit code: the recorder's (0 = frames
# came out of the node).
#
# Models, chosen in stage 1 below and named in a banner:
#   real     the weights that SFS_DEMO_PARAMS names are on disk (or downloadable): camera source
#            `samples` (the photos shipped with ultralytics, panned);
#   tiny-world  they are not, but the trained tiny-world models are (test/fixtures/tiny_world,
#            docs/tiny_world.md): SFS_DEMO_PARAMS with only its model entries replaced by them
#            (written to demo_out/sfs_tiny_world.yaml by sfs_ros/demo/tiny_world.py), camera
#            source `tiny-world` (a panning tiny-world sequence with its ground truth), and the
#            summary ends with the mIoU of the published label maps against that ground truth;
#   random   neither: random weights, loudly (the graph, topics and timings are real, the
#            labels are not).
#
# Settings (environment): SFS_DEMO_FRAMES (30), SFS_DEMO_RATE (2.0 Hz), SFS_DEMO_WIDTH (640),
# SFS_DEMO_HEIGHT (480), SFS_DEMO_SOURCE (default: tiny-world with the tiny-world models, else
# samples; or synthetic | tiny-world | a video, image or folder),
# SFS_DEMO_PARAMS (config/sfs.yaml), SFS_DEMO_DEVICE (auto), SFS_DEMO_OUT (demo_out),
# SFS_DEMO_TINY_WORLD_MODELS (test/fixtures/tiny_world), SFS_DEMO_TINY_WORLD_SEED,
# SFS_DEMO_OPEN_VOCAB (true: CLIP thread on),
# SFS_DEMO_DOMAIN_ID, SFS_OFFLINE=1 (never try to download weights), SFS_DEMO_ISOLATE=0 (no
# network namespace, e.g. to watch the demo with RViz or `ros2 topic` from another terminal:
# use the same ROS_DOMAIN_ID via SFS_DEMO_DOMAIN_ID and ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SFS_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
FRAMES="${SFS_DEMO_FRAMES:-30}"
RATE="${SFS_DEMO_RATE:-2.0}"
WIDTH="${SFS_DEMO_WIDTH:-640}"
HEIGHT="${SFS_DEMO_HEIGHT:-480}"
PARAMS="${SFS_DEMO_PARAMS:-$ROOT/config/sfs.yaml}"
DEVICE="${SFS_DEMO_DEVICE:-auto}"
OUT="${SFS_DEMO_OUT:-$ROOT/demo_out}"
TINY_MODELS="${SFS_DEMO_TINY_WORLD_MODELS:-$ROOT/test/fixtures/tiny_world}"
TINY_PARAMS="$OUT/sfs_tiny_world.yaml"
IDLE_TIMEOUT_S=15.0    # the recorder stops this long after the node's last output
STARTUP_TIMEOUT_S=900.0  # ... or when nothing came out this long after start (model loading)
STOP_TIMEOUT_S=10      # SIGINT, then SIGKILL after this long
AFTER_CAMERA_S=180     # the recorder is stopped this long after the camera's last frame
CAMERA_TOPIC=/camera/image_raw

say() { printf '[demo] %s\n' "$*" >&2; }
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
if [ ! -x "$PY" ]; then
  say "no virtual environment at $VENV: run scripts/setup_env.sh first (make demo does)"; exit 2
fi

# --- stage 1 (normal network): are real weights there, or can they be downloaded? ----------
if [ -z "${SFS_DEMO_STAGE:-}" ]; then
  say "checking model weights named in $PARAMS"
  set +e
  check_output=$("$PY" - "$PARAMS" <<'PYCHECK' 2>&1
import sys

from sfs_ros.params import load_config
from sfs_ros.weights import WeightsNotFoundError, resolve_fastsam_weights, resolve_hf_model

config = load_config(sys.argv[1])
missing = []
try:
    resolve_fastsam_weights(config["fastsam.model"])
except WeightsNotFoundError as exc:
    missing.append(f"- {exc}")
for model in config["closed_set.model"].split(","):
    try:
        resolve_hf_model(model.strip(), {})
    except WeightsNotFoundError as exc:
        missing.append(f"- {exc}")
print("\n".join(missing))
sys.exit(3 if missing else 0)
PYCHECK
  )
  check_rc=$?
  set -e
  case $check_rc in
    0) export SFS_DEMO_WEIGHTS=real ;;
    3) export SFS_DEMO_WEIGHTS=random ;;
    *) printf '%s\n' "$check_output" >&2; say "the weight check failed (exit $check_rc)"; exit 2 ;;
  esac
  export SFS_DEMO_PARAMS_USED="$PARAMS"
  if [ "$SFS_DEMO_WEIGHTS" = random ]; then
    printf '%s\n' "$check_output" | grep -v '^$' | cut -c1-400 >&2 || true
    # No real weights: the models trained on the tiny world, if they are there.
    mkdir -p "$OUT"
    rm -f "$TINY_PARAMS"
    set +e
    tiny_output=$("$PY" -m sfs_ros.demo.tiny_world params --base "$PARAMS" \
      --models "$TINY_MODELS" --out "$TINY_PARAMS" 2>&1)
    tiny_rc=$?
    set -e
    case $tiny_rc in
      0) export SFS_DEMO_WEIGHTS=tiny-world SFS_DEMO_PARAMS_USED="$TINY_PARAMS" ;;
      3) printf '%s\n' "$tiny_output" | cut -c1-400 >&2 ;;
      *) printf '%s\n' "$tiny_output" >&2; say "writing the tiny-world params failed"; exit 2 ;;
    esac
  fi
  export SFS_DEMO_STAGE=graph
  if [ "${SFS_DEMO_ISOLATE:-1}" = 1 ] && command -v ip >/dev/null; then
    # Root: a plain network namespace; otherwise try an unprivileged user namespace too.
    for flags in -n -rn; do
      if unshare "$flags" true 2>/dev/null; then
        export SFS_DEMO_IN_NETNS=1
        exec unshare "$flags" -- bash -c 'ip link set lo up && exec bash "$0" "$@"' "$0" "$@"
      fi
    done
  fi
  export SFS_DEMO_IN_NETNS=0
fi

# --- stage 2: the graph ---------------------------------------------------------------------
if [ "${SFS_DEMO_IN_NETNS:-0}" = 1 ]; then
  say "running in a loopback-only network namespace: no DDS traffic leaves this machine"
  DOMAIN_ID="${SFS_DEMO_DOMAIN_ID:-42}"
elif [ "${SFS_DEMO_ISOLATE:-1}" = 1 ]; then
  say "no loopback-only network namespace here (unshare -n needs root or user namespaces, and" \
      "the ip tool): running without one, with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and a" \
      "random ROS_DOMAIN_ID"
  DOMAIN_ID="${SFS_DEMO_DOMAIN_ID:-$((RANDOM % 90 + 10))}"
else
  say "SFS_DEMO_ISOLATE=0: running without a network namespace, with" \
      "ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST"
  DOMAIN_ID="${SFS_DEMO_DOMAIN_ID:-$((RANDOM % 90 + 10))}"
fi
export ROS_DOMAIN_ID="$DOMAIN_ID" ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export FASTDDS_DEFAULT_PROFILES_FILE="$ROOT/config/fastdds_large_images.xml"
export SFS_OFFLINE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 YOLO_OFFLINE=1 PYTHONUNBUFFERED=1
unset ROS_LOCALHOST_ONLY

# The demo shows the open-vocabulary (CLIP) thread too; config/sfs.yaml leaves it off by default.
PARAMS="${SFS_DEMO_PARAMS_USED:-$PARAMS}"
node_args=(--params-file "$PARAMS" -p "device:=$DEVICE" -p "open_vocab.enabled:=${SFS_DEMO_OPEN_VOCAB:-true}")
case "${SFS_DEMO_WEIGHTS:-random}" in
  real) MODELS="real pretrained weights (${SFS_DEMO_PARAMS:-config/sfs.yaml})"; DEFAULT_SOURCE=samples ;;
  tiny-world) MODELS="tiny-world models trained here ($TINY_MODELS)"; DEFAULT_SOURCE=tiny-world ;;
  *) MODELS="RANDOM WEIGHTS"; DEFAULT_SOURCE=samples ;;
esac
SOURCE="${SFS_DEMO_SOURCE:-$DEFAULT_SOURCE}"
camera_args=()  # the tiny-world seed's default lives in sfs_ros/demo/tiny_world.py
if [ -n "${SFS_DEMO_TINY_WORLD_SEED:-}" ]; then
  camera_args+=(-p "tiny_world_seed:=$SFS_DEMO_TINY_WORLD_SEED")
fi
if [ "${SFS_DEMO_WEIGHTS:-random}" = tiny-world ]; then
  cat >&2 <<'BANNER'

################################################################################################
##                                                                                            ##
##   TINY-WORLD MODELS: no pretrained weights on disk (see the lines above), so the demo      ##
##   runs the small models trained here on the procedural tiny world (docs/tiny_world.md):    ##
##   a FastSAM-architecture YOLOv8n-seg, a SegFormer and a tiny CLIP, from                    ##
##   test/fixtures/tiny_world. Their labels mean something on tiny-world scenes (13 classes:  ##
##   floor, wall, sky, ball, box, ... and duck, star, kite for the open vocabulary); the      ##
##   summary scores them against the sequence's ground truth (per-class IoU, mIoU).           ##
##   For the real models put FastSAM-s.pt in $SFS_WEIGHTS_DIR and the SegFormer in the        ##
##   Hugging Face cache (or run once with network access).                                    ##
##                                                                                            ##
################################################################################################

BANNER
  say "models: $MODELS; params: $PARAMS (config/sfs.yaml with the model entries replaced)"
elif [ "${SFS_DEMO_WEIGHTS:-random}" = random ]; then
  cat >&2 <<'BANNER'

################################################################################################
##                                                                                            ##
##   RANDOM WEIGHTS: no pretrained weights are available offline (see the lines above).       ##
##   The demo runs the real graph, topics and timings with RANDOM-WEIGHT models, so the       ##
##   class labels are NOT meaningful. Put FastSAM-s.pt in $SFS_WEIGHTS_DIR and the SegFormer  ##
##   in the Hugging Face cache (or run once with network access) for a real demo.             ##
##                                                                                            ##
################################################################################################

BANNER
  # Random FastSAM weights give tiny, spread scores; conf 0.003 yields ~100 masks (docs/architecture.md).
  node_args+=(-p allow_random_weights:=true -p fastsam.conf:=0.003)
else
  say "models: $MODELS"
fi

mkdir -p "$OUT"
rm -f "$OUT"/overlay_*.png "$OUT"/semantic_*.png "$OUT"/legend.json "$OUT"/summary.json \
      "$OUT"/summary.txt "$OUT"/*.log
if [ "$PARAMS" != "$TINY_PARAMS" ]; then rm -f "$TINY_PARAMS"; fi
say "ROS_DOMAIN_ID=$ROS_DOMAIN_ID, outputs in $OUT/"
say "camera: $FRAMES frames of $SOURCE at ${WIDTH}x${HEIGHT}, $RATE Hz → $CAMERA_TOPIC → /sfs → recorder"

prefixed() { tee -a "$2" | sed -u "s/^/[$1] /"; }
NODE_PID="" CAMERA_PID="" RECORDER_PID=""

stop_pid() {  # SIGINT, then SIGKILL after STOP_TIMEOUT_S; returns the exit status
  local pid=$1 name=$2 waited=0
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -INT "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt $((STOP_TIMEOUT_S * 10)) ]; do
      sleep 0.1; waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "$name (pid $pid) did not stop within ${STOP_TIMEOUT_S} s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  local rc=0
  wait "$pid" 2>/dev/null || rc=$?
  return "$rc"
}

cleanup() {
  local rc=0
  stop_pid "$CAMERA_PID" camera || true
  stop_pid "$NODE_PID" node || rc=$?
  stop_pid "$RECORDER_PID" recorder || true
  CAMERA_PID="" NODE_PID="" RECORDER_PID=""
  return "$rc"
}
on_signal() {
  say "interrupted: stopping the graph"
  cleanup || true
  if [ -s "$OUT/summary.txt" ]; then echo; cat "$OUT/summary.txt"; fi
  exit 130
}
trap on_signal INT TERM
trap 'cleanup || true' EXIT

# The recorder first (it must not miss the first outputs), then the node; the camera waits
# until the node subscribes, which the node does once its models are loaded.
"$PY" -m sfs_ros.demo.recorder --ros-args -r __ns:=/sfs \
  -r ground_truth:="$CAMERA_TOPIC/ground_truth" -p models:="$MODELS" \
  -p output_dir:="$OUT" -p max_frames:="$FRAMES" -p save_every:=1 \
  -p timeout_s:="$IDLE_TIMEOUT_S" -p startup_timeout_s:="$STARTUP_TIMEOUT_S" \
  2> >(prefixed recorder "$OUT/recorder.log") >>"$OUT/recorder.log" &
RECORDER_PID=$!
"$PY" -m sfs_ros.node --ros-args -r __ns:=/sfs -r image:="$CAMERA_TOPIC" "${node_args[@]}" \
  > >(prefixed node "$OUT/node.log") 2>&1 &
NODE_PID=$!
"$PY" -m sfs_ros.demo.camera --ros-args -r image:="$CAMERA_TOPIC" \
  -p source:="$SOURCE" -p rate_hz:="$RATE" -p width:="$WIDTH" -p height:="$HEIGHT" \
  -p max_frames:="$FRAMES" -p loop:=true "${camera_args[@]}" \
  > >(prefixed camera "$OUT/camera.log") 2>&1 &
CAMERA_PID=$!
say "started recorder (pid $RECORDER_PID), node (pid $NODE_PID), camera (pid $CAMERA_PID)"

# Wait for the recorder. Stop it early when the node dies or the camera fails (no more output
# can come), or when the node still has produced nothing long after the camera finished.
node_rc=0 camera_rc="" camera_done_at=""
while kill -0 "$RECORDER_PID" 2>/dev/null; do
  if ! kill -0 "$NODE_PID" 2>/dev/null; then
    wait "$NODE_PID" || node_rc=$?
    NODE_PID=""
    say "the node exited (code $node_rc) before the recorder finished; see $OUT/node.log"
    kill -INT "$RECORDER_PID" 2>/dev/null || true
    break
  fi
  if [ -n "$CAMERA_PID" ] && ! kill -0 "$CAMERA_PID" 2>/dev/null; then
    camera_rc=0; wait "$CAMERA_PID" || camera_rc=$?
    CAMERA_PID="" camera_done_at=$SECONDS
    if [ "$camera_rc" -ne 0 ]; then
      say "the camera failed (code $camera_rc); see $OUT/camera.log"
      kill -INT "$RECORDER_PID" 2>/dev/null || true
      break
    fi
  fi
  if [ -n "$camera_done_at" ] && [ $((SECONDS - camera_done_at)) -gt "$AFTER_CAMERA_S" ]; then
    say "nothing more from the node ${AFTER_CAMERA_S} s after the camera finished: stopping"
    kill -INT "$RECORDER_PID" 2>/dev/null || true
    break
  fi
  sleep 0.5
done
recorder_rc=0
wait "$RECORDER_PID" || recorder_rc=$?
RECORDER_PID=""
cleanup || node_rc=$?
trap - EXIT
sleep 0.2  # let the log prefixers flush

echo
if [ -s "$OUT/summary.txt" ]; then
  cat "$OUT/summary.txt"
else
  say "the recorder wrote no summary (exit $recorder_rc); see $OUT/recorder.log"
fi
if [ "$node_rc" -ne 0 ]; then
  say "the node exited with code $node_rc (see $OUT/node.log)"
fi
if [ "${SFS_DEMO_WEIGHTS:-random}" = random ]; then
  say "reminder: this run used RANDOM WEIGHTS; the labels are not meaningful"
fi
exit "$recorder_rc"
