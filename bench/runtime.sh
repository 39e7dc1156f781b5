#!/usr/bin/env bash
# berth-runtime against crun and runc (from Debian) on one busybox bundle:
# `run` of /bin/true, and create + start + delete; wall time, cpu time
# (user+sys of the runtime and everything it waited for) and peak RSS, as
# medians of paired runs (berth, crun, runc, floor in a new random order each
# round, so that load drifts and cgroup v1's RCU waits hit all alike), with hyperfine's medians beside them; the floor is
# `unshare -fpmuin chroot ROOTFS /bin/true`. Then berth-runtime's own phase
# breakdown (--debug), medians per phase.
#
# The binary is the one the README's build makes (.cargo/config.toml: static musl,
# non-PIE; target/x86_64-unknown-linux-musl/release/berth-runtime).
#
# Two setups:
#  - "as shipped": the host's namespaces as they are. crun 1.8 refuses this
#    hybrid host (cgroup2 mounted at /sys/fs/cgroup/unified), so only berth,
#    runc and the floor run here. These are the numbers a user gets.
#  - "private mount ns": every runtime inside one private mount namespace in
#    which /sys/fs/cgroup/unified is unmounted, so crun runs and all three see
#    the same (v1) cgroups. Nothing changes in the host's namespace.
#
# Usage: bench/runtime.sh [PAIRS]   (as root; default 30; writes bench/results/)
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${1:-30}
if [ -z "${BERTH_BENCH_INNER:-}" ]; then
  for t in hyperfine runc crun python3 unshare; do
    command -v $t >/dev/null || { echo "bench: $t is missing (apt-get install $t)" >&2; exit 1; }
  done
  [ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }
  cargo build --release >&2   # the whole workspace: the same features, the same binary
  T=${CARGO_TARGET_DIR:-$(pwd)/target}/x86_64-unknown-linux-musl/release
  export BERTH=$T/berth-runtime
  export W=$(mktemp -d /tmp/berth-bench.XXXXXX)
  trap 'find /sys/fs/cgroup/*/berth-bench -depth -type d -exec rmdir {} \; 2>/dev/null || true; rm -rf "$W"' EXIT
  BERTH_BENCH_INNER=shipped "$0" "$@"
  unshare -m --propagation private env BERTH_BENCH_INNER=private "$0" "$@"
  exit 0
fi
[ "$BERTH_BENCH_INNER" = private ] && umount /sys/fs/cgroup/unified 2>/dev/null || true

OUT=$(pwd)/bench/results/runtime-$BERTH_BENCH_INNER
mkdir -p "$OUT"
B=$W/bundle
if [ ! -d "$B" ]; then
  # busybox rootfs, runc's default config (no seccomp, the same for all).
  mkdir -p "$B/rootfs"/{bin,proc,sys,dev,tmp,etc}
  cp /bin/busybox "$B/rootfs/bin/"
  ln -s busybox "$B/rootfs/bin/true"
  ln -s busybox "$B/rootfs/bin/sh"
  (cd "$B" && runc spec)
  python3 - "$B/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["linux"]["cgroupsPath"] = "/berth-bench/c"
json.dump(c, open(p, "w"), indent=1)
PY
fi
RTS="berth runc"
if [ "$BERTH_BENCH_INNER" = private ]; then RTS="berth crun runc"; fi
bin() { case $1 in berth) echo "$BERTH" ;; *) echo "$1" ;; esac; }
for rt in $RTS; do
  "$(bin $rt)" --root "$W/state-$rt" delete --force "b-$rt" >/dev/null 2>&1 || true
done

echo
echo "==== $BERTH_BENCH_INNER: $(case $BERTH_BENCH_INNER in shipped) echo "the host's namespaces as they are (crun cannot run here)";; *) echo "one private mount namespace, cgroup2 unmounted";; esac)"
echo "berth-runtime: $("$BERTH" --version | tr '\n' ' ')"
for rt in $RTS; do [ $rt = berth ] || echo "$rt: $($rt --version | head -1)"; done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== hyperfine: run /bin/true"
args=()
for rt in $RTS; do args+=(-n "$rt" "$(bin $rt) --root $W/state-$rt run -b $B b-$rt"); done
args+=(-n floor "unshare -fpmuin chroot $B/rootfs /bin/true")
hyperfine -N --style basic --warmup 5 --runs "$PAIRS" --export-json "$OUT/hyperfine-run.json" "${args[@]}" \
  | grep -E "^(Benchmark|  Time)" || true

# Paired runs: wall from spawn to reap, cpu from wait4's rusage (the runtime's
# and every process it waited for: its setup children and the container's init).
python3 - "$OUT" "$PAIRS" "$W" "$B" "$BERTH" $RTS <<'PY'
import json, os, random, statistics, subprocess, sys, time
out, pairs, w, b, berth, rts = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:]
binp = lambda rt: berth if rt == "berth" else rt

def spawn(argv):
    t = time.perf_counter_ns()
    pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=[
        (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)])
    _, st, ru = os.wait4(pid, 0)
    wall = (time.perf_counter_ns() - t) / 1e6
    if os.waitstatus_to_exitcode(st) != 0:
        raise SystemExit(f"failed: {' '.join(argv)}: {os.waitstatus_to_exitcode(st)}")
    return wall, (ru.ru_utime + ru.ru_stime) * 1000, ru.ru_maxrss

def run(rt):
    return spawn([binp(rt), "--root", f"{w}/state-{rt}", "run", "-b", b, f"b-{rt}"])

def lifecycle(rt):
    r = f"{w}/state-{rt}"
    a = spawn([binp(rt), "--root", r, "create", "-b", b, f"cs-{rt}"])
    s = spawn([binp(rt), "--root", r, "start", f"cs-{rt}"])
    d = spawn([binp(rt), "--root", r, "delete", "--force", f"cs-{rt}"])
    return a[0] + s[0] + d[0], a[1] + s[1] + d[1], max(a[2], s[2], d[2])

def floor():
    return spawn(["unshare", "-fpmuin", "chroot", f"{b}/rootfs", "/bin/true"])

res = {}
for name, f, who in (("run", run, rts + ["floor"]), ("lifecycle", lifecycle, rts)):
    for _ in range(3):  # warm-up
        for rt in who:
            (floor if rt == "floor" else lambda: f(rt))()
    samples = {rt: [] for rt in who}
    # A new order each round: the first cgroup v1 migration after an idle spell waits
    # for an RCU grace period (several ms here), and it must not always fall on one runtime.
    rng = random.Random(1)
    for _ in range(pairs):
        order = list(who)
        rng.shuffle(order)
        for rt in order:
            samples[rt].append((floor if rt == "floor" else lambda: f(rt))())
    res[name] = samples
json.dump(res, open(os.path.join(out, "paired.json"), "w"))
ref = "crun" if "crun" in rts else "runc"
for name, samples in res.items():
    print(f"== paired medians ({pairs} rounds): {'run /bin/true' if name == 'run' else 'create + start + delete'}; ratios to {ref} are medians of per-round ratios")
    print(f"  {'':14} {'wall ms':>8} {'cpu ms':>8} {'wall x':>7} {'cpu x':>7}")
    for rt, s in samples.items():
        med = lambda i: statistics.median(x[i] for x in s)
        rw = statistics.median(x[0] / y[0] for x, y in zip(s, samples[ref]))
        rc = statistics.median(x[1] / max(y[1], 1e-9) for x, y in zip(s, samples[ref]))
        print(f"  {rt:14} {med(0):8.2f} {med(1):8.2f} {rw:7.2f} {rc:7.2f}")
PY

# Peak RSS apart: a spawn from python would count python's pages (vfork) in the
# child's high-water mark; GNU time's own are ~0.5 MiB (a static musl no-op: 488 KiB).
echo "== peak RSS of run /bin/true (KiB, the largest of 20 runs; /usr/bin/time %M: the runtime and all it waited for)"
for rt in $RTS; do
  max=0
  for _ in $(seq 20); do
    k=$( { /usr/bin/time -f '%M' "$(bin $rt)" --root "$W/state-$rt" run -b "$B" "b-$rt" >/dev/null; } 2>&1 | tail -1)
    [ "$k" -gt "$max" ] && max=$k
  done
  echo "  $rt $max" | tee -a "$OUT/rss.txt"
done

echo "== berth-runtime phases (--debug; medians of $PAIRS, µs; init:* overlap the runtime's waits)"
log=$W/phases-$BERTH_BENCH_INNER.log
rm -f "$log"
for _ in $(seq "$PAIRS"); do
  "$BERTH" --debug --log "$log" --root "$W/state-berth" run -b "$B" b-berth >/dev/null
  "$BERTH" --debug --log "$log" --root "$W/state-berth" create -b "$B" cs-berth
  "$BERTH" --debug --log "$log" --root "$W/state-berth" start cs-berth
  "$BERTH" --debug --log "$log" --root "$W/state-berth" delete --force cs-berth
done
cp "$log" "$OUT/phases.log"
python3 - "$log" <<'PY'
import re, statistics, sys
by = {}
for line in open(sys.argv[1]):
    m = re.search(r'msg="(\w+) phases: (.*) \(µs\)"', line)
    if not m:
        continue
    cmd, body = m.groups()
    for k, v in re.findall(r'([^=]+?)=(\d+)(?: |$)', body):
        by.setdefault(cmd, {}).setdefault(k.strip(), []).append(int(v))
for cmd in ("run", "create", "start", "delete"):
    if cmd not in by:
        continue
    print(f"  {cmd}:")
    for k, v in by[cmd].items():
        print(f"    {k:45} {statistics.median(v):8.0f}")
PY
