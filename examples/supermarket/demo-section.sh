#!/usr/bin/env bash
# The supermarket section of the demo (issue 12), for scripts/demo.sh:
#   source examples/supermarket/demo-section.sh
#   supermarket_demo "$(pwd)/target/x86_64-unknown-linux-musl/release/berth"
# or on its own: examples/supermarket/demo-section.sh [BERTH_BIN]. As root.
# Inside a throwaway "host" network namespace (and a "client" one joined to it by a veth
# pair), with a throwaway storage root:
#   1. build and load the images, `berth compose up -d`, `compose ps`;
#   2. 300 requests from the client to the published port: which replica answered, counts;
#   3. a burst of CPU-heavy requests: the payment service scales out (x-berth-autoscale);
#   4. kill -9 of one payment replica's process while a request loop runs: it is
#      replaced (compose ps, compose events), and the loop's failures are counted;
#   5. the database answers the inventory API and not the payment API;
#   6. `compose down -v`, and everything removed.
# Needs `berth compose`; berth-runtime, berth-monitor, berth-net and berth-dns beside BERTH_BIN.

supermarket_demo() {
  local bin=${1:-$(pwd)/target/x86_64-unknown-linux-musl/release/berth}
  local here
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  (
    set -euo pipefail
    bin=$(realpath "$bin")
    local work ns cns b c in cin
    work=$(mktemp -d /tmp/berth-supermarket-demo.XXXXXX)
    ns=berth-sm-demo-$$
    cns=berth-sm-client-$$
    export BERTH_CGROUP_PARENT=/berth-demo/supermarket
    b="nsenter --net=/run/netns/$ns -- $bin --root $work/root"
    c="$b compose -f $here/compose.yaml -p supermarket"
    in="nsenter --net=/run/netns/$ns --"
    cin="nsenter --net=/run/netns/$cns --"
    cleanup() {
      set +e
      [ -z "${loop_pid:-}" ] || kill "$loop_pid" 2>/dev/null
      [ -z "${events_pid:-}" ] || kill "$events_pid" 2>/dev/null
      $c down -v -t 1 >/dev/null 2>&1
      for id in $($b ps -aq --no-trunc 2>/dev/null); do $b rm -f -v "$id" >/dev/null 2>&1; done
      grep " $work" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
      find /sys/fs/cgroup/*/berth-demo/supermarket -depth -type d -exec rmdir {} \; 2>/dev/null
      rmdir /sys/fs/cgroup/*/berth-demo 2>/dev/null
      # berth-dns lingers 30 s after its last endpoint: end what runs in our namespaces.
      for n in "$cns" "$ns"; do
        p=$(ip netns pids "$n" 2>/dev/null)
        [ -z "$p" ] || kill -9 $p 2>/dev/null
        ip netns del "$n" 2>/dev/null
      done
      rm -rf "$work"
    }
    trap cleanup EXIT

    # The host and the client machine.
    ip netns add "$ns"
    ip netns add "$cns"
    ip -n "$ns" link set lo up
    ip -n "$cns" link set lo up
    ip -n "$ns" link add eth-client type veth peer name eth0 netns "$cns"
    ip -n "$ns" addr add 198.51.100.1/24 dev eth-client
    ip -n "$ns" link set eth-client up
    ip -n "$cns" addr add 198.51.100.2/24 dev eth0
    ip -n "$cns" link set eth0 up
    local url=http://198.51.100.1:8080

    # The replica a reply names (its hostname: the container's short id) -> its name.
    replica_of() { sed -n 's/.*"replica":"\([^"]*\)".*/\1/p'; }
    names() { $b ps -a --no-trunc --format '{{.ID}} {{.Names}}' | while read -r id name; do echo "${id:0:12} $name"; done; }
    count_by_replica() { # FILE of replies -> "name: count" lines
      local map name
      map=$(names)
      replica_of < "$1" | sort | uniq -c | while read -r n h; do
        name=$(awk -v h="$h" '$1 == h {print $2}' <<<"$map" | head -1)
        printf '   %-38s %4d\n' "${name:+$name (}$h${name:+)}" "$n"
      done
    }
    # The root holds this project only: the service label is enough.
    payments() { $b ps --filter label=com.docker.compose.service=payment --format '{{.Names}}' | sort; }

    $b compose version >/dev/null 2>&1 || { echo "demo-section.sh: $bin has no compose command" >&2; exit 1; }
    echo "== supermarket: images (built from /bin/busybox), berth compose up -d"
    # In the namespace: the builds' RUN steps are containers too.
    "$here/build-images.sh" $in "$bin" --root "$work/root" | awk '{print "   " $1, $2}'
    $c up -d
    $c ps
    # Every reply has to come back through payment -> inventory -> db.
    for _ in $(seq 100); do
      $cin timeout 2 busybox wget -q -O /dev/null "$url/cgi-bin/pay?item=apples" 2>/dev/null && break
      sleep 0.1
    done
    echo "-- one request from the client 198.51.100.2 to the published port $url:"
    $cin timeout 5 busybox wget -q -O- "$url/cgi-bin/pay?item=apples"
    echo "-- saffron is out of stock:"
    $cin timeout 5 busybox wget -q -O- "$url/cgi-bin/pay?item=saffron" 2>&1 || true

    echo
    echo "== 300 requests to $url/cgi-bin/who: who answered"
    : > "$work/who.out"
    for _ in $(seq 300); do
      $cin timeout 2 busybox wget -q -O- "$url/cgi-bin/who" >> "$work/who.out" 2>/dev/null || echo '{"replica":"FAILED"}' >> "$work/who.out"
    done
    count_by_replica "$work/who.out"

    echo
    echo "== a burst: 8 clients asking for 300 ms of CPU each, for 20 s (autoscale: 3..6 replicas at 50% CPU)"
    $c events > "$work/events.out" 2>&1 &
    events_pid=$!
    local end burst=() i now last=
    end=$(($(date +%s) + 20))
    for i in $(seq 8); do
      (while [ "$(date +%s)" -lt "$end" ]; do
        $cin timeout 5 busybox wget -q -O /dev/null "$url/cgi-bin/burn?ms=300" 2>/dev/null || true
      done) &
      burst+=($!)
    done
    while [ "$(date +%s)" -lt "$end" ]; do
      now=$(payments | wc -l)
      [ "$now" = "$last" ] || echo "   $(date +%T) payment replicas: $now"
      last=$now
      sleep 1
    done
    wait "${burst[@]}" || true
    $c ps
    echo "-- why (compose events):"
    grep -i 'scale' "$work/events.out" | tail -5 || echo "   (no scaling event)"
    echo "   (after scale_down_after, 30 s of calm, it scales back in to 3)"

    echo
    echo "== kill -9 of one payment replica's process, while a client sends requests"
    : > "$work/loop.out"
    (for _ in $(seq 400); do
      $cin timeout 2 busybox wget -q -O- "$url/cgi-bin/who" >> "$work/loop.out" 2>/dev/null || echo '{"replica":"FAILED"}' >> "$work/loop.out"
    done) &
    loop_pid=$!
    sleep 1
    local victim pid
    victim=$(payments | head -1)
    pid=$($b inspect --format '{{.State.Pid}}' "$victim")
    echo "-- kill -9 $pid ($victim)"
    kill -9 "$pid"
    for _ in $(seq 50); do
      [ "$($b inspect --format '{{.State.Status}}' "$victim" 2>/dev/null)" = running ] || break
      sleep 0.1
    done
    sleep 3
    $c ps
    wait "$loop_pid" || true
    loop_pid=
    echo "-- the client's 400 requests, by replica (FAILED: no answer):"
    count_by_replica "$work/loop.out"
    echo "-- compose events:"
    grep -v -i 'exec_\|health_status: healthy' "$work/events.out" | tail -12 || true
    kill "$events_pid" 2>/dev/null || true
    events_pid=

    echo
    echo "== security: db is on the internal network \"data\", shared with inventory only"
    local inv pay
    inv=$($b ps --filter label=com.docker.compose.service=inventory --format '{{.Names}}' | head -1)
    pay=$(payments | head -1)
    echo "-- $inv -> db:"
    $b exec "$inv" timeout 2 wget -q -O- 'http://db/cgi-bin/get?key=milk'
    echo "-- $pay -> db:"
    if $b exec "$pay" timeout 2 wget -q -O- 'http://db/cgi-bin/get?key=milk' 2>&1; then
      echo "payment reached the database!" >&2
      exit 1
    fi

    echo
    echo "== berth compose down -v"
    $c down -v
    $b ps -a
    $b network ls
  )
}

# Run directly: the section alone.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  [ "$(id -u)" = 0 ] || { echo "demo-section.sh: run as root" >&2; exit 1; }
  supermarket_demo "$@"
fi
