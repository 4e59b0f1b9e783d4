#!/usr/bin/env bash
# Run a RabbitMQ CLI tool against the node start.sh started on RABBITMQ_PORT (default 5672):
#
#   tools/rabbitmq/ctl.sh rabbitmqctl list_queues name messages durable
#   RABBITMQ_PORT=5673 tools/rabbitmq/ctl.sh rabbitmq-diagnostics status
#   tools/rabbitmq/ctl.sh rabbitmqctl close_all_connections "chaos test"
#
# Sets the node name, cookie (HOME), epmd port and paths the node was started with.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
case "${1:-}" in
  rabbitmqctl|rabbitmq-diagnostics|rabbitmq-queues|rabbitmq-plugins|rabbitmq-upgrade|rabbitmq-streams) ;;
  *) echo "ctl.sh: expected rabbitmqctl, rabbitmq-diagnostics, rabbitmq-queues, rabbitmq-plugins, rabbitmq-upgrade or rabbitmq-streams, then its arguments" >&2; exit 2 ;;
esac
# shellcheck source-path=SCRIPTDIR source=env.sh
source "$here/env.sh"
[[ -d "$inst/home" ]] || { echo "ctl.sh: no node state under $inst (start.sh not run for port $port?)" >&2; exit 1; }
rabbit_cli "$@"
