#!/usr/bin/env bash
# Issue 15's speed target, through the CRI as the kubelet drives it: RunPodSandbox +
# CreateContainer + StartContainer, then StopPodSandbox + RemovePodSandbox, with
# handler berth against handler runc (crun refuses this cgroup v1 hybrid host, see
# bench/runtime.sh), in one containerd (scripts/cri-check.sh's setup), the handlers
# taking turns each round; medians.
# Usage: bench/cri.sh [ROUNDS]   (as root; default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
CRI_CHECK_BENCH=${1:-20} CRI_CHECK_BENCH_HANDLERS=${CRI_CHECK_BENCH_HANDLERS:-runc,berth} \
  bash scripts/cri-check.sh berth
