# Sourced by start.sh, stop.sh and ctl.sh: the private node's names, ports, paths and the
# environment RabbitMQ and its CLI read. Nothing of the system service (/etc/rabbitmq,
# /var/lib/rabbitmq, the rabbitmq user, epmd on 4369) is used.
# shellcheck shell=bash disable=SC2034  # the variables are for the scripts that source this
_rabbit_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

port=${RABBITMQ_PORT:-5672}
if [[ ! "$port" =~ ^[0-9]+$ ]] || (( port < 1025 || port > 45534 )); then
  echo "rabbitmq: RABBITMQ_PORT must be 1025..45534 (distribution uses port+20000), got '$port'" >&2
  exit 2
fi
dist_port=${RABBITMQ_DIST_PORT:-$((port + 20000))}
epmd_port=${RABBITMQ_EPMD_PORT:-$((port + 10001))}
for _p in "$dist_port" "$epmd_port"; do
  if [[ ! "$_p" =~ ^[0-9]+$ ]] || (( _p < 1025 || _p > 65535 )) || (( _p == port )); then
    echo "rabbitmq: RABBITMQ_DIST_PORT/RABBITMQ_EPMD_PORT must be ports 1025..65535 apart from RABBITMQ_PORT, got '$_p'" >&2
    exit 2
  fi
done
(( dist_port != epmd_port )) || { echo "rabbitmq: RABBITMQ_DIST_PORT and RABBITMQ_EPMD_PORT must differ" >&2; exit 2; }

state_root=${RABBITMQ_STATE_HOME:-$_rabbit_repo/.rabbitmq}
inst="$state_root/$port"
nodename="flowtag-$port@localhost"
rabbit_sbin=${RABBITMQ_SBIN:-/usr/lib/rabbitmq/bin}
pidfile="$inst/rabbitmq.pid"
log="$inst/server.log"

# The Erlang cookie is $HOME/.erlang.cookie for the node and the CLI alike: HOME is the node's.
export HOME="$inst/home"
export RABBITMQ_NODENAME="$nodename" RABBITMQ_USE_LONGNAME=false
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$port" RABBITMQ_DIST_PORT="$dist_port"
export ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT="$epmd_port"
export RABBITMQ_CONFIG_FILE="$inst/rabbitmq.conf"
export RABBITMQ_ADVANCED_CONFIG_FILE="$inst/advanced.config"
export RABBITMQ_CONF_ENV_FILE="$inst/rabbitmq-env.conf"
export RABBITMQ_ENABLED_PLUGINS_FILE="$inst/enabled_plugins"
export RABBITMQ_MNESIA_BASE="$inst/mnesia"
export RABBITMQ_LOG_BASE="$inst/log"
export RABBITMQ_PID_FILE="$inst/beam.pid"
# Distribution (the node's and each CLI run's) listens on loopback only.
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
unset RABBITMQ_ENABLED_PLUGINS RABBITMQ_LOGS RABBITMQ_NODE_ONLY RABBITMQ_ALLOW_INPUT

# A pid counts only while it is still this node's VM (pids get reused after a SIGKILL).
rabbit_ours() {
  # grep reads to the end (no -q): under pipefail an early exit would fail tr with SIGPIPE.
  [[ -r "/proc/$1/environ" ]] && tr '\0' '\n' <"/proc/$1/environ" | grep -xF "RABBITMQ_MNESIA_BASE=$inst/mnesia" >/dev/null
}
# rabbit_cli rabbitmqctl|rabbitmq-diagnostics|... ARGS: the CLI against this node.
rabbit_cli() { "$rabbit_sbin/$1" -n "$nodename" "${@:2}"; }
