#!/usr/bin/env bash
# Bridge networking side by side with podman 4.3 (netavark + aardvark-dns) and
# docker 20.10 (dockerd + containerd + runc, userland proxy on, as shipped), all
# from Debian, on one busybox image that also holds iperf3:
#   1. the cost of a network: `run --rm --network NET IMAGE true` against
#      `--network none` (hyperfine; NET is a user-defined bridge network),
#      once with nothing else on NET and once with the four servers below on
#      it (podman and berth run a DNS server only while NET has containers);
#   2. TCP throughput (iperf3) to a server in a container, through a published
#      port (host address:published port) and straight to the container's own
#      address, from a "client" namespace (a client machine);
#   3. new TCP connections per second (wrk, `Connection: close`, against busybox
#      httpd in a container), the same two ways.
# 2 and 3 are also measured from the host itself to 127.0.0.1:published port
# ("localhost"): the one path on which docker uses its userland proxy (from
# outside, docker DNATs in the kernel too). The ratios within an engine come
# from interleaved runs; numbers of different engines come from runs minutes
# apart, so compare them only on a quiet machine.
#
# Each engine gets a fresh "host" network namespace of its own, as if on its
# own machine, joined by a veth pair to a "client" namespace:
#   client eth0 198.51.100.2/24 <-> host eth0 198.51.100.1/24 -> engine's bridge
# and the client routes each container's address via 198.51.100.1. One host
# namespace per engine because docker sets the iptables FORWARD policy to DROP
# when it starts (and never restores it), which would drop the other engines'
# forwarded traffic. The engines turn on forwarding, make bridges, veths and
# nftables/iptables rules only in their host namespace; the real host's
# ip_forward, links and nftables ruleset are checked unchanged at the end (the
# script fails otherwise).
#
# Everything runs in one private mount namespace with /sys/fs/cgroup/unified
# unmounted (crun 1.8 refuses this hybrid host, as bench/engine.sh) and tmpfs
# over /run/netns (the namespaces' files) and /run/containers/networks
# (netavark's run directory for root: IPAM database, aardvark-dns config).
# podman and dockerd get private roots; podman's network configs go to a
# private directory, not /etc/containers/networks. Nothing is left behind.
#
# Usage: bench/network.sh [RUNS [SECONDS [REPEATS]]]
#   RUNS     hyperfine runs per command (default 30)
#   SECONDS  length of each iperf3 and wrk run (default 10)
#   REPEATS  iperf3 and wrk runs per path, interleaved; the median is
#            reported (default 3)
#   ENGINES="berth podman docker" picks the engines (in that order).
#   bench/network.sh --summary   prints the table of bench/results/network.json
# As root. Needs (Debian): hyperfine podman conmon crun netavark aardvark-dns
# docker.io (dockerd, containerd, runc, docker-proxy) iptables (iptables-nft,
# for docker and netavark) nftables iproute2 iperf3 wrk jq busybox-static.
# Honours CARGO_TARGET_DIR for the build and the binaries. Writes
# bench/results/network.json; stage by stage: 0 on the real host (build, host
# state), 1 in the private mount namespace (image, namespaces), 2 per engine in
# its host namespace (the engine and the measurements).
set -euo pipefail
SELF=$(realpath "$0")
cd "$(dirname "$SELF")/.."
OUT=$(pwd)/bench/results
RUNS=${1:-30}
SECONDS_=${2:-10}
REPEATS=${3:-3}
ENGINES=${ENGINES:-berth podman docker}
WRK_THREADS=1
WRK_CONNS=8
NET=bnbnet
# Host ports the servers are published on (httpd: 3, from this one on), and
# their ports in the container.
IPERF_HOST_PORT=15201 IPERF_PORT=5201 HTTP_HOST_PORT=18080 HTTP_PORT=8080
HOST_IP=198.51.100.1 CLIENT_IP=198.51.100.2

# The markdown tables, from network.json.
summary() {
  jq -r '
    def r2: . * 100 | round / 100;
    def ms: if . == null then "-" else (. * 1000 | r2 | tostring) + " ms" end;
    def gbit: if . == null then "-" else (. / 1e9 | r2 | tostring) end;
    def num: if . == null then "-" else (. | round | tostring) end;
    def ratio($a; $b): if $a == null or $b == null or $b == 0 then "-" else (($a / $b) | r2 | tostring) + "x" end;
    .engines as $e |
    "Parameters: \(.params.runs) hyperfine runs per command; iperf3 and wrk \(.params.seconds) s, median of \(.params.repeats) interleaved runs per path; wrk \(.params.wrk_threads) thread, \(.params.wrk_connections) connections, `Connection: close`. Load average \(.load_before) before, \(.load_after) after.",
    "",
    "1. `run --rm IMAGE true`, median wall time",
    "",
    "| engine | `--network none` | `--network \(.params.network)` | cost of the network | berth\u0027s cost / this | the same, 4 containers on the network | cost | berth\u0027s cost / this |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    ($e | to_entries[] | .key as $k | .value.run as $r |
      "| \($k) \(.value.version) | \($r.none_median | ms) | \($r.net_median | ms) | \($r.cost | ms) | " +
      (if $k == "berth" then "-" else ratio($e.berth.run.cost; $r.cost) end) +
      " | \($r.busy_median | ms) | \($r.busy_cost | ms) | " +
      (if $k == "berth" then "-" else ratio($e.berth.run.busy_cost; $r.busy_cost) end) + " |"),
    "",
    "2. iperf3 TCP throughput, Gbit/s (receiver)",
    "",
    "| engine | published (client -> host:port) | direct (client -> container) | published/direct | localhost (host -> 127.0.0.1:port) | localhost/direct |",
    "|---|---:|---:|---:|---:|---:|",
    ($e | to_entries[] | .key as $k | .value.iperf3 as $t |
      "| \($k) | \($t.published.median | gbit) | \($t.direct.median | gbit) | \(ratio($t.published.median; $t.direct.median)) | \($t.localhost.median | gbit) | \(ratio($t.localhost.median; $t.direct.median)) |"),
    "",
    "3. wrk, new TCP connections per second (one request each)",
    "",
    "| engine | published (client -> host:port) | direct (client -> container) | published/direct | localhost (host -> 127.0.0.1:port) | localhost/direct |",
    "|---|---:|---:|---:|---:|---:|",
    ($e | to_entries[] | .key as $k | .value.wrk as $t |
      "| \($k) | \($t.published.median | num) | \($t.direct.median | num) | \(ratio($t.published.median; $t.direct.median)) | \($t.localhost.median | num) | \(ratio($t.localhost.median; $t.direct.median)) |")
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

case "${BNB_STAGE:-}" in
'')
  # Stage 0, on the real host: build, record the host's state, run stage 1 in
  # a private mount namespace, check the host's state again.
  if [ "${1:-}" = --summary ]; then summary "$OUT/network.json"; exit; fi
  [ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 1; }
  for t in hyperfine jq iperf3 wrk nft ip nsenter unshare busybox ldd; do
    command -v $t >/dev/null || { echo "bench: $t is missing" >&2; exit 1; }
  done
  for e in $ENGINES; do
    case $e in
    berth) ;;
    podman) for t in podman conmon crun iptables; do command -v $t >/dev/null || { echo "bench: $t is missing" >&2; exit 1; }; done
      for t in netavark aardvark-dns; do [ -x /usr/lib/podman/$t ] || { echo "bench: /usr/lib/podman/$t is missing" >&2; exit 1; }; done ;;
    docker) for t in dockerd docker containerd runc docker-proxy iptables; do command -v $t >/dev/null || { echo "bench: $t is missing" >&2; exit 1; }; done ;;
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
  unshare -m --propagation private env BNB_STAGE=mnt BNB_ID=$$ "$SELF" "$@" || rc=$?
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
  # Stage 1, private mount namespace, real network namespace: the image, then
  # per engine a host and a client namespace and stage 2 inside the host one.
  trap 'exit 130' INT TERM
  umount /sys/fs/cgroup/unified 2>/dev/null || true
  for d in /run/netns /run/containers/networks; do mkdir -p $d; mount -t tmpfs -o mode=755 bnb $d; done
  W=$(mktemp -d /tmp/berth-nbench.XXXXXX)
  CG=/berth-test/nbench-$BNB_ID
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
    for ns in $NS_LIST; do ip netns del "$ns" 2>/dev/null; done
    rm -rf "$W"
  }
  trap cleanup EXIT

  # The image: busybox with every applet, iperf3 and the libraries it needs,
  # a page for httpd.
  R=$W/rootfs
  mkdir -p "$R"/{bin,etc,tmp,www,usr/bin}
  chmod 1777 "$R/tmp"
  cp /bin/busybox "$R/bin/"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$R/bin/$a"; done
  cp "$(command -v iperf3)" "$R/usr/bin/iperf3"
  for l in $(ldd "$(command -v iperf3)" | grep -o '/[^ ]*'); do cp -L --parents "$l" "$R/"; done
  echo 'root:x:0:0:root:/:/bin/sh' > "$R/etc/passwd"
  echo 'root:x:0:' > "$R/etc/group"
  printf '<html><body>%s</body></html>\n' "$(head -c 480 /dev/zero | tr '\0' x)" > "$R/www/index.html"
  chroot "$R" /usr/bin/iperf3 --version >/dev/null || { echo "bench: iperf3 does not run in the image" >&2; exit 1; }
  tar -C "$R" -cf "$W/bench.tar" .
  # wrk's numbers as one JSON line.
  cat > "$W/wrk.lua" <<'LUA'
done = function(s, lat, req)
  io.write(string.format('{"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,"latency_p50_us":%d,"latency_p99_us":%d}\n',
    s.requests, s.duration, s.errors.connect, s.errors.read, s.errors.write, s.errors.status, s.errors.timeout,
    lat:percentile(50), lat:percentile(99)))
end
LUA

  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  for e in $ENGINES; do
    H=bnb-$e-host C=bnb-$e-client
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
    # wrk opens tens of thousands of connections: more source ports, and
    # reuse of those in TIME_WAIT, on the two clients (per-namespace sysctls).
    for n in "$HN" "$CN"; do
      $n sysctl -qw net.ipv4.ip_local_port_range="1024 65000" net.ipv4.tcp_tw_reuse=1
    done
    echo "== $e (host namespace $H)" >&2
    $HN env BNB_STAGE=engine BNB_ENGINE=$e BNB_CLIENT=/run/netns/$C "$SELF" "$@"
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
    --argjson wt $WRK_THREADS --argjson wc $WRK_CONNS --arg net $NET \
    '{date: $date, kernel: $kernel, load_before: $lb, load_after: $la,
      params: {runs: $runs, seconds: $seconds, repeats: $repeats, wrk_threads: $wt,
               wrk_connections: $wc, network: $net},
      engines: (reduce inputs as $r ({}; . + {($r.engine): $r}))}' \
    $(for e in $ENGINES; do echo "$W/result-$e.json"; done) > "$OUT/network.json"
  echo "== results in bench/results/network.json" >&2
  summary "$OUT/network.json"
  ;;

engine)
  # Stage 2, in the engine's host network namespace.
  trap 'exit 130' INT TERM
  e=$BNB_ENGINE
  CN="nsenter --net=$BNB_CLIENT"
  E=$W/$e
  mkdir -p "$E"
  T=${CARGO_TARGET_DIR:-$(pwd)/target}
  case $e in
  berth)
    # The four binaries side by side, so that each finds the others (berth
    # the runtime and the monitor, the monitor berth-dns) by any rule.
    R=$T/x86_64-unknown-linux-musl/release
    mkdir -p "$E/bin"
    cp "$R/berth" "$R/berth-dns" "$R/berth-net" "$R/berth-runtime" "$R/berth-monitor" "$E/bin/"
    export BERTH_CGROUP_PARENT=$CG/berth
    X="$E/bin/berth --root $E/root"
    RUNFLAGS=
    version=$(git rev-parse --short HEAD)
    ;;
  podman)
    export CONTAINERS_CONF=$E/containers.conf
    cat > "$CONTAINERS_CONF" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[network]
network_backend = "netavark"
network_config_dir = "$E/networks"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$E/events.log"
CONF
    X="podman --root $E/root --runroot $E/run --tmpdir $E/tmp --storage-driver overlay --cgroup-manager cgroupfs --events-backend file"
    RUNFLAGS="--cgroup-parent $CG/podman"
    version="$(podman --version | awk '{print $3}') (netavark $(/usr/lib/podman/netavark --version | awk '{print $2}'))"
    ;;
  docker)
    X="docker -H unix://$E/docker.sock"
    RUNFLAGS=
    ;;
  esac
  DOCKERD_PID=
  cleanup() {
    set +e
    case $e in
    berth)
      for id in $($X ps -aq --no-trunc 2>/dev/null); do $X rm -f "$id" >/dev/null 2>&1; done
      $X network rm $NET >/dev/null 2>&1 ;;
    podman)
      $X rm -a -f -t 0 >/dev/null 2>&1
      $X network rm -f $NET >/dev/null 2>&1 ;;
    docker)
      if [ -n "$DOCKERD_PID" ]; then
        $X rm -f $($X ps -aq) >/dev/null 2>&1
        $X network rm $NET >/dev/null 2>&1
        kill "$DOCKERD_PID"; wait "$DOCKERD_PID" 2>/dev/null
      fi ;;
    esac
  }
  trap cleanup EXIT

  if [ $e = docker ]; then
    # Its own roots and socket; bridge, iptables, forwarding and the userland
    # proxy as shipped (all inside this namespace).
    echo '{}' > "$E/daemon.json"
    dockerd --config-file "$E/daemon.json" --data-root "$E/root" --exec-root "$E/exec" \
      --pidfile "$E/docker.pid" -H "unix://$E/docker.sock" \
      --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "$CG/docker" \
      --containerd-namespace berth-nbench --containerd-plugins-namespace berth-nbench-p \
      >"$E/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 300); do $X version >/dev/null 2>&1 && break; sleep 0.1; done
    $X version >/dev/null || { echo "bench: dockerd did not start:" >&2; tail -20 "$E/dockerd.log" >&2; exit 1; }
    version=$($X version --format '{{.Server.Version}}')
    [ "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 ] ||
      echo "bench: warning: dockerd did not turn on forwarding in its namespace" >&2
  fi

  $X import "$W/bench.tar" bench:latest >/dev/null
  $X network create $NET >/dev/null
  # The imports leave the page cache dirty (see bench/engine.sh).
  sync

  echo "== 1. run --rm, --network none against --network $NET ($RUNS runs each)" >&2
  hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$E/run.json" \
    -n none "$X run --rm --network none $RUNFLAGS bench:latest true" \
    -n "$NET" "$X run --rm --network $NET $RUNFLAGS bench:latest true" >&2

  echo "== the servers" >&2
  # One iperf3 server. One httpd per path, each published on its own host
  # port: wrk opens tens of thousands of connections from one client address,
  # and the published and the direct path to one server would meet on the same
  # 4-tuples at the server (and in conntrack) with unrelated sequence numbers
  # and timestamps, so the server's TIME_WAIT sockets would refuse them. The
  # direct path's server is published too: docker forwards to a container port
  # from outside only if it is published.
  declare -A ip hport
  start() { # NAME HOST_PORT CONTAINER_PORT CMD...
    local name=$1 hp=$2 cp=$3 addr
    shift 3
    $X run -d --name "$name" --network $NET -p "$hp:$cp" $RUNFLAGS bench:latest "$@" >/dev/null
    addr=$($X inspect --format "{{.NetworkSettings.Networks.$NET.IPAddress}}" "$name")
    [[ $addr =~ ^[0-9]+(\.[0-9]+){3}$ ]] || { echo "bench: $e: no IPv4 address for $name: '$addr'" >&2; exit 1; }
    ip[$name]=$addr hport[$name]=$hp
    # The client reaches the container through this host.
    $CN ip route replace "$addr/32" via $HOST_IP
    echo "   $name $addr:$cp, published on $HOST_IP:$hp" >&2
  }
  start nb-iperf $IPERF_HOST_PORT $IPERF_PORT iperf3 -s -p $IPERF_PORT
  hp=$HTTP_HOST_PORT
  for p in published direct localhost; do
    start nb-http-$p $hp $HTTP_PORT httpd -f -p $HTTP_PORT -h /www
    hp=$((hp + 1))
  done
  echo "== 1b. run --rm --network $NET with the four servers running on it ($RUNS runs)" >&2
  # podman starts aardvark-dns for the first container of a network and stops
  # it after the last; berth-dns likewise (docker's DNS lives in dockerd).
  hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$E/run-busy.json" \
    -n "$NET, busy" "$X run --rm --network $NET $RUNFLAGS bench:latest true" >&2
  echo "   nftables tables in this namespace: $(nft list tables | awk '{print $2 "/" $3}' | tr '\n' ' ')" >&2
  proxies=0
  if [ $e = docker ]; then
    proxies=$(pgrep -c -P "$DOCKERD_PID" -x docker-proxy || true)
    echo "   docker-proxy processes: $proxies" >&2
    [ "$proxies" -gt 0 ] || { echo "bench: docker runs no userland proxy" >&2; exit 1; }
  fi

  # How a path reaches a server: sets n (the client's namespace), a, port.
  reach() { # PATH NAME CONTAINER_PORT
    case $1 in
    published) n=$CN a=$HOST_IP port=${hport[$2]} ;;
    direct) n=$CN a=${ip[$2]} port=$3 ;;
    localhost) n= a=127.0.0.1 port=${hport[$2]} ;;
    esac
  }
  # Ready when every path answers (the first answer also warms it up).
  for p in published direct localhost; do
    reach $p nb-iperf $IPERF_PORT
    ok=
    for _ in $(seq 20); do
      if $n iperf3 -c "$a" -p "$port" -t 1 >/dev/null 2>&1; then ok=1; break; fi
      sleep 0.5
    done
    [ -n "$ok" ] || { echo "bench: $e: iperf3 $p ($a:$port) does not answer" >&2; exit 1; }
    reach $p nb-http-$p $HTTP_PORT
    $n busybox wget -q -O /dev/null "http://$a:$port/" ||
      { echo "bench: $e: httpd $p ($a:$port) does not answer" >&2; exit 1; }
  done

  echo "== 2. iperf3, ${SECONDS_} s per run, $REPEATS runs per path" >&2
  : > "$E/iperf3.jsonl"
  for i in $(seq "$REPEATS"); do
    for p in published direct localhost; do
      reach $p nb-iperf $IPERF_PORT
      $n iperf3 -c "$a" -p "$port" -t "$SECONDS_" -J > "$E/iperf3.json"
      bps=$(jq '.end.sum_received.bits_per_second' "$E/iperf3.json")
      printf '   %-9s %s:%s  %.2f Gbit/s\n' $p "$a" "$port" "$(jq -n "$bps / 1e9")" >&2
      jq -c --arg p $p --arg load "$(cut -d' ' -f1 /proc/loadavg)" '{path: $p,
        bits_per_second: .end.sum_received.bits_per_second, retransmits: .end.sum_sent.retransmits,
        load: ($load | tonumber)}' "$E/iperf3.json" >> "$E/iperf3.jsonl"
    done
  done

  echo "== 3. wrk, ${SECONDS_} s per run, $REPEATS runs per path" >&2
  : > "$E/wrk.jsonl"
  for i in $(seq "$REPEATS"); do
    for p in published direct localhost; do
      reach $p nb-http-$p $HTTP_PORT
      $n wrk -t$WRK_THREADS -c$WRK_CONNS -d"${SECONDS_}s" -H 'Connection: close' -s "$W/wrk.lua" \
        "http://$a:$port/" > "$E/wrk.out"
      line=$(grep '^{' "$E/wrk.out" | tail -1)
      # A full conntrack table would drop new connections' first packets.
      ct=$(cat /proc/sys/net/netfilter/nf_conntrack_count)
      [ "$ct" -lt $(($(cat /proc/sys/net/netfilter/nf_conntrack_max) * 9 / 10)) ] ||
        echo "bench: warning: conntrack table nearly full ($ct entries): wrk's numbers are doubtful" >&2
      jq -c --arg p $p --argjson ct "$ct" --arg load "$(cut -d' ' -f1 /proc/loadavg)" '{path: $p} + . +
        {per_second: (.requests / (.duration_us / 1e6)), conntrack_entries: $ct,
         load: ($load | tonumber)}' <<<"$line" >> "$E/wrk.jsonl"
      tail -1 "$E/wrk.jsonl" | jq -r --arg ct "$ct" '"   \(.path | . + "         " | .[:9]) \(.per_second | round)/s  errors: connect \(.connect_errors) read \(.read_errors) write \(.write_errors) status \(.status_errors) timeout \(.timeouts); conntrack entries \($ct)"' >&2
    done
  done

  jq -n --arg engine $e --arg version "$version" --arg net $NET --argjson proxies "$proxies" \
    --slurpfile run "$E/run.json" --slurpfile busy "$E/run-busy.json" --slurpfile iperf "$E/iperf3.jsonl" --slurpfile wrk "$E/wrk.jsonl" '
    def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
      else (.[length / 2 - 1] + .[length / 2]) / 2 end;
    def bypath($xs; f): reduce ("published", "direct", "localhost") as $p ({};
      . + {($p): {runs: [$xs[] | select(.path == $p)], median: ([$xs[] | select(.path == $p) | f] | median)}});
    ($run[0].results | map({(.command): .}) | add) as $h |
    {engine: $engine, version: $version, userland_proxies: $proxies,
     run: {none_median: $h.none.median, net_median: $h[$net].median,
           cost: ($h[$net].median - $h.none.median), busy_median: $busy[0].results[0].median,
           busy_cost: ($busy[0].results[0].median - $h.none.median),
           hyperfine: ($run[0].results + $busy[0].results)},
     iperf3: bypath($iperf; .bits_per_second),
     wrk: bypath($wrk; .per_second)}' > "$W/result-$e.json"
  ;;
esac
