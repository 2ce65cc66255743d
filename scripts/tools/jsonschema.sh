#!/usr/bin/env bash
# Installs the Python schema validators tests/e2e/deploy_kit.rs runs
# (tests/fixtures/schemas/validate.py): PyYAML and jsonschema. Idempotent.
set -euo pipefail
PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "jsonschema.sh: $PYTHON is not on PATH; install Python 3 first" >&2
  exit 1
fi
if ! "$PYTHON" -c 'import yaml, jsonschema, referencing' >/dev/null 2>&1; then
  "$PYTHON" -m pip install --disable-pip-version-check --quiet 'PyYAML>=6' 'jsonschema>=4.18'
fi
"$PYTHON" -c 'import yaml, jsonschema, importlib.metadata as m; print("jsonschema", m.version("jsonschema"), "PyYAML", yaml.__version__)'
