# Source this file to put the project's Node 24 and pnpm (from scripts/setup.sh) first on PATH.
export PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.tools/node_modules/.bin:$PATH"
