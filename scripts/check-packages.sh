#!/usr/bin/env bash
# The ecosystem's packaging checks on every package's tarball: publint (package.json against
# the files shipped) and @arethetypeswrong/cli (types resolve as Node and bundlers load them;
# profile esm-only: the packages are ESM, Node 22/24 can also require() them). Any error fails.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# Not `< <(scripts/pack.sh)`: a process substitution's failure is lost, and a build that failed
# would leave nothing to check, which passed.
packed=$(scripts/pack.sh) || { echo "check-packages: building or packing the tarballs failed" >&2; exit 1; }
mapfile -t tarballs <<< "$packed"
(( ${#tarballs[@]} > 0 )) && [[ -n "${tarballs[0]}" ]] || { echo "check-packages: no tarball was packed" >&2; exit 1; }
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
