#!/usr/bin/env bash
# The CRI check of issue 15: containerd's CRI plugin, driven as the kubelet drives it
# (tests/cri, berth-cri-check), with one runtime handler.
#   scripts/cri-check.sh runc     the reference
#   scripts/cri-check.sh berth    berth-runtime, as a RuntimeClass handler
#   CRI_CHECK_BENCH=N scripts/cri-check.sh berth   the timing of bench/cri.sh instead
# containerd 1.6 (Debian's) runs inside a throwaway network namespace with a temporary
# root, state and socket; a local registry in the same namespace serves a busybox image
# and a pause image built here (no internet). Every step prints PASS or FAIL; the exit
# status is 0 only when all pass and nothing is left behind.
# Environment: BERTH_RUNTIME (default: $BERTH_BIN_DIR/berth-runtime, else the release
# build of this tree), BERTH_CRI_CHECK (default: built here, dev profile).
# Needs root, containerd, containernetworking-plugins, docker-registry, busybox-static,
# iptables (portmap), curl, jq.
set -euo pipefail
handler=${1:?usage: $0 runc|berth}
case $handler in runc | berth | crun) ;; *) echo "usage: $0 runc|berth|crun" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.."
ROOT=$(pwd)
if [ "$(id -u)" != 0 ]; then
  echo "cri-check.sh: must run as root" >&2
  exit 1
fi
for t in containerd containerd-shim-runc-v2 runc docker-registry curl jq iptables /usr/lib/cni/bridge /usr/lib/cni/portmap /usr/lib/cni/host-local /usr/lib/cni/loopback /bin/busybox; do
  command -v "$t" >/dev/null || { echo "cri-check.sh: $t missing (scripts/test-packages.txt)" >&2; exit 1; }
done
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}/x86_64-unknown-linux-musl
RUNTIME=${BERTH_RUNTIME:-${BERTH_BIN_DIR:-$TARGET/release}/berth-runtime}
if [ ! -x "$RUNTIME" ]; then
  echo "cri-check.sh: $RUNTIME missing (cargo build --release -p berth-runtime, or set BERTH_RUNTIME)" >&2
  exit 1
fi
RUNTIME=$(realpath "$RUNTIME")
CHECK=${BERTH_CRI_CHECK:-}
if [ -z "$CHECK" ]; then
  cargo build -q -p berth-cri-check
  CHECK=$TARGET/debug/berth-cri-check
fi
forward_before=$(cat /proc/sys/net/ipv4/ip_forward)

T=$(mktemp -d /tmp/berth-cri.XXXXXX)
NS=berth-cri-$$
# Named berth-test-* so that scripts/test.sh's leftover check sees it too.
CG=berth-test-cri-$$
PORT=5000
REG=127.0.0.1:$PORT
CTR_PID=
netns_before=$(ls /run/netns 2>/dev/null | sort || true)
handler_bin() { if [ "$1" = berth ]; then echo "$RUNTIME"; else command -v "$1" || echo "/usr/bin/$1"; fi; }
in_ns() { nsenter --net="/run/netns/$NS" -- "$@"; }

cleanup() {
  local status=$? pids p c left=()
  set +e
  # First as the kubelet would: ask containerd to stop and remove whatever pods are left.
  if [ -n "$CTR_PID" ] && kill -0 "$CTR_PID" 2>/dev/null && [ -S "$T/containerd.sock" ]; then
    in_ns "$CHECK" --socket "$T/containerd.sock" --handler "$handler" --image x --pause-image x \
      --cgroup-parent "/$CG" --log-dir "$T/logs" --state-dir "$T/state" \
      --runtime-root "$T/$handler-root" --runtime-bin /bin/true --remove-all >/dev/null 2>&1
  fi
  if [ -n "$CTR_PID" ]; then
    kill "$CTR_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$CTR_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$CTR_PID" 2>/dev/null
  fi
  [ -f "$T/registry/pid" ] && bash scripts/registry.sh stop "$T/registry"
  # What containerd could not end: shims (their command line names our socket) and
  # processes in our cgroups.
  pids=$(grep -l -a -F "$T/" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3 | grep -vx "$$" || true)
  pids+=" $(cat /sys/fs/cgroup/pids/"$CG"/cgroup.procs /sys/fs/cgroup/pids/"$CG"/*/cgroup.procs /sys/fs/cgroup/pids/"$CG"/*/*/cgroup.procs 2>/dev/null || true)"
  for p in $pids; do
    [ "$p" != $$ ] && c=$(cat /proc/"$p"/comm 2>/dev/null) && kill -9 "$p" 2>/dev/null && left+=("process $p $c")
  done
  pids=$(ip netns pids "$NS" 2>/dev/null || true)
  [ -n "$pids" ] && kill -9 $pids 2>/dev/null
  # Pod network namespaces containerd made and did not remove: new since the start and
  # empty now that our pods' processes are gone (a concurrent check's are not).
  for p in $(comm -13 <(echo "$netns_before") <(ls /run/netns 2>/dev/null | sort)); do
    case $p in
    cni-*) [ -z "$(ip netns pids "$p" 2>/dev/null)" ] && ip netns del "$p" 2>/dev/null && left+=("netns $p") ;;
    esac
  done
  ip netns del "$NS" 2>/dev/null
  # Mounts under the temporary root, deepest first.
  for m in $(awk -v t="$T/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
    umount -l "$m" 2>/dev/null && left+=("mount $m")
  done
  # The pod cgroups are the kubelet's to remove (here: ours); container cgroups left
  # by the runtime are a leak.
  for h in /sys/fs/cgroup/*/; do
    [ -d "$h$CG" ] || continue
    while read -r d; do
      case ${d#"$h$CG"/} in pod-* | "$h$CG") ;; */*) left+=("cgroup $d") ;; esac
      rmdir "$d" 2>/dev/null || { sleep 0.2; rmdir "$d"; } || left+=("cgroup $d (not removable)")
    done < <(find "$h$CG" -depth -type d)
  done
  if [ "$(cat /proc/sys/net/ipv4/ip_forward)" != "$forward_before" ]; then
    left+=("the host's ip_forward changed")
  fi
  if [ $status = 0 ] && [ ${#left[@]} -gt 0 ]; then
    echo "FAIL  cleanup: left behind: ${left[*]}"
    status=1
  elif [ ${#left[@]} -gt 0 ]; then
    echo "      cleanup after a failure ended: ${left[*]}"
  fi
  if [ $status != 0 ] && [ -f "$T/containerd.log" ]; then
    echo "---- containerd log (last 30 lines)"
    tail -30 "$T/containerd.log"
  fi
  rm -rf "$T"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS"
in_ns ip link set lo up

# Images: a busybox rootfs as one layer; the pause image runs sleep in it.
bash scripts/busybox-rootfs.sh "$T/rootfs"
mkdir -p "$T/img"
tar -C "$T/rootfs" --sort=name --mtime=@0 --numeric-owner -cf "$T/img/layer.tar" .
diffid=sha256:$(sha256sum "$T/img/layer.tar" | cut -d' ' -f1)
gzip -n -1 "$T/img/layer.tar"
in_ns bash scripts/registry.sh start "$T/registry" "$PORT"

push_blob() { # REPO FILE -> prints the digest
  local digest loc
  digest=sha256:$(sha256sum "$2" | cut -d' ' -f1)
  loc=$(in_ns curl -fsS -o /dev/null -D - -X POST "http://$REG/v2/$1/blobs/uploads/" |
    tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')
  case $loc in /*) loc=http://$REG$loc ;; esac
  case $loc in *\?*) loc="$loc&digest=$digest" ;; *) loc="$loc?digest=$digest" ;; esac
  in_ns curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$2" "$loc" >/dev/null
  echo "$digest"
}
push_image() { # REPO:TAG ENTRYPOINT-JSON CMD-JSON
  local repo=${1%:*} tag=${1##*:} cfg="$T/img/config-${1//[\/:]/-}.json" man ld cd
  jq -cn --arg d "$diffid" --argjson e "$2" --argjson c "$3" '{architecture: "amd64", os: "linux",
    config: {Entrypoint: $e, Cmd: $c, Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
    rootfs: {type: "layers", diff_ids: [$d]}}' > "$cfg"
  ld=$(push_blob "$repo" "$T/img/layer.tar.gz")
  cd=$(push_blob "$repo" "$cfg")
  man=$(jq -cn --arg cd "$cd" --argjson cs "$(stat -c %s "$cfg")" --arg ld "$ld" \
    --argjson ls "$(stat -c %s "$T/img/layer.tar.gz")" '{schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
    layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $ld, size: $ls}]}')
  in_ns curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary "$man" "http://$REG/v2/$repo/manifests/$tag" >/dev/null
}
push_image berth/pause:1 '["/bin/sleep", "2147483647"]' null
push_image berth/busybox:1 null '["sh"]'

# The bench (bench/cri.sh) times each runtime call: a wrapper per handler logs the
# nanoseconds of the call (its own start-up, one sh and two date, is outside the
# measured span but in the pod's total).
bin_runc=$(command -v runc)
bin_berth=$RUNTIME
bin_crun=$(command -v crun || echo /usr/bin/crun)
if [ -n "${CRI_CHECK_BENCH:-}" ]; then
  mkdir -p "$T/timed"
  for h in runc berth crun; do
    real=bin_$h
    printf '#!/bin/sh\ns=$(date +%%s%%N)\n"%s" "$@"\nrc=$?\necho "$(($(date +%%s%%N) - s)) $*" >> "%s"\nexit $rc\n' \
      "${!real}" "$T/timing-$h.log" > "$T/timed/$h"
    chmod +x "$T/timed/$h"
    printf -v "bin_$h" '%s' "$T/timed/$h"
  done
fi

# containerd: its own root, state, socket; CRI with runc and berth; CNI from Debian.
mkdir -p "$T/cni" "$T/logs"
cat > "$T/cni/10-berth-cri.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "berth-cri",
  "plugins": [
    {"type": "bridge", "bridge": "berthcri0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$T/cni-ipam", "ranges": [[{"subnet": "10.77.0.0/24"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
cat > "$T/config.toml" <<EOF
version = 2
root = "$T/root"
state = "$T/state"
# /opt/containerd is the host's; nothing here needs it.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$T/containerd.sock"
[ttrpc]
  address = "$T/containerd.sock.ttrpc"
[metrics]
  address = ""
[debug]
  level = "${CRI_CHECK_LOG_LEVEL:-info}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$REG/berth/pause:1"
  stream_server_address = "127.0.0.1"
  stream_server_port = "10010"
  disable_apparmor = true
  # no CAP_SYS_RESOURCE here: the sandbox's oom_score_adj -998 would fail the create
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$bin_runc"
        Root = "$T/runc-root"
        SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth.options]
        BinaryName = "$bin_berth"
        Root = "$T/berth-root"
        SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun.options]
        BinaryName = "$bin_crun"
        Root = "$T/crun-root"
        SystemdCgroup = false
    # A handler whose runtime is missing (issue 15 item 5: a clear error, not a hang).
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth-missing]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth-missing.options]
        BinaryName = "$T/missing/berth-runtime"
        Root = "$T/missing-root"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$T/cni"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$REG"]
    endpoint = ["http://$REG"]
EOF
echo "== containerd $(containerd --version | awk '{print $3}') in netns $NS, root $T, handler $handler ($(handler_bin "$handler"))"
# Started directly, not through its systemd unit (whose LimitNOFILE this host refuses).
# nsenter execs containerd: $! is containerd's pid.
if [ -n "${CRI_CHECK_NO_UNIFIED:-}" ]; then
  # crun refuses this hybrid host; in a private mount namespace without the cgroup2
  # mount (/sys/fs/cgroup/unified) every runtime sees plain v1 (as bench/runtime.sh's
  # "private mount ns" setup). The host's mounts are untouched; the check's mount
  # leftovers cannot be seen from outside then, so this is for the bench only.
  nsenter --net="/run/netns/$NS" -- unshare -m --propagation private -- \
    sh -c 'umount /sys/fs/cgroup/unified && exec containerd --config "$1"' sh "$T/config.toml" \
    > "$T/containerd.log" 2>&1 &
else
  nsenter --net="/run/netns/$NS" -- containerd --config "$T/config.toml" > "$T/containerd.log" 2>&1 &
fi
CTR_PID=$!
for _ in $(seq 100); do
  [ -S "$T/containerd.sock" ] && ctr --address "$T/containerd.sock" version >/dev/null 2>&1 && break
  kill -0 "$CTR_PID" 2>/dev/null || { echo "cri-check.sh: containerd exited" >&2; exit 1; }
  sleep 0.1
done

# The missing-runtime step belongs to berth's configuration; run it with berth.
missing=
[ "$handler" = berth ] && missing=1
start=$(date +%s%N)
in_ns "$CHECK" --socket "$T/containerd.sock" --handler "$handler" \
  --image "$REG/berth/busybox:1" --pause-image "$REG/berth/pause:1" \
  --cgroup-parent "/$CG" --log-dir "$T/logs" --state-dir "$T/state" \
  --runtime-root "$T/$handler-root" --runtime-bin "$(handler_bin "$handler")" \
  ${missing:+--missing-handler berth-missing --missing-binary "$T/missing/berth-runtime"} \
  ${CRI_CHECK_BENCH:+--bench "$CRI_CHECK_BENCH" --timing-dir "$T" --bench-handlers "${CRI_CHECK_BENCH_HANDLERS:-runc,berth}"}
echo "== steps took $((($(date +%s%N) - start) / 1000000)) ms"
