//! OCI hooks: the state JSON on stdin, args, env, timeout.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_oci::{Config, Hook, Hooks};

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl HookKind {
    pub fn name(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }
}

pub fn list(h: &Hooks, kind: HookKind) -> &[Hook] {
    #[allow(deprecated)]
    let v = match kind {
        HookKind::Prestart => h.prestart(),
        HookKind::CreateRuntime => h.create_runtime(),
        HookKind::CreateContainer => h.create_container(),
        HookKind::StartContainer => h.start_container(),
        HookKind::Poststart => h.poststart(),
        HookKind::Poststop => h.poststop(),
    };
    v.as_deref().unwrap_or(&[])
}

pub fn has_runtime_hooks(h: &Hooks) -> bool {
    !list(h, HookKind::Prestart).is_empty() || !list(h, HookKind::CreateRuntime).is_empty()
}

/// The runtime-spec state document given to hooks.
pub fn state_json(config: &Config, id: &str, status: &str, pid: i32) -> String {
    let mut v = serde_json::json!({
        "ociVersion": berth_oci::OCI_VERSION,
        "id": id,
        "status": status,
        "bundle": config.bundle,
    });
    if pid > 0 {
        v["pid"] = pid.into();
    }
    if !config.annotations.is_empty() {
        v["annotations"] = serde_json::to_value(&config.annotations).unwrap_or_default();
    }
    v.to_string()
}

/// Run every hook of a kind in order; the first failure stops and is
/// returned. A hook without `env` gets an empty environment.
pub fn run(h: &Hooks, kind: HookKind, state: &str) -> Result<()> {
    run_with_env(h, kind, state, &[])
}

/// As [`run`], a hook without `env` getting `default_env` (runc runs the hooks it runs from
/// the container's init, createContainer and startContainer, in the container's environment:
/// init's own by then). A hook with `env`, even an empty one, gets exactly that.
pub fn run_with_env(h: &Hooks, kind: HookKind, state: &str, default_env: &[String]) -> Result<()> {
    let fail = |i: usize, hook: &Hook, msg: String| {
        Error::Hook(format!(
            "{} hook #{i} ({}): {msg}",
            kind.name(),
            hook.path().display()
        ))
    };
    let mut failed = Vec::new();
    for (i, hook) in list(h, kind).iter().enumerate() {
        if let Err(msg) = run_one(hook, state, default_env) {
            // A failing poststart or poststop hook is a warning, and the
            // remaining hooks still run; any other kind stops here.
            if matches!(kind, HookKind::Poststart | HookKind::Poststop) {
                failed.push(fail(i, hook, msg).to_string());
            } else {
                return Err(fail(i, hook, msg));
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Hook(failed.join("; ")))
    }
}

fn run_one(hook: &Hook, state: &str, default_env: &[String]) -> std::result::Result<(), String> {
    let args = hook.args().clone().unwrap_or_default();
    let mut cmd = Command::new(hook.path());
    if let Some(a0) = args.first() {
        use std::os::unix::process::CommandExt;
        cmd.arg0(a0);
        cmd.args(&args[1..]);
    }
    cmd.env_clear();
    for e in hook.env().as_deref().unwrap_or(default_env) {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("start: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine.
        let _ = stdin.write_all(state.as_bytes());
    }
    let deadline = hook
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let mut sleep = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok(()),
            Ok(Some(st)) => return Err(format!("failed: {st}")),
            Ok(None) => {}
            Err(e) => return Err(format!("wait: {e}")),
        }
        if let Some(d) = deadline {
            if Instant::now() >= d {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {} s", hook.timeout().unwrap_or(0)));
            }
        }
        std::thread::sleep(sleep);
        sleep = (sleep * 2).min(Duration::from_millis(20));
    }
}
