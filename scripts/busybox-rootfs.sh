#!/usr/bin/env bash
# A minimal root filesystem: Debian's busybox-static with a link for every applet,
# /etc/passwd and /etc/group (root, and "app" 1000 with supplementary groups), /tmp.
#   scripts/busybox-rootfs.sh DIR        make the tree in DIR
#   scripts/busybox-rootfs.sh OUT.tar    make it as a tar archive (for `berth import`)
# Needs busybox-static (apt-get install busybox-static).
set -euo pipefail
out=${1:?usage: $0 DIR|OUT.tar}
[ -x /bin/busybox ] || { echo "busybox-rootfs.sh: /bin/busybox missing (apt-get install busybox-static)" >&2; exit 1; }
case $out in
*.tar) dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT ;;
*) dir=$out ;;
esac
mkdir -p "$dir"/{bin,proc,sys,dev,etc,tmp,root,home/app}
chmod 1777 "$dir/tmp"
cp /bin/busybox "$dir/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$dir/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n' > "$dir/etc/passwd"
printf 'root:x:0:\napp:x:1000:\nwheel:x:10:app\n' > "$dir/etc/group"
chown 1000:1000 "$dir/home/app"
if [ "$dir" != "$out" ]; then
  tar -C "$dir" -cf "$out" .
fi
