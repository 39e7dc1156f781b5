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
cleanup() { ip netns del "$NS" 2>/dev/null || true; }
trap cleanup EXIT
nsenter --net="/run/netns/$NS" ip link set lo up
set +e
nsenter --net="/run/netns/$NS" -- "$@"
status=$?
set -e
exit $status
