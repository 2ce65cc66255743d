#!/usr/bin/env bash
# Installs mocha and the real allure-mocha reporter (an allure-js adapter that
# honours ALLURE_TESTPLAN_PATH), pinned by tests/compat/allure-mocha/package-lock.json,
# for the server-led test-plan tests (tests/e2e/server_led_plans.rs).
set -euo pipefail
cd "$(dirname "$0")/../../tests/compat/allure-mocha"
if [ -f node_modules/mocha/bin/mocha.js ] && [ -d node_modules/allure-mocha ]; then
  echo "allure-mocha: $(node -p 'require("./node_modules/allure-mocha/package.json").version') installed"
  exit 0
fi
npm ci --no-audit --no-fund
