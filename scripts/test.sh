#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs the real parts the tests drive (when
# missing), builds, type-checks the tests, then runs every test file and fails if none ran.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/debian-deps.sh
require_commands docker-registry=docker-registry skopeo=skopeo dockerd=docker.io htpasswd=apache2-utils \
  pebble=pebble pebble-challtestsrv=pebble redis-server=redis-server redis-cli=redis-tools nginx=nginx wrk=wrk openssl=openssl curl=curl

bash scripts/prepare.sh
npx tsc -p tsconfig.test.json

mapfile -t files < <(find test -name '*.test.ts' | sort)
if [ ${#files[@]} -eq 0 ]; then echo "no test files found under test/" >&2; exit 1; fi
log=$(mktemp)
set +e
node --import tsx --test --test-timeout=600000 --test-reporter=spec "${files[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
passed=$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$log" | tail -1)
rm -f "$log"
if [ "$status" -eq 0 ] && [ "${passed:-0}" -eq 0 ]; then echo "the test run executed no test" >&2; exit 1; fi
exit "$status"
