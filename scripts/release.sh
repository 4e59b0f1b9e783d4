#!/usr/bin/env bash
# Releases every published @flowtag/* package, in one command:
#
#   scripts/release.sh            from a clean main: version, check, commit, tag, publish
#   scripts/release.sh --dry-run  the same on a throw-away copy of HEAD, `pnpm publish --dry-run`
#                                 at the end: nothing is committed, tagged or uploaded
#   scripts/release.sh --dry-run --no-checks
#                                 builds instead of checking (scripts/test: its own run has
#                                 already type-checked, linted and checked the packages)
#
# Steps: `changeset version` turns the pending `.changeset/*.md` files into the next version of
# every package (they are versioned together: the `fixed` group of .changeset/config.json) and
# each package's CHANGELOG.md; the lockfile is refreshed; typecheck, lint and the packaging
# checks (publint, attw) run on the built packages; then the release commit and its tag, and
# `pnpm -r publish` (each package whose version is not on the registry yet, `publishConfig`
# swapped in, `workspace:` ranges replaced by the released versions). Provenance: every package
# has `publishConfig.provenance: true`, so npm signs the tarballs with the CI run that built them
# (.github/workflows/release.yml); a real publish from a laptop is refused by npm for that reason.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dry=false checks=true
case "$*" in
  "--dry-run") dry=true ;;
  "--dry-run --no-checks") dry=true checks=false ;;
  "") ;;
  *) echo "usage: scripts/release.sh [--dry-run [--no-checks]]" >&2; exit 2 ;;
esac
"$root/scripts/setup.sh" >/dev/null
source "$root/scripts/env.sh"

if $dry; then
  work=$(mktemp -d)
  trap 'git -C "$root" worktree remove --force "$work/repo" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
  git -C "$root" worktree add --detach "$work/repo" HEAD >/dev/null
  ln -s "$root/.tools" "$work/repo/.tools"
  cd "$work/repo"
else
  cd "$root"
  [[ -z $(git status --porcelain) ]] || { echo "release: the working tree is not clean" >&2; exit 1; }
  [[ $(git rev-parse --abbrev-ref HEAD) == main ]] || { echo "release: not on main" >&2; exit 1; }
fi

pnpm install --frozen-lockfile --prefer-offline >/dev/null
if ls .changeset/*.md 2>/dev/null | grep -v README.md >/dev/null; then
  pnpm exec changeset version
  pnpm install --lockfile-only --prefer-offline >/dev/null
else
  echo "release: no pending changesets; publishing the versions as they are"
fi
version=$(node -p "require('./packages/nacos/package.json').version")
if $checks; then
  pnpm run typecheck
  pnpm run lint
  pnpm run check:packages   # builds dist/ and checks every package with publint and attw
else
  pnpm run build
fi

if $dry; then
  pnpm -r publish --dry-run --no-git-checks --access public
  echo "release --dry-run: would publish @flowtag/* $version"
  exit 0
fi
git add -A
git commit -m "release: @flowtag/* $version"
git tag "v$version"
pnpm -r publish --access public
git push --follow-tags
