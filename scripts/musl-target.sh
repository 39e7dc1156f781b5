#!/usr/bin/env bash
# The shipped build is static musl (.cargo/config.toml): the toolchain's musl target
# must be there, and musl-gcc (Debian's musl-tools) for the crates that build C (ring).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
  rustup target add x86_64-unknown-linux-musl
fi
command -v x86_64-linux-musl-gcc >/dev/null || {
  echo "musl-gcc is missing: apt-get install musl-tools" >&2
  exit 1
}
