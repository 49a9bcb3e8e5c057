#!/usr/bin/env bash
# Runs the given test files with Node's test runner; fails when a test fails or when none ran.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then echo "no test files found" >&2; exit 1; fi
log=$(mktemp)
set +e
node --import tsx --test --test-timeout=600000 --test-reporter=spec "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
passed=$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$log" | tail -1)
rm -f "$log"
if [ "$status" -eq 0 ] && [ "${passed:-0}" -eq 0 ]; then echo "the test run executed no test" >&2; exit 1; fi
exit "$status"
