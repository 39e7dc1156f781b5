#!/bin/bash
# Runs berth-cgroups' root integration tests (tests/cgroup_root.rs) in the cgroup-v2-only
# QEMU VM, in one boot: builds the test binary statically, puts it in a payload with a
# small guest script, and calls the project's tests/vm/v2vm.sh (or $V2VM).
#
# Usage: crates/cgroups/tests/v2vm/run.sh [TEST-FILTER...]
# Env:   BERTH_CGROUPS_FEATURES="bpf"   cargo features (bpf = v2 device filter; needs
#                                       `pub mod bpf;` in crates/sys/src/lib.rs)
#        CARGO_TARGET_DIR               build dir (default: <workspace>/target)
#        V2VM                           path of the VM harness (default tests/vm/v2vm.sh)
# Exit status: the tests' status (v2vm.sh's 124/125 for VM timeouts/failures).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ws=$(cd "$here/../../../.." && pwd)
v2vm=${V2VM:-$ws/tests/vm/v2vm.sh}
target=x86_64-unknown-linux-musl   # static, as .cargo/config.toml builds it
features=${BERTH_CGROUPS_FEATURES:-}

payload=$(mktemp -d /tmp/berth-cgroups-v2vm.XXXXXX)
trap 'rm -rf "$payload"' EXIT

start=$(date +%s)
# The target as .cargo/config.toml names it (static musl).
exe=$(cd "$ws" && cargo test -q -p berth-cgroups \
        ${features:+--features "$features"} --test cgroup_root --no-run --target "$target" \
        --message-format=json 2>/dev/null |
      grep -o '"executable":"[^"]*cgroup_root[^"]*"' | tail -n1 | sed 's/^"executable":"//; s/"$//')
[ -n "$exe" ] && [ -x "$exe" ] || { echo "run.sh: static test build failed; rerun cargo without -q to see why" >&2; exit 1; }
if file "$exe" 2>/dev/null | grep -q 'dynamically linked'; then
  echo "run.sh: $exe is not static" >&2; exit 1
fi
cp "$exe" "$payload/cgroup_root"
built=$(date +%s)

args=""
for a in "$@"; do args="$args '$a'"; done
cat > "$payload/run" <<GUEST
#!/bin/sh
export RUST_BACKTRACE=1
echo "guest: \$(uname -r), cgroup: \$(cat /sys/fs/cgroup/cgroup.controllers)"
# One vCPU under TCG: run serially so the measurements are not squeezed by each other.
exec ./cgroup_root --test-threads=1 --nocapture $args
GUEST
chmod +x "$payload/run"

set +e
bash "$v2vm" "$payload" ./run
rc=$?
set -e
end=$(date +%s)
echo "run.sh: build $((built - start)) s, VM run $((end - built)) s, status $rc" >&2
exit $rc
