#!/usr/bin/env bash
# The main job: build Berth and run the seed's walk-through, first with the
# runtime alone (berth-runtime on a bundle), then with the engine (`berth run`
# from an image imported here):
#  1. a busybox container in its own pid, net, mount, uts and ipc namespaces:
#     ps sees only itself, ip link shows only lo, the hostname is its own;
#  2. the same container limited to 5 MB of memory allocates 50 MB: the OOM
#     killer ends it, `run` exits 137, and `events` reports the oom;
#  3. the engine: the same two from an image, then a health check that turns
#     unhealthy and a container that the monitor restarts because of it;
#  4. networks: two containers on a network reach each other by name, and a
#     published port answers a client in another namespace with the client's own
#     address (kernel DNAT, no proxy);
#  5. services: the supermarket (examples/supermarket) under `berth compose`:
#     up -d, requests spread over the payment replicas, a burst for the
#     autoscaler, a replica killed with SIGKILL and replaced while a client's
#     requests go on, the database reachable from the inventory API only, down.
# The engine's part runs in a throwaway network namespace (the "host"; a second
# one is the client): Berth turns on forwarding and makes bridges and nftables
# rules where its containers run, and the demo must not touch this machine's.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/demo.sh: run as root (containers need it)" >&2; exit 1; }

if [ ! -x /bin/busybox ] || ! file -L /bin/busybox 2>/dev/null | grep -q static \
   || ! command -v nft >/dev/null || ! command -v ip >/dev/null || ! command -v jq >/dev/null \
   || ! command -v x86_64-linux-musl-gcc >/dev/null; then
  apt-get update -q -o DPkg::Lock::Timeout=600
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    busybox-static file nftables iproute2 jq musl-tools
fi
# The shipped build's target (rust-toolchain.toml); rustup may be told not to fetch it
# on first use (RUSTUP_AUTO_INSTALL=0).
bash scripts/musl-target.sh
echo "== building berth-runtime, berth, berth-monitor, berth-net and berth-dns (release)"
cargo build --release
RT=$(pwd)/target/x86_64-unknown-linux-musl/release/berth-runtime

WORK=$(mktemp -d /tmp/berth-demo.XXXXXX)
STATE=$WORK/state
ID1=demo-ns-$$
ID2=demo-oom-$$
NS=berth-demo-$$
CNS=berth-demo-client-$$
ip netns add "$NS"
ip -n "$NS" link set lo up
B="nsenter --net=/run/netns/$NS -- $(pwd)/target/x86_64-unknown-linux-musl/release/berth --root $WORK/berth"
export BERTH_CGROUP_PARENT=/berth-demo/engine
cleanup() {
  for id in $($B ps -aq --no-trunc 2>/dev/null); do $B rm -f -v "$id" >/dev/null 2>&1; done
  "$RT" --root "$STATE" delete --force "$ID1" >/dev/null 2>&1 || true
  "$RT" --root "$STATE" delete --force "$ID2" >/dev/null 2>&1 || true
  [ -n "${EVPID:-}" ] && kill "$EVPID" 2>/dev/null || true
  rmdir /sys/fs/cgroup/*/berth-demo/engine /sys/fs/cgroup/*/berth-demo /sys/fs/cgroup/unified/berth-demo 2>/dev/null || true
  grep " $WORK" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  # berth-dns lingers 30 s after its last endpoint: end what runs in our namespaces.
  for n in "$CNS" "$NS"; do
    p=$(ip netns pids "$n" 2>/dev/null || true)
    [ -z "$p" ] || kill -9 $p 2>/dev/null || true
    ip netns del "$n" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# A bundle: a busybox rootfs and runtime-spec config from `berth-runtime spec`.
scripts/busybox-rootfs.sh "$WORK/bundle/rootfs"
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
  "$RT" --root "$STATE" state "$ID2" 2>/dev/null | grep -q '"status": "running"' && break
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
[ "$rc" = 137 ]

echo
echo "== 3. the engine: berth run from an image"
tar -C "$WORK/bundle/rootfs" -cf "$WORK/rootfs.tar" .
$B import "$WORK/rootfs.tar" demo:latest
echo "-- berth run --rm --network none --hostname berth-demo demo sh -c 'hostname; ps; ip link'"
$B run --rm --network none --hostname berth-demo demo:latest sh -c 'echo "hostname: $(hostname)"; ps; ip link'
echo "-- berth run -m 5m demo dd (50 MB)"
set +e
$B run --name demo-oom -m 5m --memory-swap 5m demo:latest dd if=/dev/zero of=/dev/null bs=50M count=1
rc=$?
set -e
echo "berth run exited with status $rc; OOMKilled=$($B inspect --format '{{.State.OOMKilled}}' demo-oom)"
[ "$rc" = 137 ]
echo "-- a health check that fails after 3 s, with --health-on-failure=restart"
$B run -d --name demo-health --health-cmd 'test -f /tmp/ok' --health-interval 1s \
  --health-retries 2 --health-on-failure=restart demo:latest \
  sh -c 'touch /tmp/ok; sleep 3; rm /tmp/ok; sleep 600' >/dev/null
last=""
for _ in $(seq 150); do
  now="$($B inspect --format '{{.State.Status}} {{.State.Health.Status}} restarts={{.RestartCount}}' demo-health)"
  [ "$now" != "$last" ] && echo "   $now" && last=$now
  [ "$($B inspect --format '{{.RestartCount}}' demo-health)" -ge 1 ] && \
    [ "$($B inspect --format '{{.State.Health.Status}}' demo-health)" = healthy ] && break
  sleep 0.1
done
[ "$($B inspect --format '{{.RestartCount}}' demo-health)" -ge 1 ]
$B ps -a
$B rm -f demo-health demo-oom >/dev/null

echo
echo "== 4. networks: names on a network, a published port seen from a client"
# The client machine: a namespace joined to the "host" one by a veth pair.
ip netns add "$CNS"
ip -n "$NS" link add eth-client type veth peer name eth0 netns "$CNS"
ip -n "$NS" addr add 198.51.100.1/24 dev eth-client
ip -n "$NS" link set eth-client up
ip -n "$CNS" addr add 198.51.100.2/24 dev eth0
ip -n "$CNS" link set eth0 up
ip -n "$CNS" link set lo up
$B network create shop >/dev/null
echo "-- berth network ls"
$B network ls
# A web server whose CGI says who answered and who asked.
$B run -d --name web --network shop --network-alias storefront -p 8080:80 demo:latest sh -c '
  mkdir -p /www/cgi-bin
  printf "#!/bin/sh\necho Content-Type: text/plain\necho\necho \"hello from \$(hostname), you are \$REMOTE_ADDR\"\n" > /www/cgi-bin/who
  chmod +x /www/cgi-bin/who
  exec httpd -f -p 0.0.0.0:80 -h /www' >/dev/null
for _ in $(seq 50); do
  nsenter --net=/run/netns/"$CNS" timeout 2 busybox wget -q -O /dev/null http://198.51.100.1:8080/cgi-bin/who 2>/dev/null && break
  sleep 0.1
done
echo "-- a second container on the network, by name and by alias:"
$B run --rm --network shop demo:latest sh -c 'wget -q -O- http://web/cgi-bin/who; wget -q -O- http://storefront/cgi-bin/who'
echo "-- the client 198.51.100.2, through the host's published port 198.51.100.1:8080:"
nsenter --net=/run/netns/"$CNS" timeout 5 busybox wget -q -O- http://198.51.100.1:8080/cgi-bin/who | tee "$WORK/client.out"
grep -q "you are 198.51.100.2" "$WORK/client.out"
echo "-- berth port web; berth ps"
$B port web
$B ps
$B rm -f web >/dev/null
$B network rm shop >/dev/null
rmdir /sys/fs/cgroup/*/berth-demo/engine /sys/fs/cgroup/*/berth-demo /sys/fs/cgroup/unified/berth-demo 2>/dev/null || true

echo
echo "== 5. services: the supermarket under berth compose"
# In throwaway "host" and "client" namespaces and a storage root of its own (the
# section makes and removes them); the images are built from /bin/busybox (needs jq).
# shellcheck source=../examples/supermarket/demo-section.sh
source examples/supermarket/demo-section.sh
supermarket_demo "$(pwd)/target/x86_64-unknown-linux-musl/release/berth"
echo "demo done"
