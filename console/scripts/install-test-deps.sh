#!/usr/bin/env bash
# Installs what the console's tests need: Debian's chromium (the browser
# Playwright drives; no browser download) and the console's npm packages
# from the committed lockfile. Node.js itself comes with the machine
# (v20.19+; Vite needs it). Idempotent; run as root (apt-get) or with
# chromium already installed.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"

if ! command -v node >/dev/null; then
  echo "install-test-deps: node is missing (Node.js 20.19+ is needed)" >&2
  exit 1
fi
if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi
cd "$here"
# The stamp lets scripts/test skip this when the lockfile has not changed.
if ! cmp -s package-lock.json node_modules/.installed-lock 2>/dev/null; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.installed-lock
fi
echo "install-test-deps: chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}'), node $(node --version), console packages installed"
