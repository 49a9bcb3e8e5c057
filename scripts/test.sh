#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs the real parts the tests drive (when
# missing), builds, type-checks the tests, then runs every test file and fails if none ran.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/debian-deps.sh
require_commands docker-registry=docker-registry skopeo=skopeo dockerd=docker.io htpasswd=apache2-utils \
  pebble=pebble pebble-challtestsrv=pebble redis-server=redis-server redis-cli=redis-tools nginx=nginx wrk=wrk openssl=openssl curl=curl \
  podman=podman buildah=buildah ctr=containerd jq=jq chromium=chromium mmdebstrap=mmdebstrap docker-compose=docker-compose haproxy=haproxy redis-sentinel=redis-sentinel slapd=slapd /usr/lib/nginx/modules/ngx_stream_module.so=libnginx-mod-stream

bash scripts/prepare.sh
npx tsc -p tsconfig.test.json

mapfile -t files < <(find test -name '*.test.ts' | sort)
bash scripts/run-tests.sh "${files[@]}"
exec bash scripts/other-nodes.sh
