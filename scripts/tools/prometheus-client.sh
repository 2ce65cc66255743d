#!/usr/bin/env bash
# Installs the Prometheus text-format parser the observability tests read
# /metrics with (`prometheus_client.parser`, the Python client of the
# Prometheus project). Idempotent: does nothing when it already imports.
set -euo pipefail

PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "prometheus-client.sh: $PYTHON is not on PATH; install Python 3 first" >&2
  exit 1
fi

if "$PYTHON" -c 'import prometheus_client.parser' >/dev/null 2>&1; then
  exit 0
fi

"$PYTHON" -m pip install --disable-pip-version-check --quiet 'prometheus-client>=0.17'
"$PYTHON" -c 'import prometheus_client.parser'
