#!/bin/bash
# tests/v2vm/run.sh - the cgroup resource checks of tests/tests/resources.rs, on a cgroup v2
# host: builds a static berth-runtime, a busybox bundle and a POSIX sh test script into a
# payload, and runs them all in ONE boot of tests/vm/v2vm.sh (a throwaway QEMU VM whose
# only hierarchy is cgroup v2).
#
# Prints PASS/FAIL lines and "N passed, M failed"; exits non-zero if any check fails (or the
# VM fails). Needs root on the host (for v2vm.sh), cargo, busybox-static, file, binutils.
#
# Measured 2026-12-06 with tests/vm/v2vm.sh (2-core host, TCG, 1 vCPU): 12 passed, 0 failed
# in 373 s total (162 s cold release build, 500 cycles 187.9 s = 375 ms/cycle).
#
# Knobs: V2VM (path of the VM harness, default tests/vm/v2vm.sh), BERTH_STATIC_TARGET_DIR (default: the workspace target dir, whose build is the static one),
# PROFILE (release | debug; default release: under TCG a debug runtime needs ~6 s per
# create/start/delete cycle), CYCLES (default 500), KEEP_PAYLOAD=1 to keep the payload dir;
# V2VM_* pass through (V2VM_TIMEOUT defaults to 2400 s here).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ws=$(cd "$here/../.." && pwd)
V2VM=${V2VM:-$ws/tests/vm/v2vm.sh}
TD=${BERTH_STATIC_TARGET_DIR:-${CARGO_TARGET_DIR:-$ws/target}}
CYCLES=${CYCLES:-500}
PROFILE=${PROFILE:-release}
export V2VM_TIMEOUT=${V2VM_TIMEOUT:-2400}
start=$(date +%s)

# 1. A static berth-runtime (the guest is a busybox initramfs: no libc), the shipped
#    musl build of .cargo/config.toml.
case $PROFILE in
release) pflag=--release ;;
debug) pflag= ;;
*) echo "PROFILE must be release or debug" >&2; exit 2 ;;
esac
(cd "$ws" && CARGO_TARGET_DIR="$TD" \
    cargo build -q $pflag --target x86_64-unknown-linux-musl)   # the whole workspace: the shipped binary
bin="$TD/x86_64-unknown-linux-musl/$PROFILE/berth-runtime"
if ! file "$bin" | grep -Eq 'statically linked|static-pie linked'; then
    echo "FAIL build: $bin is not static: $(file "$bin")" >&2
    exit 1
fi

# 2. Payload: runtime (stripped: it copies itself into a sealed memfd on every create),
#    busybox rootfs, one config per check, the guest script.
payload=$(mktemp -d /tmp/berth-v2payload.XXXXXX)
cleanup() { [ "${KEEP_PAYLOAD:-0}" = 1 ] || rm -rf "$payload"; }
trap cleanup EXIT
strip -o "$payload/berth-runtime" "$bin"
chmod 755 "$payload/berth-runtime"
rootfs="$payload/rootfs"
mkdir -p "$rootfs"/{bin,proc,sys,dev,tmp,etc,root}
chmod 1777 "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/busybox"
for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -sf busybox "$rootfs/bin/$a"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
echo 'root:x:0:' >"$rootfs/etc/group"

# config NAME ARGS_JSON RESOURCES_JSON [EXTRA_MOUNTS_JSON]: bundle dir $payload/b/NAME whose
# root is the shared rootfs (absolute root.path).
config() {
    local name=$1 args=$2 res=$3 extra=${4:-}
    mkdir -p "$payload/b/$name"
    cat >"$payload/b/$name/config.json" <<EOF
{
  "ociVersion": "1.2.0",
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": $args,
    "env": ["PATH=/bin", "HOME=/root"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    },
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    "noNewPrivileges": true
  },
  "root": {"path": "/payload/rootfs", "readonly": false},
  "hostname": "v2",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
    $extra
  ],
  "linux": {
    "cgroupsPath": "/berth-test/$name",
    "resources": $res,
    "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
  }
}
EOF
}

deny_all='[{"allow": false, "access": "rwm"}]'
mib=1048576
config oom '["sh", "-c", "while [ ! -e /tmp/go-oom ]; do sleep 0.05; done; exec dd if=/dev/zero of=/dev/null bs=50M count=1"]' \
    "{\"devices\": $deny_all, \"memory\": {\"limit\": $((5 * mib))}}"
config pids '["sh", "-c", "sh -c '"'"'i=0; while [ $i -lt 200 ]; do sleep 60 & i=$((i+1)); done'"'"'; echo bomb-over; exec sleep 60"]' \
    "{\"devices\": $deny_all, \"pids\": {\"limit\": 20}}"
config cpu '["sh", "-c", "while :; do :; done"]' \
    "{\"devices\": $deny_all, \"cpu\": {\"quota\": 10000, \"period\": 100000}}"
config upd '["sleep", "600"]' \
    "{\"devices\": $deny_all, \"memory\": {\"limit\": $((256 * mib))}, \"pids\": {\"limit\": 100}}"
config pause '["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/c.new; mv /tmp/c.new /tmp/c; done"]' \
    "{\"devices\": $deny_all}"
config pdel '["sh", "-c", "sleep 600 & sleep 600 & exec sleep 600"]' "{\"devices\": $deny_all}"
config stats '["sh", "-c", "while [ ! -e /tmp/go-stats ]; do sleep 0.05; done; i=0; while [ $i -lt 50000 ]; do i=$((i+1)); done; dd if=/dev/zero of=/tmp/big bs=1M count=16 2>/dev/null; sleep 600 & touch /tmp/done-stats; exec sleep 600"]' \
    "{\"devices\": $deny_all}"
kmsg_args='["sh", "-c", "if true > /dev/null; then echo null-ok; fi; if true > /dev/kmsgx; then echo kmsgx-open; else echo kmsgx-denied; fi"]'
kmsg_mount=', {"destination": "/dev/kmsgx", "type": "bind", "source": "/dev/kmsg", "options": ["bind"]}'
config devdeny "$kmsg_args" "{\"devices\": $deny_all}" "$kmsg_mount"
config devallow "$kmsg_args" \
    "{\"devices\": [{\"allow\": false, \"access\": \"rwm\"}, {\"allow\": true, \"type\": \"c\", \"major\": 1, \"minor\": 11, \"access\": \"w\"}]}" \
    "$kmsg_mount"
config cycle '["true"]' "{\"devices\": $deny_all}"
# io: the guest puts its loop device's numbers in place of 1111:2222.
config io '["sleep", "600"]' \
    "{\"devices\": $deny_all, \"blockIO\": {\"weight\": 300, \"throttleReadBpsDevice\": [{\"major\": 1111, \"minor\": 2222, \"rate\": $mib}], \"throttleWriteIOPSDevice\": [{\"major\": 1111, \"minor\": 2222, \"rate\": 77}]}}"
for f in "$payload"/b/*/config.json; do
    jq -e . "$f" >/dev/null || { echo "FAIL payload: bad JSON in $f" >&2; exit 1; }
done
cp "$here/guest.sh" "$payload/guest.sh"
chmod 755 "$payload/guest.sh"

echo "$PROFILE static runtime and payload ready in $(($(date +%s) - start)) s; booting the v2 VM" >&2
set +e
CYCLES=$CYCLES bash "$V2VM" "$payload" /bin/sh -c "CYCLES=$CYCLES /payload/guest.sh"
rc=$?
set -e
echo "total time $(($(date +%s) - start)) s (build + boot + checks), exit $rc"
exit $rc
