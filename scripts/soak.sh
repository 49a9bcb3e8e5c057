#!/usr/bin/env bash
# npm run soak [-- SECONDS]: installs what the soak drives when missing (Debian packages), builds,
# then runs bench/soak.ts against the real registry, Redis and skopeo on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/debian-deps.sh
require_commands docker-registry=docker-registry redis-server=redis-server redis-cli=redis-tools skopeo=skopeo htpasswd=apache2-utils

bash scripts/prepare.sh
exec node --import tsx bench/soak.ts "$@"
