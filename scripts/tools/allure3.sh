#!/usr/bin/env bash
# Installs the real Allure 3 CLI and TestOps plugin (pinned by
# tests/compat/allure3/package-lock.json) for the compatibility tests.
set -euo pipefail
cd "$(dirname "$0")/../../tests/compat/allure3"
if [ -x node_modules/.bin/allure ] && [ -d node_modules/@allurereport/plugin-testops ]; then
  echo "allure3: $(node_modules/.bin/allure --version 2>/dev/null || echo installed)"
  exit 0
fi
npm ci --no-audit --no-fund
