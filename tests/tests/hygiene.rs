//! Issue 2, item 6 (safe by construction): fds, cwd, self-exe; security-bar SEC-02/04/05/06/20.

use berth_tests::*;
use serde_json::Value;
use std::fs;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

fn fds(p: &Value) -> Vec<(String, String)> {
    p["fds"]
        .as_object()
        .unwrap_or_else(|| panic!("no fds: {p}"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
        .collect()
}

/// Run `<rt> --root R <args>` through `sh -c 'exec "$@" <redirections>'` so the runtime inherits extra
/// non-CLOEXEC fds from its caller. Returns the Out of the finished command.
fn run_with_inherited(rt: &Runtime, redirections: &str, args: &[&str]) -> Out {
    let outp = rt.work().join(format!("inh-{}.out", unique("o")));
    let errp = rt.work().join(format!("inh-{}.err", unique("e")));
    let mut c = Command::new("/bin/sh");
    c.arg("-c")
        .arg(format!("exec \"$@\" {redirections}"))
        .arg("sh")
        .arg(&rt.path)
        .arg("--root")
        .arg(rt.root())
        .args(args);
    c.stdin(std::process::Stdio::null())
        .stdout(fs::File::create(&outp).unwrap())
        .stderr(fs::File::create(&errp).unwrap());
    let mut ch = c.spawn().unwrap();
    let st = wait_timeout(&mut ch, T, "runtime with inherited fds");
    Out {
        cmdline: format!(
            "sh -c 'exec \"$@\" {redirections}' sh {} {}",
            rt.path.display(),
            args.join(" ")
        ),
        code: st.code(),
        signal: None,
        stdout: fs::read_to_string(outp).unwrap_or_default(),
        stderr: fs::read_to_string(errp).unwrap_or_default(),
        log: String::new(),
    }
}

#[test]
fn only_stdio_reaches_the_container() {
    let rt = Runtime::new();
    let b = Bundle::busybox();
    let o = rt.run(&unique("fds"), &b);
    o.ok();
    let f = fds(&o.probe());
    let names: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["0", "1", "2"], "fds in the container: {f:?}");
}

#[test]
fn cve_2024_21626_caller_leaked_fds_do_not_reach_the_container() {
    // SEC-05: fds the caller leaks to the runtime (a host directory, a file) are not inherited.
    let rt = Runtime::new();
    let b = Bundle::busybox();
    b.save();
    let id = unique("leak");
    rt.track(&id, Some(&b));
    let bundle = b.path().to_string_lossy().into_owned();
    let o = run_with_inherited(
        &rt,
        "7</ 8</etc/hostname 9</tmp",
        &["run", "--bundle", &bundle, &id],
    );
    o.ok();
    let f = fds(&o.probe());
    assert_eq!(
        f.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["0", "1", "2"],
        "leaked fds: {f:?}{o}"
    );
}

#[test]
fn preserve_fds_passes_exactly_n_extra_fds() {
    let rt = Runtime::new();
    let b = Bundle::busybox();
    b.save();
    let id = unique("preserve");
    rt.track(&id, Some(&b));
    let bundle = b.path().to_string_lossy().into_owned();
    let file = rt.work().join("preserved");
    fs::write(&file, "x").unwrap();
    let redir = format!("3<{} 4</", file.display());
    let o = run_with_inherited(
        &rt,
        &redir,
        &["run", "--preserve-fds", "1", "--bundle", &bundle, &id],
    );
    o.ok();
    let f = fds(&o.probe());
    let names: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["0", "1", "2", "3"],
        "--preserve-fds 1 must pass fd 3 only: {f:?}{o}"
    );
    assert!(
        f[3].1.ends_with("/preserved"),
        "fd 3 is not the preserved file: {f:?}"
    );
}

#[test]
fn created_state_init_has_no_unexpected_fds() {
    // SEC-06 (runc create.bats "detect fd leak"): init parked in `created` holds only stdio, the exec
    // fifo and anonymous objects, never a host directory or file.
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.probe(&["sleep"]);
    let id = unique("createdfds");
    rt.create(&id, &b).ok();
    let pid = rt.pid(&id);
    let mut bad = Vec::new();
    for e in fs::read_dir(format!("/proc/{pid}/fd")).unwrap().flatten() {
        let fd: u32 = e.file_name().to_string_lossy().parse().unwrap();
        let t = fs::read_link(e.path())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        // A private procfs handle (fsopen("proc"), security-bar section 0) is runtime plumbing
        // that never reaches the user process (only_stdio_reaches_the_container checks that).
        let procfs = rustix::fs::statfs(e.path().as_path())
            .map(|s| s.f_type == 0x9fa0)
            .unwrap_or(false);
        let ok = fd <= 2
            || procfs
            || t.starts_with("pipe:")
            || t.starts_with("socket:")
            || t.starts_with("anon_inode:")
            || t.starts_with("/dev/pts/")
            || t.contains("memfd:")
            || t.ends_with("exec.fifo")
            || t == "/dev/null";
        if !ok {
            bad.push(format!("{fd} -> {t}"));
        }
    }
    assert!(
        bad.is_empty(),
        "parked init {pid} holds unexpected fds: {bad:?}"
    );
}

/// Issue 17 item 15: fds the caller of `create` leaves open (`7>file scripts/test.sh`) were
/// held by the parked init until `start`'s exec; they are closed when the runtime starts.
#[test]
fn created_init_holds_no_fd_its_caller_left_open() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.probe(&["sleep"]);
    b.save();
    let id = unique("createdleak");
    rt.track(&id, Some(&b));
    let bundle = b.path().to_string_lossy().into_owned();
    let o = run_with_inherited(
        &rt,
        "7</ 8</etc/hostname 9</tmp",
        &["create", "--bundle", &bundle, &id],
    );
    assert_eq!(o.code, Some(0), "{o}");
    let pid = rt.pid(&id);
    let held: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| fs::read_link(e.path()).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|t| t == "/" || t == "/etc/hostname" || t == "/tmp")
        .collect();
    assert!(
        held.is_empty(),
        "parked init {pid} holds its caller's fds: {held:?}"
    );
}

#[test]
fn cve_2024_21626_cwd_through_proc_self_fd_never_reaches_the_host() {
    // SEC-02: process.cwd = /proc/self/fd/N must either fail or leave the process inside the
    // container; the host marker is never readable.
    let rt = Runtime::new();
    let marker = Marker::new();
    let mut b = Bundle::busybox();
    let mut reached = Vec::new();
    for n in 3..=12 {
        b.cwd(&format!("/proc/self/fd/{n}"))
            .probe(&["escape", marker.path.to_str().unwrap()]);
        let o = rt.run(&unique(&format!("cwdfd{n}")), &b);
        if o.stdout.contains(&marker.secret) {
            reached.push(format!("fd {n}:{o}"));
        }
        if o.success() {
            // If the runtime accepted it, getcwd must have worked and be inside the container.
            let p = o.probe();
            assert!(
                p["cwd"].is_string(),
                "cwd unreachable yet process ran (fd {n}):{o}"
            );
        }
    }
    assert!(
        reached.is_empty(),
        "host marker read through a leaked fd cwd: {reached:?}"
    );
}

#[test]
fn cve_2024_21626_args0_through_proc_self_fd_fails() {
    // SEC-04: executing through a leaked fd must not run a host binary.
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    for n in 3..=8 {
        b.args(&[&format!("/proc/self/fd/{n}"), "-c", "echo escaped-exec"]);
        let o = rt.run(&unique(&format!("execfd{n}")), &b);
        assert!(
            !o.stdout.contains("escaped-exec"),
            "exec through fd {n} ran something:{o}"
        );
    }
}

#[test]
fn getcwd_after_cwd_works() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.cwd("/tmp");
    let o = rt.run(&unique("getcwd"), &b);
    o.ok();
    assert_eq!(o.probe()["cwd"], "/tmp");
}

#[test]
fn cwd_that_does_not_exist_is_created_or_refused_clearly() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.readonly_root(false).cwd("/no/such/cwd");
    let o = rt.run(&unique("cwdmissing"), &b);
    if o.success() {
        assert_eq!(o.probe()["cwd"], "/no/such/cwd", "{o}");
    } else {
        o.errors_contain("/no/such/cwd");
    }
}

#[test]
fn relative_cwd_is_rejected() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.cwd("tmp");
    rt.run(&unique("cwdrel"), &b).failed();
}

#[test]
fn cve_2019_5736_parked_init_is_not_the_host_runtime_binary() {
    // SEC-01 (reduced, no exec command yet): while the container is `created`, its init is runtime
    // code inside the container. Its /proc/<pid>/exe must not be the host binary's inode (runc uses a
    // sealed memfd clone or a private overlay); otherwise a process in the container can keep an
    // O_PATH fd to it and reopen it for writing once the runtime exits.
    // Fails under runc 1.1.5: it protects the binary with "bindfd", a read-only bind mount of the
    // same inode, which a CAP_SYS_ADMIN container can make writable again; runc dropped it for that
    // reason (b999376fb) in favour of a memfd clone / sealed overlay, which this test accepts.
    use std::os::unix::fs::MetadataExt;
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.probe(&["sleep"]);
    let id = unique("selfexe");
    let before = fs::read(&rt.path).unwrap();
    rt.create(&id, &b).ok();
    let pid = rt.pid(&id);
    let exe = fs::metadata(format!("/proc/{pid}/exe")).expect("stat init exe");
    let host = fs::metadata(&rt.path).unwrap();
    let target = fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    assert!(
        !(exe.dev() == host.dev() && exe.ino() == host.ino()),
        "parked init {pid} executes the host runtime binary itself ({})",
        target.display()
    );
    rt.start(&id).ok();
    assert_eq!(
        fs::read(&rt.path).unwrap(),
        before,
        "runtime binary changed"
    );
}

#[test]
fn spec_default_has_no_inheritable_caps() {
    // CVE-2022-29162: the default config must not grant inheritable capabilities.
    let rt = Runtime::new();
    let dir = rt.work().join("specdir");
    fs::create_dir_all(&dir).unwrap();
    rt.cmd_in(Some(&dir), &["spec"]).ok();
    let v: Value = serde_json::from_slice(&fs::read(dir.join("config.json")).unwrap()).unwrap();
    let inh = &v["process"]["capabilities"]["inheritable"];
    assert!(
        inh.is_null() || inh.as_array().is_some_and(|a| a.is_empty()),
        "spec grants inheritable caps: {inh}"
    );
}

#[test]
fn sealed_copy_is_an_overlay_when_the_state_root_is_in_the_binarys_directory() {
    // overlayfs refuses the seal's empty layer inside the binary's directory; the runtime used to
    // fall back to a memfd copy of itself then, 3 ms a start instead of 0.35.
    let default_root = std::path::Path::new("/run/berth-runtime");
    let made = !default_root.exists();
    let mut rt = Runtime::new();
    let copy = rt.root().join("berth-runtime");
    fs::copy(&rt.path, &copy).unwrap();
    rt.path = copy;
    let mut b = Bundle::busybox();
    b.probe(&["sleep"]);
    let id = unique("sealroot");
    rt.create(&id, &b).ok();
    let pid = rt.pid(&id);
    let target = fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let magic = rustix::fs::statfs(format!("/proc/{pid}/exe").as_str())
        .unwrap()
        .f_type;
    assert!(
        magic == 0x794c7630 && !target.to_string_lossy().contains("memfd:"),
        "init {pid} runs from {} (fs magic {magic:#x}), not the overlay",
        target.display()
    );
    rt.delete(&id).ok();
    if made {
        let _ = fs::remove_dir(default_root.join(".exe-empty"));
        let _ = fs::remove_dir(default_root);
    }
}
