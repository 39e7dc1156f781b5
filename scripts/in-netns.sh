#!/usr/bin/env bash
# Runs a command inside a throwaway network namespace (only lo, up), deleted afterwards.
# The engine turns on forwarding and makes bridges and nftables rules where it runs
# containers; tests and demos run it here so the host's network is never touched.
# Only the network namespace is switched (nsenter --net), so mounts stay visible.
#   scripts/in-netns.sh cargo nextest run -p berth
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "in-netns.sh: must run as root" >&2
  exit 1
fi
NS=berth-run-$$
ip netns add "$NS"
# What still runs in the namespace (a berth-dns lingers 30 s after its last endpoint) is
# ended first: deleting the namespace alone would leave it running.
cleanup() {
  local pids
  pids=$(ip netns pids "$NS" 2>/dev/null || true)
  if [ -n "$pids" ]; then
    echo "in-netns.sh: ending what was left in $NS: $(ps -o pid=,comm= -p ${pids//$'\n'/,} | tr '\n' ' ')" >&2
    kill -9 $pids 2>/dev/null || true
  fi
  ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT
nsenter --net="/run/netns/$NS" ip link set lo up
set +e
nsenter --net="/run/netns/$NS" -- "$@"
status=$?
set -e
exit $status
