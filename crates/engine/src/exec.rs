//! Exec: a new process in a running container, `RUNTIME --root R exec --process FILE ID`
//! as containerd runs it. The process is the container's own (bundle config.json) with
//! args, env, cwd and user replaced; the user is resolved through the image's /etc/passwd
//! and /etc/group, read with RESOLVE_IN_ROOT from an fd of the mounted rootfs.
//!
//! Without a tty the process gets pipes whose other ends the caller holds and copies
//! (stdin only when asked): no fd of the caller ever enters the container, so a process
//! the exec leaves behind cannot keep the caller's terminal or reopen its files through
//! /proc/self/fd (issue 16, item 1; docker and podman do the same). With a tty the
//! runtime sends the pty master over a console socket (SCM_RIGHTS).
//!
//! The CLI (`berth exec`) and the API server (`/exec/{id}/start`) both start here and
//! differ only in where they copy the streams to.
//!
//! Exit codes (docker's): the process's status; 126 when it cannot be invoked, 127 when
//! it is not found (from the runtime's error, read from its --log).

use crate::layout::Layout;
use crate::record::Status;
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// What to run, resolved by the front-end (env entries are KEY=VALUE already).
#[derive(Debug, Clone, Default)]
pub struct ExecSpec {
    pub command: Vec<String>,
    pub tty: bool,
    /// A pipe (or the pty) for the process's stdin.
    pub stdin: bool,
    /// Nobody copies the streams: stdio is /dev/null (a tty is taken and dropped).
    pub detach: bool,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub env: Vec<String>,
    pub privileged: bool,
    /// The pty's first size (rows, columns), so the first `stty size` is right.
    pub console_size: Option<(u16, u16)>,
}

/// A started exec: the runtime's process and the ends of the process's streams.
pub struct Started {
    pub child: Child,
    /// The pty master (tty, not detached); None when the runtime failed before sending it.
    pub master: Option<OwnedFd>,
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    pub container: String,
    detach: bool,
    tmp: TempDir,
    attrs: BTreeMap<String, String>,
}

/// Refuses an exec into a container that is not running, paused or restarting (dockerd's
/// messages).
pub fn check_running(layout: &Layout, id: &str) -> Result<()> {
    let st = crate::status::current(layout, id)?;
    if !crate::status::is_running(&st) {
        return Err(Error::Invalid(format!("container {id} is not running")));
    }
    match st.status {
        Status::Paused => Err(Error::Invalid(format!(
            "container {id} is paused, unpause the container before exec"
        ))),
        Status::Restarting => Err(Error::Invalid(format!(
            "container {id} is restarting, wait until the container is running"
        ))),
        _ => Ok(()),
    }
}

/// An error of [`process_json`] about the user: the command cannot be invoked (126).
pub fn is_user_error(e: &Error) -> bool {
    e.to_string().starts_with("user ")
}

/// `base` with each of `over` replacing the entry of the same name.
pub fn merge_env(base: &[String], over: &[String]) -> Vec<String> {
    let mut v: Vec<String> = base.to_vec();
    for o in over {
        let k = o.split('=').next().unwrap_or("");
        v.retain(|x| x.split('=').next() != Some(k));
        v.push(o.clone());
    }
    v
}

/// The process document for `runtime exec --process`.
pub fn process_json(layout: &Layout, id: &str, a: &ExecSpec) -> Result<serde_json::Value> {
    let p = layout.bundle_dir(id).join("config.json");
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&p).map_err(|e| Error::io(&p, e))?)
            .map_err(|e| Error::Json(p.clone(), e))?;
    let mut proc_ = spec
        .get("process")
        .cloned()
        .ok_or_else(|| Error::Invalid(format!("{} has no process", p.display())))?;
    proc_["args"] = serde_json::json!(a.command);
    proc_["terminal"] = a.tty.into();
    // The container's own console size (from `run -t`) is not this exec's.
    if let Some(o) = proc_.as_object_mut() {
        o.remove("consoleSize");
    }
    if let (true, Some((h, w))) = (a.tty, a.console_size) {
        proc_["consoleSize"] = serde_json::json!({"height": h, "width": w});
    }
    let base: Vec<String> = proc_
        .get("env")
        .and_then(|e| serde_json::from_value(e.clone()).ok())
        .unwrap_or_default();
    let mut over = a.env.clone();
    if a.tty && !over.iter().any(|e| e.starts_with("TERM=")) {
        over.insert(0, "TERM=xterm".into());
    }
    proc_["env"] = serde_json::json!(merge_env(&base, &over));
    if let Some(w) = &a.workdir {
        if !w.starts_with('/') {
            return Err(Error::Invalid(format!(
                "the working directory {w:?} is invalid, it needs to be an absolute path"
            )));
        }
        proc_["cwd"] = w.clone().into();
    }
    if let Some(u) = &a.user {
        let rootfs = spec
            .pointer("/root/path")
            .and_then(|r| r.as_str())
            .ok_or_else(|| Error::Invalid(format!("{} has no root.path", p.display())))?;
        let fd = rustix::fs::open(
            rootfs,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| Error::io(rootfs, e.into()))?;
        let user = berth_image::spec::resolve_user(&fd, u)?;
        let mut uj = serde_json::to_value(&user).expect("users serialise");
        if let Some(o) = uj.as_object_mut() {
            o.remove("username");
        }
        proc_["user"] = uj;
    }
    if a.privileged {
        let all = serde_json::json!(crate::spec::kernel_caps());
        proc_["capabilities"] = serde_json::json!({
            "bounding": all, "effective": all, "permitted": all,
        });
    }
    Ok(proc_)
}

/// Starts `spec` in running container `id` (an id, not a name). With a tty (not
/// detached) it returns once the runtime has sent the pty master.
pub fn spawn(layout: &Layout, id: &str, spec: &ExecSpec) -> Result<Started> {
    check_running(layout, id)?;
    let cfg = layout.load_config(id)?;
    let process = process_json(layout, id, spec)?;
    let exec_id = crate::create::new_id()?;
    // Files for this exec (short path: the console socket's name must fit sun_path).
    let tmp = TempDir::new(&exec_id)?;
    let pfile = tmp.path().join("process.json");
    std::fs::write(
        &pfile,
        serde_json::to_vec(&process).expect("json serialises"),
    )
    .map_err(|e| Error::io(&pfile, e))?;
    let mut attrs = crate::create::attrs(&cfg);
    attrs.insert("execID".into(), exec_id.clone());
    let _ = crate::events::emit(
        layout,
        "container",
        &format!("exec_start: {}", spec.command.join(" ")),
        id,
        attrs.clone(),
    );
    let mut cmd = Command::new(&cfg.runtime);
    cmd.arg("--root")
        .arg(&cfg.runtime_root)
        .arg("--log")
        .arg(tmp.log())
        .args(["--log-format", "json", "exec", "--process"])
        .arg(&pfile);
    if spec.detach {
        cmd.arg("--detach");
    }
    let console = if spec.tty {
        let p = tmp.path().join("console.sock");
        let l = std::os::unix::net::UnixListener::bind(&p).map_err(|e| Error::io(&p, e))?;
        l.set_nonblocking(true).map_err(|e| Error::io(&p, e))?;
        cmd.arg("--console-socket").arg(&p);
        Some(l)
    } else {
        None
    };
    cmd.arg(id);
    // Never the caller's own fds (see the module doc): null, or pipes the caller copies.
    if spec.detach || spec.tty {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    } else {
        cmd.stdin(if spec.stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    }
    let mut child = cmd.spawn().map_err(|e| Error::io(&cfg.runtime, e))?;
    let master = match console {
        Some(l) => {
            let m = accept_master(&mut child, &l).map_err(|e| Error::io(tmp.path(), e))?;
            // Detached with a tty: nobody reads it, as docker's `exec -dt`; the master is
            // taken so the runtime can go on, and dropped.
            if spec.detach {
                None
            } else {
                m
            }
        }
        None => None,
    };
    Ok(Started {
        stdin: child.stdin.take().map(OwnedFd::from),
        stdout: child.stdout.take().map(OwnedFd::from),
        stderr: child.stderr.take().map(OwnedFd::from),
        child,
        master,
        container: id.to_string(),
        detach: spec.detach,
        tmp,
        attrs,
    })
}

/// How an exec ended: docker's exit code and the runtime's error, if it had one.
#[derive(Debug, Clone, PartialEq)]
pub struct Ended {
    pub code: i32,
    pub runtime_error: Option<String>,
}

impl Started {
    /// The runtime's pid (signals for the process go to it; it passes them on).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// After the runtime exited with `status`: the exit code, and the event.
    pub fn finish(self, layout: &Layout, status: ExitStatus) -> Ended {
        let runtime_error = runtime_errors(&self.tmp.log()).pop();
        let code = match &runtime_error {
            Some(msg) => invoke_failure_code(msg),
            None => status_code(status),
        };
        if !self.detach {
            let mut attrs = self.attrs;
            attrs.insert("exitCode".into(), code.to_string());
            let _ = crate::events::emit(layout, "container", "exec_die", &self.container, attrs);
        }
        Ended {
            code,
            runtime_error,
        }
    }
}

/// The runtime's error lines (`--log-format json`, level error).
fn runtime_errors(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "error")
        .filter_map(|v| v["msg"].as_str().map(str::to_string))
        .collect()
}

/// docker's status for an exec the runtime could not start.
pub fn invoke_failure_code(msg: &str) -> i32 {
    let m = msg.to_ascii_lowercase();
    // The runtime says it as runc does: "exec failed: <why>".
    let m = m.strip_prefix("exec failed: ").unwrap_or(&m);
    // A missing working directory is "cannot invoke" (126), a missing program 127.
    if m.starts_with("chdir") {
        126
    } else if m.contains("executable file not found") || m.contains("no such file or directory") {
        127
    } else {
        // Found but not runnable (permission denied, exec format error, a bad cwd or
        // user ...): it cannot be invoked.
        126
    }
}

pub fn status_code(s: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
}

/// A private directory under the system's temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(exec_id: &str) -> Result<TempDir> {
        use std::os::unix::fs::DirBuilderExt;
        let p = std::env::temp_dir().join(format!("berth-exec-{}", &exec_id[..16]));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&p)
            .map_err(|e| Error::io(&p, e))?;
        Ok(TempDir(p))
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn log(&self) -> PathBuf {
        self.0.join("runtime.log")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits for the runtime to connect to the console socket and send the pty master; None
/// when the runtime exits first (it failed).
fn accept_master(
    child: &mut Child,
    l: &std::os::unix::net::UnixListener,
) -> std::io::Result<Option<OwnedFd>> {
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false)?;
                return crate::proto::recv_fd(s.as_fd()).map(Some);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if child.try_wait()?.is_some() {
                    return Ok(None);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_and_codes() {
        let base = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        assert_eq!(
            merge_env(&base, &["A=2".into(), "B=3".into()]),
            vec!["PATH=/bin", "A=2", "B=3"]
        );
        assert_eq!(
            invoke_failure_code(r#"exec: "nope": executable file not found in $PATH"#),
            127
        );
        assert_eq!(invoke_failure_code("exec /etc: permission denied"), 126);
        assert_eq!(
            invoke_failure_code("chdir to cwd /nope: No such file or directory (os error 2)"),
            126
        );
        assert_eq!(
            invoke_failure_code(
                "exec failed: chdir to cwd /nope: No such file or directory (os error 2)"
            ),
            126
        );
    }
}
