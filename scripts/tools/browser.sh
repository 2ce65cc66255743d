#!/usr/bin/env bash
# Installs what the web UI browser tests (tests/browser, driven by
# tests/e2e/web_ui.rs) need: Debian's Chromium and the pinned npm
# `playwright-core` (which drives that Chromium; it never downloads a browser).
# Idempotent: does nothing when both are already there.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
/usr/bin/chromium --version 2>/dev/null || echo "chromium: /usr/bin/chromium"

if ! command -v npm >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
echo "playwright-core: $(node -p "require('./tests/browser/node_modules/playwright-core/package.json').version")"
