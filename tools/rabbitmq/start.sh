#!/usr/bin/env bash
# Start a private RabbitMQ node (Debian's rabbitmq-server package, not its system service) on
# loopback, with its own node name, ports, config, data, logs, Erlang cookie and epmd.
#
#   tools/rabbitmq/start.sh               # a new, empty node (state wiped)
#   tools/rabbitmq/start.sh --keep-data   # start again on the data a previous run left (after a
#                                         # SIGKILL, say): durable queues and persistent messages
#
# Env: RABBITMQ_PORT (5672, AMQP), RABBITMQ_DIST_PORT (RABBITMQ_PORT+20000, Erlang distribution),
# RABBITMQ_EPMD_PORT (RABBITMQ_PORT+10001, the node's own epmd), RABBITMQ_START_TIMEOUT (90 s),
# RABBITMQ_STATE_HOME (<repo>/.rabbitmq), RABBITMQ_SBIN (/usr/lib/rabbitmq/bin).
# Prints RABBITMQ_URL=amqp://guest:guest@127.0.0.1:PORT once the node answers the AMQP handshake
# and the CLI reaches it; on failure exits non-zero with the log tail. State (mnesia, log,
# config, cookie, pid) lives in $RABBITMQ_STATE_HOME/<port>/; tools/rabbitmq/ctl.sh runs
# rabbitmqctl and friends against the node.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

keep_data=false
for arg in "$@"; do
  case "$arg" in
    --keep-data) keep_data=true ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "start.sh: unknown argument '$arg' (expected --keep-data)" >&2; exit 2 ;;
  esac
done

# shellcheck source-path=SCRIPTDIR source=env.sh
source "$here/env.sh"
timeout=${RABBITMQ_START_TIMEOUT:-90}

if [[ ! -x "$rabbit_sbin/rabbitmq-server" ]]; then
  echo "start.sh: $rabbit_sbin/rabbitmq-server not found: install Debian's rabbitmq-server (scripts/setup.sh does)" >&2
  exit 1
fi
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# A node SIGKILLed a moment ago (a restart test) may still be exiting: give it 10 s to let go of
# its ports before calling them taken.
for _ in $(seq 50); do
  { [[ -f "$pidfile" ]] && rabbit_ours "$(cat "$pidfile")"; } || port_busy "$port" || port_busy "$dist_port" || break
  sleep 0.2
done
if [[ -f "$pidfile" ]] && rabbit_ours "$(cat "$pidfile")"; then
  echo "start.sh: a RabbitMQ started by this script already runs on port $port (pid $(cat "$pidfile")); run stop.sh first" >&2
  exit 1
fi
for p in "$port" "$dist_port"; do
  if port_busy "$p"; then
    echo "start.sh: port $p is already in use (RabbitMQ needs $port for AMQP and $dist_port for Erlang distribution; set RABBITMQ_PORT / RABBITMQ_DIST_PORT)" >&2
    exit 1
  fi
done
# The epmd port may hold this node's own epmd from an earlier run (after a SIGKILL it stays);
# anything else there is a clash.
if port_busy "$epmd_port" && ! epmd -port "$epmd_port" -names >/dev/null 2>&1; then
  echo "start.sh: port $epmd_port (RABBITMQ_EPMD_PORT) is in use by something that is not epmd" >&2
  exit 1
fi

if [[ "$keep_data" == true ]]; then
  if [[ ! -d "$inst/mnesia/$nodename" ]]; then
    echo "start.sh: --keep-data, but $inst/mnesia holds no data of $nodename (no earlier start on port $port under $state_root?)" >&2
    exit 1
  fi
  [[ -f "$log" ]] && mv -f "$log" "$log.1"
else
  rm -rf "$inst"
fi
mkdir -p "$inst/home" "$inst/mnesia" "$inst/log"
rm -f "$pidfile"

# The Erlang cookie the node and the CLI share (Erlang reads $HOME/.erlang.cookie; HOME is ours).
if [[ ! -f "$inst/home/.erlang.cookie" ]]; then
  (umask 077 && head -c 15 /dev/urandom | base32 >"$inst/home/.erlang.cookie")
fi
# No plugins (no management UI), and none of /etc/rabbitmq's settings.
echo '[].' >"$inst/enabled_plugins"
: >"$inst/rabbitmq-env.conf"
cat >"$inst/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$port
# guest/guest works from loopback only (RabbitMQ's default, kept).
loopback_users.guest = true
log.console = true
log.console.level = info
log.console.use_colors = off
log.file = false
EOF

# Start the node's epmd first and wait for it: left to the VM, it is spawned as the node boots,
# and on a loaded machine the node can try to register before it listens ("register/listen
# error: econnrefused", then BOOT FAILED: seen in a CI run with other brokers starting).
if ! epmd -port "$epmd_port" -names >/dev/null 2>&1; then
  epmd -address 127.0.0.1 -port "$epmd_port" -daemon
  # 30 s: on a loaded machine (load average 25+ on 2 cores) 10 s was seen to run out.
  for _ in $(seq 300); do epmd -port "$epmd_port" -names >/dev/null 2>&1 && break; sleep 0.1; done
  epmd -port "$epmd_port" -names >/dev/null 2>&1 || { echo "start.sh: epmd did not answer on 127.0.0.1:$epmd_port within 30 s" >&2; exit 1; }
fi

started=$(date +%s%N)
# rabbitmq-server is a shell wrapper that runs the Erlang VM as its child and turns SIGTERM into a
# clean stop; RabbitMQ writes the VM's own pid to RABBITMQ_PID_FILE, which becomes the pid file
# (the process a test SIGKILLs) once the node is up.
rm -f "$RABBITMQ_PID_FILE"
(cd "$inst" && exec nohup "$rabbit_sbin/rabbitmq-server" >"$log" 2>&1 </dev/null) &
wrapper=$!

fail() {
  echo "start.sh: $1" >&2
  echo "---- last lines of $log ----" >&2
  tail -n 60 "$log" >&2 || true
  # Wait for the node to go (SIGKILL after 10 s): a half-started one keeps its ports.
  local beam
  beam=$(cat "$RABBITMQ_PID_FILE" 2>/dev/null || true)
  kill "$wrapper" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$wrapper" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$wrapper" 2>/dev/null || true
  if [[ -n "$beam" ]] && rabbit_ours "$beam"; then kill -KILL "$beam" 2>/dev/null || true; fi
  exit 1
}

# One AMQP 0-9-1 handshake step: the protocol header must be answered with a Connection.Start
# method frame (type 1, channel 0, then a 4-byte size, class 10, method 10).
amqp_ok() {
  local reply
  # shellcheck disable=SC2016  # $1 expands in the inner bash
  reply=$(timeout 5 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "AMQP\x00\x00\x09\x01" >&3
    head -c 11 <&3 | od -An -tx1' _ "$port" 2>/dev/null | tr -d ' \n') || return 1
  [[ "$reply" =~ ^010000[0-9a-f]{8}000a000a$ ]]
}

deadline=$(( $(date +%s) + timeout ))
until amqp_ok; do
  kill -0 "$wrapper" 2>/dev/null || fail "RabbitMQ exited during startup"
  (( $(date +%s) < deadline )) || fail "RabbitMQ did not answer AMQP on 127.0.0.1:$port within ${timeout}s"
  sleep 0.3
done
# The CLI must reach the node too (cookie, epmd and node name right): ctl.sh and stop.sh use it.
if ! ctl_out=$(rabbit_cli rabbitmq-diagnostics -q check_running 2>&1); then
  fail "rabbitmq-diagnostics check_running failed: $ctl_out"
fi

pid=$(cat "$RABBITMQ_PID_FILE" 2>/dev/null || true)
rabbit_ours "$pid" || fail "RabbitMQ answers, but its pid file $RABBITMQ_PID_FILE names no VM of this node ('$pid')"
echo "$pid" >"$pidfile"

ms=$(( ($(date +%s%N) - started) / 1000000 ))
rss=$(ps -o rss= -p "$pid" | tr -d ' ')
echo "rabbitmq: $nodename pid $pid port $port dist $dist_port epmd $epmd_port keep-data=$keep_data ready in ${ms} ms, RSS $((rss / 1024)) MiB, log $log" >&2
echo "RABBITMQ_URL=amqp://guest:guest@127.0.0.1:$port"
