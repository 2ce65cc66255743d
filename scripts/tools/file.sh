#!/usr/bin/env bash
# Installs `file`, which tests/e2e/static_binary.rs (and scripts/build-static)
# use to check that the static binary is statically linked. Idempotent.
set -euo pipefail
if command -v file >/dev/null 2>&1; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq file
fi
command -v file >/dev/null 2>&1 || {
  echo "file.sh: cannot install 'file' (no apt-get); install it first" >&2
  exit 1
}
