#!/usr/bin/env bash
# Installs the OpenAPI tooling tests/e2e/openapi.rs drives against the real
# server's /api/openapi.json: openapi-spec-validator (is the document valid
# OpenAPI 3?) and schemathesis (do the answers match it?). Idempotent: does
# nothing when both are there.
set -euo pipefail

PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "openapi.sh: $PYTHON is not on PATH; install Python 3 first" >&2
  exit 1
fi

if "$PYTHON" -c 'import openapi_spec_validator, schemathesis' >/dev/null 2>&1; then
  "$PYTHON" -m pip show openapi-spec-validator schemathesis 2>/dev/null | grep -E '^(Name|Version):' | paste - -
  exit 0
fi

"$PYTHON" -m pip install --disable-pip-version-check --quiet 'openapi-spec-validator>=0.7' 'schemathesis>=3.30'
"$PYTHON" -c 'import openapi_spec_validator, schemathesis'
"$PYTHON" -m pip show openapi-spec-validator schemathesis | grep -E '^(Name|Version):' | paste - -
