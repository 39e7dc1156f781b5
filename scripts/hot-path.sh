#!/usr/bin/env bash
# Regenerates bins/{berth-runtime,berth-monitor,berth}/hot-path.ld: the functions each
# binary runs in `berth-runtime run`, create/start/delete, and the engine's `run --rm`,
# `run -d`, `ps`, `rm -f` and an attached `run -i`, in the order they first run. Each binary's build.rs
# links with its script, which puts those functions first and together, so a start
# faults in a few 64 KiB windows of the binary instead of most of its text (peak RSS
# and page faults; docs/benchmarks.md). Functions are named without their hash, so
# the scripts stay right while the code changes; rerun this after large changes.
#   scripts/hot-path.sh        (as root; needs gcc, python3, busybox-static)
# It builds a copy of the release build in $HOT_PATH_TARGET (default
# /tmp/berth-hot-path) with link maps (BERTH_LINK_MAP, read by the build.rs files), traces the commands with a breakpoint at every function's entry
# (scripts/hot-path/trace.c, ptrace) in a throwaway network namespace, and removes what
# it made.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "hot-path.sh: must run as root" >&2; exit 1; }
for t in gcc python3; do
  command -v $t >/dev/null || { echo "hot-path.sh: $t is missing" >&2; exit 1; }
done
TGT=${HOT_PATH_TARGET:-/tmp/berth-hot-path}
W=$(mktemp -d /tmp/berth-hot-path.XXXXXX)
mkdir "$W/maps"
# The shipped profile (a changed profile renames functions: their hash), plus link maps.
BERTH_LINK_MAP=$W/maps CARGO_TARGET_DIR=$TGT cargo build --release >&2
BIN=$TGT/x86_64-unknown-linux-musl/release
NS=berth-hot-path-$$
# The engine's containers too go under a cgroup parent of this script's own.
export BERTH_CGROUP_PARENT=/berth-hot-path/engine
cleanup() {
  set +e
  [ -n "${ID:-}" ] && nsenter --net="/run/netns/$NS" "$BIN/berth" --root "$W/store" rm -f "$ID" >/dev/null 2>&1
  ip netns del "$NS" 2>/dev/null
  for c in /sys/fs/cgroup/*/berth-hot-path; do [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} + ; done
  # The engine's tmpfs for its runtime records, and anything else mounted under $W.
  awk -v w="$W/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r | xargs -r umount
  rm -rf "$W"
}
trap cleanup EXIT
gcc -O2 -o "$W/trace" scripts/hot-path/trace.c
mkdir "$W/funcs"
# Every function of each binary, from its link map: the input section (one per function;
# musl's assembly ones share their member's .text), its address, and the byte there
# (put back after the hit).
python3 - "$BIN" "$W" <<'PY'
import re, struct, sys
bindir, w = sys.argv[1], sys.argv[2]
for name in ["berth-runtime", "berth-monitor", "berth"]:
    data = open(f"{bindir}/{name}", "rb").read()
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    segs = []
    for i in range(phnum):
        ptype, flags, off, vaddr, _, filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if ptype == 1 and flags & 1:
            segs.append((vaddr, off, filesz))
    funcs, pending = {}, None
    for line in open(f"{w}/maps/{name}.map"):
        m = re.match(r"^ (\.text\S*)(?:\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*))?$", line.rstrip("\n"))
        if m and m.group(2) is None:
            pending = m.group(1)
            continue
        if m:
            sec, addr, size, obj = m.group(1), m.group(2), m.group(3), m.group(4)
        else:
            m2 = re.match(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$", line.rstrip("\n"))
            if not (pending and m2):
                pending = None
                continue
            sec, (addr, size, obj) = pending, m2.groups()
        pending = None
        addr, size = int(addr, 16), int(size, 16)
        if size == 0:
            continue
        if sec == ".text":
            # A plain .text: musl's assembly (libc.a(memcpy.lo)) or crt1.o.
            mm = re.search(r"([^/(]+)\(([^)]+)\)$", obj)
            sec = f"*{mm.group(1)}:{mm.group(2)}(.text)" if mm else f"*{obj.rsplit('/', 1)[-1]}(.text)"
        for v, o, n in segs:
            if v <= addr < v + n:
                funcs.setdefault(addr, (data[addr - v + o], sec))
    with open(f"{w}/funcs/{name}.funcs", "w") as o:
        for a in sorted(funcs):
            o.write(f"{a:x} {funcs[a][0]:x} {funcs[a][1]}\n")
PY
scripts/busybox-rootfs.sh "$W/bundle/rootfs" >/dev/null
scripts/busybox-rootfs.sh "$W/rootfs.tar" >/dev/null
(cd "$W/bundle" && "$BIN/berth-runtime" spec)
python3 - "$W/bundle/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["linux"]["cgroupsPath"] = "/berth-hot-path/c"
json.dump(c, open(sys.argv[1], "w"))
PY
# A trace ends when every traced process has: a command that leaves one running (create's
# parked init, run -d's monitor) is traced with the one that ends it.
trace() { local out=$1; shift; "$W/trace" "$W/$out.trace" "$W/funcs" berth "$@" >/dev/null; }
RT="$BIN/berth-runtime --root $W/rt"
trace rt-run $RT run -b "$W/bundle" hp1
trace rt-life sh -c "$RT create -b $W/bundle hp2 && $RT start hp2 && $RT delete -f hp2"
ip netns add "$NS"
N="nsenter --net=/run/netns/$NS"
B="$BIN/berth --root $W/store"
$N ip link set lo up
$N $B import "$W/rootfs.tar" hp:latest >/dev/null
$N $B run --rm --network none hp:latest true   # a first run makes the storage's dirs
trace e-run $N $B run --rm --network none hp:latest true
ID=$($N $B run -d --network none hp:latest sleep 60)
trace e-ps $N $B ps -a
trace e-rm $N $B rm -f "$ID"
ID=
trace e-rund $N sh -c "$B run -d --name hp-d --network none hp:latest sleep 60 && $B rm -f hp-d"
# An attached run with input and a few hundred lines of output: the monitor's stdin,
# output and log paths (its peak RSS is tested holding such a container).
trace e-attach $N sh -c "seq 50 | $B run -i --rm --network none hp:latest sh -c 'cat >/dev/null; i=0; while [ \$i -lt 200 ]; do echo line \$i; i=\$((i+1)); done'"
python3 - "$W" <<'PY'
import re, sys
w = sys.argv[1]
traces = ["rt-run", "rt-life", "e-run", "e-ps", "e-rm", "e-rund", "e-attach"]
order = {}
for t in traces:
    pid_bin = {}
    for line in open(f"{w}/{t}.trace"):
        f = line.split()
        if f[0] == "X":
            pid_bin[f[1]] = f[2]
        elif f[1] in pid_bin:
            order.setdefault(pid_bin[f[1]], []).append(int(f[0], 16))
for name in ["berth-runtime", "berth-monitor", "berth"]:
    sec = {}
    for l in open(f"{w}/funcs/{name}.funcs"):
        a, _, s = l.split(" ", 2)
        sec[int(a, 16)] = s.strip()
    exact, loose, seen = [], [], set()
    for a in order.get(name, []):
        s = sec.get(a)
        if s is None or s in seen:
            continue
        seen.add(s)
        if s.startswith("*"):
            exact.append(s)
            continue
        exact.append(f"*({s})")
        # The same function after its hash changed (a dependency or the toolchain moved):
        # a name without the legacy mangling's hash, in either section prefix.
        base = re.sub(r"^\.text\.(unlikely\.)?", "", s)
        base = re.sub(r"17h[0-9a-f]{16}E$", "17h*E", base)
        if base != s:
            loose.append(f"*(.text.{base} .text.unlikely.{base})")
    with open(f"bins/{name}/hot-path.ld", "w") as o:
        o.write(f"/* Generated by scripts/hot-path.sh: the {len(exact)} functions {name} runs in\n"
                "   the traced commands, first-run first, before the rest of .text; then the\n"
                "   same names without their hash, which still match after a hash changes. */\n"
                "SECTIONS\n{\n  .text.hot_path :\n  {\n")
        for l in exact + loose:
            o.write(f"    {l}\n")
        o.write("  }\n}\nINSERT BEFORE .text;\n")
    print(f"bins/{name}/hot-path.ld: {len(exact)} functions")
PY
