#!/usr/bin/env bash
# The unit tests alone: pure decisions and in-process servers on loopback, no Debian packages.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare.sh
npx tsc -p tsconfig.test.json
mapfile -t files < <(find test/unit -name '*.test.ts' | sort)
exec bash scripts/run-tests.sh "${files[@]}"
