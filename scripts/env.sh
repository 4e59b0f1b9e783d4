# Source this file to put the project's Node 24 and pnpm (from scripts/setup.sh) first on PATH.
export PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.tools/node_modules/.bin:$PATH"
# tap runs test files with Node's own type stripping (the packages' tap config drops
# @tapjs/typescript). A tap whose shared plugin build is stale still passes that plugin's loader to
# the test processes of the run that rebuilds it; with this set, the loader does nothing, so no run
# loads the sources through ts-node (whose coverage does not merge with its child processes').
export TAP_TYPE_STRIP_ONLY=1
