#!/usr/bin/env bash
# Installs valgrind (Debian's package) for scripts/ingest-instructions and
# its test (tests/e2e/instructions.rs). Idempotent: does nothing when
# `valgrind` and `callgrind_control` already run.
set -euo pipefail

if ! command -v valgrind >/dev/null 2>&1 || ! command -v callgrind_control >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "valgrind.sh: valgrind is missing and installing it needs root (apt-get install -y valgrind)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-cache show valgrind >/dev/null 2>&1; then
    apt-get update
  fi
  if ! apt-get install -y --no-install-recommends valgrind; then
    apt-get update
    apt-get install -y --no-install-recommends valgrind
  fi
fi

valgrind --version
