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
        (empty("containers") && empty("engine/containers")).then_some(())
    });
    assert!(empty("leases"), "a lease was left");
}
