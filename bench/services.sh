#!/usr/bin/env bash
# Services (issue 12): the supermarket (examples/supermarket) under `berth compose`,
# side by side with docker-compose 1.29 (dockerd + containerd + runc) and podman-compose
# 1.0.3 (podman 4.3 + netavark), all from Debian:
#   a. `up -d` of the supermarket (5 containers, 3 networks, 1 volume), wall time from
#      the command's start to its exit, median of RUNS, each run followed by `down -v`
#      (timed too, not compared). berth reads examples/supermarket/compose.yaml, the
#      peers compose.peers.yaml (the same without what they reject: top-level `name`,
#      x-berth-autoscale). Each run checks that the 5 containers run.
#   b. the load balancer (berth only): new TCP connections per second (wrk,
#      `Connection: close`, GET /index.html, a static file) from a "client" namespace
#      through the payment service's published port (the kernel spreads them over its 3
#      replicas) against wrk spreading them itself over the 3 replicas' own addresses
#      (one wrk thread per replica: the Lua script below); same threads and
#      connections both ways, runs interleaved, median of REPEATS.
#   c. replacement (berth only): SIGKILL of a payment replica's pid (`berth inspect
#      --format {{.State.Pid}}`, its init: the service has init: true) -> the dead
#      replica's address out of the published port's slot map, and -> its
#      replacement's address in it (it joins once healthy: the healthcheck interval is
#      compose.yaml's, 1 s). The map is polled with `nft -j list map` in a tight loop
#      (each poll takes a few ms: the granularity is printed), KILLS kills, medians.
# The berth sections need `berth compose`; without it (`berth compose version` fails)
# they are skipped with a message and the peers are still measured.
#
# As bench/network.sh: each engine gets a fresh "host" network namespace of its own (as
# if on its own machine), joined by a veth pair to a "client" namespace:
#   client eth0 198.51.100.2/24 <-> host eth0 198.51.100.1/24 -> the engine's bridges
# and the engines turn on forwarding, make bridges, veths and nftables/iptables rules
# only there; the real host's ip_forward, links and nftables ruleset are checked
# unchanged at the end (the script fails otherwise). Everything runs in one private
# mount namespace with /sys/fs/cgroup/unified unmounted (crun 1.8 refuses this hybrid
# host) and tmpfs over /run/netns and /run/containers/networks; podman and dockerd get
# private roots (podman's storage through CONTAINERS_STORAGE_CONF, its settings through
# CONTAINERS_CONF, both read by every podman that podman-compose runs; podman's
# containers get nofile/nproc 1024 as in bench/network.sh). Nothing is left behind.
#
# Usage: bench/services.sh [RUNS [SECONDS [REPEATS [KILLS]]]]
#   RUNS     up -d + down cycles per engine (default 10)
#   SECONDS  length of each wrk run (default 10)
#   REPEATS  wrk runs per path, interleaved; the median is reported (default 3)
#   KILLS    replicas killed in c (default 20)
#   ENGINES="berth podman docker" picks the engines (in that order).
#   bench/services.sh --summary   prints the tables of bench/results/services.json
# As root. Needs (Debian): docker-compose docker.io (dockerd, containerd, runc)
# podman-compose podman conmon crun netavark aardvark-dns catatonit (podman's --init)
# iptables nftables iproute2 wrk jq curl busybox-static, and examples/supermarket's
# build-images.sh (tar, coreutils, jq). Honours CARGO_TARGET_DIR for the build and the
# binaries. Writes bench/results/services.json.
set -euo pipefail
SELF=$(realpath "$0")
cd "$(dirname "$SELF")/.."
REPO=$(pwd)
OUT=$REPO/bench/results
RUNS=${1:-10}
SECONDS_=${2:-10}
REPEATS=${3:-3}
KILLS=${4:-20}
ENGINES=${ENGINES:-berth podman docker}
PROJECT=supermarket
# wrk: one thread per payment replica (the direct path gives each thread one replica).
WRK_THREADS=3
WRK_CONNS=9
PUB_PORT=8080
HOST_IP=198.51.100.1 CLIENT_IP=198.51.100.2

# The markdown tables, from services.json.
summary() {
  jq -r '
    def r2: . * 100 | round / 100;
    def s: if . == null then "-" else (. | r2 | tostring) + " s" end;
    def ms: if . == null then "-" else (. * 1000 | r2 | tostring) + " ms" end;
    def num: if . == null then "-" else (. | round | tostring) end;
    def ratio($a; $b): if $a == null or $b == null or $b == 0 then "-" else (($a / $b) | r2 | tostring) + "x" end;
    .engines as $e |
    "Parameters: \(.params.runs) up -d/down cycles per engine; wrk \(.params.seconds) s, median of \(.params.repeats) interleaved runs per path, \(.params.wrk_threads) threads, \(.params.wrk_connections) connections, `Connection: close`; \(.params.kills) kills. Load average \(.load_before) before, \(.load_after) after.",
    "",
    "a. `up -d` of the supermarket (5 containers), median wall time",
    "",
    "| engine | up -d | berth / this | down -v |",
    "|---|---:|---:|---:|",
    ($e | to_entries[] | .key as $k | .value as $v |
      if $v.skipped then "| \($k) | skipped: \($v.skipped) | | |" else
      "| \($k) (\($v.version)) | \($v.up.median | s) | " +
      (if $k == "berth" then "-" else ratio($e.berth.up.median; $v.up.median) end) +
      " | \($v.down.median | s) |" end),
    "",
    "b. load balancer: new TCP connections per second (one request each) over 3 replicas",
    "",
    "| engine | published port (kernel spreads) | replica addresses (client spreads) | published/direct |",
    "|---|---:|---:|---:|",
    ($e | to_entries[] | select(.value.lb != null) | .key as $k | .value.lb as $l |
      "| \($k) | \($l.published.median | num) | \($l.direct.median | num) | \(ratio($l.published.median; $l.direct.median)) |"),
    "",
    "c. replacement after SIGKILL of a replica (healthcheck interval \(.params.health_interval))",
    "",
    "| engine | kill -> out of the map, median (max) | kill -> replacement in the map, median (max) | poll period |",
    "|---|---:|---:|---:|",
    ($e | to_entries[] | select(.value.replace != null) | .key as $k | .value.replace as $r |
      "| \($k) | \($r.out.median | ms) (\($r.out.max | ms)) | \($r.in.median | ms) (\($r.in.max | ms)) | \($r.poll_period | ms) |")
  ' "$1"
}

# The real host's network state that must not change.
host_state() {
  echo "ip_forward $(cat /proc/sys/net/ipv4/ip_forward)"
  echo "ipv6 forwarding $(cat /proc/sys/net/ipv6/conf/all/forwarding)"
  echo "links $(ip -o link show | awk -F': ' '{print $2}' | sort | tr '\n' ' ')"
  echo "nft tables:"
  nft list tables
  echo "nft ruleset $(nft list ruleset | sha256sum)"
  echo "/etc/containers/networks: $(ls -A /etc/containers/networks 2>/dev/null | tr '\n' ' ')"
  echo "/run/containers/networks: $(ls -A /run/containers/networks 2>/dev/null | tr '\n' ' ')"
}

case "${BSB_STAGE:-}" in
'')
  # Stage 0, on the real host: build, record the host's state, run stage 1 in a
  # private mount namespace, check the host's state again.
  if [ "${1:-}" = --summary ]; then summary "$OUT/services.json"; exit; fi
  [ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 1; }
  for t in jq wrk curl nft ip nsenter unshare busybox tar sha256sum; do
    command -v $t >/dev/null || { echo "bench: $t is missing" >&2; exit 1; }
  done
  for e in $ENGINES; do
    case $e in
    berth) ;;
    podman) for t in podman-compose podman conmon crun iptables; do command -v $t >/dev/null || { echo "bench: $t is missing" >&2; exit 1; }; done
      for t in netavark aardvark-dns catatonit; do [ -x /usr/lib/podman/$t ] || [ -x /usr/libexec/podman/$t ] || { echo "bench: podman's $t is missing" >&2; exit 1; }; done ;;
    docker) for t in docker-compose dockerd docker containerd runc docker-init iptables; do command -v $t >/dev/null || { echo "bench: $t is missing" >&2; exit 1; }; done ;;
    *) echo "bench: unknown engine $e (berth, podman, docker)" >&2; exit 1 ;;
    esac
  done
  if [[ " $ENGINES " == *" berth "* ]]; then
    # The README's build: static musl, non-PIE (.cargo/config.toml).
    cargo build --release >&2   # the whole workspace: the same features, the same binaries
  fi
  before=$(host_state)
  [ "$(cat /proc/sys/net/ipv4/ip_forward)" = 0 ] || { echo "bench: the host's ip_forward is not 0 to begin with" >&2; exit 1; }
  rc=0
  unshare -m --propagation private env BSB_STAGE=mnt BSB_ID=$$ "$SELF" "$@" || rc=$?
  after=$(host_state)
  if [ "$before" != "$after" ] || [ "$(cat /proc/sys/net/ipv4/ip_forward)" != 0 ]; then
    echo "bench: the real host's network state changed:" >&2
    diff <(echo "$before") <(echo "$after") >&2 || true
    exit 1
  fi
  echo "== the real host: ip_forward $(cat /proc/sys/net/ipv4/ip_forward), links and nftables ruleset unchanged" >&2
  exit $rc
  ;;

mnt)
  # Stage 1, private mount namespace, real network namespace: the images, then per
  # engine a host and a client namespace and stage 2 inside the host one.
  trap 'exit 130' INT TERM
  umount /sys/fs/cgroup/unified 2>/dev/null || true
  for d in /run/netns /run/containers/networks; do mkdir -p $d; mount -t tmpfs -o mode=755 bsb $d; done
  W=$(mktemp -d /tmp/berth-sbench.XXXXXX)
  CG=/berth-test/sbench-$BSB_ID
  export W CG
  NS_LIST=
  # Every process still in one of our namespaces or cgroups is ours.
  kill_ns() {
    local pids
    pids=$(ip netns pids "$1" 2>/dev/null || true)
    [ -z "$pids" ] || { echo "bench: killing what was left in $1: $pids" >&2; kill -9 $pids 2>/dev/null || true; }
  }
  cleanup() {
    set +e
    for ns in $NS_LIST; do kill_ns "$ns"; done
    for f in /sys/fs/cgroup/*/"${CG#/}"; do
      [ -d "$f" ] || continue
      case $(stat -f -c %T "$f") in
      cgroupfs | cgroup2fs)
        pids=$(find "$f" -name cgroup.procs -exec cat {} + 2>/dev/null | tr '\n' ' ')
        [ -z "${pids// /}" ] || { echo "bench: killing what was left in $f: $pids" >&2; kill -9 $pids 2>/dev/null; sleep 0.5; } ;;
      *)
        # The unmounted cgroup2 mount point, a directory of the tmpfs under it:
        # crun still makes directories and writes cgroup.procs files there.
        rm -rf "$f"
        rmdir "$(dirname "$f")" 2>/dev/null ;;
      esac
    done
    grep " $W" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    find /sys/fs/cgroup/*/"${CG#/}" -depth -type d -exec rmdir {} \; 2>/dev/null
    # The shared parent too, when nothing else uses it (scripts/test.sh counts it).
    rmdir /sys/fs/cgroup/*/"$(dirname "${CG#/}")" 2>/dev/null
    for ns in $NS_LIST; do ip netns del "$ns" 2>/dev/null; done
    rm -rf "$W"
  }
  trap cleanup EXIT

  # The images, as docker-archive tarballs every engine loads.
  examples/supermarket/build-images.sh --out "$W/images" --no-load >&2
  # wrk's numbers as one JSON line; with BSB_SPREAD="a1 a2 a3", thread i connects to
  # address i (the client spreading the connections itself).
  cat > "$W/wrk.lua" <<'LUA'
local addrs = {}
for a in string.gmatch(os.getenv("BSB_SPREAD") or "", "%S+") do addrs[#addrs + 1] = a end
local n = 0
setup = function(thread)
  if #addrs > 0 then
    n = n + 1
    thread.addr = wrk.lookup(addrs[(n - 1) % #addrs + 1], os.getenv("BSB_PORT") or "80")[1]
  end
end
done = function(s, lat, req)
  io.write(string.format('{"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,"latency_p50_us":%d,"latency_p99_us":%d}\n',
    s.requests, s.duration, s.errors.connect, s.errors.read, s.errors.write, s.errors.status, s.errors.timeout,
    lat:percentile(50), lat:percentile(99)))
end
LUA

  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  for e in $ENGINES; do
    H=bsb-$e-host C=bsb-$e-client
    ip netns add $H
    NS_LIST="$NS_LIST $H"
    ip netns add $C
    NS_LIST="$NS_LIST $C"
    HN="nsenter --net=/run/netns/$H" CN="nsenter --net=/run/netns/$C"
    $HN ip link set lo up
    $CN ip link set lo up
    $HN ip link add eth0 type veth peer name eth0 netns $C
    $HN ip addr add $HOST_IP/24 dev eth0
    $HN ip link set eth0 up
    $CN ip addr add $CLIENT_IP/24 dev eth0
    $CN ip link set eth0 up
    # wrk opens tens of thousands of connections: more source ports, and reuse of
    # those in TIME_WAIT, on the two clients (per-namespace sysctls).
    for n in "$HN" "$CN"; do
      $n sysctl -qw net.ipv4.ip_local_port_range="1024 65000" net.ipv4.tcp_tw_reuse=1
    done
    echo "== $e (host namespace $H)" >&2
    $HN env BSB_STAGE=engine BSB_ENGINE=$e BSB_CLIENT=/run/netns/$C "$SELF" "$@"
    kill_ns $H
    kill_ns $C
    ip netns del $H
    ip netns del $C
    NS_LIST=
  done
  load_after=$(cut -d' ' -f1-3 /proc/loadavg)

  mkdir -p "$OUT"
  jq -n --arg date "$(date -u +%FT%TZ)" --arg kernel "$(uname -r)" \
    --arg lb "$load_before" --arg la "$load_after" \
    --argjson runs "$RUNS" --argjson seconds "$SECONDS_" --argjson repeats "$REPEATS" \
    --argjson kills "$KILLS" --argjson wt $WRK_THREADS --argjson wc $WRK_CONNS \
    --arg hi "$(sed -n 's/^ *interval: *//p' examples/supermarket/compose.yaml | head -1)" \
    '{date: $date, kernel: $kernel, load_before: $lb, load_after: $la,
      params: {runs: $runs, seconds: $seconds, repeats: $repeats, kills: $kills,
               wrk_threads: $wt, wrk_connections: $wc, health_interval: $hi},
      engines: (reduce inputs as $r ({}; . + {($r.engine): $r}))}' \
    $(for e in $ENGINES; do echo "$W/result-$e.json"; done) > "$OUT/services.json"
  echo "== results in bench/results/services.json" >&2
  summary "$OUT/services.json"
  ;;

engine)
  # Stage 2, in the engine's host network namespace.
  trap 'exit 130' INT TERM
  e=$BSB_ENGINE
  CN="nsenter --net=$BSB_CLIENT"
  E=$W/$e
  mkdir -p "$E"
  T=${CARGO_TARGET_DIR:-$REPO/target}
  DOCKERD_PID=
  case $e in
  berth)
    # The five binaries side by side, as cargo builds them: each finds the others.
    R=$T/x86_64-unknown-linux-musl/release
    mkdir -p "$E/bin"
    cp "$R/berth" "$R/berth-dns" "$R/berth-net" "$R/berth-runtime" "$R/berth-monitor" "$E/bin/"
    export BERTH_CGROUP_PARENT=$CG/berth
    X="$E/bin/berth --root $E/root"
    FILE=$REPO/examples/supermarket/compose.yaml
    COMPOSE="$X compose -f $FILE -p $PROJECT"
    version=$(git rev-parse --short HEAD)
    ;;
  podman)
    # Every podman that podman-compose runs reads these two files.
    export CONTAINERS_CONF=$E/containers.conf CONTAINERS_STORAGE_CONF=$E/storage.conf
    cat > "$CONTAINERS_CONF" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
cgroupns = "private"
[network]
network_backend = "netavark"
network_config_dir = "$E/networks"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$E/events.log"
tmp_dir = "$E/tmp"
CONF
    cat > "$CONTAINERS_STORAGE_CONF" <<CONF
[storage]
driver = "overlay"
graphroot = "$E/root"
runroot = "$E/run"
CONF
    X="podman --cgroup-manager cgroupfs"
    FILE=$REPO/examples/supermarket/compose.peers.yaml
    # Its containers' cgroups under ours (podman-compose passes these to `podman run`).
    COMPOSE="podman-compose -p $PROJECT -f $FILE --podman-run-args=--cgroup-parent=$CG/podman"
    version="podman-compose $(podman-compose version 2>/dev/null | awk '/podman-composer? version/ {print $NF}'), podman $(podman --version | awk '{print $3}')"
    ;;
  docker)
    export DOCKER_HOST=unix://$E/docker.sock
    X="docker"
    FILE=$REPO/examples/supermarket/compose.peers.yaml
    COMPOSE="docker-compose -p $PROJECT -f $FILE"
    ;;
  esac
  cleanup() {
    set +e
    [ -z "${NFT_POLL_PID:-}" ] || kill "$NFT_POLL_PID" 2>/dev/null
    case $e in
    berth)
      $COMPOSE down -v -t 1 >/dev/null 2>&1
      for id in $($X ps -aq --no-trunc 2>/dev/null); do $X rm -f -v "$id" >/dev/null 2>&1; done
      for n in $($X network ls -q 2>/dev/null); do $X network rm "$n" >/dev/null 2>&1; done
      for v in $($X volume ls -q 2>/dev/null); do $X volume rm -f "$v" >/dev/null 2>&1; done ;;
    podman)
      $COMPOSE down -v -t 1 >/dev/null 2>&1
      $X rm -a -f -t 0 >/dev/null 2>&1
      $X network prune -f >/dev/null 2>&1
      $X volume prune -f >/dev/null 2>&1 ;;
    docker)
      if [ -n "$DOCKERD_PID" ]; then
        $COMPOSE down -v -t 1 >/dev/null 2>&1
        $X rm -f $($X ps -aq) >/dev/null 2>&1
        $X network prune -f >/dev/null 2>&1
        $X volume prune -f >/dev/null 2>&1
        kill "$DOCKERD_PID"; wait "$DOCKERD_PID" 2>/dev/null
      fi ;;
    esac
  }
  trap cleanup EXIT

  if [ $e = docker ]; then
    # Its own roots and socket; bridge, iptables, forwarding and the userland proxy as
    # shipped (all inside this namespace).
    echo '{}' > "$E/daemon.json"
    dockerd --config-file "$E/daemon.json" --data-root "$E/root" --exec-root "$E/exec" \
      --pidfile "$E/docker.pid" -H "$DOCKER_HOST" \
      --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "$CG/docker" \
      --containerd-namespace berth-sbench --containerd-plugins-namespace berth-sbench-p \
      >"$E/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 300); do $X version >/dev/null 2>&1 && break; sleep 0.1; done
    $X version >/dev/null || { echo "bench: dockerd did not start:" >&2; tail -20 "$E/dockerd.log" >&2; exit 1; }
    version="docker-compose $(docker-compose version --short), docker $($X version --format '{{.Server.Version}}')"
  fi

  # The result of this engine, whatever it managed.
  result() { # extra jq object fields (JSON)
    jq -n --arg engine $e --arg version "${version:-}" --argjson extra "$1" \
      '{engine: $engine, version: $version} + $extra' > "$W/result-$e.json"
  }
  if [ $e = berth ] && ! $X compose version >/dev/null 2>&1; then
    echo "bench: berth compose is missing (\`berth compose version\` fails): the berth sections are skipped" >&2
    result '{"skipped": "no berth compose"}'
    exit 0
  fi

  for f in "$W"/images/*.tar; do $X load -i "$f" >"$E/load.log" 2>&1 || { cat "$E/load.log" >&2; exit 1; }; done
  # The imports leave the page cache dirty (see bench/engine.sh).
  sync
  running() { $X ps -q --filter "label=com.docker.compose.project=$PROJECT" | wc -l; }
  # The probe goes to the service's published port (berth) or to the host port of one
  # payment replica (the peers give each its own).
  probe() {
    local port=$PUB_PORT id
    if [ $e != berth ]; then
      id=$($X ps -q --filter label=com.docker.compose.service=payment | head -1)
      port=$($X port "$id" 80 | head -1)
      port=${port##*:}
    fi
    $CN curl -sS -m 5 "http://$HOST_IP:$port/cgi-bin/pay?item=apples"
  }

  echo "== a. up -d of the supermarket, then down -v, $RUNS runs" >&2
  : > "$E/up.jsonl"
  for i in $(seq "$RUNS"); do
    t0=$EPOCHREALTIME
    $COMPOSE up -d > "$E/up.log" 2>&1 || { echo "bench: $e: up -d failed:" >&2; tail -40 "$E/up.log" >&2; exit 1; }
    t1=$EPOCHREALTIME
    n=$(running)
    [ "$n" = 5 ] || { echo "bench: $e: $n containers run after up -d, not 5:" >&2; $X ps -a >&2; tail -40 "$E/up.log" >&2; exit 1; }
    if [ "$i" = 1 ]; then
      # Not timed: the stack answers (payment -> inventory -> db), once it is up.
      for _ in $(seq 50); do r=$(probe 2>/dev/null) && [[ $r == *'"paid":true'* ]] && break; sleep 0.2; done
      echo "   the client -> payment: $r" >&2
      [[ $r == *'"paid":true'* ]] || { echo "bench: $e: the supermarket does not answer" >&2; exit 1; }
    fi
    t2=$EPOCHREALTIME
    $COMPOSE down -v > "$E/down.log" 2>&1 || { echo "bench: $e: down failed:" >&2; tail -20 "$E/down.log" >&2; exit 1; }
    t3=$EPOCHREALTIME
    [ "$(running)" = 0 ] || { echo "bench: $e: containers left after down" >&2; exit 1; }
    jq -cn --argjson up "$(jq -n "$t1 - $t0")" --argjson down "$(jq -n "$t3 - $t2")" \
      --arg load "$(cut -d' ' -f1 /proc/loadavg)" '{up: $up, down: $down, load: ($load | tonumber)}' >> "$E/up.jsonl"
    tail -1 "$E/up.jsonl" | jq -r '"   up -d \(.up * 1000 | round) ms, down -v \(.down * 1000 | round) ms"' >&2
  done
  updown=$(jq -s 'def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
      else (.[length / 2 - 1] + .[length / 2]) / 2 end;
    {up: {runs: map(.up), median: (map(.up) | median)}, down: {runs: map(.down), median: (map(.down) | median)},
     loads: map(.load)}' "$E/up.jsonl")
  if [ $e != berth ]; then
    result "$updown"
    exit 0
  fi

  # b and c: berth only, with the supermarket up, without its autoscaler: wrk's load
  # scales payment out (CPU is measured against its 0.5 CPU limit), and scaling would
  # change what b compares and take the replacements c times.
  sed '/^    x-berth-autoscale:/,/^      scale_down_after:/d' "$FILE" > "$E/compose.fixed.yaml"
  grep -q x-berth-autoscale "$E/compose.fixed.yaml" && { echo "bench: the autoscale block was not removed" >&2; exit 1; }
  COMPOSE="$X compose -f $E/compose.fixed.yaml -p $PROJECT"
  $COMPOSE up -d > "$E/up.log" 2>&1
  # The payment replicas running and healthy: "name addr-on-front" lines.
  replicas() {
    $COMPOSE ps --format json | jq -r 'if type == "array" then .[] else . end
      | select(.Service == "payment" and .State == "running" and (.Health // "healthy") == "healthy") | .Name' |
      while read -r c; do
        echo "$c $($X inspect --format "{{.NetworkSettings.Networks.${PROJECT}_front.IPAddress}}" "$c")"
      done
  }
  wait_replicas() { # N: until N payment replicas are healthy (30 s at most)
    for _ in $(seq 300); do [ "$(replicas | wc -l)" -ge "$1" ] && return 0; sleep 0.1; done
    echo "bench: berth: fewer than $1 healthy payment replicas:" >&2
    $COMPOSE ps >&2
    return 1
  }
  wait_replicas 3
  mapfile -t REP < <(replicas | head -3)
  addrs=$(printf '%s\n' "${REP[@]}" | awk '{print $2}' | tr '\n' ' ')
  for a in $addrs; do $CN ip route replace "$a/32" via $HOST_IP; done
  echo "   payment replicas: ${REP[*]}" >&2

  echo "== b. wrk through $HOST_IP:$PUB_PORT against the replicas' addresses ($addrs), ${SECONDS_} s per run, $REPEATS runs per path" >&2
  for p in published direct; do
    if [ $p = published ]; then a=$HOST_IP port=$PUB_PORT; else a=${addrs%% *} port=80; fi
    $CN curl -sS -m 5 -o /dev/null "http://$a:$port/index.html" ||
      { echo "bench: berth: $p ($a:$port) does not answer" >&2; exit 1; }
  done
  : > "$E/wrk.jsonl"
  for i in $(seq "$REPEATS"); do
    for p in published direct; do
      if [ $p = published ]; then
        a=$HOST_IP port=$PUB_PORT spread=
      else
        a=${addrs%% *} port=80 spread=$addrs
      fi
      $CN env BSB_SPREAD="$spread" BSB_PORT=$port wrk -t$WRK_THREADS -c$WRK_CONNS -d"${SECONDS_}s" \
        -H 'Connection: close' -s "$W/wrk.lua" "http://$a:$port/index.html" > "$E/wrk.out"
      line=$(grep '^{' "$E/wrk.out" | tail -1)
      ct=$(cat /proc/sys/net/netfilter/nf_conntrack_count)
      [ "$ct" -lt $(($(cat /proc/sys/net/netfilter/nf_conntrack_max) * 9 / 10)) ] ||
        echo "bench: warning: conntrack table nearly full ($ct entries): wrk's numbers are doubtful" >&2
      jq -c --arg p $p --argjson ct "$ct" --arg load "$(cut -d' ' -f1 /proc/loadavg)" '{path: $p} + . +
        {per_second: (.requests / (.duration_us / 1e6)), conntrack_entries: $ct, load: ($load | tonumber)}' \
        <<<"$line" >> "$E/wrk.jsonl"
      tail -1 "$E/wrk.jsonl" | jq -r '"   \(.path | . + "         " | .[:9]) \(.per_second | round)/s  errors: connect \(.connect_errors) read \(.read_errors) write \(.write_errors) status \(.status_errors) timeout \(.timeouts)"' >&2
    done
  done

  echo "== c. replacement: SIGKILL of a payment replica, $KILLS times" >&2
  # The published port's slot map (crates/network/src/lb.rs: svc-<id>-slots, id = 12 hex
  # digits of sha256("project/service")): where the client's new connections go. The
  # service's VIPs (one per network) are updated right after it, in the same pass.
  PUBID=$(printf '%s' "$PROJECT/payment" | sha256sum | cut -c1-12)
  lb_list() { nft -j list map inet berth "svc-$PUBID-slots"; }
  lb_list > /dev/null || { echo "bench: berth: no nftables table inet berth" >&2; exit 1; }
  # Poll period: the mean of 200 polls.
  p0=$EPOCHREALTIME
  for _ in $(seq 200); do out=$(lb_list); done
  poll_period=$(jq -n "($EPOCHREALTIME - $p0) / 200")
  echo "   poll period $(jq -n "$poll_period * 1000 * 100 | round / 100") ms" >&2
  # The addresses of a container on every network, space-separated.
  # (berth's --format templates have no `range`: the JSON through jq.)
  addrs_of() { $X inspect "$1" | jq -r '[.[0].NetworkSettings.Networks[].IPAddress | select(. != "")] | join(" ")'; }
  has_any() { # LISTING ADDRS...: one of ADDRS is in LISTING (as a whole JSON string)
    local l=$1 x
    shift
    for x in "$@"; do [[ $l == *"\"$x\""* ]] && return 0; done
    return 1
  }
  : > "$E/replace.jsonl"
  for k in $(seq "$KILLS"); do
    wait_replicas 3
    sleep 1
    mapfile -t REP < <(replicas)
    before=" $(printf '%s\n' "${REP[@]}" | awk '{print $1}' | tr '\n' ' ')"
    victim=${REP[$(((k - 1) % ${#REP[@]}))]%% *}
    pid=$($X inspect --format '{{.State.Pid}}' "$victim")
    read -r -a dead <<<"$(addrs_of "$victim")"
    # compose ps says healthy a moment before the supervisor has read the event: wait
    # (5 s at most) for the victim to be in the map; else show why and stop.
    for _ in $(seq 50); do has_any "$(lb_list)" "${dead[@]}" && break; sleep 0.1; done
    has_any "$(lb_list)" "${dead[@]}" || {
      echo "bench: berth: $victim (${dead[*]}) is not in the load balancer" >&2
      $COMPOSE ps >&2
      tail -20 "$E/root/engine/projects/$PROJECT/supervisor.log" >&2 || true
      exit 1
    }
    # Times are $EPOCHREALTIME (6 decimals): without the dot, integer microseconds.
    # Distinct listings with the time they were first seen; the replacement is found
    # (by `compose ps`) every 50 polls, and its address looked up in the listings after.
    snaps=() times=() prev=
    t_kill=$EPOCHREALTIME
    kill -9 "$pid"
    new= newaddrs=() t_out= t_in= polls=0
    while :; do
      out=$(lb_list)
      now=$EPOCHREALTIME
      if [ "$out" != "$prev" ]; then snaps+=("$out") times+=("$now") prev=$out; fi
      [ -n "$t_out" ] || has_any "$out" "${dead[@]}" || t_out=$now
      polls=$((polls + 1))
      if [ -n "$t_out" ] && [ $((polls % 50)) = 0 ]; then
        if [ -z "$new" ]; then
          while read -r c _; do
            [[ $before == *" $c "* ]] || { new=$c; read -r -a newaddrs <<<"$(addrs_of "$c")"; break; }
          done < <(replicas)
        fi
        if [ -n "$new" ] && has_any "$out" "${newaddrs[@]}"; then
          for j in "${!snaps[@]}"; do
            if (( ${times[$j]/./} >= ${t_out/./} )) && has_any "${snaps[$j]}" "${newaddrs[@]}"; then
              t_in=${times[$j]}; break
            fi
          done
          break
        fi
      fi
      if [ $((polls % 50)) = 0 ] && (( ${now/./} - ${t_kill/./} > 30000000 )); then
        echo "bench: berth: $victim not replaced within 30 s" >&2; $COMPOSE ps >&2; exit 1
      fi
    done
    jq -cn --arg v "$victim" --arg n "$new" --argjson out "$(jq -n "$t_out - $t_kill")" \
      --argjson in "$(jq -n "$t_in - $t_kill")" --argjson polls $polls \
      '{victim: $v, replacement: $n, out: $out, in: $in, polls: $polls}' >> "$E/replace.jsonl"
    tail -1 "$E/replace.jsonl" | jq -r '"   \(.victim) -> \(.replacement): out of the map \(.out * 1000 | round) ms, replacement in \(.in * 1000 | round) ms"' >&2
  done
  $COMPOSE down -v > "$E/down.log" 2>&1

  result "$(jq -n --argjson ud "$updown" --slurpfile wrk "$E/wrk.jsonl" --slurpfile rep "$E/replace.jsonl" \
    --argjson pp "$poll_period" '
    def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
      else (.[length / 2 - 1] + .[length / 2]) / 2 end;
    $ud + {
      lb: (reduce ("published", "direct") as $p ({};
        . + {($p): {runs: [$wrk[] | select(.path == $p)], median: ([$wrk[] | select(.path == $p) | .per_second] | median)}})),
      replace: {kills: $rep, poll_period: $pp,
        out: {median: ([$rep[].out] | median), max: ([$rep[].out] | max)},
        in: {median: ([$rep[].in] | median), max: ([$rep[].in] | max)}}}')"
  ;;
esac
