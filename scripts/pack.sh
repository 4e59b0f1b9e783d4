#!/usr/bin/env bash
# Builds every library (tsc project references: ESM + .d.ts + source maps into dist/) and packs
# each into .packs/ with pnpm, which swaps in publishConfig.exports and the workspace versions,
# exactly what `pnpm publish` would upload. Prints the tarball paths, one a line. Private
# packages (packages/test-kit) are never published, so they are not packed either.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
pnpm run --silent build >&2
rm -rf .packs && mkdir -p .packs
for dir in packages/*/; do
  [[ $(node -p "require('./${dir}package.json').private === true") == true ]] && continue
  (cd "$dir" && pnpm pack --pack-destination "$root/.packs" >/dev/null)
done
ls "$root"/.packs/*.tgz
