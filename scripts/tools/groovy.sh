#!/usr/bin/env bash
# Installs Groovy (Debian's `groovy` package, 2.4) for the Jenkins shared
# library tests (plugins/jenkins/test/run). Idempotent: does nothing when
# `groovy` already runs.
set -euo pipefail

java_home() {
  local java
  java="$(command -v java)" || { echo "groovy.sh: java is not on PATH" >&2; return 1; }
  dirname "$(dirname "$(readlink -f "$java")")"
}

if ! command -v java >/dev/null 2>&1; then
  echo "groovy.sh: java is not on PATH; install a JDK first (apt-get install -y default-jdk-headless)" >&2
  exit 1
fi
export JAVA_HOME="${JAVA_HOME:-$(java_home)}"

if ! command -v groovy >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "groovy.sh: groovy is missing and installing it needs root (apt-get install -y groovy)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends groovy; then
    apt-get update
    apt-get install -y --no-install-recommends groovy
  fi
fi

groovy --version
