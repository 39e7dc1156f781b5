#!/usr/bin/env bash
# The supermarket without `berth compose`: the images, networks and containers that
# compose.yaml describes, made by hand with `berth network create` and `berth run`
# (two payment replicas, each on its own published port), then checks that
#   - payment -> inventory -> db answers, each reply naming the replica that answered;
#   - db is reachable from inventory (on "data") and not from payment (not on "data");
#   - the healthchecks turn healthy; `berth inspect` gives each replica's pid.
# All inside a throwaway network namespace with a throwaway storage root; everything is
# removed afterwards. As root.
#   examples/supermarket/smoke-run.sh [BERTH_BIN]   (default: target/x86_64-unknown-linux-musl/release/berth,
#   with berth-runtime, berth-monitor, berth-net and berth-dns beside it)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/../.."
[ "$(id -u)" = 0 ] || { echo "smoke-run.sh: run as root" >&2; exit 1; }
BIN=$(realpath "${1:-${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-musl/release/berth}")
[ -x "$BIN" ] || { echo "smoke-run.sh: no berth at $BIN (cargo build --release)" >&2; exit 1; }
[ "$(cat /proc/sys/net/ipv4/ip_forward)" = 0 ] || { echo "smoke-run.sh: the host's ip_forward is on to begin with" >&2; exit 1; }

W=$(mktemp -d /tmp/berth-supermarket.XXXXXX)
NS=berth-sm-$$
CG=/berth-sm-$$
ip netns add "$NS"
ip -n "$NS" link set lo up
export BERTH_CGROUP_PARENT=$CG
B="nsenter --net=/run/netns/$NS -- $BIN --root $W/root"
IN="nsenter --net=/run/netns/$NS --"
cleanup() {
  set +e
  for id in $($B ps -aq --no-trunc 2>/dev/null); do $B rm -f -v "$id" >/dev/null 2>&1; done
  for n in sm_front sm_back sm_data; do $B network rm $n >/dev/null 2>&1; done
  $B volume rm sm_db-data >/dev/null 2>&1
  grep " $W" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
  find /sys/fs/cgroup/*/"${CG#/}" -depth -type d -exec rmdir {} \; 2>/dev/null
  # berth-dns lingers 30 s after its last endpoint: end what runs in our namespace.
  p=$(ip netns pids "$NS" 2>/dev/null)
  [ -z "$p" ] || kill -9 $p 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  rm -rf "$W"
  [ "$(cat /proc/sys/net/ipv4/ip_forward)" = 0 ] || echo "smoke-run.sh: the host's ip_forward turned on!" >&2
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  if [ -n "${SMOKE_PAUSE:-}" ]; then echo "paused: $B ..." >&2; sleep "$SMOKE_PAUSE"; fi
  exit 1
}

echo "== images"
# In the namespace: the builds' RUN steps are containers too.
"$HERE/build-images.sh" $IN $BIN --root "$W/root"
$B images

echo "== networks (compose.yaml's front, back, data internal)"
$B network create sm_front >/dev/null
$B network create sm_back >/dev/null
$B network create --internal sm_data >/dev/null
$B network ls

HC=(--init --health-cmd 'wget -q -O /dev/null http://127.0.0.1/health' --health-interval 1s
  --health-timeout 1s --health-retries 2)
echo "== containers"
$B run -d --name sm-db-1 --network name=sm_data,alias=db -v sm_db-data:/data "${HC[@]}" \
  -m 32m supermarket/db:1 >/dev/null
$B run -d --name sm-inventory-1 --network name=sm_data,alias=inventory \
  --network name=sm_back,alias=inventory "${HC[@]}" -m 32m supermarket/inventory:1 >/dev/null
for i in 1 2; do
  $B run -d --name sm-payment-$i --network name=sm_back,alias=payment \
    --network name=sm_front,alias=payment -p 808$i:80 "${HC[@]}" --cpus 0.5 -m 32m \
    supermarket/payment:1 >/dev/null
done
for _ in $(seq 100); do
  n=0
  for c in sm-db-1 sm-inventory-1 sm-payment-1 sm-payment-2; do
    [ "$($B inspect --format '{{.State.Health.Status}}' $c)" = healthy ] && n=$((n + 1))
  done
  [ $n = 4 ] && break
  sleep 0.1
done
$B ps
[ $n = 4 ] || fail "not every container turned healthy"

echo "== payment -> inventory -> db, through the published ports"
declare -A host
for c in sm-db-1 sm-inventory-1 sm-payment-1 sm-payment-2; do
  host[$c]=$($B inspect --format '{{.Config.Hostname}}' $c)
  echo "   $c: hostname ${host[$c]}, pid $($B inspect --format '{{.State.Pid}}' $c)"
done
for i in 1 2; do
  r=$($IN curl -sS -m 5 "http://127.0.0.1:808$i/cgi-bin/pay?item=apples") || fail "payment-$i: $r"
  echo "   127.0.0.1:808$i -> $r"
  [ "$(jq -r .replica <<<"$r")" = "${host[sm-payment-$i]}" ] || fail "payment-$i's reply names another replica"
  [ "$(jq -r .inventory_replica <<<"$r")" = "${host[sm-inventory-1]}" ] || fail "inventory_replica"
  [ "$(jq -r .db_replica <<<"$r")" = "${host[sm-db-1]}" ] || fail "db_replica"
  [ "$(jq -r '.stock, .paid, .version' <<<"$r" | tr '\n' ' ')" = "42 true 1 " ] || fail "stock/paid/version"
done
r=$($IN curl -sS -m 5 -w " HTTP %{http_code}" "http://127.0.0.1:8081/cgi-bin/pay?item=saffron")
echo "   saffron (out of stock) -> $r"
echo "$r" | grep -q '409' || fail "an item out of stock is not refused with 409"
r=$($IN curl -sS -m 5 "http://127.0.0.1:8082/cgi-bin/who")
echo "   who -> $r"
r=$($IN curl -sS -m 10 "http://127.0.0.1:8082/cgi-bin/burn?ms=300")
echo "   burn -> $r"
[ "$(jq -r .burned_ms <<<"$r")" = 300 ] || fail "burn"

echo "== the payment replicas by the service name, from a container on back"
$B run --rm --network sm_back supermarket/payment:1 sh -c \
  'for i in 1 2 3 4; do timeout 2 wget -q -O- http://payment/cgi-bin/who; done'

echo "== db answers inventory (on data) and not payment (not on data)"
$B exec sm-inventory-1 timeout 2 wget -q -O- 'http://db/cgi-bin/get?key=milk'
if $B exec sm-payment-1 timeout 2 wget -q -O- 'http://db/cgi-bin/get?key=milk' 2>/dev/null; then
  fail "payment reached db"
fi
echo "   payment -> db: refused (as it should be)"
if $IN curl -sS -m 2 "http://$($B inspect --format '{{.NetworkSettings.Networks.sm_data.IPAddress}}' sm-db-1)/health" 2>/dev/null; then
  echo "   note: the host reaches db's address on the internal network (as with docker)"
fi

echo "== kill -9 of payment-2's process"
pid=$($B inspect --format '{{.State.Pid}}' sm-payment-2)
kill -9 "$pid"
for _ in $(seq 50); do [ "$($B inspect --format '{{.State.Status}}' sm-payment-2)" = exited ] && break; sleep 0.1; done
$B ps -a --format '{{.Names}} {{.Status}}'
[ "$($B inspect --format '{{.State.Status}}' sm-payment-2)" = exited ] || fail "payment-2 did not exit"

echo "== stop of payment-1 (--init: httpd gets the SIGTERM)"
t0=$(date +%s%N)
$B stop -t 3 sm-payment-1 >/dev/null
echo "   berth stop -t 3 took $((($(date +%s%N) - t0) / 1000000)) ms, exit code $($B inspect --format '{{.State.ExitCode}}' sm-payment-1)"
echo "smoke run: ok"
