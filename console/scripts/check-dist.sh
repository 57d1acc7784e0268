#!/usr/bin/env bash
# CI: fails when the committed console build (console/dist, the generated
# API types in clients/typescript/src/schema.d.ts and
# api/src/console_assets.rs) is not what the sources build to,
# e.g. openapi.yaml or a page changed without `console/scripts/build.sh`.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
"$root/console/scripts/build.sh"
cd "$root"
paths=(console/dist clients/typescript/src/schema.d.ts api/src/console_assets.rs)
if ! git diff --quiet -- "${paths[@]}" || [ -n "$(git ls-files --others --exclude-standard -- "${paths[@]}")" ]; then
  echo "console: the embedded build is stale; run console/scripts/build.sh and commit:" >&2
  git status --short -- "${paths[@]}" >&2
  git diff --stat -- "${paths[@]}" >&2
  exit 1
fi
echo "console: the embedded build matches its sources"
