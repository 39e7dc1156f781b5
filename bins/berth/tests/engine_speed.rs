//! What makes `run --rm` fast, black-box: its rootfs overlay is volatile (no sync at
//! unmount) while a kept container's is not, and the removal the monitor finishes after
//! replying EXIT leaves nothing behind.
//! Run as root: `cargo test -p berth --test engine_speed`.

mod common;
use common::engine::*;

/// The options of the container's root mount, as the container sees them.
fn root_mount_options(mountinfo: &str) -> String {
    mountinfo
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .unwrap_or_else(|| panic!("no root mount in {mountinfo}"))
        .to_string()
}

#[test]
fn run_rm_rootfs_is_volatile_kept_rootfs_is_not() {
    let e = Engine::new();
    let rm = e.ok(&["run", "--rm", "busybox", "cat", "/proc/self/mountinfo"]);
    let root = root_mount_options(&rm);
    assert!(root.contains("overlay"), "{root}");
    assert!(root.contains("volatile"), "{root}");

    let kept = e.ok(&[
        "run",
        "--name",
        "kept",
        "busybox",
        "cat",
        "/proc/self/mountinfo",
    ]);
    let root = root_mount_options(&kept);
    assert!(!root.contains("volatile"), "{root}");
    // A kept container starts again on the same upper layer (a volatile one could not).
    e.ok(&["start", "kept"]);
    let id = e.ok(&["inspect", "--format", "{{.Id}}", "kept"]);
    e.wait_for(10, "kept to exit again", || {
        let s = e.ok(&["inspect", "--format", "{{.State.Status}}", "kept"]);
        (s.trim() == "exited").then_some(())
    });
    assert!(e.root().join("containers").join(id.trim()).is_dir());
}

#[test]
fn run_rm_leaves_nothing_behind() {
    let e = Engine::new();
    for _ in 0..3 {
        assert_eq!(e.ok(&["run", "--rm", "busybox", "echo", "hi"]), "hi\n");
    }
    // Gone for ps and names at once; the renamed trees shortly after.
    assert_eq!(e.ok(&["ps", "-aq"]), "");
    let empty = |d: &str| {
        std::fs::read_dir(e.root().join(d))
            .map(|r| r.count() == 0)
            .unwrap_or(true)
    };
    e.wait_for(10, "the removed trees to be deleted", || {
        (empty("containers") && empty("engine/containers") && empty("engine/run/containers"))
            .then_some(())
    });
    assert!(empty("leases"), "a lease was left");
}

fn statfs_type(p: &std::path::Path) -> i64 {
    rustix::fs::statfs(p).unwrap().f_type
}

/// Issue 18: a busy disk must not slow `run --rm` down. Its records (config, state, logs,
/// bundle) and the runtime's state are on a tmpfs the engine mounts under its root, never
/// on the disk; a kept container's records stay on the disk.
#[test]
fn run_rm_records_and_runtime_state_are_on_a_tmpfs() {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    let e = Engine::new();
    let id = e.ok(&["run", "-d", "--rm", "busybox", "sleep", "30"]);
    let id = id.trim();
    let rec = e.root().join("engine/run/containers").join(id);
    assert!(
        rec.join("config.json").is_file(),
        "no records at {}",
        rec.display()
    );
    assert!(!e.root().join("engine/containers").join(id).exists());
    let run = e.root().join("engine/run");
    assert_eq!(
        statfs_type(&run),
        TMPFS_MAGIC,
        "{} is not a tmpfs",
        run.display()
    );
    // Unless the storage root itself is on a tmpfs, it is a mount of its own.
    if statfs_type(e.root()) != TMPFS_MAGIC {
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let canon = std::fs::canonicalize(&run).unwrap();
        assert!(
            mi.lines()
                .any(|l| l.split(' ').nth(4) == Some(&*canon.to_string_lossy())),
            "no mount at {}",
            canon.display()
        );
    }
    let rt = e.ok(&["inspect", "--format", "{{.State.Status}}", id]);
    assert_eq!(rt.trim(), "running");
    assert!(
        run.join("runtime/berth-runtime").join(id).is_dir(),
        "the runtime's state is not under {}",
        run.display()
    );
    assert_eq!(e.ok(&["ps", "-q"]).trim(), &id[..12]);
    e.ok(&["rm", "-f", id]);
    e.wait_for(10, "the records to go", || (!rec.exists()).then_some(()));

    // A kept container: its records on the disk.
    let kept = e.ok(&["create", "busybox", "true"]);
    let kept = kept.trim();
    assert!(e
        .root()
        .join("engine/containers")
        .join(kept)
        .join("config.json")
        .is_file());
    assert!(!e.root().join("engine/run/containers").join(kept).exists());
}

/// Issue 18: `--log-level debug` logs the phases of a `run --rm` in microseconds, one line
/// on stderr; without it, nothing.
#[test]
fn log_level_debug_logs_the_phases_of_run() {
    let e = Engine::new();
    let o = e.run(&["--log-level", "debug", "run", "--rm", "busybox", "true"]);
    assert!(o.status.success(), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("level=debug") && l.contains("phases: "))
        .unwrap_or_else(|| panic!("no phases line in {err}"));
    for want in [
        "argument parsing=",
        "image lookup=",
        "image lease, overlay mount=",
        "spec=",
        "monitor: runtime create, start=",
        "attach: the container ran, exit=",
        "total=",
    ] {
        assert!(line.contains(want), "no {want} in {line}");
    }
    let o = e.run(&["run", "--rm", "busybox", "true"]);
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("phases"),
        "{o:?}"
    );
}
