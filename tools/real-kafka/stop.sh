#!/usr/bin/env bash
# Stop Kafka brokers started by start.sh and wait until they have exited. Their data stays in
# place (start.sh wipes it, unless started with --keep-data).
#
#   tools/real-kafka/stop.sh            # every broker start.sh started (all pid files)
#   tools/real-kafka/stop.sh PORT...    # only those on these client ports
#
# Env: REAL_KAFKA_HOME (<repo>/.real-kafka), KAFKA_STOP_TIMEOUT (30 s before SIGKILL).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
state_root=${REAL_KAFKA_HOME:-$repo/.real-kafka}
timeout=${KAFKA_STOP_TIMEOUT:-30}

pidfiles=()
if (( $# )); then
  for port in "$@"; do [[ -f "$state_root/$port/kafka.pid" ]] && pidfiles+=("$state_root/$port/kafka.pid"); done
else
  for f in "$state_root"/*/kafka.pid; do [[ -f "$f" ]] && pidfiles+=("$f"); done
fi

for f in "${pidfiles[@]}"; do
  pid=$(cat "$f")
  props="$(dirname "$f")/server.properties"
  # Only this broker's JVM: after a SIGKILL the pid file stays and its pid may be reused.
  if [[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -F -- "$props" >/dev/null; then
    kill -TERM "$pid"
    deadline=$(( $(date +%s) + timeout ))
    while kill -0 "$pid" 2>/dev/null && (( $(date +%s) < deadline )); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "stop.sh: pid $pid still running after ${timeout}s, sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
    fi
    echo "stop.sh: stopped Kafka pid $pid (port $(basename "$(dirname "$f")"))" >&2
  fi
  rm -f "$f"
done
