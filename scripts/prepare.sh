#!/usr/bin/env bash
# Makes a fresh checkout runnable: npm dependencies, then the TypeScript build in dist/ — skipped
# when dist/ is newer than every source file and build setting (tsc takes ~10 s on each start).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
stamp=dist/.built
if [ -f "$stamp" ] && [ -f dist/cli/main.js ] &&
  [ -z "$(find src tsconfig.json package.json package-lock.json -newer "$stamp" -print -quit)" ]; then
  echo "registry-gate: dist/ is current, not rebuilding"
  exit 0
fi
# Stamped with the time the build started, so that an edit made while tsc runs is not missed.
mkdir -p dist
touch "$stamp.next"
npx tsc -p tsconfig.json
chmod 755 dist/cli/main.js
mv "$stamp.next" "$stamp"
