#!/usr/bin/env bash
# A local registry for trying push and pull: Debian's docker-registry (apt-get install
# docker-registry) on 127.0.0.1:PORT, storing in DIR, plain HTTP (berth uses HTTP for a
# registry on localhost, as docker does).
#   scripts/registry.sh start DIR [PORT]   (default 5000; returns once it answers)
#   scripts/registry.sh stop DIR           (ends it and removes DIR)
set -euo pipefail
cmd=${1:?usage: $0 start|stop DIR [PORT]}
dir=${2:?usage: $0 start|stop DIR [PORT]}
port=${3:-5000}
case $cmd in
start)
  command -v docker-registry >/dev/null || { echo "registry.sh: docker-registry missing (apt-get install docker-registry)" >&2; exit 1; }
  mkdir -p "$dir/data"
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$dir/data" "$port" > "$dir/config.yml"
  docker-registry serve "$dir/config.yml" > "$dir/log" 2>&1 &
  echo $! > "$dir/pid"
  for _ in $(seq 100); do
    if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then exit 0; fi
    sleep 0.05
  done
  echo "registry.sh: no answer on 127.0.0.1:$port (see $dir/log)" >&2
  exit 1
  ;;
stop)
  [ -f "$dir/pid" ] && kill "$(cat "$dir/pid")" 2>/dev/null || true
  rm -rf "$dir"
  ;;
*) echo "usage: $0 start|stop DIR [PORT]" >&2; exit 2 ;;
esac
