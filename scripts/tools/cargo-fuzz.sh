#!/usr/bin/env bash
# Installs cargo-fuzz (from crates.io) for scripts/fuzz. It runs on the stable
# toolchain with RUSTC_BOOTSTRAP=1; libFuzzer itself is built from the
# libfuzzer-sys crate by the fuzz targets' build.
set -euo pipefail
if command -v cargo-fuzz >/dev/null 2>&1; then
  echo "cargo-fuzz: $(cargo fuzz --version 2>/dev/null || echo present)"
  exit 0
fi
cargo install cargo-fuzz --version '^0.13' --locked
