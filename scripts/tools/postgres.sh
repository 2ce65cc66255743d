#!/usr/bin/env bash
# Installs Debian's PostgreSQL server binaries (initdb, pg_ctl) for the storage
# tests; the tests start a throwaway cluster on a loopback port themselves.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "postgresql: $(ls -d /usr/lib/postgresql/*/bin | head -n1)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq postgresql >/dev/null
# The package starts a system cluster; the tests do not use it.
(command -v pg_ctlcluster >/dev/null && for c in /etc/postgresql/*/main; do
   v=$(basename "$(dirname "$c")"); pg_ctlcluster "$v" main stop || true; done) || true
ls -d /usr/lib/postgresql/*/bin/initdb
