//! Black-box harness for `berth-runtime` (and any runc-compatible runtime).
//!
//! The runtime under test is `$BERTH_TEST_RUNTIME` (a path), or the workspace's `debug/berth-runtime`.
//! Every test builds its own busybox bundle ([`Bundle::busybox`]) and drives the runtime through
//! [`Runtime`], which has its own state root. Both guards clean up on drop, also when the test panics:
//! containers are force-deleted, leftover processes killed, the cgroup under `/berth-test/<unique>`
//! removed from every hierarchy, leaked mounts under the temp dirs detached, temp dirs removed.
#![forbid(unsafe_code)]

use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Default parent of every cgroup the tests create (absolute cgroupsPath).
pub const CGROUP_PARENT: &str = "berth-test";
/// Lock that serialises removing the shared `berth-test` parent against tests that still use it.
const CGROUP_LOCK: &str = "/run/berth-tests.cgroup.lock";

/// The parent of the tests' cgroups: `$BERTH_TEST_CGROUP_PARENT` (one path component, so two
/// runs on one machine keep apart), else [`CGROUP_PARENT`].
pub fn cgroup_parent() -> &'static str {
    static P: OnceLock<String> = OnceLock::new();
    P.get_or_init(|| match std::env::var("BERTH_TEST_CGROUP_PARENT") {
        Ok(p) if !p.is_empty() && !p.contains('/') && p != "." && p != ".." => p,
        _ => CGROUP_PARENT.to_string(),
    })
}

/// The lock of [`cgroup_parent`] (the historical name for the default parent).
fn cgroup_lock_path() -> String {
    match cgroup_parent() {
        CGROUP_PARENT => CGROUP_LOCK.to_string(),
        p => format!("/run/{p}.cgroup.lock"),
    }
}
/// Default timeout for one runtime invocation.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Locating the binaries

/// The runtime under test: `$BERTH_TEST_RUNTIME`, else `$BERTH_BIN_DIR/berth-runtime` (the
/// shipped build scripts/test.sh tests), else the `berth-runtime` of the test executable's
/// own profile dir (walking up from it).
pub fn runtime_path() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        if let Some(p) = std::env::var_os("BERTH_TEST_RUNTIME") {
            return PathBuf::from(p);
        }
        if let Some(d) = std::env::var_os("BERTH_BIN_DIR") {
            return PathBuf::from(d).join("berth-runtime");
        }
        let exe = std::env::current_exe().expect("current_exe");
        for dir in exe.ancestors().skip(1) {
            let p = dir.join("berth-runtime");
            if p.is_file() {
                return p;
            }
            if dir.file_name().is_some_and(|n| n == "target") {
                return dir.join("debug").join("berth-runtime");
            }
        }
        PathBuf::from("berth-runtime")
    })
    .clone()
}

/// Which runtime is under test; used only to label known deviations in messages, never to relax a check.
pub fn runtime_name() -> String {
    runtime_path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The static probe binary built by build.rs (`$BERTH_TEST_PROBE` overrides it, e.g. when the test
/// binaries run inside the cgroup v2 VM, away from the build tree).
pub fn probe_path() -> PathBuf {
    std::env::var_os("BERTH_TEST_PROBE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("BERTH_PROBE_PATH")))
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique across parallel test processes: `<tag>-<pid>-<n>-<nanos>`.
pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{tag}-{}-{n}-{:x}", std::process::id(), nanos & 0xfffff)
}

// ---------------------------------------------------------------------------------------------
// Output of one runtime invocation

/// Result of a finished command: exit code (or signal), stdout, stderr and the `--log` file if any.
#[derive(Debug, Clone)]
pub struct Out {
    pub cmdline: String,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub log: String,
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\n  $ {}\n  exit code: {:?} signal: {:?}\n  --- stdout ---\n{}\n  --- stderr ---\n{}\n  --- log ---\n{}\n",
            self.cmdline, self.code, self.signal, self.stdout, self.stderr, self.log
        )
    }
}

impl Out {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
    /// Panics (with everything) unless the command exited 0.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert!(self.success(), "expected success:{self}");
        self
    }
    /// Panics unless the command failed (non-zero exit).
    #[track_caller]
    pub fn failed(&self) -> &Self {
        assert!(
            self.code.is_some() && !self.success(),
            "expected failure:{self}"
        );
        self
    }
    #[track_caller]
    pub fn code_is(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "unexpected exit code:{self}");
        self
    }
    /// stderr and log together (runc prints errors to stderr and to --log).
    pub fn errors(&self) -> String {
        format!("{}\n{}", self.stderr, self.log)
    }
    #[track_caller]
    pub fn errors_contain(&self, needle: &str) -> &Self {
        assert!(
            self.errors().contains(needle),
            "expected {needle:?} in stderr/log:{self}"
        );
        self
    }
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):{self}"))
    }
    /// The last stdout line that parses as a JSON object (probe output).
    #[track_caller]
    pub fn probe(&self) -> Value {
        parse_probe(&self.stdout).unwrap_or_else(|| panic!("no probe JSON on stdout:{self}"))
    }
}

/// Last line of `s` that is a JSON object.
pub fn parse_probe(s: &str) -> Option<Value> {
    s.lines().rev().find_map(|l| {
        let l = l.trim();
        if l.starts_with('{') {
            serde_json::from_str::<Value>(l).ok()
        } else {
            None
        }
    })
}

/// Wait for `child` with a deadline; on timeout kill it and panic with `what`.
pub fn wait_timeout(child: &mut Child, timeout: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("timed out after {timeout:?}: {what}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Poll `f` until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------------
// The runtime wrapper

/// A runtime with its own state root. Tracks containers, cgroups and processes for cleanup.
pub struct Runtime {
    pub path: PathBuf,
    root: TempDir,
    work: TempDir,
    log_json: Cell<bool>,
    n: Cell<u32>,
    created: RefCell<Vec<String>>,
    cgroups: RefCell<Vec<String>>,
    pids: RefCell<Vec<(i32, u64)>>,
    children: RefCell<Vec<Child>>,
    container_out: RefCell<BTreeMap<String, (PathBuf, PathBuf)>>,
    _lock: File,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    pub fn new() -> Runtime {
        let lock = cgroup_lock_shared();
        let root = tempfile::Builder::new()
            .prefix("berth-test-root.")
            .tempdir()
            .expect("state root");
        let work = tempfile::Builder::new()
            .prefix("berth-test-work.")
            .tempdir()
            .expect("work dir");
        Runtime {
            path: runtime_path(),
            root,
            work,
            log_json: Cell::new(false),
            n: Cell::new(0),
            created: RefCell::new(Vec::new()),
            cgroups: RefCell::new(Vec::new()),
            pids: RefCell::new(Vec::new()),
            children: RefCell::new(Vec::new()),
            container_out: RefCell::new(BTreeMap::new()),
            _lock: lock,
        }
    }

    /// The `--root` state directory.
    pub fn root(&self) -> &Path {
        self.root.path()
    }
    /// A scratch directory owned by this runtime guard.
    pub fn work(&self) -> &Path {
        self.work.path()
    }

    /// From now on pass `--log <file> --log-format json` to every command (one log file per command).
    pub fn log_json(&self, on: bool) -> &Self {
        self.log_json.set(on);
        self
    }

    fn next(&self) -> u32 {
        let n = self.n.get();
        self.n.set(n + 1);
        n
    }

    /// A `Command` for `<rt> --root R [--log L --log-format json] args...` with stdout/stderr in files.
    /// Returns the command and the paths (stdout, stderr, log).
    pub fn command(&self, args: &[&str]) -> (Command, PathBuf, PathBuf, Option<PathBuf>) {
        let n = self.next();
        let outp = self.work().join(format!("cmd-{n}.stdout"));
        let errp = self.work().join(format!("cmd-{n}.stderr"));
        let mut c = Command::new(&self.path);
        c.arg("--root").arg(self.root());
        let logp = if self.log_json.get() {
            let p = self.work().join(format!("cmd-{n}.log"));
            c.arg("--log").arg(&p).arg("--log-format").arg("json");
            Some(p)
        } else {
            None
        };
        c.args(args);
        c.stdin(Stdio::null());
        c.stdout(File::create(&outp).expect("stdout file"));
        c.stderr(File::create(&errp).expect("stderr file"));
        (c, outp, errp, logp)
    }

    fn describe(&self, args: &[&str]) -> String {
        let mut s = format!("{} --root {}", self.path.display(), self.root().display());
        if self.log_json.get() {
            s.push_str(" --log <file> --log-format json");
        }
        for a in args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }

    /// Run to completion, in `cwd` if given.
    pub fn cmd_in(&self, cwd: Option<&Path>, args: &[&str]) -> Out {
        let (mut c, outp, errp, logp) = self.command(args);
        if let Some(d) = cwd {
            c.current_dir(d);
        }
        let cmdline = self.describe(args);
        let mut child = c.spawn().unwrap_or_else(|e| panic!("spawn {cmdline}: {e}"));
        let st = wait_timeout(&mut child, CMD_TIMEOUT, &cmdline);
        Out {
            cmdline,
            code: st.code(),
            signal: st.signal(),
            stdout: fs::read_to_string(&outp).unwrap_or_default(),
            stderr: fs::read_to_string(&errp).unwrap_or_default(),
            log: logp
                .map(|p| fs::read_to_string(p).unwrap_or_default())
                .unwrap_or_default(),
        }
    }

    /// `<rt> args...` run to completion.
    pub fn cmd(&self, args: &[&str]) -> Out {
        self.cmd_in(None, args)
    }

    /// Remember a container and its bundle's cgroup for cleanup.
    pub fn track(&self, id: &str, b: Option<&Bundle>) {
        if !self.created.borrow().iter().any(|x| x == id) {
            self.created.borrow_mut().push(id.to_string());
        }
        if let Some(b) = b {
            for cg in b
                .cgroups_path()
                .into_iter()
                .chain([b.cgroup_base().to_string()])
            {
                if !self.cgroups.borrow().contains(&cg) {
                    self.cgroups.borrow_mut().push(cg);
                }
            }
        }
    }

    /// Command that creates/runs a container: the container inherits stdout/stderr files that stay
    /// readable through [`Runtime::container_stdout`].
    pub fn container_cmd(&self, verb: &[&str], id: &str, b: &Bundle, extra: &[&str]) -> Out {
        b.save();
        self.track(id, Some(b));
        let bundle = b.path().to_string_lossy().into_owned();
        let mut args: Vec<&str> = verb.to_vec();
        args.extend_from_slice(&["--bundle", &bundle]);
        args.extend_from_slice(extra);
        args.push(id);
        let (mut c, outp, errp, logp) = self.command(&args);
        self.container_out
            .borrow_mut()
            .insert(id.to_string(), (outp.clone(), errp.clone()));
        let cmdline = self.describe(&args);
        let mut child = c.spawn().unwrap_or_else(|e| panic!("spawn {cmdline}: {e}"));
        let st = wait_timeout(&mut child, CMD_TIMEOUT, &cmdline);
        let out = Out {
            cmdline,
            code: st.code(),
            signal: st.signal(),
            stdout: fs::read_to_string(&outp).unwrap_or_default(),
            stderr: fs::read_to_string(&errp).unwrap_or_default(),
            log: logp
                .map(|p| fs::read_to_string(p).unwrap_or_default())
                .unwrap_or_default(),
        };
        self.note_pid(id);
        out
    }

    fn note_pid(&self, id: &str) {
        let o = self.cmd(&["state", id]);
        if let Ok(v) = serde_json::from_str::<Value>(o.stdout.trim()) {
            if let Some(pid) = v["pid"].as_i64().filter(|p| *p > 0) {
                if let Some(st) = proc_starttime(pid as i32) {
                    self.pids.borrow_mut().push((pid as i32, st));
                }
            }
        }
    }

    pub fn create(&self, id: &str, b: &Bundle) -> Out {
        self.container_cmd(&["create"], id, b, &[])
    }
    pub fn create_with(&self, id: &str, b: &Bundle, extra: &[&str]) -> Out {
        self.container_cmd(&["create"], id, b, extra)
    }
    /// Foreground `run`; returns when the container exits.
    pub fn run(&self, id: &str, b: &Bundle) -> Out {
        self.container_cmd(&["run"], id, b, &[])
    }
    pub fn run_with(&self, id: &str, b: &Bundle, extra: &[&str]) -> Out {
        self.container_cmd(&["run"], id, b, extra)
    }
    pub fn run_detached(&self, id: &str, b: &Bundle) -> Out {
        self.container_cmd(&["run", "-d"], id, b, &[])
    }
    pub fn start(&self, id: &str) -> Out {
        let o = self.cmd(&["start", id]);
        self.note_pid(id);
        o
    }
    pub fn kill(&self, id: &str, sig: &str) -> Out {
        self.cmd(&["kill", id, sig])
    }
    pub fn delete(&self, id: &str) -> Out {
        self.cmd(&["delete", id])
    }
    pub fn delete_force(&self, id: &str) -> Out {
        self.cmd(&["delete", "--force", id])
    }
    pub fn state_out(&self, id: &str) -> Out {
        self.cmd(&["state", id])
    }
    /// Parsed `state` JSON; panics if the command fails.
    #[track_caller]
    pub fn state(&self, id: &str) -> Value {
        self.state_out(id).ok().json()
    }
    /// `status` field of `state`, or None if state fails.
    pub fn status(&self, id: &str) -> Option<String> {
        let o = self.state_out(id);
        if !o.success() {
            return None;
        }
        serde_json::from_str::<Value>(o.stdout.trim()).ok()?["status"]
            .as_str()
            .map(String::from)
    }
    /// Init pid from `state`.
    #[track_caller]
    pub fn pid(&self, id: &str) -> i32 {
        let v = self.state(id);
        v["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("no pid in state: {v}")) as i32
    }
    /// Wait until `state` reports `status` (e.g. "stopped").
    #[track_caller]
    pub fn wait_status(&self, id: &str, status: &str, timeout: Duration) {
        let ok = wait_for(timeout, || {
            (self.status(id).as_deref() == Some(status)).then_some(())
        });
        if ok.is_none() {
            panic!(
                "container {id} did not reach {status:?} in {timeout:?}; last state:{}",
                self.state_out(id)
            );
        }
    }
    /// What the container (created or run by this guard) wrote to stdout so far.
    pub fn container_stdout(&self, id: &str) -> String {
        self.container_out
            .borrow()
            .get(id)
            .map(|(o, _)| fs::read_to_string(o).unwrap_or_default())
            .unwrap_or_default()
    }
    pub fn container_stderr(&self, id: &str) -> String {
        self.container_out
            .borrow()
            .get(id)
            .map(|(_, e)| fs::read_to_string(e).unwrap_or_default())
            .unwrap_or_default()
    }
    /// Wait until the container's stdout contains `needle`.
    #[track_caller]
    pub fn wait_stdout(&self, id: &str, needle: &str, timeout: Duration) -> String {
        match wait_for(timeout, || {
            let s = self.container_stdout(id);
            s.contains(needle).then_some(s)
        }) {
            Some(s) => s,
            None => panic!(
                "container {id} never printed {needle:?}; stdout:\n{}\nstderr:\n{}",
                self.container_stdout(id),
                self.container_stderr(id)
            ),
        }
    }

    /// Spawn `<rt> run --bundle B ID` in the foreground without waiting (for signal tests).
    /// The child is killed on drop if still running. Returns its index for [`Runtime::wait_child`].
    pub fn spawn_run(&self, id: &str, b: &Bundle) -> (u32, usize) {
        b.save();
        self.track(id, Some(b));
        let bundle = b.path().to_string_lossy().into_owned();
        let (mut c, outp, errp, _) = self.command(&["run", "--bundle", &bundle, id]);
        self.container_out
            .borrow_mut()
            .insert(id.to_string(), (outp, errp));
        let child = c.spawn().expect("spawn run");
        let pid = child.id();
        self.children.borrow_mut().push(child);
        (pid, self.children.borrow().len() - 1)
    }

    /// Spawn any runtime command without waiting; returns (pid, index, stdout path, stderr path).
    pub fn spawn(&self, args: &[&str]) -> (u32, usize, PathBuf, PathBuf) {
        let (mut c, outp, errp, _) = self.command(args);
        let child = c.spawn().expect("spawn runtime");
        let pid = child.id();
        self.children.borrow_mut().push(child);
        (pid, self.children.borrow().len() - 1, outp, errp)
    }

    /// Wait for a spawned child.
    pub fn wait_child(&self, idx: usize, timeout: Duration) -> std::process::ExitStatus {
        let mut ch = self.children.borrow_mut();
        wait_timeout(&mut ch[idx], timeout, "spawned runtime")
    }

    /// `list --format json` parsed (runc prints `null` when empty).
    pub fn list_json(&self) -> Value {
        self.cmd(&["list", "--format", "json"]).ok().json()
    }

    /// Remove everything this guard created (also called by Drop).
    pub fn cleanup(&self) {
        for mut ch in self.children.borrow_mut().drain(..) {
            if ch.try_wait().ok().flatten().is_none() {
                let _ = ch.kill();
            }
            let _ = ch.wait();
        }
        let ids: Vec<String> = self.created.borrow().clone();
        for id in ids.iter().rev() {
            let (mut c, _, _, _) = self.command(&["delete", "--force", id]);
            if let Ok(mut ch) = c.spawn() {
                let deadline = Instant::now() + Duration::from_secs(10);
                while ch.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
                let _ = ch.kill();
                let _ = ch.wait();
            }
        }
        for cg in self.cgroups.borrow().iter() {
            remove_cgroup(cg);
        }
        for (pid, st) in self.pids.borrow().iter() {
            if proc_starttime(*pid) == Some(*st) {
                kill_pid(*pid, 9);
            }
        }
        detach_mounts_under(self.root.path());
        detach_mounts_under(self.work.path());
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.cleanup();
        try_remove_cgroup_parent(&self._lock);
    }
}

// ---------------------------------------------------------------------------------------------
// Bundles

/// An OCI bundle in a temp dir: a busybox rootfs with the probe as /bin/probe, and a config.json
/// produced by `<runtime> spec` and edited through the setters. [`Bundle::save`] writes it (the
/// `Runtime` helpers call it before create/run).
pub struct Bundle {
    dir: TempDir,
    pub config: Value,
    /// The unique cgroup given at creation; removed (with everything below) on drop.
    cgroup_base: String,
    /// Unique `BERTH_TEST_TAG=...` put into process.env: on drop, any process still carrying it is
    /// killed, even if the runtime under test never put it into the cgroup.
    tag: String,
    host_mounts: RefCell<Vec<PathBuf>>,
    _lock: File,
}

/// The runtime whose `spec` makes the bundles' config: `$BERTH_TEST_SPEC_RUNTIME` (lets a runtime
/// without a working `spec` yet borrow runc's), else the runtime under test.
pub fn spec_runtime() -> PathBuf {
    std::env::var_os("BERTH_TEST_SPEC_RUNTIME")
        .map(PathBuf::from)
        .unwrap_or_else(runtime_path)
}

fn busybox_applets() -> &'static Vec<String> {
    static A: OnceLock<Vec<String>> = OnceLock::new();
    A.get_or_init(|| {
        let o = Command::new("/bin/busybox")
            .arg("--list")
            .output()
            .expect("run /bin/busybox --list (busybox-static)");
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    })
}

impl Bundle {
    /// A busybox bundle with a unique absolute cgroupsPath `/berth-test/<unique>`, terminal off and
    /// args `["/bin/probe", "info"]`. Everything else is what `<runtime> spec` produced.
    pub fn busybox() -> Bundle {
        Bundle::busybox_spec(&[])
    }

    /// As [`Bundle::busybox`], from berth-runtime's `spec --hardened` (moby's seccomp profile, no
    /// ambient capabilities): the default the security suites check. A spec runtime other than
    /// berth-runtime (runc, crun) has no such flag, and its plain `spec` is used.
    pub fn hardened() -> Bundle {
        let spec_rt = spec_runtime();
        let berth = spec_rt
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("berth"));
        Bundle::busybox_spec(if berth { &["--hardened"] } else { &[] })
    }

    fn busybox_spec(spec_args: &[&str]) -> Bundle {
        let lock = cgroup_lock_shared();
        let dir = tempfile::Builder::new()
            .prefix("berth-test-bundle.")
            .tempdir()
            .expect("bundle dir");
        // Traversable by a container root mapped to an unprivileged host uid (user namespace tests).
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let rootfs = dir.path().join("rootfs");
        for d in [
            "bin",
            "etc",
            "proc",
            "sys",
            "dev",
            "tmp",
            "root",
            "home/user",
            "mnt",
            "run",
            "var",
            "usr",
        ] {
            fs::create_dir_all(rootfs.join(d)).expect("mkdir rootfs");
        }
        fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
            .expect("copy /bin/busybox (install busybox-static)");
        for a in busybox_applets() {
            if a != "busybox" {
                let _ = symlink("/bin/busybox", rootfs.join("bin").join(a));
            }
        }
        fs::copy(probe_path(), rootfs.join("bin/probe")).expect("copy probe");
        fs::set_permissions(rootfs.join("bin/probe"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        .unwrap();
        fs::write(
            rootfs.join("etc/group"),
            "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n",
        )
        .unwrap();

        let spec_rt = spec_runtime();
        let o = Command::new(&spec_rt)
            .arg("spec")
            .args(spec_args)
            .current_dir(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("run {} spec: {e}", spec_rt.display()));
        assert!(
            o.status.success(),
            "{} spec failed: {}\n{}",
            spec_rt.display(),
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        let text =
            fs::read_to_string(dir.path().join("config.json")).expect("spec wrote config.json");
        let mut config: Value = serde_json::from_str(&text).expect("spec output is JSON");
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(["/bin/probe", "info"]);
        let cgroup_base = format!("/{}/{}", cgroup_parent(), unique("cg"));
        config["linux"]["cgroupsPath"] = json!(cgroup_base);
        let tag = format!("BERTH_TEST_TAG={}", unique("tag"));
        let mut env: Vec<Value> = config["process"]["env"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        env.push(json!(tag));
        config["process"]["env"] = json!(env);
        Bundle {
            dir,
            config,
            cgroup_base,
            tag,
            host_mounts: RefCell::new(Vec::new()),
            _lock: lock,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }
    /// Write config.json.
    pub fn save(&self) {
        fs::write(
            self.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .expect("write config.json");
    }
    /// The `BERTH_TEST_TAG=...` env entry given to the container process.
    pub fn tag(&self) -> &str {
        &self.tag
    }
    /// The unique cgroup this bundle was given at creation (parent of any nested path set later).
    pub fn cgroup_base(&self) -> &str {
        &self.cgroup_base
    }
    /// The absolute cgroupsPath, if set.
    pub fn cgroups_path(&self) -> Option<String> {
        self.config["linux"]["cgroupsPath"]
            .as_str()
            .map(String::from)
    }

    /// Set any field by JSON pointer ("/process/cwd"), creating objects on the way.
    pub fn set(&mut self, ptr: &str, v: Value) -> &mut Self {
        json_set(&mut self.config, ptr, v);
        self
    }
    /// Remove a field by JSON pointer.
    pub fn unset(&mut self, ptr: &str) -> &mut Self {
        let (parent, last) = ptr.rsplit_once('/').expect("pointer");
        if let Some(Value::Object(m)) = self.config.pointer_mut(parent) {
            m.remove(last);
        }
        self
    }

    pub fn args(&mut self, a: &[&str]) -> &mut Self {
        self.set("/process/args", json!(a))
    }
    /// args = /bin/probe followed by `a`.
    pub fn probe(&mut self, a: &[&str]) -> &mut Self {
        let mut v = vec!["/bin/probe"];
        v.extend_from_slice(a);
        self.args(&v)
    }
    /// args = /bin/sh -c `script`.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["/bin/sh", "-c", script])
    }
    pub fn env(&mut self, e: &[&str]) -> &mut Self {
        self.set("/process/env", json!(e))
    }
    pub fn cwd(&mut self, c: &str) -> &mut Self {
        self.set("/process/cwd", json!(c))
    }
    pub fn user(&mut self, uid: u32, gid: u32) -> &mut Self {
        self.set("/process/user/uid", json!(uid))
            .set("/process/user/gid", json!(gid))
    }
    pub fn umask(&mut self, m: u32) -> &mut Self {
        self.set("/process/user/umask", json!(m))
    }
    pub fn additional_gids(&mut self, g: &[u32]) -> &mut Self {
        self.set("/process/user/additionalGids", json!(g))
    }
    /// Set one capability set ("bounding", "effective", "permitted", "inheritable", "ambient").
    pub fn caps(&mut self, set: &str, caps: &[&str]) -> &mut Self {
        self.set(&format!("/process/capabilities/{set}"), json!(caps))
    }
    pub fn no_new_privileges(&mut self, on: bool) -> &mut Self {
        self.set("/process/noNewPrivileges", json!(on))
    }
    pub fn oom_score_adj(&mut self, v: i32) -> &mut Self {
        self.set("/process/oomScoreAdj", json!(v))
    }
    /// Add or replace an rlimit.
    pub fn rlimit(&mut self, kind: &str, soft: u64, hard: u64) -> &mut Self {
        let mut v: Vec<Value> = self.config["process"]["rlimits"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        v.retain(|r| r["type"] != kind);
        v.push(json!({"type": kind, "soft": soft, "hard": hard}));
        self.set("/process/rlimits", json!(v))
    }
    pub fn terminal(&mut self, on: bool) -> &mut Self {
        self.set("/process/terminal", json!(on))
    }
    pub fn hostname(&mut self, h: &str) -> &mut Self {
        self.set("/hostname", json!(h))
    }
    pub fn domainname(&mut self, d: &str) -> &mut Self {
        self.set("/domainname", json!(d))
    }
    pub fn readonly_root(&mut self, ro: bool) -> &mut Self {
        self.set("/root/readonly", json!(ro))
    }
    pub fn masked_paths(&mut self, p: &[&str]) -> &mut Self {
        self.set("/linux/maskedPaths", json!(p))
    }
    pub fn readonly_paths(&mut self, p: &[&str]) -> &mut Self {
        self.set("/linux/readonlyPaths", json!(p))
    }
    pub fn sysctl(&mut self, k: &str, v: &str) -> &mut Self {
        if !self.config["linux"]["sysctl"].is_object() {
            self.config["linux"]["sysctl"] = json!({});
        }
        self.config["linux"]["sysctl"][k] = json!(v);
        self
    }
    /// Override cgroupsPath. Must stay absolute under /berth-test so cleanup finds it.
    pub fn cgroups_path_set(&mut self, p: &str) -> &mut Self {
        assert!(
            p.starts_with(&format!("/{}/", cgroup_parent())),
            "test cgroups must live under /{}/",
            cgroup_parent()
        );
        self.set("/linux/cgroupsPath", json!(p))
    }
    /// Append a mount.
    pub fn mount(&mut self, dest: &str, typ: &str, source: &str, options: &[&str]) -> &mut Self {
        let m = json!({"destination": dest, "type": typ, "source": source, "options": options});
        self.mount_value(m)
    }
    pub fn mount_value(&mut self, m: Value) -> &mut Self {
        let mut v: Vec<Value> = self.config["mounts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        v.push(m);
        self.set("/mounts", json!(v))
    }
    pub fn remove_mount(&mut self, dest: &str) -> &mut Self {
        let mut v: Vec<Value> = self.config["mounts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        v.retain(|m| m["destination"] != dest);
        self.set("/mounts", json!(v))
    }
    /// Namespaces currently configured (type names).
    pub fn namespaces(&self) -> Vec<String> {
        self.config["linux"]["namespaces"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|n| n["type"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
    /// Add a namespace (or replace the entry of that type), optionally joined by path.
    pub fn namespace(&mut self, typ: &str, path: Option<&str>) -> &mut Self {
        let mut v: Vec<Value> = self.config["linux"]["namespaces"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        v.retain(|n| n["type"] != typ);
        let mut n = json!({"type": typ});
        if let Some(p) = path {
            n["path"] = json!(p);
        }
        v.push(n);
        self.set("/linux/namespaces", json!(v))
    }
    pub fn remove_namespace(&mut self, typ: &str) -> &mut Self {
        let mut v: Vec<Value> = self.config["linux"]["namespaces"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        v.retain(|n| n["type"] != typ);
        self.set("/linux/namespaces", json!(v))
    }
    /// User namespace with one mapping each for uids and gids.
    pub fn userns(&mut self, container: u32, host: u32, size: u32) -> &mut Self {
        self.namespace("user", None)
            .set(
                "/linux/uidMappings",
                json!([{"containerID": container, "hostID": host, "size": size}]),
            )
            .set(
                "/linux/gidMappings",
                json!([{"containerID": container, "hostID": host, "size": size}]),
            )
    }
    /// Append a hook of `kind` (prestart, createRuntime, ...).
    pub fn hook(&mut self, kind: &str, hook: Value) -> &mut Self {
        let mut v: Vec<Value> = self.config["hooks"][kind]
            .as_array()
            .cloned()
            .unwrap_or_default();
        v.push(hook);
        if !self.config["hooks"].is_object() {
            self.config["hooks"] = json!({});
        }
        self.config["hooks"][kind] = json!(v);
        self
    }
    /// Append a device.
    pub fn device(&mut self, d: Value) -> &mut Self {
        let mut v: Vec<Value> = self.config["linux"]["devices"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        v.push(d);
        self.set("/linux/devices", json!(v))
    }

    /// Create a directory (relative to the bundle dir) on the host; returns its absolute path.
    pub fn host_dir(&self, rel: &str) -> PathBuf {
        let p = self.path().join(rel);
        fs::create_dir_all(&p).unwrap();
        p
    }
    /// Mount a tmpfs on the HOST at `<bundle>/rel` (detached again on drop). For rbind tests.
    pub fn host_tmpfs(&self, rel: &str) -> PathBuf {
        let p = self.host_dir(rel);
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "berth-test"])
            .arg(&p)
            .status()
            .expect("mount");
        assert!(st.success(), "mount tmpfs on {}", p.display());
        self.host_mounts.borrow_mut().push(p.clone());
        p
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        if let Some(cg) = self.cgroups_path() {
            remove_cgroup(&cg);
        }
        remove_cgroup(&self.cgroup_base);
        kill_tagged(&self.tag);
        for p in self.host_mounts.borrow().iter().rev() {
            let _ = rustix::mount::unmount(p, rustix::mount::UnmountFlags::DETACH);
        }
        detach_mounts_under(self.dir.path());
        try_remove_cgroup_parent(&self._lock);
    }
}

/// Set `ptr` ("/a/b") in `root` to `v`, turning missing or non-object parents into objects.
/// The strings of a JSON array (none for anything else).
pub fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

pub fn json_set(root: &mut Value, ptr: &str, v: Value) {
    let parts: Vec<&str> = ptr.split('/').skip(1).collect();
    let mut cur = root;
    for (i, p) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        if i + 1 == parts.len() {
            cur[*p] = v;
            return;
        }
        cur = &mut cur[*p];
    }
}

// ---------------------------------------------------------------------------------------------
// Cleanup helpers

fn cgroup_lock_shared() -> File {
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(cgroup_lock_path())
        .expect("open cgroup lock");
    f.lock_shared().expect("flock shared");
    f
}

/// If no other test holds the lock, remove the (then empty) `berth-test` parent in every hierarchy.
fn try_remove_cgroup_parent(lock: &File) {
    if lock.try_lock().is_ok() {
        for mp in cgroup_mounts() {
            let _ = fs::remove_dir(mp.join(cgroup_parent()));
        }
        let _ = lock.lock_shared();
    }
}

/// Mount points of every cgroup (v1) and cgroup2 hierarchy on the host.
pub fn cgroup_mounts() -> Vec<PathBuf> {
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v = Vec::new();
    for l in mi.lines() {
        if let Some((pre, post)) = l.split_once(" - ") {
            let fstype = post.split_whitespace().next().unwrap_or("");
            if fstype == "cgroup" || fstype == "cgroup2" {
                if let Some(mp) = pre.split_whitespace().nth(4) {
                    v.push(PathBuf::from(unescape_mount(mp)));
                }
            }
        }
    }
    v
}

/// Is a cgroup2 hierarchy mounted (hybrid `unified` or pure v2)? When it is not (the private
/// namespace used to run crun on this hybrid host), the `0::` line of /proc/<pid>/cgroup is not managed.
pub fn unified_mounted() -> bool {
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    parse_mountinfo(&mi).iter().any(|m| m.fstype == "cgroup2")
}

/// Lines of a /proc/<pid>/cgroup text that the runtime must manage: all, minus `0::` when no cgroup2
/// hierarchy is mounted.
pub fn managed_cgroup_lines(text: &str) -> Vec<String> {
    let uni = unified_mounted();
    text.lines()
        .filter(|l| uni || !l.starts_with("0::"))
        .map(String::from)
        .collect()
}

/// Directories of the cgroup `path` (absolute, e.g. "/berth-test/x") in every hierarchy that exist now.
pub fn cgroup_dirs(path: &str) -> Vec<PathBuf> {
    cgroup_mounts()
        .into_iter()
        .map(|mp| mp.join(path.trim_start_matches('/')))
        .filter(|p| p.is_dir())
        .collect()
}

/// Kill every process in the cgroup (all hierarchies), thaw it, and rmdir it leaf-first.
/// Refuses paths outside /berth-test.
pub fn remove_cgroup(path: &str) {
    if !path.starts_with(&format!("/{}/", cgroup_parent())) || path.contains("..") {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let dirs = cgroup_dirs(path);
        if dirs.is_empty() {
            return;
        }
        for d in &dirs {
            let mut all = Vec::new();
            collect_dirs(d, &mut all);
            for sub in all.iter().rev() {
                let _ = fs::write(sub.join("freezer.state"), "THAWED");
                let _ = fs::write(sub.join("cgroup.freeze"), "0");
                for f in ["cgroup.procs", "tasks"] {
                    if let Ok(s) = fs::read_to_string(sub.join(f)) {
                        for pid in s.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                            kill_pid(pid, 9);
                        }
                    }
                }
                let _ = fs::remove_dir(sub);
            }
        }
        if Instant::now() > deadline {
            eprintln!(
                "warning: could not remove cgroup dirs {:?}",
                cgroup_dirs(path)
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn collect_dirs(d: &Path, out: &mut Vec<PathBuf>) {
    out.push(d.to_path_buf());
    if let Ok(rd) = fs::read_dir(d) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}

/// SIGKILL every process whose environment contains the exact entry `tag` ("KEY=value").
pub fn kill_tagged(tag: &str) {
    // Twice: a tagged process may fork while /proc is being read.
    for _ in 0..2 {
        kill_tagged_once(tag);
    }
}

fn kill_tagged_once(tag: &str) {
    let needle = tag.as_bytes();
    let me = std::process::id() as i32;
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            if pid == me {
                continue;
            }
            if let Ok(env) = fs::read(format!("/proc/{pid}/environ")) {
                if env.split(|b| *b == 0).any(|v| v == needle) {
                    kill_pid(pid, 9);
                }
            }
        }
    }
}

/// SIGKILL every process (other than this one) whose command line contains `needle`, e.g. the
/// private socket path of a daemon a test started, to catch detached shims.
pub fn kill_cmdline_containing(needle: &str) {
    let me = std::process::id() as i32;
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            if pid == me {
                continue;
            }
            if let Ok(c) = fs::read(format!("/proc/{pid}/cmdline")) {
                if String::from_utf8_lossy(&c).contains(needle) {
                    kill_pid(pid, 9);
                }
            }
        }
    }
}

/// Send a signal to a host pid (ignore errors).
pub fn kill_pid(pid: i32, sig: i32) {
    if pid <= 1 {
        return;
    }
    if let (Some(p), Some(s)) = (
        rustix::process::Pid::from_raw(pid),
        rustix::process::Signal::from_named_raw(sig),
    ) {
        let _ = rustix::process::kill_process(p, s);
    }
}

/// Field 22 (starttime) of /proc/<pid>/stat: identifies a process across pid reuse.
pub fn proc_starttime(pid: i32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Is the process alive (and not a zombie)?
pub fn pid_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rfind(')')
            .map(|i| !s[i + 2..].starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One parsed line of a mountinfo file.
#[derive(Debug, Clone)]
pub struct MountInfo {
    pub id: u32,
    pub parent: u32,
    pub root: String,
    pub mount_point: String,
    pub options: String,
    pub optional: String,
    pub fstype: String,
    pub source: String,
    pub super_options: String,
}

/// Parse mountinfo text.
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    let mut v = Vec::new();
    for l in text.lines() {
        let Some((pre, post)) = l.split_once(" - ") else {
            continue;
        };
        let f: Vec<&str> = pre.split_whitespace().collect();
        let p: Vec<&str> = post.split_whitespace().collect();
        if f.len() < 6 || p.len() < 2 {
            continue;
        }
        v.push(MountInfo {
            id: f[0].parse().unwrap_or(0),
            parent: f[1].parse().unwrap_or(0),
            root: unescape_mount(f[3]),
            mount_point: unescape_mount(f[4]),
            options: f[5].to_string(),
            optional: f[6..].join(" "),
            fstype: p[0].to_string(),
            source: unescape_mount(p[1]),
            super_options: p.get(2).unwrap_or(&"").to_string(),
        });
    }
    v
}

/// Host mounts (in the test's own mount namespace) at or below `dir`.
pub fn host_mounts_under(dir: &Path) -> Vec<MountInfo> {
    let d = dir.to_string_lossy().into_owned();
    parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
        .into_iter()
        .filter(|m| m.mount_point == d || m.mount_point.starts_with(&format!("{d}/")))
        .collect()
}

/// A snapshot of the host's (the test process's) mount table, to find mounts added since.
/// Other tests mount in parallel, so callers filter the difference by what they own.
pub struct HostMounts {
    ids: std::collections::BTreeSet<u32>,
}

impl HostMounts {
    pub fn snapshot() -> HostMounts {
        let mi = parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo").unwrap_or_default());
        HostMounts {
            ids: mi.iter().map(|m| m.id).collect(),
        }
    }
    /// Mounts present now that were not in the snapshot.
    pub fn new_since(&self) -> Vec<MountInfo> {
        parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
            .into_iter()
            .filter(|m| !self.ids.contains(&m.id))
            .collect()
    }
}

/// Detach every host mount below `dir` (deepest first) so removing the temp dir never crosses into
/// a leaked mount.
pub fn detach_mounts_under(dir: &Path) {
    for _ in 0..3 {
        let mut ms = host_mounts_under(dir);
        if ms.is_empty() {
            return;
        }
        ms.sort_by_key(|m| std::cmp::Reverse(m.mount_point.len()));
        for m in ms {
            let _ =
                rustix::mount::unmount(m.mount_point.as_str(), rustix::mount::UnmountFlags::DETACH);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Host-side views

/// /proc/<pid>/status as a map.
pub fn proc_status(pid: i32) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    if let Ok(s) = fs::read_to_string(format!("/proc/{pid}/status")) {
        for l in s.lines() {
            if let Some((k, v)) = l.split_once(':') {
                m.insert(k.to_string(), v.trim().to_string());
            }
        }
    }
    m
}

/// Target of /proc/<pid>/ns/<name> ("net:[4026531840]"); pid "self" for the test process.
pub fn ns_of(pid: &str, name: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{name}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The host's (test process's) namespace link for `name`.
pub fn host_ns(name: &str) -> String {
    ns_of("self", name)
}

/// Capability names by bit number (0..=40).
pub const CAP_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Bit mask for capability names.
pub fn cap_mask(names: &[&str]) -> u64 {
    names
        .iter()
        .map(|n| {
            let i = CAP_NAMES
                .iter()
                .position(|c| c == n)
                .unwrap_or_else(|| panic!("unknown cap {n}"));
            1u64 << i
        })
        .fold(0, |a, b| a | b)
}

/// Parse a hex capability set from /proc status ("00000000a80425fb").
pub fn cap_hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim(), 16).unwrap_or_else(|_| panic!("bad cap hex {s:?}"))
}

/// Names in a capability mask.
pub fn cap_names(mask: u64) -> Vec<&'static str> {
    (0..64)
        .filter(|i| mask & (1u64 << i) != 0)
        .map(|i| CAP_NAMES.get(i).copied().unwrap_or("CAP_UNKNOWN"))
        .collect()
}

/// Capabilities the host kernel knows (the test process's bounding set as root).
pub fn host_bounding() -> u64 {
    cap_hex(
        proc_status(std::process::id() as i32)
            .get("CapBnd")
            .map(String::as_str)
            .unwrap_or("0"),
    )
}

/// A host file outside every bundle whose content a container must never see (CVE marker).
pub struct Marker {
    pub dir: TempDir,
    pub path: PathBuf,
    pub secret: String,
}

impl Marker {
    pub fn new() -> Marker {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-marker.")
            .tempdir()
            .unwrap();
        let secret = unique("secret");
        let path = dir.path().join("marker");
        fs::write(&path, &secret).unwrap();
        Marker { dir, path, secret }
    }
}

impl Default for Marker {
    fn default() -> Self {
        Self::new()
    }
}

/// Signal number for a name without SIG prefix (the common ones).
pub fn signum(name: &str) -> i32 {
    match name.trim_start_matches("SIG") {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "KILL" => 9,
        "USR1" => 10,
        "USR2" => 12,
        "TERM" => 15,
        "CHLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "WINCH" => 28,
        other => panic!("unknown signal {other}"),
    }
}

/// Short pause that lets a process install a handler or a state settle.
pub fn settle() {
    std::thread::sleep(Duration::from_millis(50));
}

// ---------------------------------------------------------------------------------------------
// Console socket (recvtty)

/// A unix socket for `--console-socket`: the runtime connects and sends the pty master with
/// SCM_RIGHTS (runc's recvtty protocol).
pub struct ConsoleSocket {
    pub path: PathBuf,
    listener: std::os::unix::net::UnixListener,
}

impl ConsoleSocket {
    pub fn new(dir: &Path) -> ConsoleSocket {
        let path = dir.join(format!("{}.sock", unique("console")));
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind console socket");
        listener.set_nonblocking(true).unwrap();
        ConsoleSocket { path, listener }
    }

    /// Wait for the runtime's connection and return the pty master it sends.
    pub fn recv_master(&self, timeout: Duration) -> File {
        use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
        let stream = wait_for(timeout, || self.listener.accept().ok().map(|(s, _)| s))
            .unwrap_or_else(|| panic!("runtime never connected to {}", self.path.display()));
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(timeout)).unwrap();
        let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut cmsg = RecvAncillaryBuffer::new(&mut space);
        let mut buf = [0u8; 4096];
        recvmsg(
            &stream,
            &mut [std::io::IoSliceMut::new(&mut buf)],
            &mut cmsg,
            RecvFlags::CMSG_CLOEXEC,
        )
        .expect("recvmsg on console socket");
        for msg in cmsg.drain() {
            if let RecvAncillaryMessage::ScmRights(mut fds) = msg {
                if let Some(fd) = fds.next() {
                    return File::from(fd);
                }
            }
        }
        panic!("no fd received on the console socket");
    }
}

/// Read a pty master until the slave side is closed (EIO) or `timeout`; returns the text with
/// "\r\n" turned into "\n".
pub fn read_pty(master: File, timeout: Duration) -> String {
    use std::io::Read;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut m = master;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match m.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        let _ = tx.send(out);
    });
    let out = rx.recv_timeout(timeout).unwrap_or_default();
    String::from_utf8_lossy(&out).replace("\r\n", "\n")
}

/// A pseudo-terminal pair for giving the runtime itself a terminal (foreground `run` with
/// process.terminal). Returns (master, slave).
pub fn pty_pair() -> (File, File) {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let m = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).expect("openpt");
    grantpt(&m).expect("grantpt");
    unlockpt(&m).expect("unlockpt");
    let name = ptsname(&m, Vec::new()).expect("ptsname");
    let slave = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .expect("open pty slave");
    (File::from(m), slave)
}

/// Set the window size of a terminal.
pub fn set_winsize(tty: &File, rows: u16, cols: u16) {
    rustix::termios::tcsetwinsize(
        tty,
        rustix::termios::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )
    .expect("TIOCSWINSZ");
}

/// Collects everything read from a terminal master in the background.
pub struct PtyReader {
    buf: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl PtyReader {
    pub fn new(master: File) -> PtyReader {
        use std::io::Read;
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let b2 = buf.clone();
        std::thread::spawn(move || {
            let mut m = master;
            let mut chunk = [0u8; 4096];
            while let Ok(n) = m.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                b2.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        PtyReader { buf }
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).replace("\r\n", "\n")
    }
    /// Wait until the output contains `needle`.
    #[track_caller]
    pub fn wait(&self, needle: &str, timeout: Duration) -> String {
        match wait_for(timeout, || {
            let t = self.text();
            t.contains(needle).then_some(t)
        }) {
            Some(t) => t,
            None => panic!("terminal never showed {needle:?}; got:\n{}", self.text()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_parsing_handles_optional_fields_and_escapes() {
        let t = "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue\n\
                 40 36 0:5 / /x rw - tmpfs tmpfs rw,size=1024k\n";
        let v = parse_mountinfo(t);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].mount_point, "/mnt/with space");
        assert_eq!(v[0].optional, "master:1 shared:2");
        assert_eq!(v[0].fstype, "ext3");
        assert_eq!(v[0].super_options, "rw,errors=continue");
        assert_eq!(v[1].optional, "");
        assert_eq!(v[1].super_options, "rw,size=1024k");
    }

    #[test]
    fn capability_masks() {
        assert_eq!(cap_mask(&["CAP_CHOWN", "CAP_KILL"]), 0x21);
        assert_eq!(cap_hex("00000000a80425fb"), 0xa80425fb);
        assert_eq!(
            cap_names(0x20000420),
            ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"]
        );
    }

    #[test]
    fn probe_line_is_the_last_json_object() {
        let s = "noise\n{\"a\":1}\nmore noise\n{\"b\":2}\n";
        assert_eq!(parse_probe(s).unwrap()["b"], 2);
        assert!(parse_probe("nothing").is_none());
    }

    #[test]
    fn remove_cgroup_refuses_paths_outside_the_test_parent() {
        // Must return at once without touching anything.
        remove_cgroup("/process_api");
        remove_cgroup("/berth-test/../process_api");
    }

    #[test]
    fn json_set_creates_parents() {
        let mut c = json!({"process": {"args": ["sh"]}, "linux": null});
        json_set(&mut c, "/process/cwd", json!("/x"));
        json_set(&mut c, "/linux/personality/domain", json!("LINUX32"));
        assert_eq!(c["process"]["cwd"], "/x");
        assert_eq!(c["process"]["args"], json!(["sh"]));
        assert_eq!(c["linux"]["personality"]["domain"], "LINUX32");
    }
}
