#!/usr/bin/env bash
# Runs the README's shell snippets (every ```sh block after "Two commands"), in order, in
# one bash with -euo pipefail, as a newcomer would paste them, and fails if any command
# fails. As root. Isolation: a private mount namespace with a fresh tmpfs on /tmp (the
# snippets use /tmp/store, /tmp/bundle...), a throwaway network namespace
# (scripts/in-netns.sh), cgroups under /berth-readme; everything is removed after.
# The binaries are the ones already built: `cargo build` lines are skipped and
# target/x86_64-unknown-linux-musl/release/ stands for $BERTH_BIN_DIR (default: that very
# directory under ${CARGO_TARGET_DIR:-target}, what scripts/test.sh builds).
#   scripts/readme-check.sh [README]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN_DIR=$(realpath "${BERTH_BIN_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/x86_64-unknown-linux-musl/release}")
[ "${1:-}" = --inside ] || README=$(realpath "${1:-$ROOT/README.md}")
[ "$(id -u)" = 0 ] || { echo "readme-check.sh: run as root" >&2; exit 1; }
[ -x "$BIN_DIR/berth" ] || { echo "readme-check.sh: no berth in $BIN_DIR" >&2; exit 1; }

if [ "${1:-}" != --inside ]; then
  W=$(mktemp -d /tmp/readme-check.XXXXXX)
  trap 'rm -rf "$W"' EXIT
  # The snippets, as one script.
  awk '
    /^## Two commands/ { skip = 1 }
    /^## / && !/^## Two commands/ { skip = 0 }
    /^```sh$/ { if (!skip) { inblock = 1; n++; print "echo \"== README snippet " n "\"" }; next }
    /^```/ { inblock = 0; next }
    inblock { print }
  ' "$README" |
    grep -v '^cargo build' |
    sed -e "s#\$PWD/target/x86_64-unknown-linux-musl/release/#$BIN_DIR/#g" \
      -e "s#\(^\|[^/]\)target/x86_64-unknown-linux-musl/release/#\1$BIN_DIR/#g" > "$W/snippets.sh"
  [ -s "$W/snippets.sh" ] || { echo "readme-check.sh: no snippets in $README" >&2; exit 1; }
  cp "$W/snippets.sh" "$W/run.sh"
  status=0
  BERTH_CGROUP_PARENT=/berth-readme unshare -m --propagation private \
    bash "$0" --inside "$W/run.sh" "$ROOT" || status=$?
  find /sys/fs/cgroup/*/berth-readme -depth -type d -exec rmdir {} \; 2>/dev/null || true
  rmdir /sys/fs/cgroup/berth-readme 2>/dev/null || true
  [ "$(cat /proc/sys/net/ipv4/ip_forward)" = 0 ] || { echo "readme-check.sh: the host's ip_forward turned on" >&2; status=1; }
  [ $status = 0 ] && echo "readme-check.sh: every snippet ran" || echo "readme-check.sh: FAILED ($status)" >&2
  exit $status
fi

# Inside the private mount namespace.
script=$2
root=$3
snippets=$(cat "$script")   # read before the fresh /tmp hides it
mount -t tmpfs -o mode=1777 tmpfs /tmp
printf '%s\n' "$snippets" > /tmp/.snippets.sh
cd "$root"
status=0
bash "$root/scripts/in-netns.sh" bash -c '
  set -euo pipefail
  ip link set lo up
  bash -euo pipefail -x /tmp/.snippets.sh
  rc=$?
  exit $rc' || status=$?
# Whatever the snippets left: containers of each storage root they made, then mounts.
for r in /tmp/*/; do
  [ -d "$r/engine" ] || continue
  b="$BIN_DIR/berth --root $r"
  for id in $($b ps -aq --no-trunc 2>/dev/null); do $b rm -f -v "$id" >/dev/null 2>&1 || true; done
done
grep " /tmp" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
exit $status
