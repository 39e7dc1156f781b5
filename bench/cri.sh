#!/usr/bin/env bash
# Issue 15's speed target, through the CRI as the kubelet drives it: RunPodSandbox +
# CreateContainer + StartContainer, then StopPodSandbox + RemovePodSandbox, in one
# containerd (scripts/cri-check.sh's setup), the handlers taking turns each round;
# medians, with each runtime's own share (a timing wrapper logs every runtime call).
# Two setups, as bench/runtime.sh:
#  - "as shipped": the host's mounts; runc against berth (crun refuses this cgroup v1
#    hybrid host).
#  - "private mount ns": containerd in a mount namespace of its own without the cgroup2
#    mount, so crun runs too; runc, crun and berth.
# Usage: bench/cri.sh [ROUNDS]   (as root; default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-20}
echo "== as shipped"
CRI_CHECK_BENCH=$ROUNDS CRI_CHECK_BENCH_HANDLERS=runc,berth bash scripts/cri-check.sh berth | grep '^bench'
echo "== private mount ns (no cgroup2 mount)"
CRI_CHECK_NO_UNIFIED=1 CRI_CHECK_BENCH=$ROUNDS CRI_CHECK_BENCH_HANDLERS=runc,crun,berth \
  bash scripts/cri-check.sh berth | grep '^bench'
