#!/usr/bin/env bash
# Rebuilds the console from source: the API types from openapi.yaml (by
# clients/typescript/gen into clients/typescript/src/schema.d.ts, the one
# copy the TypeScript client and the console share), a type check, the
# Vite build into dist/, and api/src/console_assets.rs (the files embedded
# in the binary). The output is reproducible: content-hashed names, no timestamps, packages
# pinned by package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
