#!/usr/bin/env bash
# tests/vm/v2vm.sh - Berth's cgroup v2 test machine: runs a command in a throwaway QEMU
# guest whose only cgroup hierarchy is cgroup2 at /sys/fs/cgroup (every controller on).
#
#   tests/vm/v2vm.sh PAYLOAD_DIR CMD [ARGS...]   run CMD in the guest, exit with its status
#   tests/vm/v2vm.sh - CMD [ARGS...]             the same without a payload
#   tests/vm/v2vm.sh --prepare                   only download and build the image (cached)
#   tests/vm/v2vm.sh --help
#
# The guest: Debian's cloud kernel and busybox-static (both unpacked from their .debs into
# the cache, never installed), an initramfs with the modules container tests use, PAYLOAD_DIR
# copied to /payload (owners and modes kept). CMD runs as root in /payload with stdin
# /dev/null; its stdout and stderr are pipes, relayed to this script's stdout and stderr over
# two virtio-serial ports. / is a bind mount of the initramfs, so pivot_root(2) works.
#
# Exit status: CMD's; 124 when V2VM_TIMEOUT runs out; 125 when the machine itself fails (the
# end of the kernel log goes to stderr).
#
# Knobs (environment):
#   V2VM_CACHE=/var/cache/berth-vm   downloaded .debs, unpacked kernel, built images
#   V2VM_KERNEL_PKG=linux-image-cloud-amd64   kernel package (a meta package is followed)
#   V2VM_TIMEOUT=900       seconds before the machine is killed (exit 124)
#   V2VM_MEM=              guest RAM in MiB (default: 1024, more for a large payload)
#   V2VM_SMP=1             vCPUs (TCG: more only slows a 2-core host down)
#   V2VM_ACCEL=tcg         tcg, or kvm where KVM can boot a guest
#   V2VM_LOAD="overlay veth bridge br_netfilter"   modules loaded at boot (the others in
#                          the image load on demand)
#   V2VM_MODULES=          more modules to put in the image (their dependencies follow)
#   V2VM_CONTROLLERS=all   controllers written to the root's cgroup.subtree_control
#   V2VM_CGROUP_OPTS=nsdelegate,memory_recursiveprot   cgroup2 mount options
#   V2VM_APPEND=           more kernel command line
#   V2VM_VERBOSE=0         1: kernel log live on stderr, and timings
#   V2VM_KEEP=0            1: keep the run directory (console log, initramfs) and say where
set -euo pipefail

CACHE=${V2VM_CACHE:-/var/cache/berth-vm}
KERNEL_PKG=${V2VM_KERNEL_PKG:-linux-image-cloud-amd64}
TIMEOUT=${V2VM_TIMEOUT:-900}
SMP=${V2VM_SMP:-1}
ACCEL=${V2VM_ACCEL:-tcg}
LOAD=${V2VM_LOAD-overlay veth bridge br_netfilter}
CONTROLLERS=${V2VM_CONTROLLERS:-all}
CGROUP_OPTS=${V2VM_CGROUP_OPTS-nsdelegate,memory_recursiveprot}
VERBOSE=${V2VM_VERBOSE:-0}

# What container tests touch: filesystems, links, netfilter (nft and the iptables shims),
# traffic control. virtio_console carries the payload's output.
IMAGE_MODULES="virtio_pci virtio_console
  overlay squashfs fuse loop
  veth bridge br_netfilter dummy macvlan ipvlan vxlan tun
  nf_tables nft_chain_nat nft_nat nft_masq nft_ct nft_redir nft_reject_inet nft_fib_inet
  nft_fib_ipv4 nft_fib_ipv6 nft_limit nft_compat nf_conntrack_netlink
  ip_tables iptable_filter iptable_nat iptable_mangle ip6_tables ip6table_filter ip6table_nat
  xt_MASQUERADE xt_conntrack xt_addrtype xt_comment xt_mark xt_multiport xt_nat
  sch_netem sch_htb cls_bpf act_bpf ${V2VM_MODULES:-}"

say() { echo "v2vm: $*" >&2; }
fail() { say "$*"; exit 125; }

usage() { sed -n '2,/^set -euo pipefail/{/^set/d; s/^# \{0,1\}//; p}' "$0"; }

# --- host tools --------------------------------------------------------------------------

apt_quiet() { DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 "$@" >&2; }

install_tools() {
  local need=()
  command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
  command -v cpio >/dev/null || need+=(cpio)
  command -v flock >/dev/null || need+=(util-linux)
  [ ${#need[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || fail "missing ${need[*]}: install them, or run as root"
  say "installing ${need[*]}"
  apt_quiet install -y --no-install-recommends "${need[@]}" ||
    { apt_quiet update && apt_quiet install -y --no-install-recommends "${need[@]}"; } ||
    fail "apt-get install ${need[*]} failed"
}

# The versioned linux-image-X package behind $KERNEL_PKG (meta packages depend on it).
# apt-cache takes seconds: the answer is kept until apt's package lists change.
kernel_package() {
  local p=$KERNEL_PKG next hops=0 memo=$CACHE/kernel-of-$KERNEL_PKG
  if [ -s "$memo" ] && [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -newer "$memo" 2>/dev/null | head -n 1)" ]; then
    cat "$memo"
    return 0
  fi
  apt-cache show "$p" >/dev/null 2>&1 || apt_quiet update || true
  apt-cache show "$p" >/dev/null 2>&1 || return 1
  while next=$(apt-cache depends "$p" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }') &&
    [ -n "$next" ] && [ $hops -lt 5 ]; do
    p=$next hops=$((hops + 1))
  done
  echo "$p" | tee "$memo"
}

# fetch PKG: path of PKG's .deb in the cache, downloaded once.
fetch() {
  local deb
  deb=$(ls "$CACHE/debs/$1"_*.deb 2>/dev/null | head -n 1) || true
  if [ -z "$deb" ]; then
    mkdir -p "$CACHE/debs"
    (cd "$CACHE/debs" && apt-get download -q -o APT::Sandbox::User=root "$1" >&2) ||
      (cd "$CACHE/debs" && apt_quiet update && apt-get download -q -o APT::Sandbox::User=root "$1" >&2) ||
      fail "apt-get download $1 failed"
    deb=$(ls "$CACHE/debs/$1"_*.deb | head -n 1)
  fi
  echo "$deb"
}

# unpack PKG: directory holding PKG's files (cached).
unpack() {
  local dir=$CACHE/unpacked/$1 deb
  if [ ! -e "$dir/.done" ]; then
    deb=$(fetch "$1")
    rm -rf "$dir" && mkdir -p "$dir"
    dpkg-deb -x "$deb" "$dir" || fail "cannot unpack $deb"
    touch "$dir/.done"
  fi
  echo "$dir"
}

# --- the guest's init ----------------------------------------------------------------------

# /init, PID 1 on the initramfs. pivot_root(2) refuses a root without a parent mount, which
# the initramfs is, so it re-enters itself through a bind mount and goes on as /sbin/vm-init.
guest_init() {
  cat <<'INIT'
#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mkdir -p /.self
mount --bind / /.self && cd /.self && mount --move . / && exec chroot . /sbin/vm-init
echo "v2vm: cannot re-root the initramfs" >/dev/console
poweroff -f
INIT
}

guest_vm_init() {
  cat <<'INIT'
#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb
umask 022
rmdir /.self 2>/dev/null
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts /dev/pts
ln -sf pts/ptmx /dev/ptmx 2>/dev/null
mount -t tmpfs -o mode=1777,nosuid,nodev shm /dev/shm
mount -t mqueue mqueue /dev/mqueue
mount -t tmpfs -o mode=1777 tmp /tmp
mount -t tmpfs -o mode=0755 run /run
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mount -t fusectl fusectl /sys/fs/fuse/connections 2>/dev/null
. /vm/settings
hostname berth-vm
ip link set lo up

halt_now() { sync; poweroff -f; }
modprobe virtio_pci && modprobe virtio_console || { echo "v2vm: no virtio console"; halt_now; }
# port NAME: the device of the virtio-serial port the host named NAME.
port() {
  for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name" 2>/dev/null)" = "$1" ] && { echo "/dev/${p##*/}"; return 0; }
  done
  return 1
}
tries=0
until OUT=$(port berth.out) && ERR=$(port berth.err) && RC=$(port berth.rc) &&
  [ -c "$OUT" ] && [ -c "$ERR" ] && [ -c "$RC" ]; do
  tries=$((tries + 1))
  [ $tries -gt 200 ] && { echo "v2vm: virtio ports missing"; halt_now; }
  sleep 0.05
done
# A port opens once at a time: init holds all three, the payload gets pipes.
exec 5>"$OUT" 6>"$ERR" 7>"$RC"

for m in $LOAD; do modprobe "$m" || echo "v2vm: modprobe $m failed" >&6; done
mount -t cgroup2 ${CGROUP_OPTS:+-o "$CGROUP_OPTS"} cgroup2 /sys/fs/cgroup 2>/dev/null ||
  mount -t cgroup2 cgroup2 /sys/fs/cgroup || echo "v2vm: cannot mount cgroup2" >&6
[ "$CONTROLLERS" = all ] && CONTROLLERS=$(cat /sys/fs/cgroup/cgroup.controllers)
for c in $CONTROLLERS; do
  echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || echo "v2vm: controller $c not enabled" >&6
done

mkfifo /run/vm-out /run/vm-err
cat /run/vm-out >&5 &
relay_out=$!
cat /run/vm-err >&6 &
relay_err=$!
cd /payload
echo "v2vm: payload starts at $(cut -d' ' -f1 /proc/uptime) s"
# In a subshell, so that a signal's "Killed" report lands on the console, not in the output.
(exec /vm/cmd) </dev/null >/run/vm-out 2>/run/vm-err 5>&- 6>&- 7>&-
status=$?
echo "v2vm: payload ended at $(cut -d' ' -f1 /proc/uptime) s, status $status"
# What the payload left running still holds the pipes: end it, so that the relays see EOF.
for round in 1 2 3; do
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    case $pid in 1 | $$ | $relay_out | $relay_err) continue ;; esac
    kill -KILL "$pid" 2>/dev/null
  done
done
wait $relay_out $relay_err
echo "exit $status" >&7
halt_now
INIT
}

# --- the image -----------------------------------------------------------------------------

# Builds (once per kernel, module list and init) $CACHE/images/KEY/{vmlinuz,base.cpio}; sets IMAGE.
build_image() {
  local kpkg kdir bbdir kver key stage mods m line
  kpkg=$(kernel_package) || kpkg=
  if [ -z "$kpkg" ]; then
    kpkg=$(ls -t "$CACHE/unpacked" 2>/dev/null | grep '^linux-image-[0-9]' | head -n 1) ||
      fail "no package $KERNEL_PKG and no kernel in $CACHE"
    say "apt does not know $KERNEL_PKG: using the cached $kpkg"
  fi
  key=$(printf '%s\n' "$kpkg" $IMAGE_MODULES "$(guest_init)" "$(guest_vm_init)" | md5sum | cut -c1-12)
  IMAGE=$CACHE/images/$kpkg-$key
  [ -e "$IMAGE/.done" ] && return 0

  say "building the guest image for $kpkg (once)"
  kdir=$(unpack "$kpkg")
  bbdir=$(unpack busybox-static)
  kver=$(ls "$kdir/lib/modules" | head -n 1)
  [ -n "$kver" ] && [ -f "$kdir/boot/vmlinuz-$kver" ] || fail "$kpkg holds no kernel"
  # The package ships no modules.dep (depmod makes it on install): make it in the cache.
  [ -f "$kdir/lib/modules/$kver/modules.dep" ] ||
    "$bbdir/bin/busybox" depmod -b "$kdir" "$kver" || fail "depmod failed"

  stage=$(mktemp -d "$CACHE/images/.stage.XXXXXX")
  mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,mnt,vm,payload}
  cp "$bbdir/bin/busybox" "$stage/bin/busybox"
  for m in $("$stage/bin/busybox" --list-full); do
    [ -e "$stage/$m" ] || ln -s /bin/busybox "$stage/$m"
  done
  # Each wanted module with what modules.dep says it needs (that list is already complete).
  mods=$(for m in $IMAGE_MODULES; do
    line=$(grep -E "/${m//_/[-_]}\.ko(\.[a-z]+)?:" "$kdir/lib/modules/$kver/modules.dep") ||
      { grep -qE "/${m//_/[-_]}\.ko" "$kdir/lib/modules/$kver/modules.builtin" ||
        say "warning: no module $m in $kver"; continue; }
    echo "$line" | tr -d ':' | tr ' ' '\n'
  done | sed '/^$/d' | sort -u)
  for m in $mods; do
    mkdir -p "$stage/lib/modules/$kver/${m%/*}"
    cp "$kdir/lib/modules/$kver/$m" "$stage/lib/modules/$kver/$m"
  done
  cp "$kdir/lib/modules/$kver"/modules.{builtin,builtin.modinfo,order} "$stage/lib/modules/$kver/"
  "$bbdir/bin/busybox" depmod -b "$stage" "$kver" || fail "depmod of the image failed"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' \
    >"$stage/etc/passwd"
  printf '%s\n' 'root:x:0:' 'tty:x:5:' 'nogroup:x:65534:' >"$stage/etc/group"
  printf '%s\n' '127.0.0.1 localhost berth-vm' '::1 localhost' >"$stage/etc/hosts"
  guest_init >"$stage/init"
  guest_vm_init >"$stage/sbin/vm-init"
  chmod 755 "$stage/init" "$stage/sbin/vm-init"
  [ "$(id -u)" = 0 ] && mknod -m 600 "$stage/dev/console" c 5 1
  cp "$kdir/boot/vmlinuz-$kver" "$stage.vmlinuz"
  (cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$stage.cpio" ||
    fail "cpio failed"
  rm -rf "$stage" "$IMAGE"
  mkdir -p "$IMAGE"
  mv "$stage.vmlinuz" "$IMAGE/vmlinuz"
  mv "$stage.cpio" "$IMAGE/base.cpio"
  echo "$kver" >"$IMAGE/kernel-release"
  touch "$IMAGE/.done"
  say "image ready: $IMAGE ($kver, $(du -h "$IMAGE/base.cpio" | cut -f1) initramfs)"
}

prepare() {
  install_tools
  mkdir -p "$CACHE/images"
  exec 8>"$CACHE/.lock"
  flock 8
  build_image
  exec 8>&-
}

# --- a run ---------------------------------------------------------------------------------

RUN= QEMU= TAILS=()
finish() {
  local rc=$? p
  for p in $QEMU "${TAILS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$RUN" ]; then
    if [ "${V2VM_KEEP:-0}" = 1 ]; then say "run directory kept: $RUN"; else rm -rf "$RUN"; fi
  fi
  exit $rc
}

quote() { local a; for a in "$@"; do printf " '%s'" "${a//\'/\'\\\'\'}"; done; }

run() {
  local payload=$1 rc=0 t0 mem size q
  shift
  [ $# -gt 0 ] || fail "usage: $0 PAYLOAD_DIR CMD [ARGS...]"
  [ "$payload" = - ] || [ -d "$payload" ] || fail "payload directory $payload not found"
  t0=$(date +%s)
  prepare
  RUN=$(mktemp -d "${TMPDIR:-/tmp}/berth-vm.XXXXXX")
  trap finish EXIT
  trap 'exit 130' INT TERM HUP

  # The run's own cpio (payload, command, settings) goes after the image's: the kernel
  # unpacks both into the same initramfs.
  mkdir -p "$RUN/top/vm"
  if [ "$payload" = - ]; then mkdir "$RUN/top/payload"; else cp -a "$payload" "$RUN/top/payload"; fi
  printf '#!/bin/sh\nexec%s\n' "$(quote "$@")" >"$RUN/top/vm/cmd"
  chmod 755 "$RUN/top/vm/cmd"
  {
    echo "LOAD='$LOAD'"
    echo "CONTROLLERS='$CONTROLLERS'"
    echo "CGROUP_OPTS='$CGROUP_OPTS'"
  } >"$RUN/top/vm/settings"
  local owner=()
  [ "$(id -u)" = 0 ] || owner=(-R 0:0)
  { cat "$IMAGE/base.cpio"
    (cd "$RUN/top" && find . -mindepth 1 | cpio -o -H newc "${owner[@]}" --quiet); } >"$RUN/initrd"
  rm -rf "$RUN/top"

  # The initramfs is held in RAM twice while the kernel unpacks it.
  size=$(($(stat -c %s "$RUN/initrd") / 1048576))
  mem=${V2VM_MEM:-$((size * 2 + 512 > 1024 ? size * 2 + 512 : 1024))}

  : >"$RUN/out"
  : >"$RUN/err"
  : >"$RUN/rc"
  : >"$RUN/console"
  q=(qemu-system-x86_64 -nodefaults -no-user-config -display none -no-reboot
    -machine pc -m "$mem" -smp "$SMP"
    -kernel "$IMAGE/vmlinuz" -initrd "$RUN/initrd"
    -append "console=ttyS0 quiet panic=-1 rdinit=/init mitigations=off tsc=reliable ${V2VM_APPEND:-}"
    -serial "file:$RUN/console"
    -device virtio-serial-pci,id=vser
    -chardev "file,id=out,path=$RUN/out,append=on" -device virtserialport,bus=vser.0,chardev=out,name=berth.out
    -chardev "file,id=err,path=$RUN/err,append=on" -device virtserialport,bus=vser.0,chardev=err,name=berth.err
    -chardev "file,id=rc,path=$RUN/rc,append=on" -device virtserialport,bus=vser.0,chardev=rc,name=berth.rc)
  case $ACCEL in
  tcg) q+=(-accel tcg -cpu max) ;;
  kvm) q+=(-accel kvm -cpu host) ;;
  *) fail "V2VM_ACCEL must be tcg or kvm" ;;
  esac
  [ "$VERBOSE" = 1 ] && q=("${q[@]/ quiet / }")

  timeout -k 10 "$TIMEOUT" "${q[@]}" </dev/null >"$RUN/qemu.log" 2>&1 &
  QEMU=$!
  # Relays: each follows its file until QEMU is gone, then prints what is left.
  tail -c +1 --pid=$QEMU -f "$RUN/out" &
  TAILS+=($!)
  tail -c +1 --pid=$QEMU -f "$RUN/err" >&2 &
  TAILS+=($!)
  if [ "$VERBOSE" = 1 ]; then
    tail -c +1 --pid=$QEMU -f "$RUN/console" >&2 &
    TAILS+=($!)
  fi
  wait $QEMU || rc=$?
  QEMU=
  wait "${TAILS[@]}" 2>/dev/null || true
  TAILS=()
  [ "$VERBOSE" = 1 ] && say "$((size))M initramfs, ${mem}M RAM, $(($(date +%s) - t0)) s in all"

  local status
  status=$(sed -n 's/^exit \([0-9]*\)$/\1/p' "$RUN/rc" | tail -n 1)
  [ -n "$status" ] && return "$status"
  if [ $rc = 124 ]; then
    say "timed out after $TIMEOUT s (V2VM_TIMEOUT); end of the kernel log:"
    tail -n 30 "$RUN/console" >&2
    return 124
  fi
  say "the machine stopped without an exit status (qemu status $rc):"
  cat "$RUN/qemu.log" >&2
  tail -n 50 "$RUN/console" >&2
  return 125
}

case ${1:-} in
"" | -h | --help) usage ;;
--prepare) prepare && echo "$IMAGE" ;;
*) run "$@" ;;
esac
