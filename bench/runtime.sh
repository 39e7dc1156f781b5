#!/usr/bin/env bash
# Side-by-side timings of berth-runtime, crun and runc (from Debian) on one
# busybox bundle: `run` of /bin/true, and create + start + delete.
#
# crun 1.8 refuses this hybrid host, so every runtime runs inside one private
# mount namespace in which /sys/fs/cgroup/unified is unmounted: all of them
# see the same (v1) cgroups. Nothing changes in the host's namespace.
#
# Usage: bench/runtime.sh [RUNS]        (as root; writes bench/results/)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-100}
if [ -z "${BERTH_BENCH_INNER:-}" ]; then
  for t in hyperfine runc crun; do
    command -v $t >/dev/null || { echo "bench: $t is missing (apt-get install $t)" >&2; exit 1; }
  done
  [ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }
  # Static and not position-independent: no dynamic loader and no start-up
  # relocations (measured: 3.5 MiB peak RSS against 4.1 MiB as static-pie).
  RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" \
    cargo build --release --target x86_64-unknown-linux-gnu -p berth-runtime >&2
  exec unshare -m --propagation private env BERTH_BENCH_INNER=1 "$0" "$@"
fi
umount /sys/fs/cgroup/unified 2>/dev/null || true

BERTH=${CARGO_TARGET_DIR:-$(pwd)/target}/x86_64-unknown-linux-gnu/release/berth-runtime
OUT=$(pwd)/bench/results
mkdir -p "$OUT"
W=$(mktemp -d /tmp/berth-bench.XXXXXX)
cleanup() {
  for rt in berth crun runc; do
    for id in "b-$rt" "cs-$rt"; do
      case $rt in berth) b=$BERTH ;; *) b=$rt ;; esac
      "$b" --root "$W/state-$rt" delete --force "$id" >/dev/null 2>&1 || true
    done
  done
  find /sys/fs/cgroup/*/berth-bench -depth -type d -exec rmdir {} \; 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

# One bundle: busybox rootfs, runc's default config (no seccomp, the same for all).
mkdir -p "$W/bundle/rootfs"/{bin,proc,sys,dev,tmp,etc}
cp /bin/busybox "$W/bundle/rootfs/bin/"
ln -s busybox "$W/bundle/rootfs/bin/true"
ln -s busybox "$W/bundle/rootfs/bin/sh"
(cd "$W/bundle" && runc spec)
python3 - "$W/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["linux"]["cgroupsPath"] = "/berth-bench/c"
json.dump(c, open(p, "w"), indent=1)
PY
B=$W/bundle
cmd() { # runtime-name
  case $1 in berth) echo "$BERTH" ;; *) echo "$1" ;; esac
}

echo "== versions"
"$BERTH" --version | head -1
crun --version | head -1
runc --version | head -1

echo "== run /bin/true ($RUNS runs each)"
hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$OUT/run.json" \
  -n berth-runtime "$(cmd berth) --root $W/state-berth run -b $B b-berth" \
  -n crun "crun --root $W/state-crun run -b $B b-crun" \
  -n runc "runc --root $W/state-runc run -b $B b-runc"

echo "== create + start + delete ($RUNS runs each)"
hyperfine --warmup 5 --runs "$RUNS" --export-json "$OUT/lifecycle.json" \
  -n berth-runtime "$(cmd berth) --root $W/state-berth create -b $B cs-berth && $(cmd berth) --root $W/state-berth start cs-berth && $(cmd berth) --root $W/state-berth delete --force cs-berth" \
  -n crun "crun --root $W/state-crun create -b $B cs-crun && crun --root $W/state-crun start cs-crun && crun --root $W/state-crun delete --force cs-crun" \
  -n runc "runc --root $W/state-runc create -b $B cs-runc && runc --root $W/state-runc start cs-runc && runc --root $W/state-runc delete --force cs-runc"

echo "== peak RSS of run (KiB, max of 20 runs)"
for rt in berth crun runc; do
  max=0
  for _ in $(seq 20); do
    k=$( { /usr/bin/time -f '%M' "$(cmd $rt)" --root "$W/state-$rt" run -b "$B" "b-$rt" >/dev/null; } 2>&1 | tail -1)
    [ "$k" -gt "$max" ] && max=$k
  done
  echo "$rt $max" | tee -a "$OUT/rss.txt"
done

python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]
for name in ("run", "lifecycle"):
    d = json.load(open(os.path.join(out, name + ".json")))
    by = {r["command"]: r for r in d["results"]}
    crun = by["crun"]
    print(f"{name}: median wall (user+sys cpu), ratio to crun")
    for k, r in by.items():
        cpu = r["user"] + r["system"]
        ccpu = crun["user"] + crun["system"]
        print(f"  {k:14} {r['median']*1000:7.2f} ms ({cpu*1000:6.2f} ms cpu)  "
              f"wall x{r['median']/crun['median']:.2f}  cpu x{cpu/ccpu:.2f}")
PY
