#!/usr/bin/env bash
# The main job: build berth-runtime and run the seed's walk-through with it.
#  1. a busybox container in its own pid, net, mount, uts and ipc namespaces:
#     ps sees only itself, ip link shows only lo, the hostname is its own;
#  2. the same container limited to 5 MB of memory allocates 50 MB: the OOM
#     killer ends it, `run` exits 137, and `events` reports the oom.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/demo.sh: run as root (containers need it)" >&2; exit 1; }

if [ ! -x /bin/busybox ] || ! file -L /bin/busybox 2>/dev/null | grep -q static; then
  apt-get update -q -o DPkg::Lock::Timeout=600
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends busybox-static file
fi
echo "== building berth-runtime (release)"
cargo build --release -p berth-runtime
RT=$(pwd)/target/release/berth-runtime

WORK=$(mktemp -d /tmp/berth-demo.XXXXXX)
STATE=$WORK/state
ID1=demo-ns-$$
ID2=demo-oom-$$
cleanup() {
  "$RT" --root "$STATE" delete --force "$ID1" >/dev/null 2>&1 || true
  "$RT" --root "$STATE" delete --force "$ID2" >/dev/null 2>&1 || true
  [ -n "${EVPID:-}" ] && kill "$EVPID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# A bundle: a busybox rootfs and runtime-spec config from `berth-runtime spec`.
mkdir -p "$WORK/bundle/rootfs"/{bin,proc,sys,dev,etc,tmp}
cp /bin/busybox "$WORK/bundle/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$WORK/bundle/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/:/bin/sh' > "$WORK/bundle/rootfs/etc/passwd"
echo 'root:x:0:' > "$WORK/bundle/rootfs/etc/group"
(cd "$WORK/bundle" && "$RT" spec)
config() { # args, memory limit in bytes or ""
  python3 - "$WORK/bundle/config.json" "$1" "$2" <<'PY'
import json, sys
path, script, mem = sys.argv[1], sys.argv[2], sys.argv[3]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", script]
c["hostname"] = "berth-demo"
c["linux"]["cgroupsPath"] = "/berth-demo/" + ("oom" if mem else "ns")
res = c["linux"].setdefault("resources", {})
if mem:
    res["memory"] = {"limit": int(mem), "swap": int(mem)}
else:
    res.pop("memory", None)
json.dump(c, open(path, "w"), indent=2)
PY
}

echo
echo "== 1. namespaces: pid, net, mount, uts, ipc"
config 'echo "hostname: $(hostname)"; echo "ps:"; ps; echo "ip link:"; ip link' ""
"$RT" --root "$STATE" run --bundle "$WORK/bundle" "$ID1"

echo
echo "== 2. memory: limit 5 MB, allocate 50 MB"
config 'sleep 1; echo "allocating 50 MB"; exec dd if=/dev/zero of=/dev/null bs=50M count=1' 5242880
"$RT" --root "$STATE" run --bundle "$WORK/bundle" "$ID2" &
RUNPID=$!
for _ in $(seq 100); do
  "$RT" --root "$STATE" state "$ID2" >/dev/null 2>&1 && break
  sleep 0.02
done
"$RT" --root "$STATE" events "$ID2" > "$WORK/events.log" 2>&1 &
EVPID=$!
set +e
wait "$RUNPID"
rc=$?
set -e
sleep 0.3
kill "$EVPID" 2>/dev/null || true
echo "run exited with status $rc (137 = killed by SIGKILL, the OOM killer)"
echo "events:"
grep '"oom"' "$WORK/events.log" || { echo "(no oom event seen)"; cat "$WORK/events.log"; }
rmdir /sys/fs/cgroup/*/berth-demo /sys/fs/cgroup/unified/berth-demo 2>/dev/null || true
[ "$rc" = 137 ]
