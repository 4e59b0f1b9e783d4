#!/usr/bin/env bash
# Stop the RabbitMQ node that start.sh started on RABBITMQ_PORT (default 5672) and its epmd, and
# wait until both have exited, so nothing of it stays listening. Its data stays in place
# (start.sh wipes it, unless started with --keep-data).
#
#   tools/rabbitmq/stop.sh          # the node on RABBITMQ_PORT
#   tools/rabbitmq/stop.sh PORT...  # the nodes on these AMQP ports
#
# Env: RABBITMQ_PORT (5672), RABBITMQ_STATE_HOME (<repo>/.rabbitmq), RABBITMQ_STOP_TIMEOUT
# (30 s before SIGKILL); RABBITMQ_EPMD_PORT as given to start.sh.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
if (( $# > 1 )); then
  for p in "$@"; do RABBITMQ_PORT=$p "$0" || exit 1; done
  exit 0
fi
(( $# == 1 )) && export RABBITMQ_PORT=$1
# shellcheck source-path=SCRIPTDIR source=env.sh
source "$here/env.sh"
timeout=${RABBITMQ_STOP_TIMEOUT:-30}

if [[ -f "$pidfile" ]]; then
  pid=$(cat "$pidfile")
  if rabbit_ours "$pid"; then
    # Erlang takes SIGTERM as init:stop(): RabbitMQ stops its apps and flushes its stores.
    kill -TERM "$pid"
    deadline=$(( $(date +%s) + timeout ))
    while kill -0 "$pid" 2>/dev/null && (( $(date +%s) < deadline )); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "stop.sh: pid $pid still running after ${timeout}s, sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
    fi
    echo "stop.sh: stopped RabbitMQ $nodename (pid $pid)" >&2
  fi
  rm -f "$pidfile"
fi
# The node started its own epmd on RABBITMQ_EPMD_PORT (a daemon, not its child): stop it once no
# node is registered with it any more (a node just killed may take a moment to drop off).
if epmd -port "$epmd_port" -names >/dev/null 2>&1; then
  for _ in $(seq 50); do
    epmd -port "$epmd_port" -names 2>/dev/null | grep '^name ' >/dev/null || break
    sleep 0.2
  done
  epmd -port "$epmd_port" -kill >/dev/null 2>&1 || true
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$epmd_port") 2>/dev/null || break; sleep 0.1; done
fi
