#!/usr/bin/env bash
# The ecosystem's packaging checks on every package's tarball: publint (package.json against
# the files shipped) and @arethetypeswrong/cli (types resolve as Node and bundlers load them;
# profile esm-only: the packages are ESM, Node 22/24 can also require() them). Any error fails.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
mapfile -t tarballs < <(scripts/pack.sh)
failed=0
for tgz in "${tarballs[@]}"; do
  name=$(basename "$tgz" .tgz)
  if ! out=$(pnpm exec publint run "$tgz" --level warning --strict 2>&1); then
    echo "$out"; echo "publint: $name FAILED"; failed=1
  else
    echo "publint: $name ok"
  fi
  if ! out=$(pnpm exec attw "$tgz" --profile esm-only --format ascii 2>&1); then
    echo "$out"; echo "attw: $name FAILED"; failed=1
  else
    echo "attw: $name ok"
  fi
done
exit "$failed"
