#!/usr/bin/env bash
# `berth build` side by side with `podman build` (buildah's builder, Debian's
# podman 4.3) and `docker build` (dockerd from the host; BuildKit when the buildx
# plugin is there, else its classic builder), on one context: a 10-instruction
# Dockerfile with 3 RUNs and a COPY of 2,000 small files (issue 13):
#   1. a cold build (--no-cache);
#   2. a rebuild with everything cached;
#   3. a rebuild after one changed file (the COPY and what follows).
# RUN gets no network in every engine (--network none). Everything runs in a
# private mount namespace with its own roots under one temp dir; nothing is
# left behind.
#
# Usage: bench/build.sh [RUNS]   (as root; writes bench/results/build-*.json;
#        BERTH_BIN_DIR=DIR uses the berth binaries there instead of building
#        the release ones)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-10}
if [ -z "${BERTH_BENCH_INNER:-}" ]; then
  for t in hyperfine podman dockerd docker; do
    command -v $t >/dev/null || { echo "bench: $t is missing" >&2; exit 1; }
  done
  [ -n "${BERTH_BIN_DIR:-}" ] || cargo build --release >&2
  exec unshare -m --propagation private env BERTH_BENCH_INNER=1 "$0" "$@"
fi
umount /sys/fs/cgroup/unified 2>/dev/null || true
T=${CARGO_TARGET_DIR:-$(pwd)/target}
BIN=${BERTH_BIN_DIR:-$T/x86_64-unknown-linux-musl/release}
OUT=$(pwd)/bench/results
mkdir -p "$OUT"
W=$(mktemp -d /tmp/berth-bbench.XXXXXX)
CG=/berth-test/bbench-$$
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
    kill "$DOCKERD_PID"; wait "$DOCKERD_PID" 2>/dev/null
  fi
  grep " $W" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
  find /sys/fs/cgroup/*/"${CG#/}" -depth -type d -exec rmdir {} \; 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT

# The base image: busybox with every applet, in each engine.
mkdir -p "$W/rootfs"/{bin,etc,tmp}
cp /bin/busybox "$W/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$W/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/:/bin/sh' > "$W/rootfs/etc/passwd"
echo 'root:x:0:' > "$W/rootfs/etc/group"
tar -C "$W/rootfs" -cf "$W/bb.tar" .
cat > "$CONTAINERS_CONF" <<CONF
[containers]
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
  --userland-proxy=false --containerd-namespace berth-bbench --containerd-plugins-namespace berth-bbench-p \
  >"$W/dockerd.log" 2>&1 &
DOCKERD_PID=$!
DOCKER=1
for _ in $(seq 300); do $D version >/dev/null 2>&1 && break; sleep 0.1; done
$D version >/dev/null 2>&1 || { echo "bench: dockerd did not start; docker left out" >&2; DOCKER=; }
[ -z "$DOCKER" ] || $D import "$W/bb.tar" bench:latest >/dev/null

# The context.
C=$W/ctx
mkdir -p "$C/files"
for i in $(seq 2000); do echo "file $i" > "$C/files/f$i.txt"; done
cat > "$C/Dockerfile" <<'DF'
FROM bench:latest
ENV APP=/app
WORKDIR /app
RUN echo one > /one
RUN mkdir -p /app/data && echo two > /app/data/two
LABEL bench=build
COPY files/ /app/files/
RUN ls /app/files | wc -l > /count
EXPOSE 8080
CMD ["cat", "/count"]
DF
sync

bb="$B build -q --network none"
pb="$P build -q --network none --cgroup-parent $CG/podman"
db="$D build -q --network none"
names=(-n berth "$bb --no-cache $C" -n podman "$pb --no-cache $C")
[ -z "$DOCKER" ] || names+=(-n docker "$db --no-cache $C")
echo "== 1. cold build (--no-cache), $RUNS runs each"
hyperfine --warmup 1 --runs "$RUNS" --export-json "$OUT/build-cold.json" "${names[@]}"

names=(-n berth "$bb $C" -n podman "$pb $C")
[ -z "$DOCKER" ] || names+=(-n docker "$db $C")
echo "== 2. rebuild, everything cached"
hyperfine --warmup 2 --runs "$RUNS" --export-json "$OUT/build-cached.json" "${names[@]}"

echo "== 3. rebuild after one changed file (the COPY on)"
hyperfine --warmup 1 --runs "$RUNS" --export-json "$OUT/build-changed.json" \
  --prepare "date +%s%N > $C/files/f2000.txt" "${names[@]}"
