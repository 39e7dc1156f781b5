#!/bin/bash
# Cold-pull benchmark: a 5-layer ~100 MB image (gzip, incompressible data) from a local
# docker-registry, timed with hyperfine against skopeo and podman.
# Usage: bash tests/images/bench-pull.sh path/to/release/berth [runs]
set -euo pipefail
B=$(realpath "$1")
RUNS=${2:-10}
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d /tmp/berth-bench.XXXXXX)
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
PM="podman --root $W/pm --runroot $W/pmrun --storage-driver overlay --events-backend none"
cleanup() {
	kill "$REG" 2>/dev/null || true
	$PM rmi -af >/dev/null 2>&1 || true
	$PM system reset -f >/dev/null 2>&1 || true
	rm -rf "$W"
}
mkdir -p "$W/reg"
printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' "$W/reg/data" "$PORT" >"$W/reg/config.yml"
docker-registry serve "$W/reg/config.yml" >"$W/reg/log" 2>&1 &
REG=$!
trap cleanup EXIT
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.05; done
IMG=127.0.0.1:$PORT/bench/img
python3 "$HERE/mkimg.py" "$W/img1.tar" $IMG:v1 1
python3 "$HERE/mkimg.py" "$W/img2.tar" $IMG:v2 2
"$B" --root "$W/src" load -i "$W/img1.tar" >/dev/null
"$B" --root "$W/src" load -i "$W/img2.tar" >/dev/null
"$B" --root "$W/src" push -q $IMG:v1 >/dev/null
"$B" --root "$W/src" push -q $IMG:v2 >/dev/null

hyperfine -w 2 -r "$RUNS" --export-markdown "$W/cold.md" \
	-n "berth pull" --prepare "rm -rf $W/broot" "$B --root $W/broot pull -q $IMG:v1" \
	-n "skopeo copy docker:// oci:" --prepare "rm -rf $W/oci" "skopeo copy -q --src-tls-verify=false docker://$IMG:v1 oci:$W/oci:x" \
	-n "podman pull (overlay)" --prepare "$PM rmi -af >/dev/null 2>&1 || true" "$PM pull -q --tls-verify=false $IMG:v1"
cat "$W/cold.md"

rm -rf "$W/broot"
"$B" --root "$W/broot" pull -q $IMG:v1 >/dev/null
echo "second image sharing 4 of 5 layers:"
"$B" --root "$W/broot" pull $IMG:v2 2>&1 | grep -E 'Already exists|Download complete'
