//! Issue 6: the same scenario through `--runtime crun` (any runc-compatible runtime).
//! crun 1.8 refuses this hybrid host, so the scenario runs in a private mount namespace
//! where /sys/fs/cgroup/unified is unmounted (the host's namespace is untouched); berth,
//! its monitors and crun all live in it.

mod common;
use common::engine::*;
use std::process::Command;

#[test]
fn crun_runs_the_engine_scenario() {
    assert!(
        Command::new("crun").arg("--version").output().is_ok(),
        "crun is required (apt-get install crun)"
    );
    let e = Engine::new();
    let berth = format!(
        "{} --root {}",
        common::berth_exe().display(),
        e.root().display()
    );
    // Every step prints a marker the test checks; `set -e` stops at the first failure.
    let script = format!(
        r#"set -eu
umount /sys/fs/cgroup/unified 2>/dev/null || true
B="{berth}"
R="--runtime crun"
echo "run: $($B run --rm $R busybox:latest echo hello-crun)"
set +e; $B run --rm $R busybox:latest sh -c 'exit 7'; echo "code: $?"; set -e
set +e; $B run --rm $R busybox:latest /nope 2>/dev/null; echo "missing: $?"; set -e
id=$($B run -d $R --name c1 busybox:latest sh -c 'echo logged; trap "exit 0" TERM; while :; do sleep 0.1; done')
sleep 0.5
echo "ps: $($B ps --format '{{{{.Names}}}} {{{{.Status}}}}')"
echo "exec: $($B exec c1 echo in-exec)"
echo "logs: $($B logs c1)"
echo "runtime: $($B inspect --format '{{{{.State.Status}}}}' c1) $(cat {root}/engine/containers/$id/config.json | grep -o '"runtime": *"[^"]*"')"
$B stop -t 5 c1 >/dev/null
echo "stopped: $($B inspect --format '{{{{.State.Status}}}} {{{{.State.ExitCode}}}}' c1)"
$B rm c1 >/dev/null
$B run -d $R --name c2 --restart on-failure:2 busybox:latest sh -c 'exit 1' >/dev/null
for i in $(seq 100); do
  s=$($B inspect --format '{{{{.State.Status}}}} {{{{.RestartCount}}}}' c2)
  [ "$s" = "exited 2" ] && break
  sleep 0.1
done
echo "restarts: $s"
$B rm -f c2 >/dev/null
echo "left: $($B ps -aq | wc -l)"
"#,
        berth = berth,
        root = e.root().display()
    );
    let o = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env("BERTH_CGROUP_PARENT", &e.cgroup_parent)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "scenario failed:\n{out}\n{err}");
    for want in [
        "run: hello-crun",
        "code: 7",
        "missing: 127",
        "ps: c1 Up",
        "exec: in-exec",
        "logs: logged",
        "runtime: running",
        "crun\"",
        "stopped: exited 0",
        "restarts: exited 2",
        "left: 0",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}\n{err}");
    }
}
