#!/usr/bin/env bash
# Installs gitlab-ci-local (firecow/gitlab-ci-local), the local GitLab CI
# runner the GitLab wrapper test drives with the shell executor, and rsync,
# which gitlab-ci-local uses to copy the project and artifacts.
# gitlab-ci-local 4.50.0 is the newest release that runs on Node 20 (later
# releases need Node 22). Idempotent: does nothing when both already work.
set -euo pipefail

GCL_VERSION="${GITLAB_CI_LOCAL_VERSION:-4.50.0}"

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "gitlab-ci-local.sh: $1 is missing and installing it needs root" >&2
    exit 1
  fi
}

if ! command -v rsync >/dev/null 2>&1; then
  need_root rsync
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends rsync; then
    apt-get update
    apt-get install -y --no-install-recommends rsync
  fi
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "gitlab-ci-local.sh: node and npm are required (Node 20 or newer)" >&2
  exit 1
fi

installed="$(gitlab-ci-local --version 2>/dev/null || true)"
if [ "$installed" != "$GCL_VERSION" ]; then
  npm install --global --no-audit --no-fund "gitlab-ci-local@${GCL_VERSION}"
  hash -r
fi

echo "$(rsync --version 2>/dev/null | sed -n 1p)"
echo "gitlab-ci-local $(gitlab-ci-local --version)"
