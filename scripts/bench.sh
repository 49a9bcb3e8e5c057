#!/usr/bin/env bash
# npm run bench: installs what the bench drives when missing (Debian packages), builds, then runs
# bench/main.ts, which starts the registry, its peer front ends and registry-gate on loopback and prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/debian-deps.sh
require_commands docker-registry=docker-registry nginx=nginx haproxy=haproxy caddy=caddy wrk=wrk htpasswd=apache2-utils openssl=openssl curl=curl slapd=slapd

bash scripts/prepare.sh
exec node --import tsx bench/main.ts
