#!/usr/bin/env bash
# Installs the Python test tooling the server-led tests drive: pytest with
# allure-pytest (which honours ALLURE_TESTPLAN_PATH) and pytest-rerunfailures
# (used to regenerate tests/fixtures/allure-pytest). Idempotent: does nothing
# when both already import.
set -euo pipefail

PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "python.sh: $PYTHON is not on PATH; install Python 3 first" >&2
  exit 1
fi

if "$PYTHON" -c 'import allure_pytest, pytest_rerunfailures' >/dev/null 2>&1; then
  "$PYTHON" -m pytest --version
  exit 0
fi

"$PYTHON" -m pip install --disable-pip-version-check --quiet 'allure-pytest>=2.13' 'pytest-rerunfailures>=12'
"$PYTHON" -c 'import allure_pytest, pytest_rerunfailures'
"$PYTHON" -m pytest --version
