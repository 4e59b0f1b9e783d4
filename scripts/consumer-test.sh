#!/usr/bin/env bash
# The consumer test (tests/consumer/README.md): every package's tarball, installed with plain npm
# into a project outside the workspace, runs on Node 22 and Node 24 and type-checks under
# moduleResolution nodenext and bundler. Prints one `N passed, N failed` line at the end.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# Not `< <(scripts/pack.sh)`: a process substitution's failure is lost, and a build that failed
# would leave nothing to check, which passed.
packed=$(scripts/pack.sh) || { echo "consumer-test: building or packing the tarballs failed" >&2; exit 1; }
mapfile -t tarballs <<< "$packed"
(( ${#tarballs[@]} > 0 )) && [[ -n "${tarballs[0]}" ]] || { echo "consumer-test: no tarball was packed" >&2; exit 1; }
work=$(mktemp -d /tmp/flowtag-consumer.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp tests/consumer/*.mjs tests/consumer/*.ts tests/consumer/tsconfig.*.json "$work/"
cd "$work"
echo '{ "name": "flowtag-consumer", "private": true, "type": "module" }' > package.json
# The registry's fastify, express, undici and typings next to the tarballs, as a user would.
npm install --no-audit --no-fund --loglevel=error "${tarballs[@]}" \
  fastify@5 express@5 undici@8 @grpc/grpc-js@1 kafkajs@2 amqplib@2 typescript@5.9 @types/node@24 @types/express@5 >/dev/null
passed=0 failed=0
check() {
  local what=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok: $what"; else failed=$((failed + 1)); echo "FAILED: $what"; fi
}
node24="$root/.tools/node_modules/.bin/node"
node22="$root/.tools/node22/node_modules/.bin/node"
check "scenario on Node 24 ($("$node24" --version))" timeout 120 "$node24" scenario.mjs
check "scenario on Node 22 ($("$node22" --version))" timeout 120 "$node22" scenario.mjs
# The bins from their tarballs: a RuleSet validated by flowtag-rules (@flowtag/rules) and flowtag (@flowtag/canary).
echo '{ "version": 1, "rules": [{ "name": "beta", "when": { "headers": { "x-beta": { "equals": "yes" } } }, "lane": "v2" }], "default": "v1" }' > rules.json
check "flowtag-rules validate on Node 22" "$node22" node_modules/@flowtag/rules/dist/bin.js validate rules.json
check "flowtag rules validate on Node 24" "$node24" node_modules/.bin/flowtag rules validate rules.json
check "tsc --noEmit, moduleResolution nodenext" "$node24" node_modules/typescript/bin/tsc -p tsconfig.nodenext.json
check "tsc --noEmit, moduleResolution bundler" "$node24" node_modules/typescript/bin/tsc -p tsconfig.bundler.json
# @flowtag/nestjs in Nest projects of their own, one per supported Nest major (tests/consumer/nest).
source "$root/tests/consumer/nest/checks.sh"
echo "consumer: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
