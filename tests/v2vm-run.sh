#!/bin/sh
# v2vm-run.sh - run berth-tests test binaries inside the cgroup-v2-only QEMU guest of
# tests/vm/v2vm.sh ($V2VM overrides) (the guest is a busybox initramfs, so everything must be static).
#
# Usage: tests/v2vm-run.sh STATIC_RUNTIME [TEST_FILE...]
#   STATIC_RUNTIME  a statically linked runtime binary (runc/crun from Debian are dynamic), e.g.
#                   target/x86_64-unknown-linux-musl/debug/berth-runtime (`cargo build -p berth-runtime`)
#   TEST_FILE       names of files in tests/tests without .rs (default: cgroups; about 10 s per test under TCG)
# Builds the test binaries (static musl, .cargo/config.toml) into $STATIC_TARGET_DIR (default /work/target-tests-static),
# boots the guest once and runs every binary there, one test at a time. Exit status: failures > 0.
set -eu
RT=${1:?usage: $0 STATIC_RUNTIME [TEST_FILE...]}
shift
TESTS=${*:-cgroups}
HERE=$(cd "$(dirname "$0")" && pwd)
V2VM=${V2VM:-$HERE/vm/v2vm.sh}
TD=${STATIC_TARGET_DIR:-/work/target-tests-static}
TRIPLE=x86_64-unknown-linux-musl

file -L "$RT" | grep -q 'static' || { echo "$RT is not statically linked" >&2; exit 2; }
(cd "$HERE/.." && CARGO_TARGET_DIR=$TD \
  cargo build -q -p berth-tests --tests --target $TRIPLE)

P=$(mktemp -d /tmp/berth-v2vm-payload.XXXXXX)
trap 'rm -rf "$P"' EXIT
cp "$RT" "$P/berth-runtime"
cp "$(ls -t "$TD"/$TRIPLE/debug/build/berth-tests-*/out/berth-probe | head -1)" "$P/berth-probe"
for t in $TESTS; do
  bin=$(ls -t "$TD"/$TRIPLE/debug/deps/$t-* | grep -v '\.d$' | head -1)
  cp "$bin" "$P/test-$t"
done
cat > "$P/run.sh" <<'EOS'
#!/bin/sh
export BERTH_TEST_RUNTIME=/payload/berth-runtime BERTH_TEST_PROBE=/payload/berth-probe RUST_BACKTRACE=0
fails=0
for t in /payload/test-*; do
  echo "=== ${t#/payload/test-}"
  "$t" --test-threads=1 2>&1 || fails=$((fails+1))
done
echo "=== cgroup dirs left under /sys/fs/cgroup/berth-test:"
find /sys/fs/cgroup/berth-test -mindepth 1 -type d 2>/dev/null
exit $fails
EOS
chmod +x "$P/run.sh"
rc=0
bash "$V2VM" "$P" sh /payload/run.sh || rc=$?
exit $rc
