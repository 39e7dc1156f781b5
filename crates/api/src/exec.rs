//! `/containers/{id}/exec` and `/exec/{id}/...`: create, start (hijacked, detached, tty),
//! resize, inspect. An exec instance is held by this server, as dockerd holds them in
//! memory; the process itself is the engine's exec (crates/engine/src/exec.rs), the same
//! as `berth exec` makes.

use crate::attach::{hijack, Input};
use crate::containers::frame;
use crate::error::chain;
use crate::params::{dimension, resolve};
use crate::{blocking, ApiError, State};
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State as S};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_engine::exec::{ExecSpec, Started};
use berth_engine::Error as E;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

pub(crate) fn routes() -> Router<State> {
    Router::new()
        .route("/containers/{id}/exec", post(create))
        .route("/exec/{id}/start", post(start))
        .route("/exec/{id}/resize", post(resize))
        .route("/exec/{id}/json", get(inspect))
}

/// The exec instances this server made.
#[derive(Default)]
pub(crate) struct Execs {
    map: Mutex<HashMap<String, Arc<Exec>>>,
}

impl Execs {
    fn get(&self, id: &str) -> Result<Arc<Exec>, ApiError> {
        let m = self.map.lock().expect("execs lock");
        m.get(id)
            .or_else(|| {
                // A unique prefix, as dockerd takes.
                let mut hits = m.iter().filter(|(k, _)| k.starts_with(id));
                match (hits.next(), hits.next()) {
                    (Some((_, v)), None) if !id.is_empty() => Some(v),
                    _ => None,
                }
            })
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {id}")))
    }
}

struct Exec {
    id: String,
    container: String,
    spec: ExecSpec,
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    detach_keys: String,
    state: Mutex<ExecState>,
}

#[derive(Default)]
struct ExecState {
    started: bool,
    running: bool,
    exit_code: Option<i32>,
    pid: u32,
    master: Option<Arc<OwnedFd>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    detach_keys: Option<String>,
    tty: bool,
    env: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    privileged: bool,
    user: Option<String>,
    working_dir: Option<String>,
    console_size: Option<Vec<u16>>,
}

/// docker's words for an exec into a container that cannot take one (409).
fn not_runnable(layout: &berth_engine::layout::Layout, e: E) -> ApiError {
    match e {
        E::Invalid(m) if m.starts_with("container ") => {
            let mut c = m.chars();
            let m = match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => m,
            };
            ApiError::conflict(m)
        }
        e => ApiError::engine(layout, e),
    }
}

async fn create(
    S(s): S<State>,
    Path(r): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let b: CreateBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad(format!("invalid exec body: {e}")))?;
    let cmd = b.cmd.clone().unwrap_or_default();
    if cmd.is_empty() {
        return Err(ApiError::bad("No exec command specified"));
    }
    let keys = b.detach_keys.clone().unwrap_or_default();
    if !keys.is_empty() {
        berth_engine::parse::detach_keys(&keys).map_err(|e| ApiError::bad(chain(&e)))?;
    }
    let env = b.env.clone().unwrap_or_default();
    if let Some(bad) = env.iter().find(|e| e.starts_with('=') || e.is_empty()) {
        return Err(ApiError::bad(format!(
            "invalid environment variable {bad:?}: empty name"
        )));
    }
    let s2 = s.clone();
    let container = blocking(move || {
        let id = resolve(&s2, &r)?;
        berth_engine::exec::check_running(&s2.layout, &id)
            .map_err(|e| not_runnable(&s2.layout, e))?;
        Ok(id)
    })
    .await?;
    let id = berth_engine::create::new_id().map_err(|e| ApiError::internal(chain(&e)))?;
    let spec = ExecSpec {
        command: cmd,
        tty: b.tty,
        stdin: b.attach_stdin,
        // How the streams are taken is start's choice (Detach); the process gets pipes or
        // a pty either way and the server copies or drains them.
        detach: false,
        user: b.user.filter(|u| !u.is_empty()),
        workdir: b.working_dir.filter(|w| !w.is_empty()),
        env,
        privileged: b.privileged,
        console_size: match b.console_size.as_deref() {
            Some([h, w]) if *h > 0 && *w > 0 => Some((*h, *w)),
            _ => None,
        },
    };
    let e = Exec {
        id: id.clone(),
        container,
        spec,
        attach_stdin: b.attach_stdin,
        attach_stdout: b.attach_stdout,
        attach_stderr: b.attach_stderr,
        detach_keys: keys,
        state: Mutex::new(ExecState::default()),
    };
    s.execs
        .map
        .lock()
        .expect("execs lock")
        .insert(id.clone(), Arc::new(e));
    Ok((StatusCode::CREATED, Json(json!({"Id": id}))))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct StartBody {
    detach: bool,
    tty: Option<bool>,
}

async fn start(S(s): S<State>, Path(r): Path<String>, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|e| ApiError::bad(format!("exec start body: {e}")))?;
    let b: StartBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        StartBody::default()
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad(format!("invalid exec start body: {e}")))?
    };
    let ex = s.execs.get(&r)?;
    if b.tty.is_some_and(|t| t != ex.spec.tty) {
        return Err(ApiError::bad(
            "Tty in the start body differs from the exec's (set it at create)",
        ));
    }
    {
        let mut st = ex.state.lock().expect("exec lock");
        if st.started {
            return Err(ApiError::conflict(format!(
                "Error: Exec command {} has already run",
                ex.id
            )));
        }
        st.started = true;
        st.running = true;
    }
    let (s2, ex2) = (s.clone(), ex.clone());
    let started = blocking(move || {
        berth_engine::exec::spawn(&s2.layout, &ex2.container, &ex2.spec).map_err(|e| {
            ex2.state.lock().expect("exec lock").running = false;
            match e {
                e if berth_engine::exec::is_user_error(&e) => {
                    ex2.state.lock().expect("exec lock").exit_code = Some(126);
                    ApiError::internal(format!("OCI runtime exec failed: {}", chain(&e)))
                }
                e => not_runnable(&s2.layout, e),
            }
        })
    })
    .await?;
    {
        let mut st = ex.state.lock().expect("exec lock");
        st.pid = started.pid();
    }
    if b.detach {
        // Nobody reads: the output is drained so the process never blocks on it.
        let (tx, mut rx) = mpsc::channel::<Bytes>(8);
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        tokio::spawn(run_session(s, ex, started, None, tx));
        return Ok(StatusCode::OK.into_response());
    }
    let req = Request::from_parts(parts, axum::body::Body::empty());
    Ok(hijack(req, move |input, out| async move {
        run_session(s, ex, started, input, out).await
    }))
}

/// Copies the process's streams to the client (and the client's input to its stdin)
/// until the runtime exits, then records the exit code.
async fn run_session(
    s: State,
    ex: Arc<Exec>,
    mut started: Started,
    input: Option<Input>,
    out: mpsc::Sender<Bytes>,
) {
    let master = started.master.take().map(Arc::new);
    if let Some(m) = &master {
        ex.state.lock().expect("exec lock").master = Some(m.clone());
    }
    let (stdin, stdout, stderr) = (
        started.stdin.take(),
        started.stdout.take(),
        started.stderr.take(),
    );
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let layout_s = s.clone();
    std::thread::spawn(move || {
        let status = started.child.wait();
        let ended = match status {
            Ok(st) => started.finish(&layout_s.layout, st).code,
            Err(_) => 126,
        };
        let _ = done_tx.send(ended);
    });
    // Detach keys apply with a tty only; create checked the ones given.
    let keys = match (ex.spec.tty, ex.detach_keys.as_str()) {
        (false, _) => Vec::new(),
        (true, "") => berth_engine::parse::DEFAULT_DETACH_KEYS.to_vec(),
        (true, k) => berth_engine::parse::detach_keys(k).unwrap_or_default(),
    };
    // The client's input: to the pty, or to the stdin pipe (closed at the client's EOF).
    let to_proc: Option<OwnedFd> = match (&master, stdin) {
        (Some(m), _) if ex.attach_stdin => rustix::io::fcntl_dupfd_cloexec(&**m, 0).ok(),
        (None, Some(p)) if ex.attach_stdin => Some(p),
        _ => None,
    };
    let (detach_tx, mut detach_rx) = tokio::sync::oneshot::channel::<()>();
    let pump = match (input, to_proc) {
        (Some(input), Some(fd)) => Some(tokio::spawn(copy_in(input, fd, keys, detach_tx))),
        _ => None,
    };
    // The client's connection: gone at the detach keys (the process runs on, drained).
    let mut out = Some(out);
    let mut detach_seen = false;
    let mut sources: Vec<(u8, tokio::net::unix::pipe::Receiver)> = Vec::new();
    // A stream not attached is drained all the same (0: read, not sent).
    let mut add = |n: u8, fd: Option<OwnedFd>, want: bool| {
        if let Some(r) = fd.and_then(|fd| receiver(fd).ok()) {
            sources.push((if want { n } else { 0 }, r));
        }
    };
    match &master {
        Some(m) => add(
            1,
            rustix::io::fcntl_dupfd_cloexec(&**m, 0).ok(),
            ex.attach_stdout,
        ),
        None => {
            add(1, stdout, ex.attach_stdout);
            add(2, stderr, ex.attach_stderr);
        }
    }
    let tty = master.is_some();
    let (chunks_tx, mut chunks_rx) = mpsc::channel::<(u8, Vec<u8>)>(16);
    let readers: Vec<_> = sources
        .into_iter()
        .map(|(n, mut r)| {
            let tx = chunks_tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 32 << 10];
                loop {
                    match r.read(&mut buf).await {
                        // EIO: the pty's last process closed it.
                        Ok(0) | Err(_) => return,
                        Ok(k) => {
                            if tx.send((n, buf[..k].to_vec())).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    drop(chunks_tx);
    let mut done_rx = done_rx;
    let mut code: Option<i32> = None;
    loop {
        let next = if code.is_some() {
            // The runtime is gone: what is buffered still comes; a process it left
            // behind keeps only the pipes, which are not waited for.
            match tokio::time::timeout(Duration::from_millis(100), chunks_rx.recv()).await {
                Ok(c) => c,
                Err(_) => break,
            }
        } else {
            tokio::select! {
                c = chunks_rx.recv() => c,
                c = &mut done_rx => { code = Some(c.unwrap_or(126)); continue; }
                // A oneshot must not be polled again once it has answered: once only.
                r = &mut detach_rx, if out.is_some() && !detach_seen => {
                    detach_seen = true;
                    if r.is_ok() {
                        out = None;
                    }
                    continue;
                }
            }
        };
        let Some((n, data)) = next else {
            if code.is_none() {
                code = Some((&mut done_rx).await.unwrap_or(126));
            }
            break;
        };
        if n == 0 {
            continue;
        }
        let msg = if tty { data } else { frame(n, &data) };
        // A client that went away stops the copy; the process runs on to its end.
        if let Some(o) = &out {
            if o.send(Bytes::from(msg)).await.is_err() {
                out = None;
            }
        }
    }
    if code.is_none() {
        code = Some((&mut done_rx).await.unwrap_or(126));
    }
    for r in readers {
        r.abort();
    }
    if let Some(p) = pump {
        p.abort();
    }
    let mut st = ex.state.lock().expect("exec lock");
    st.running = false;
    st.exit_code = code;
    st.master = None;
}

fn receiver(fd: OwnedFd) -> std::io::Result<tokio::net::unix::pipe::Receiver> {
    rustix::io::ioctl_fionbio(&fd, true)?;
    tokio::net::unix::pipe::Receiver::from_owned_fd_unchecked(fd)
}

/// The client's bytes to the process; the detach keys (tty) end the client's session.
async fn copy_in(
    mut input: Input,
    fd: OwnedFd,
    keys: Vec<u8>,
    detach: tokio::sync::oneshot::Sender<()>,
) {
    let Ok(()) = rustix::io::ioctl_fionbio(&fd, true).map_err(std::io::Error::from) else {
        return;
    };
    let Ok(mut w) = tokio::net::unix::pipe::Sender::from_owned_fd_unchecked(fd) else {
        return;
    };
    let mut buf = vec![0u8; 32 << 10];
    let mut esc = berth_engine::parse::Escape::new(&keys);
    let mut fwd = Vec::new();
    loop {
        let n = match read_some(&mut input, &mut buf).await {
            Some(n) => n,
            None => return,
        };
        fwd.clear();
        let detached = esc.feed(&buf[..n], &mut fwd);
        if !fwd.is_empty() && w.write_all(&fwd).await.is_err() {
            return;
        }
        if detached {
            // docker closes the client's connection; the process runs on.
            let _ = detach.send(());
            return;
        }
    }
}

/// One read; None at the client's EOF (the pipe is closed with `w`'s drop).
async fn read_some(input: &mut (impl AsyncRead + Unpin), buf: &mut [u8]) -> Option<usize> {
    match input.read(buf).await {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(n),
    }
}

#[derive(Deserialize)]
struct ResizeQ {
    h: Option<String>,
    w: Option<String>,
}

async fn resize(
    S(s): S<State>,
    Path(r): Path<String>,
    Query(q): Query<ResizeQ>,
) -> Result<StatusCode, ApiError> {
    let (h, w) = (dimension(&q.h, "height")?, dimension(&q.w, "width")?);
    let ex = s.execs.get(&r)?;
    let st = ex.state.lock().expect("exec lock");
    let Some(m) = &st.master else {
        return Err(ApiError::conflict(format!(
            "exec {} has no tty that runs: nothing to resize",
            ex.id
        )));
    };
    let ws = rustix::termios::Winsize {
        ws_row: h,
        ws_col: w,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(&**m, ws)
        .map_err(|e| ApiError::internal(format!("resize exec {}: {e}", ex.id)))?;
    Ok(StatusCode::OK)
}

async fn inspect(S(s): S<State>, Path(r): Path<String>) -> Result<Json<Value>, ApiError> {
    let ex = s.execs.get(&r)?;
    let st = ex.state.lock().expect("exec lock");
    let (entry, args) = match ex.spec.command.split_first() {
        Some((a, rest)) => (a.clone(), rest.to_vec()),
        None => (String::new(), Vec::new()),
    };
    Ok(Json(json!({
        "ID": ex.id,
        "Running": st.running,
        "ExitCode": st.exit_code,
        "ProcessConfig": {
            "tty": ex.spec.tty,
            "entrypoint": entry,
            "arguments": args,
            "privileged": ex.spec.privileged,
            "user": ex.spec.user.clone().unwrap_or_default(),
        },
        "OpenStdin": ex.attach_stdin,
        "OpenStderr": ex.attach_stderr,
        "OpenStdout": ex.attach_stdout,
        "CanRemove": false,
        "ContainerID": ex.container,
        "DetachKeys": ex.detach_keys,
        "Pid": st.pid,
    })))
}
