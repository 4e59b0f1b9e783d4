#!/usr/bin/env bash
# Stop Nacos servers started by start.sh and wait until they have exited.
#
#   tools/real-nacos/stop.sh            # every server start.sh started (all pid files)
#   tools/real-nacos/stop.sh PORT...    # only those on these ports
#
# Env: REAL_NACOS_HOME (<repo>/.real-nacos), NACOS_STOP_TIMEOUT (30 s before SIGKILL).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
state_root=${REAL_NACOS_HOME:-$repo/.real-nacos}
timeout=${NACOS_STOP_TIMEOUT:-30}

pidfiles=()
if (( $# )); then
  for port in "$@"; do
    for f in "$state_root"/v*-"$port"/nacos.pid; do [[ -f "$f" ]] && pidfiles+=("$f"); done
  done
else
  for f in "$state_root"/v*-*/nacos.pid; do [[ -f "$f" ]] && pidfiles+=("$f"); done
fi

for f in "${pidfiles[@]}"; do
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    deadline=$(( $(date +%s) + timeout ))
    while kill -0 "$pid" 2>/dev/null && (( $(date +%s) < deadline )); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "stop.sh: pid $pid still running after ${timeout}s, sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
    fi
    echo "stop.sh: stopped pid $pid ($(basename "$(dirname "$f")"))" >&2
  fi
  rm -f "$f"
done
