#!/usr/bin/env bash
# Installs Debian's nginx (nginx-light) for tests/e2e/deploy_kit.rs, which
# starts its own nginx on a loopback port with deploy/nginx/onelaunch.conf in
# front of server replicas. The package's own service is not used.
set -euo pipefail
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # nginx-light where the distribution still has it (Debian 12), else nginx.
  apt-get install -y -qq nginx-light >/dev/null 2>&1 || apt-get install -y -qq nginx >/dev/null
  # The package may start a system nginx on port 80; the tests do not use it.
  (command -v systemctl >/dev/null && systemctl stop nginx 2>/dev/null) || true
fi
/usr/sbin/nginx -v
