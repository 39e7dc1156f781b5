#!/usr/bin/env bash
# The engine side by side with podman (crun + conmon) and docker (dockerd +
# containerd + runc), all from Debian, on one busybox image:
#   1. `run --rm IMAGE true`, hyperfine; 1b. `run -d` + `rm -f`; 1c. berth's
#      phases of `run --rm` (--log-level debug);
#   2. `berth ps` with 100 containers;
#   3. the peak RSS (VmHWM) of berth's monitor and of podman's conmon, each
#      holding a running container;
#   4. berth's `run --rm` on a busy disk (direct writes; a 2 GiB writeback).
#
# Every engine runs its containers with --network none (this bench measures the
# engine, bench/network.sh the networks; berth's default bridge network would
# otherwise set up a bridge and forwarding in this namespace).
#
# crun 1.8 refuses this hybrid host, so everything runs inside one private
# mount namespace in which /sys/fs/cgroup/unified is unmounted (as
# bench/runtime.sh does). dockerd gets its own roots and socket, no bridge and
# no iptables/forwarding changes. Nothing is left behind.
#
# Usage: bench/engine.sh [RUNS]        (as root; writes bench/results/; honours
#        CARGO_TARGET_DIR for the build and the binaries)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-30}
if [ -z "${BERTH_BENCH_INNER:-}" ]; then
  for t in hyperfine podman conmon crun dockerd docker jq; do
    command -v $t >/dev/null || { echo "bench: $t is missing" >&2; exit 1; }
  done
  # The README's build: static musl, non-PIE (.cargo/config.toml).
  cargo build --release >&2   # the whole workspace: the same features, the same binaries
  exec unshare -m --propagation private env BERTH_BENCH_INNER=1 "$0" "$@"
fi
umount /sys/fs/cgroup/unified 2>/dev/null || true

# cargo honours CARGO_TARGET_DIR; so do the paths.
T=${CARGO_TARGET_DIR:-$(pwd)/target}
# berth finds berth-runtime and berth-monitor beside it.
BIN=$T/x86_64-unknown-linux-musl/release
OUT=$(pwd)/bench/results
mkdir -p "$OUT"
W=$(mktemp -d /tmp/berth-ebench.XXXXXX)
CG=/berth-test/ebench-$$
export BERTH_CGROUP_PARENT=$CG
B="$BIN/berth --root $W/berth"
export CONTAINERS_CONF=$W/containers.conf
P="podman --root $W/podman --runroot $W/podman-run --tmpdir $W/podman-tmp --storage-driver overlay --cgroup-manager cgroupfs --events-backend file"
D="docker -H unix://$W/docker.sock"
DOCKERD_PID=
cleanup() {
  set +e
  for id in $($B ps -aq --no-trunc 2>/dev/null); do $B rm -f "$id" >/dev/null 2>&1; done
  $P rm -a -f -t 0 >/dev/null 2>&1
  if [ -n "$DOCKERD_PID" ]; then
    $D rm -f $($D ps -aq) >/dev/null 2>&1
    kill "$DOCKERD_PID"; wait "$DOCKERD_PID" 2>/dev/null
  fi
  grep " $W" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
  find /sys/fs/cgroup/*/"${CG#/}" -depth -type d -exec rmdir {} \; 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT

# The image: busybox with every applet.
mkdir -p "$W/rootfs"/{bin,etc,tmp}
cp /bin/busybox "$W/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$W/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/:/bin/sh' > "$W/rootfs/etc/passwd"
echo 'root:x:0:' > "$W/rootfs/etc/group"
tar -C "$W/rootfs" -cf "$W/bb.tar" .

cat > "$CONTAINERS_CONF" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
netns = "none"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$W/podman-events.log"
CONF

$B import "$W/bb.tar" bench:latest >/dev/null
$P import "$W/bb.tar" bench:latest >/dev/null
dockerd --data-root "$W/docker" --exec-root "$W/docker-exec" --pidfile "$W/docker.pid" \
  -H "unix://$W/docker.sock" --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "$CG/docker" \
  --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
  --userland-proxy=false --containerd-namespace berth-bench --containerd-plugins-namespace berth-bench-p \
  >"$W/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 300); do $D version >/dev/null 2>&1 && break; sleep 0.1; done
$D import "$W/bb.tar" bench:latest >/dev/null
# The three imports leave the page cache dirty; until written back, every run
# pays for some of it (berth: about 49 ms instead of 23 here). Start clean.
sync

echo "== 1. run --rm IMAGE true ($RUNS runs each)"
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$OUT/engine-run.json" \
  -n berth "$B run --rm --network none bench:latest true" \
  -n podman "$P run --rm --network none --cgroup-parent $CG/podman bench:latest true" \
  -n docker "$D run --rm --network none bench:latest true"

echo "== 1b. run -d IMAGE sleep 30, then rm -f ($RUNS runs each)"
hyperfine --warmup 3 --runs "$RUNS" --export-json "$OUT/engine-run-d-rm.json" \
  -n berth "id=\$($B run -d --network none bench:latest sleep 30) && $B rm -f \$id >/dev/null" \
  -n podman "id=\$($P run -d --network none --cgroup-parent $CG/podman bench:latest sleep 30) && $P rm -f -t 0 \$id >/dev/null" \
  -n docker "id=\$($D run -d --network none bench:latest sleep 30) && $D rm -f \$id >/dev/null"

echo "== 1c. where berth's run --rm goes (--log-level debug, medians of $RUNS, µs)"
for _ in $(seq "$RUNS"); do
  $B --log-level debug run --rm --network none bench:latest true 2>&1 >/dev/null | grep 'level=debug'
done > "$OUT/engine-phases.log"
python3 - "$OUT/engine-phases.log" <<'PY'
import re, statistics, sys
by = {}
for line in open(sys.argv[1]):
    m = re.search(r'msg="phases: (.*) \(µs\)"', line)
    if m:
        for k, v in re.findall(r'([^=]+?)=(\d+)(?: |$)', m.group(1)):
            by.setdefault(k.strip(), []).append(int(v))
for k, v in by.items():
    print(f"  {k:45} {statistics.median(v):8.0f}")
PY

echo "== 2. berth ps with 100 containers"
for i in $(seq 100); do $B create --name "c$i" --network none bench:latest true >/dev/null; done
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$OUT/engine-ps.json" \
  -n "ps -a (100)" "$B ps -a" -n "ps (running: 0)" "$B ps"
for id in $($B ps -aq --no-trunc); do $B rm -f "$id" >/dev/null; done

echo "== 3. monitor peak RSS, container running sleep"
id=$($B run -d --network none bench:latest sleep 60)
mon=$(jq -r .monitorPid "$W/berth/engine/containers/$id/state.json")
sleep 1
berth_hwm=$(awk '/VmHWM/{print $2}' /proc/$mon/status)
pid=$($P run -d --network none --cgroup-parent $CG/podman bench:latest sleep 60)
cm=$($P inspect --format '{{.State.ConmonPid}}' "$pid")
sleep 1
conmon_hwm=$(awk '/VmHWM/{print $2}' /proc/$cm/status)
echo "berth-monitor VmHWM: ${berth_hwm} kB   conmon VmHWM: ${conmon_hwm} kB"
printf '{"berth_monitor_vmhwm_kb":%s,"conmon_vmhwm_kb":%s}\n' "$berth_hwm" "$conmon_hwm" > "$OUT/engine-rss.json"

$B rm -f "$id" >/dev/null; $P rm -f -t 0 "$pid" >/dev/null

echo "== 4. berth run --rm on a busy disk, against quiet"
hyperfine -N --warmup 3 --runs 20 --export-json "$OUT/engine-quiet.json" -n quiet \
  "$B run --rm --network none bench:latest true" | grep -E "Time|Range"
# (a) the disk's queue full of writes (direct I/O: no dirty pages, little CPU).
dd if=/dev/zero of="$W/busy" bs=1M count=4096 oflag=direct status=none &
DD=$!
sleep 0.5
hyperfine -N --warmup 1 --runs 20 --export-json "$OUT/engine-busy.json" -n "busy (direct writes)" \
  "$B run --rm --network none bench:latest true" | grep -E "Time|Range"
kill $DD 2>/dev/null || true; wait $DD 2>/dev/null || true; rm -f "$W/busy"
# (b) 2 GiB of dirty page cache being written back (sync in the background): the whole
# VM slows down then, CPU-only work too (see docs/benchmarks.md).
dd if=/dev/zero of="$W/dirty" bs=1M count=2048 status=none
sync "$W/dirty" &
SY=$!
hyperfine -N --warmup 1 --runs 10 --export-json "$OUT/engine-writeback.json" -n "writeback (sync of 2 GiB)" \
  "$B run --rm --network none bench:latest true" | grep -E "Time|Range"
wait $SY; rm -f "$W/dirty"; sync

echo "== summary (median, ms)"
jq -r '.results[] | "\(.command)\t\(.median*1000|.*100|round/100) ms"' "$OUT/engine-run.json" "$OUT/engine-run-d-rm.json" \
  "$OUT/engine-ps.json" "$OUT/engine-quiet.json" "$OUT/engine-busy.json" "$OUT/engine-writeback.json"
