#!/usr/bin/env bash
# The Docker Engine API side by side (issue 14, "Speed"): the same docker CLI
# (Debian's /usr/bin/docker, 20.10) against `berth serve`, against dockerd 20.10
# (containerd + runc, Debian's docker.io) and against `podman system service` 4.3
# (crun + conmon, Debian's podman), all on one busybox image:
#   1. `docker run --rm --network none IMAGE true`, hyperfine;
#   2. `docker ps -a` and `docker ps` with 100 containers (created through each
#      server with `docker create --network none`), hyperfine;
#   3. each server's RSS (VmRSS, and the peak VmHWM) after the runs, idle:
#      berth serve against dockerd + its containerd, and podman's service.
# Targets: berth at most 0.2x dockerd's time in 1 and 2, and at most a fifth of
# dockerd's plus containerd's RSS in 3.
#
# Host safety, as bench/engine.sh: everything runs inside one private mount AND
# network namespace (`unshare -m -n`, only `lo`, brought up), in which
# /sys/fs/cgroup/unified is unmounted (crun 1.8 refuses this hybrid host) and a
# tmpfs hides /etc/docker (dockerd 20.10 would write its key.json there). dockerd
# gets its own roots and socket, no bridge, no iptables, no forwarding or
# masquerading, cgroupfs under a /berth-test/... cgroup parent and a private
# containerd namespace; podman its own roots, run and tmp dirs and a
# containers.conf of its own (cgroupfs, file events, no network). The docker
# CLI reads an empty DOCKER_CONFIG. podman's compat API has no default cgroup
# parent, so its commands add `--cgroup-parent` (berth serve takes
# $BERTH_CGROUP_PARENT, dockerd its --cgroup-parent). The host's
# net.ipv4.ip_forward is checked unchanged at the end, and nothing may be left:
# no process whose command line names the work dir, no mount under it, no
# cgroup under the parent (the script fails otherwise).
#
# Usage: bench/api.sh [RUNS]     (as root; default 20 runs; writes
#        bench/results/api-*.json and api-berth-serve.log; honours
#        CARGO_TARGET_DIR for the build and the binaries)
# Needs (Debian): hyperfine docker.io (docker, dockerd, containerd, runc) podman
# conmon crun jq busybox-static iproute2.
set -euo pipefail
SELF=$(realpath "$0")
cd "$(dirname "$SELF")/.."
RUNS=${1:-20}
DOCKER=/usr/bin/docker
# cargo honours CARGO_TARGET_DIR; so do the paths. berth finds berth-runtime and
# berth-monitor beside it.
T=${CARGO_TARGET_DIR:-$(pwd)/target}
BIN=$T/x86_64-unknown-linux-musl/release
OUT=$(pwd)/bench/results

if [ -z "${BERTH_BENCH_INNER:-}" ]; then
  for t in hyperfine podman conmon crun dockerd containerd $DOCKER jq unshare ip; do
    command -v $t >/dev/null || { echo "bench: $t is missing" >&2; exit 1; }
  done
  # The README's build (the whole workspace): static musl, non-PIE (.cargo/config.toml).
  [ -n "${BENCH_NO_BUILD:-}" ] || cargo build --release >&2
  fwd_before=$(cat /proc/sys/net/ipv4/ip_forward)
  W=$(mktemp -d /tmp/berth-apibench.XXXXXX)
  CG=/berth-test/apibench-$$
  rc=0
  unshare -m -n --propagation private \
    env BERTH_BENCH_INNER=1 BENCH_W="$W" BENCH_CG="$CG" "$SELF" "$@" || rc=$?
  # What must not be left behind.
  bad=0
  fwd_after=$(cat /proc/sys/net/ipv4/ip_forward)
  if [ "$fwd_before" != "$fwd_after" ]; then
    echo "bench: the host's net.ipv4.ip_forward changed: $fwd_before -> $fwd_after" >&2; bad=1
  fi
  for f in /proc/[0-9]*/cmdline; do
    c=$(tr '\0' ' ' <"$f" 2>/dev/null) || continue
    case "$c" in *"$W"*)
      p=${f#/proc/}; echo "bench: a process left behind: ${p%/cmdline} $c" >&2; bad=1;;
    esac
  done
  if grep -q -F " $W" /proc/self/mountinfo; then
    echo "bench: mounts left under $W" >&2; grep -F " $W" /proc/self/mountinfo >&2; bad=1
  fi
  cgs=$(ls -d /sys/fs/cgroup/*/"${CG#/}" 2>/dev/null || true)
  if [ -n "$cgs" ]; then
    echo "bench: cgroups left behind (removing):" >&2; echo "$cgs" >&2
    for c in $cgs; do find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true; done
    bad=1
  fi
  rm -rf "$W"
  [ "$bad" = 0 ] || exit 1
  exit "$rc"
fi

# ---- inside the private mount and network namespace ----
W=$BENCH_W
CG=$BENCH_CG
ip link set lo up
umount /sys/fs/cgroup/unified 2>/dev/null || true
[ -d /etc/docker ] || { echo "bench: no /etc/docker to hide (dockerd would create it)" >&2; exit 1; }
mount -t tmpfs -o mode=0755 tmpfs /etc/docker
mkdir -p "$OUT"

export BERTH_CGROUP_PARENT=$CG
export CONTAINERS_CONF=$W/containers.conf
export DOCKER_CONFIG=$W/docker-cli
mkdir -p "$DOCKER_CONFIG"
B="$BIN/berth --root $W/berth"
P="podman --root $W/podman --runroot $W/podman-run --tmpdir $W/podman-tmp --storage-driver overlay --cgroup-manager cgroupfs --events-backend file"
# The docker CLI against each server.
DB="$DOCKER -H unix://$W/berth.sock"
DD="$DOCKER -H unix://$W/docker.sock"
DP="$DOCKER -H unix://$W/podman.sock"
PCG="--cgroup-parent $CG/podman"
BERTH_PID= DOCKERD_PID= PODMAN_PID=
cleanup() {
  set +e
  [ -n "$BERTH_PID" ] && cp "$W/berth-serve.log" "$OUT/api-berth-serve.log" 2>/dev/null
  for x in "$DB" "$DP" "$DD"; do
    ids=$($x ps -aq 2>/dev/null); [ -z "$ids" ] || $x rm -f $ids >/dev/null 2>&1
  done
  for p in $BERTH_PID $PODMAN_PID $DOCKERD_PID; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  # Whatever the servers did not remove, by the engines' own CLIs.
  for id in $($B ps -aq --no-trunc 2>/dev/null); do $B rm -f "$id" >/dev/null 2>&1; done
  $P rm -a -f -t 0 >/dev/null 2>&1
  grep " $W" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
  find /sys/fs/cgroup/*/"${CG#/}" -depth -type d -exec rmdir {} \; 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT

# The image: busybox with every applet (as bench/engine.sh).
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

wait_for() { # NAME PID CLI: until the server answers
  for _ in $(seq 300); do
    $3 version >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "bench: $1 did not come up" >&2; return 1
}

# berth: import by its CLI, then the server.
$B import "$W/bb.tar" bench:latest >/dev/null
$B serve -H "unix://$W/berth.sock" >"$W/berth-serve.log" 2>&1 &
BERTH_PID=$!
wait_for "berth serve" "$BERTH_PID" "$DB" || { cat "$W/berth-serve.log" >&2; exit 1; }

# podman: import by its CLI, then its API service with the same flags.
$P import "$W/bb.tar" bench:latest >/dev/null
$P system service --time 0 "unix://$W/podman.sock" >"$W/podman-service.log" 2>&1 &
PODMAN_PID=$!
wait_for "podman system service" "$PODMAN_PID" "$DP" || { cat "$W/podman-service.log" >&2; exit 1; }

# dockerd: private roots and socket, host-safe flags; import by the CLI.
dockerd --data-root "$W/docker" --exec-root "$W/docker-exec" --pidfile "$W/docker.pid" \
  -H "unix://$W/docker.sock" --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "$CG/docker" \
  --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
  --userland-proxy=false --containerd-namespace berth-apibench --containerd-plugins-namespace berth-apibench-p \
  >"$W/dockerd.log" 2>&1 &
DOCKERD_PID=$!
wait_for dockerd "$DOCKERD_PID" "$DD" || { tail -20 "$W/dockerd.log" >&2; exit 1; }
$DD import "$W/bb.tar" bench:latest >/dev/null
CONTAINERD_PID=$(pgrep -P "$DOCKERD_PID" -x containerd | head -1)
[ -n "$CONTAINERD_PID" ] || { echo "bench: dockerd's containerd not found" >&2; exit 1; }

# One run through each, so that a failure shows before the timings.
$DB run --rm --network none bench:latest true
$DP run --rm --network none $PCG bench:latest true
$DD run --rm --network none bench:latest true
# The imports leave the page cache dirty; start clean (see bench/engine.sh).
sync

echo "== context"
echo "date: $(date -u)  kernel: $(uname -r)  cpus: $(nproc)  load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (work tree differs)')"
echo "== versions"
echo "docker CLI: $($DOCKER --version)"
echo "berth serve: $($DB version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"
echo "dockerd: $($DD version --format '{{.Server.Version}} (API {{.Server.APIVersion}})'), $(containerd --version | awk '{print $1, $3}'), $(runc --version | head -1)"
echo "podman service: $($DP version --format '{{.Server.Version}} (API {{.Server.APIVersion}})'), $(crun --version | head -1), $(conmon --version | head -1)"

echo "== 1. docker run --rm --network none IMAGE true ($RUNS runs each)"
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$OUT/api-run.json" \
  -n berth "$DB run --rm --network none bench:latest true" \
  -n podman "$DP run --rm --network none $PCG bench:latest true" \
  -n dockerd "$DD run --rm --network none bench:latest true"

echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== 2. docker ps with 100 containers (docker create --network none, through each server)"
for i in $(seq 100); do
  $DB create --network none bench:latest true >/dev/null
  $DP create --network none $PCG bench:latest true >/dev/null
  $DD create --network none bench:latest true >/dev/null
done
for x in "$DB" "$DP" "$DD"; do
  n=$($x ps -aq | wc -l); [ "$n" = 100 ] || { echo "bench: $x ps -aq lists $n containers, not 100" >&2; exit 1; }
done
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$OUT/api-ps.json" \
  -n "berth ps -a" "$DB ps -a" -n "podman ps -a" "$DP ps -a" -n "dockerd ps -a" "$DD ps -a" \
  -n "berth ps" "$DB ps" -n "podman ps" "$DP ps" -n "dockerd ps" "$DD ps"

echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== 3. the servers' RSS after the runs, idle (100 created containers each)"
sleep 10
kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
proc() { # PID: its memory, as JSON
  jq -n --argjson pid "$1" --argjson rss "$(kb "$1" VmRSS)" --argjson hwm "$(kb "$1" VmHWM)" \
    --argjson th "$(kb "$1" Threads)" '{pid: $pid, vmrss_kb: $rss, vmhwm_kb: $hwm, threads: $th}'
}
jq -n --argjson b "$(proc $BERTH_PID)" --argjson d "$(proc $DOCKERD_PID)" \
  --argjson c "$(proc $CONTAINERD_PID)" --argjson p "$(proc $PODMAN_PID)" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
  '{berth_serve: $b, dockerd: $d, containerd: $c, podman_service: $p, load: $load}' > "$OUT/api-rss.json"
jq -r 'to_entries[] | select(.value | type == "object") | "\(.key)\tVmRSS \(.value.vmrss_kb) kB\tVmHWM \(.value.vmhwm_kb) kB\tthreads \(.value.threads)"' "$OUT/api-rss.json"

echo "== summary"
jq -r '.results[] | "\(.command)\tmedian \(.median*1000|.*100|round/100) ms\tmean \(.mean*1000|.*100|round/100) ms"' \
  "$OUT/api-run.json" "$OUT/api-ps.json"
jq -r -s '
  def med(f; n): (f.results[] | select(.command == n) | .median);
  .[0] as $r | .[1] as $p | .[2] as $m |
  "run --rm: berth / dockerd \(med($r; "berth") / med($r; "dockerd") | .*1000|round/1000)x (target 0.2x), berth / podman \(med($r; "berth") / med($r; "podman") | .*1000|round/1000)x",
  "ps -a:    berth / dockerd \(med($p; "berth ps -a") / med($p; "dockerd ps -a") | .*1000|round/1000)x (target 0.2x), berth / podman \(med($p; "berth ps -a") / med($p; "podman ps -a") | .*1000|round/1000)x",
  "ps:       berth / dockerd \(med($p; "berth ps") / med($p; "dockerd ps") | .*1000|round/1000)x (target 0.2x), berth / podman \(med($p; "berth ps") / med($p; "podman ps") | .*1000|round/1000)x",
  "VmRSS:    berth / (dockerd + containerd) \($m.berth_serve.vmrss_kb / ($m.dockerd.vmrss_kb + $m.containerd.vmrss_kb) | .*1000|round/1000)x (target 0.2x), berth / podman \($m.berth_serve.vmrss_kb / $m.podman_service.vmrss_kb | .*1000|round/1000)x",
  "VmHWM:    berth / (dockerd + containerd) \($m.berth_serve.vmhwm_kb / ($m.dockerd.vmhwm_kb + $m.containerd.vmhwm_kb) | .*1000|round/1000)x, berth / podman \($m.berth_serve.vmhwm_kb / $m.podman_service.vmhwm_kb | .*1000|round/1000)x"
' "$OUT/api-run.json" "$OUT/api-ps.json" "$OUT/api-rss.json"
if [ -s "$W/berth-serve.log" ]; then
  echo "== berth serve's log"
  cat "$W/berth-serve.log"
fi
