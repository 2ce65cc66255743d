#!/usr/bin/env bash
# Installs what deploy/image/build and tests/e2e/container_image.rs need, from
# Debian: buildah (builds the OCI image from `scratch`), umoci (unpacks it into
# a root file system for the test), busybox-static (the shell of the `-ci`
# variant) and ca-certificates (the CA bundle copied into the image).
# Also `file`, to tell the static busybox from the dynamic one. Idempotent;
# fails loudly when a tool is still missing afterwards.
set -euo pipefail

need=()
command -v file >/dev/null 2>&1 || need+=(file)
command -v buildah >/dev/null 2>&1 || need+=(buildah)
command -v umoci >/dev/null 2>&1 || need+=(umoci)
# /bin/busybox must be the static one (the `busybox` package's is dynamic).
if ! file -b -L /bin/busybox 2>/dev/null | grep -Eq 'statically linked|static-pie linked'; then
  need+=(busybox-static)
fi
[ -s /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)

if [ "${#need[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || {
    echo "buildah.sh: cannot install ${need[*]} (no apt-get); install them first" >&2
    exit 1
  }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  hash -r
fi

for tool in buildah umoci file; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "buildah.sh: '$tool' is still missing after installing it" >&2
    exit 1
  }
done
file -b -L /bin/busybox 2>/dev/null | grep -Eq 'statically linked|static-pie linked' || {
  echo "buildah.sh: /bin/busybox is missing or not static (busybox-static)" >&2
  exit 1
}
[ -s /etc/ssl/certs/ca-certificates.crt ] || {
  echo "buildah.sh: /etc/ssl/certs/ca-certificates.crt (ca-certificates) is missing" >&2
  exit 1
}
buildah --version
umoci --version
