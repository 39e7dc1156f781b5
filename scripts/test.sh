#!/usr/bin/env bash
# Install what the tests need, build, and run every test suite:
# unit tests, black-box tests as root on this host, and the cgroup v2 suites
# in a throwaway VM. Exit status is non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

if [ "$(id -u)" != 0 ]; then
  echo "scripts/test.sh: the black-box tests drive containers and must run as root" >&2
  exit 1
fi

# 1. Packages (Debian). The list is one package per line.
mapfile -t PKGS < <(grep -v '^\s*#' scripts/test-packages.txt | sed '/^\s*$/d')
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  # Packages must not start their daemons (dockerd would turn on the host's
  # ip_forward): a policy-rc.d that forbids it, for the install only.
  made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  apt-get update -q -o DPkg::Lock::Timeout=600
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o DPkg::Lock::Timeout=600 "${missing[@]}"
  [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
fi
if [ "$(cat /proc/sys/net/ipv4/ip_forward)" != 0 ]; then
  echo "scripts/test.sh: net.ipv4.ip_forward is on; it must stay 0 on this host" >&2
  exit 1
fi
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
bash scripts/musl-target.sh

# 2. Build the binaries the black-box tests drive: the shipped ones, as the README, the
# demo and the benchmarks build them (release, static musl; .cargo/config.toml). The
# tests themselves run in the dev profile and drive these (BERTH_BIN_DIR).
echo "== build (release, as shipped)"
cargo build --release
export BERTH_BIN_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/x86_64-unknown-linux-musl/release

# 3. Unit and black-box tests, one process per test, all inside a network namespace of
# their own (scripts/in-netns.sh): the engine turns on forwarding and makes bridges and
# nftables rules where it runs, and no test may touch the host's network.
echo "== cargo nextest (host: cgroup v1 hybrid), in a network namespace of its own"
status=0
bash scripts/in-netns.sh cargo nextest run --workspace --no-fail-fast || status=1

# 3b. The README's snippets, pasted in order as a newcomer would (issue 17 item 13).
echo "== README snippets (scripts/readme-check.sh)"
bash scripts/readme-check.sh > /tmp/berth-readme-check.log 2>&1 || {
  tail -40 /tmp/berth-readme-check.log >&2
  status=1
}
tail -1 /tmp/berth-readme-check.log

# 3c. containerd's CRI as the kubelet drives it, with runc and with berth-runtime as the
# RuntimeClass handler (issue 15); each check runs containerd in a namespace of its own.
for h in runc berth; do
  echo "== CRI check: scripts/cri-check.sh $h"
  if bash scripts/cri-check.sh "$h" > "/tmp/berth-cri-$h.log" 2>&1; then
    grep '^== [0-9]* passed' "/tmp/berth-cri-$h.log"
  else
    grep -E '^FAIL' "/tmp/berth-cri-$h.log" >&2
    tail -40 "/tmp/berth-cri-$h.log" >&2
    status=1
  fi
done

# 4. cgroup v2, in a VM whose only hierarchy is cgroup2.
V2VM=${V2VM:-$ROOT/tests/vm/v2vm.sh}
if [ -x "$V2VM" ] || [ -f "$V2VM" ]; then
  for suite in crates/cgroups/tests/v2vm/run.sh tests/v2vm/run.sh; do
    if [ -f "$suite" ]; then
      echo "== v2 VM: $suite"
      V2VM="$V2VM" bash "$suite" || status=1
    fi
  done
else
  echo "== v2 VM suites skipped: $V2VM not found" >&2
  status=1
fi

if [ "$(cat /proc/sys/net/ipv4/ip_forward)" != 0 ]; then
  echo "scripts/test.sh: net.ipv4.ip_forward of the host turned 1 during the tests" >&2
  status=1
fi
# Leftovers are failures too.
left=$(ls -d /sys/fs/cgroup/*/berth-test* /sys/fs/cgroup/*/berth 2>/dev/null || true)
if [ -n "$left" ]; then
  echo "leftover cgroups after the tests:" >&2
  echo "$left" >&2
  status=1
fi
exit $status
