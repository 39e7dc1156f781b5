#!/usr/bin/env bash
# Builds the supermarket's images from this machine's busybox-static (/bin/busybox, every
# applet a symlink to it) and the scripts under images/:
#   supermarket/payment:1       the payment gateway API (calls inventory)
#   supermarket/payment:2       the same, replying "version":2 (rolling updates)
#   supermarket/payment:broken  the same, replying "version":0, with no /health: its
#                               healthcheck fails (rollbacks)
#   supermarket/inventory:1     the inventory API (calls db)
#   supermarket/db:1            the database (stock levels from files under /data)
# Each image has two layers: busybox (the same in all five) and the service's own.
#
# Into berth (an ENGINE word named berth, no --out): the busybox layer is loaded as the
# image supermarket/busybox:1 (a docker-archive made here), and each image is built
# FROM it with `berth build` and its Dockerfile, images/<service>-<version>.Dockerfile.
# Otherwise (docker, podman, or --out): each image is assembled here as a docker-archive
# tarball (the same files and config) and loaded with `ENGINE... load -i`.
# Everything is deterministic (fixed mtimes, owners, modes and order; the builds with
# SOURCE_DATE_EPOCH), so the same busybox gives the same image ids on every run and
# machine. No network, no python: bash, tar, sha256sum, jq.
#
# Usage: examples/supermarket/build-images.sh [--out DIR] [--no-load] [ENGINE...]
#   ENGINE...  the engine command with its global flags (default: berth, with
#              --root "$BERTH_ROOT" if BERTH_ROOT is set), e.g.
#                build-images.sh target/x86_64-unknown-linux-musl/release/berth --root /tmp/b
#                build-images.sh docker -H unix:///tmp/d/docker.sock
#                build-images.sh podman --root /tmp/p/root --runroot /tmp/p/run
#   --out DIR  keep the tarballs in DIR (one per image, named like
#              supermarket-payment-1.tar); default: a temporary directory, removed
#   --no-load  only build (needs --out)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT= LOAD=1
while [ $# -gt 0 ]; do
  case $1 in
  --out) OUT=${2:?--out needs a directory}; shift 2 ;;
  --no-load) LOAD=; shift ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  --) shift; break ;;
  -*) echo "build-images.sh: unknown option $1" >&2; exit 2 ;;
  *) break ;;
  esac
done
if [ $# -gt 0 ]; then
  ENGINE=("$@")
else
  ENGINE=(berth)
  [ -z "${BERTH_ROOT:-}" ] || ENGINE+=(--root "$BERTH_ROOT")
fi
[ -n "$LOAD" ] || [ -n "$OUT" ] || { echo "build-images.sh: --no-load needs --out DIR" >&2; exit 2; }
BUILD=
if [ -z "$OUT" ]; then
  for w in "${ENGINE[@]}"; do [ "${w##*/}" != berth ] || BUILD=1; done
fi
for t in tar sha256sum jq; do
  command -v $t >/dev/null || { echo "build-images.sh: $t is missing (Debian: tar coreutils jq)" >&2; exit 1; }
done
BB=${BUSYBOX:-/bin/busybox}
# Static: the images hold no libraries.
[ -x "$BB" ] && ! grep -q 'ld-linux' <(head -c 4096 "$BB" | tr -c '[:print:]' '\n') ||
  { echo "build-images.sh: $BB is not a static busybox (Debian: busybox-static)" >&2; exit 1; }

W=$(mktemp -d /tmp/supermarket-images.XXXXXX)
trap 'rm -rf "$W"' EXIT
[ -n "$OUT" ] || OUT=$W/out
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# 2024-01-01T00:00:00Z: every file's mtime and the images' "created".
EPOCH=1704067200
CREATED=2024-01-01T00:00:00Z

# A deterministic tar of DIR's contents (sorted, fixed owner and mtime, ustar).
det_tar() { # DIR OUT.tar
  tar -C "$1" --sort=name --mtime=@$EPOCH --owner=0 --group=0 --numeric-owner \
    --format=ustar -cf "$2" .
}

# Layer 1: busybox, a link per applet, /etc/passwd and /etc/group, /tmp, /root.
base=$W/base
mkdir -p "$base"/{bin,etc,tmp,root}
cp "$BB" "$base/bin/busybox"
for a in $("$BB" --list); do [ "$a" = busybox ] || ln -s busybox "$base/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$base/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$base/etc/group"
chmod 755 "$base" "$base"/{bin,etc,root} "$base/bin/busybox"
chmod 1777 "$base/tmp"
chmod 644 "$base"/etc/{passwd,group}
det_tar "$base" "$W/base.tar"

# Into berth: busybox alone as supermarket/busybox:1, then `berth build` of each image.
if [ -n "$BUILD" ]; then
  l1=$(sha256sum "$W/base.tar" | cut -d' ' -f1)
  a=$W/busybox
  mkdir -p "$a/$l1"
  cp "$W/base.tar" "$a/$l1/layer.tar"
  jq -cn --arg created $CREATED --arg l1 "sha256:$l1" '{
      architecture: "amd64", os: "linux", created: $created,
      config: {Env: ["PATH=/bin"], Cmd: ["sh"]},
      rootfs: {type: "layers", diff_ids: [$l1]},
      history: [{created: $created, created_by: "busybox-static"}]
    }' > "$a/config.json"
  c=$(sha256sum "$a/config.json" | cut -d' ' -f1)
  mv "$a/config.json" "$a/$c.json"
  jq -cn --arg c "$c.json" --arg l1 "$l1/layer.tar" \
    '[{Config: $c, RepoTags: ["supermarket/busybox:1"], Layers: [$l1]}]' > "$a/manifest.json"
  det_tar "$a" "$W/busybox.tar"
  "${ENGINE[@]}" load -i "$W/busybox.tar" >/dev/null
  for spec in payment:1 payment:2 payment:broken inventory:1 db:1; do
    id=$(SOURCE_DATE_EPOCH=$EPOCH "${ENGINE[@]}" build -q -t "supermarket/$spec" \
      -f "$HERE/images/${spec%:*}-${spec#*:}.Dockerfile" "$HERE/images")
    printf 'supermarket/%s %s\n' "$spec" "$id"
  done
  exit 0
fi

# Layer 2 of an image: the shared CGI helpers, common/www, the service's files, its
# /etc/supermarket. Modes are set here, not taken from the checkout.
app_layer() { # SERVICE VERSION BROKEN(0|1) OUT.tar
  local s=$1 v=$2 broken=$3 d=$W/app-$1-$2
  mkdir -p "$d"/{etc,usr/lib,www}
  cp -R "$HERE/images/common/www/." "$d/www/"
  [ ! -d "$HERE/images/$s/www" ] || cp -R "$HERE/images/$s/www/." "$d/www/"
  cp "$HERE/images/common/lib.sh" "$d/usr/lib/supermarket.sh"
  printf 'SERVICE=%s\nVERSION=%s\n' "$s" "$v" > "$d/etc/supermarket"
  printf '<html><body>supermarket %s, version %s</body></html>\n' "$s" "$v" > "$d/www/index.html"
  if [ "$s" = db ]; then
    mkdir -p "$d/srv" "$d/data"
    cp "$HERE/images/db/start" "$d/srv/start"
    cp -R "$HERE/images/db/seed" "$d/srv/seed"
  fi
  [ "$broken" = 0 ] || rm -f "$d/www/health"
  find "$d" -type d -exec chmod 755 {} +
  find "$d" -type f -exec chmod 644 {} +
  find "$d/www/cgi-bin" -type f -exec chmod 755 {} +
  [ ! -f "$d/srv/start" ] || chmod 755 "$d/srv/start"
  det_tar "$d" "$4"
}

# One docker-archive (docker's own `save` layout: <config sha>.json, <diff id>/layer.tar,
# manifest.json, repositories), loadable by berth, docker and podman.
image() { # SERVICE VERSION TAG BROKEN
  local s=$1 v=$2 tag=$3 broken=$4 a=$W/img cmd
  mkdir -p "$a"
  app_layer "$s" "$v" "$broken" "$W/app.tar"
  local l1 l2
  l1=$(sha256sum "$W/base.tar" | cut -d' ' -f1)
  l2=$(sha256sum "$W/app.tar" | cut -d' ' -f1)
  mkdir -p "$a/$l1" "$a/$l2"
  cp "$W/base.tar" "$a/$l1/layer.tar"
  mv "$W/app.tar" "$a/$l2/layer.tar"
  if [ "$s" = db ]; then cmd='["/srv/start"]'; else cmd='["httpd","-f","-p","80","-h","/www"]'; fi
  jq -cn --arg created $CREATED --argjson cmd "$cmd" --arg s "$s" --arg v "$v" \
    --arg l1 "sha256:$l1" --arg l2 "sha256:$l2" '{
      architecture: "amd64", os: "linux", created: $created,
      config: {
        Env: ["PATH=/bin"], Cmd: $cmd, WorkingDir: "/", ExposedPorts: {"80/tcp": {}},
        Healthcheck: {Test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/health"],
                      Interval: 1000000000, Timeout: 1000000000, Retries: 2},
        Labels: {"org.opencontainers.image.title": ("supermarket " + $s),
                 "org.opencontainers.image.version": $v}
      },
      rootfs: {type: "layers", diff_ids: [$l1, $l2]},
      history: [{created: $created, created_by: "busybox-static"},
                {created: $created, created_by: ("examples/supermarket/images/" + $s)}]
    }' > "$a/config.json"
  local c
  c=$(sha256sum "$a/config.json" | cut -d' ' -f1)
  mv "$a/config.json" "$a/$c.json"
  local repo=${tag%:*} t=${tag##*:}
  jq -cn --arg c "$c.json" --arg tag "$tag" --arg l1 "$l1/layer.tar" --arg l2 "$l2/layer.tar" \
    '[{Config: $c, RepoTags: [$tag], Layers: [$l1, $l2]}]' > "$a/manifest.json"
  jq -cn --arg repo "$repo" --arg t "$t" --arg l2 "$l2" '{($repo): {($t): $l2}}' > "$a/repositories"
  local f
  f=$OUT/$(printf '%s' "$tag" | tr '/:' '--').tar
  det_tar "$a" "$f"
  rm -rf "$a"
  printf '%s sha256:%s %s\n' "$tag" "$c" "$f"
  if [ -n "$LOAD" ]; then
    "${ENGINE[@]}" load -i "$f" >/dev/null
  fi
}

image payment 1 supermarket/payment:1 0
image payment 2 supermarket/payment:2 0
image payment 0 supermarket/payment:broken 1
image inventory 1 supermarket/inventory:1 0
image db 1 supermarket/db:1 0
