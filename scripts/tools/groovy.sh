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
# Groovy's launcher runs "$JAVA_HOME/bin/java"; use the JDK of `java` on PATH.
if [ -z "${JAVA_HOME:-}" ] || [ ! -x "$JAVA_HOME/bin/java" ]; then
  JAVA_HOME="$(java_home)"
fi
export JAVA_HOME

if ! command -v groovy >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "groovy.sh: groovy is missing and installing it needs root (apt-get install -y groovy)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Refresh the package lists only when they lack groovy or are stale.
  if ! apt-cache show groovy >/dev/null 2>&1; then
    apt-get update
  fi
  if ! apt-get install -y --no-install-recommends groovy; then
    apt-get update
    apt-get install -y --no-install-recommends groovy
  fi
fi

groovy --version
