//! Attach and resize, and the hijacked connection that attach and exec share.
//!
//! A container's streams are its monitor's (engine::proto): an attach here is one more
//! monitor client, the same as `berth attach`. The docker CLI attaches before it starts
//! the container (`docker run`, `start -a`): the attach is answered at once (101) and
//! waits in the [`Hub`]; the start then runs the monitor with attach-wait, connects one
//! monitor client per waiting attach and hands it over, so no output is lost and the
//! process starts only once its streams are attached.
//!
//! The connection: with `Upgrade: tcp` (the docker CLI, the SDKs) the HTTP connection
//! becomes the stream both ways (101 Switching Protocols); without it the output comes as
//! the response body and there is no stdin.

use crate::containers::{frame, frame_entries};
use crate::error::chain;
use crate::params::{dimension, flag, resolve};
use crate::{blocking, ApiError, State};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State as S};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use berth_engine::layout::Layout;
use berth_engine::proto::{self, Request as MonRequest};
use berth_engine::status;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

pub(crate) fn routes() -> Router<State> {
    Router::new()
        .route("/containers/{id}/attach", post(attach))
        .route("/containers/{id}/attach/ws", get(attach_ws))
        .route("/containers/{id}/resize", post(resize))
}

/// Attaches and waits (next-exit, removed) that wait for their container's start, by
/// container id: each gets its monitor client before the process runs, so a container
/// that exits at once (and goes, with --rm) is still seen to exit, with its code.
#[derive(Default)]
pub(crate) struct Hub {
    waiting: Mutex<HashMap<String, Vec<Waiter>>>,
}

pub(crate) struct Waiter {
    req: MonRequest,
    tx: oneshot::Sender<std::os::unix::net::UnixStream>,
}

impl Hub {
    pub(crate) fn wait(
        &self,
        id: &str,
        req: MonRequest,
    ) -> oneshot::Receiver<std::os::unix::net::UnixStream> {
        let (tx, rx) = oneshot::channel();
        let mut w = self.waiting.lock().expect("hub lock");
        let list = w.entry(id.to_string()).or_default();
        list.retain(|x| !x.tx.is_closed());
        list.push(Waiter { req, tx });
        rx
    }

    /// The attaches still waiting for `id` (their clients are there).
    pub(crate) fn take(&self, id: &str) -> Vec<Waiter> {
        let mut w = self.waiting.lock().expect("hub lock");
        w.remove(id)
            .unwrap_or_default()
            .into_iter()
            .filter(|x| !x.tx.is_closed())
            .collect()
    }
}

/// After a start with attach-wait: one monitor client per waiter, its attach request
/// sent, handed over (the first attach releases the start). Then a start request, which
/// releases it if no waiter did (the container must not wait for a client that has gone)
/// and answers once the process runs, so the API's start returns only then, as dockerd's.
/// Err: the runtime's message when the start failed.
pub(crate) fn deliver(layout: &Layout, id: &str, mut waiters: Vec<Waiter>) -> Result<(), String> {
    let path = layout.attach_path(id);
    // Waits first: they must be there before an attach lets the process run.
    waiters.sort_by_key(|w| !matches!(w.req, MonRequest::Wait));
    for w in waiters {
        let Ok(mut c) = proto::connect(&path) else {
            continue;
        };
        if proto::send_request(&mut c, &w.req).is_err() {
            continue;
        }
        // A client gone since: its stream is dropped, the container runs on.
        let _ = w.tx.send(c);
    }
    // No monitor (or no answer) any more: an attach released the start and the container
    // is gone already; a failure went to that attach's client.
    let Ok(mut c) = proto::connect(&path) else {
        return Ok(());
    };
    // A runtime that hangs must not hang the API's start.
    let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(120)));
    if proto::send_request(&mut c, &MonRequest::Start).is_err() {
        return Ok(());
    }
    match proto::read_frame(&mut c) {
        Ok(Some((proto::ERROR, m))) => Err(String::from_utf8_lossy(&m).into_owned()),
        _ => Ok(()),
    }
}

pub(crate) type Input = Box<dyn AsyncRead + Send + Unpin>;

/// Answers `req` with the hijacked stream (101) when the client asked for an upgrade,
/// else with a streamed body; `session` gets the client's input (upgrade only) and a
/// sender for what goes to the client. The connection closes when the sender is dropped.
pub(crate) fn hijack<F, Fut>(mut req: Request, session: F) -> Response
where
    F: FnOnce(Option<Input>, mpsc::Sender<Bytes>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Bytes>(32);
    let wants_upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"));
    let ct = HeaderValue::from_static("application/vnd.docker.raw-stream");
    if !wants_upgrade {
        tokio::spawn(session(None, tx));
        let body = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
        });
        return ([(header::CONTENT_TYPE, ct)], Body::from_stream(body)).into_response();
    }
    let on = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(up) = on.await else {
            return;
        };
        let (r, mut w) = tokio::io::split(hyper_util::rt::TokioIo::new(up));
        let writer = tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                if w.write_all(&b).await.is_err() || w.flush().await.is_err() {
                    return;
                }
            }
            let _ = w.shutdown().await;
        });
        session(Some(Box::new(r)), tx).await;
        let _ = writer.await;
    });
    let mut res = Response::new(Body::empty());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    h.insert(header::CONTENT_TYPE, ct);
    res
}

#[derive(Deserialize)]
struct AttachQ {
    stream: Option<String>,
    stdin: Option<String>,
    stdout: Option<String>,
    stderr: Option<String>,
    logs: Option<String>,
    #[serde(rename = "detachKeys")]
    detach_keys: Option<String>,
}

/// An attach made ready: its monitor client (now, or at the start), what was written
/// before (logs=1), and how to copy.
struct Prepared {
    monitor: Option<Monitor>,
    past: Vec<u8>,
    tty: bool,
    stdin: bool,
    keys: Vec<u8>,
}

/// `raw`: the output without docker's stream frames (a tty's, or the websocket's).
async fn prepare(s: State, r: String, q: AttachQ, raw: bool) -> Result<Prepared, ApiError> {
    let (stdin, stdout, stderr) = (flag(&q.stdin), flag(&q.stdout), flag(&q.stderr));
    let (stream, logs) = (flag(&q.stream), flag(&q.logs));
    if !stream && !logs {
        return Err(ApiError::bad(
            "Bad parameters: you must choose at least one of stream or logs",
        ));
    }
    let keys = match q.detach_keys.as_deref().filter(|k| !k.is_empty()) {
        Some(k) => berth_engine::parse::detach_keys(k).map_err(|e| ApiError::bad(chain(&e)))?,
        None => berth_engine::parse::DEFAULT_DETACH_KEYS.to_vec(),
    };
    let s2 = s.clone();
    let (id, tty, running) = blocking(move || {
        let id = resolve(&s2, &r)?;
        let c = s2
            .layout
            .load_config(&id)
            .map_err(|e| ApiError::engine(&s2.layout, e))?;
        let st = status::current(&s2.layout, &id).map_err(|e| ApiError::engine(&s2.layout, e))?;
        Ok((id, c.options.tty, status::is_running(&st)))
    })
    .await?;
    let mon_req = MonRequest::Attach {
        stdin,
        stdout,
        stderr,
    };
    // A container that runs now is attached now; else the attach waits for its start.
    let monitor = if !stream {
        None
    } else if running {
        let (s3, id3, m) = (s.clone(), id.clone(), mon_req.clone());
        Some(Monitor::Now(
            blocking(move || {
                let mut c = proto::connect(&s3.layout.attach_path(&id3))
                    .map_err(|e| ApiError::engine(&s3.layout, e))?;
                proto::send_request(&mut c, &m)
                    .map_err(|e| ApiError::internal(format!("attach to {id3}: {e}")))?;
                Ok(c)
            })
            .await?,
        ))
    } else {
        Some(Monitor::AtStart(s.hub.wait(&id, mon_req)))
    };
    let past = if logs {
        let s3 = s.clone();
        let id3 = id.clone();
        blocking(move || past_logs(&s3.layout, &id3, stdout, stderr, tty || raw)).await?
    } else {
        Vec::new()
    };
    Ok(Prepared {
        monitor,
        past,
        tty,
        stdin,
        // Detach keys apply with a tty only, as docker's.
        keys: if tty { keys } else { Vec::new() },
    })
}

impl Prepared {
    async fn run(self, input: Option<Input>, out: mpsc::Sender<Bytes>, raw: bool) {
        if !self.past.is_empty() && out.send(Bytes::from(self.past)).await.is_err() {
            return;
        }
        let mon = match self.monitor {
            None => return,
            Some(Monitor::Now(c)) => c,
            Some(Monitor::AtStart(rx)) => match rx.await {
                Ok(c) => c,
                Err(_) => return,
            },
        };
        let Ok(mon) = to_tokio(mon) else { return };
        session(mon, input, out, raw || self.tty, self.stdin, self.keys).await;
    }
}

async fn attach(
    S(s): S<State>,
    Path(r): Path<String>,
    Query(q): Query<AttachQ>,
    req: Request,
) -> Result<Response, ApiError> {
    let p = prepare(s, r, q, false).await?;
    Ok(hijack(req, move |input, out| p.run(input, out, false)))
}

/// The websocket form: binary messages both ways, the output raw (no stream frames) as
/// dockerd's.
async fn attach_ws(
    S(s): S<State>,
    Path(r): Path<String>,
    Query(q): Query<AttachQ>,
    ws: axum::extract::ws::WebSocketUpgrade,
) -> Result<Response, ApiError> {
    use axum::extract::ws::Message;
    use futures_util::{SinkExt, StreamExt};
    let p = prepare(s, r, q, true).await?;
    Ok(ws.on_upgrade(move |socket| async move {
        let (mut tx, mut rx) = socket.split();
        let (out, mut out_rx) = mpsc::channel::<Bytes>(32);
        let (mut feed, input) = tokio::io::duplex(64 << 10);
        let reader = tokio::spawn(async move {
            while let Some(Ok(m)) = rx.next().await {
                let data = match m {
                    Message::Binary(b) => b,
                    Message::Text(t) => Bytes::copy_from_slice(t.as_bytes()),
                    Message::Close(_) => break,
                    _ => continue,
                };
                if feed.write_all(&data).await.is_err() {
                    break;
                }
            }
            // The client's close is the container's stdin EOF.
        });
        let writer = tokio::spawn(async move {
            while let Some(b) = out_rx.recv().await {
                if tx.send(Message::Binary(b)).await.is_err() {
                    return;
                }
            }
            let _ = tx.close().await;
        });
        p.run(Some(Box::new(input)), out, true).await;
        reader.abort();
        let _ = writer.await;
    }))
}

enum Monitor {
    Now(std::os::unix::net::UnixStream),
    AtStart(oneshot::Receiver<std::os::unix::net::UnixStream>),
}

fn to_tokio(c: std::os::unix::net::UnixStream) -> std::io::Result<tokio::net::UnixStream> {
    c.set_nonblocking(true)?;
    tokio::net::UnixStream::from_std(c)
}

/// What the container wrote so far (attach's `logs=1`), framed as the stream is.
fn past_logs(
    layout: &Layout,
    id: &str,
    stdout: bool,
    stderr: bool,
    tty: bool,
) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    let o = berth_engine::logs::LogsOptions {
        since: None,
        until: None,
        tail: None,
        follow: false,
    };
    let mut emit = |v: &[berth_engine::logfile::LogEntry]| -> berth_engine::Result<bool> {
        out.extend(frame_entries(v, stdout, stderr, tty, false));
        Ok(true)
    };
    match berth_engine::logs::read(layout, id, &o, &mut emit) {
        Ok(()) => Ok(out),
        Err(e) => Err(ApiError::bad(chain(&e))),
    }
}

/// Reads one monitor frame.
async fn read_frame(r: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut hdr = [0u8; 5];
    match r.read_exact(&mut hdr).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]);
    if len > proto::MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes"),
        ));
    }
    let mut p = vec![0u8; len as usize];
    r.read_exact(&mut p).await?;
    Ok(Some((hdr[0], p)))
}

async fn write_frame(
    w: &mut (impl AsyncWrite + Unpin),
    kind: u8,
    payload: &[u8],
) -> std::io::Result<()> {
    // The monitor's own encoding (and its size limit), written without blocking.
    let mut b = Vec::with_capacity(5 + payload.len());
    proto::write_frame(&mut b, kind, payload)?;
    w.write_all(&b).await
}

/// Copies between the client and the monitor until the container exits, the client
/// goes, or it types the detach keys (tty only).
async fn session(
    mon: tokio::net::UnixStream,
    input: Option<Input>,
    out: mpsc::Sender<Bytes>,
    tty: bool,
    stdin: bool,
    keys: Vec<u8>,
) {
    let (mut mr, mut mw) = mon.into_split();
    // Ends the session: the client typed the detach keys.
    let (gone_tx, mut gone_rx) = oneshot::channel::<()>();
    let pump = input.map(|mut input| {
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 << 10];
            let mut esc = berth_engine::parse::Escape::new(&keys);
            let mut fwd = Vec::with_capacity(buf.len());
            loop {
                let n = match input.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if !stdin {
                    continue;
                }
                fwd.clear();
                let detached = esc.feed(&buf[..n], &mut fwd);
                if !fwd.is_empty() && write_frame(&mut mw, proto::STDIN, &fwd).await.is_err() {
                    return;
                }
                if detached {
                    let _ = gone_tx.send(());
                    return;
                }
            }
            // The client closed its side (the docker CLI always does, stdin or not): the
            // container's stdin ends (StdinOnce); its output still comes. A client that
            // went for good is seen at the next write.
            if stdin {
                let _ = write_frame(&mut mw, proto::STDIN_EOF, &[]).await;
            }
            std::future::pending::<()>().await;
        })
    });
    loop {
        let f = tokio::select! {
            f = read_frame(&mut mr) => f,
            _ = &mut gone_rx => break,
            _ = out.closed() => break,
        };
        let msg = match f {
            Ok(Some((proto::STDOUT, p))) if tty => p,
            Ok(Some((k @ (proto::STDOUT | proto::STDERR), p))) => frame(k, &p),
            Ok(Some((proto::ERROR, p))) => {
                let mut m = b"Error: ".to_vec();
                m.extend_from_slice(&p);
                m.push(b'\n');
                if tty {
                    m
                } else {
                    frame(proto::STDERR, &m)
                }
            }
            Ok(Some(_)) => continue,
            // EXIT, or the monitor went away.
            Ok(None) | Err(_) => break,
        };
        if out.send(Bytes::from(msg)).await.is_err() {
            break;
        }
    }
    if let Some(p) = pump {
        p.abort();
    }
}

#[derive(Deserialize)]
struct ResizeQ {
    h: Option<String>,
    w: Option<String>,
}

/// Sets the container's tty size: a monitor client that attaches nothing and sends one
/// RESIZE frame.
async fn resize(
    S(s): S<State>,
    Path(r): Path<String>,
    Query(q): Query<ResizeQ>,
) -> Result<StatusCode, ApiError> {
    let (h, w) = (dimension(&q.h, "height")?, dimension(&q.w, "width")?);
    blocking(move || {
        let id = resolve(&s, &r)?;
        let st = status::current(&s.layout, &id).map_err(|e| ApiError::engine(&s.layout, e))?;
        if !status::is_running(&st) {
            return Err(ApiError::conflict(format!("container {id} is not running")));
        }
        let mut c = proto::connect(&s.layout.attach_path(&id))
            .map_err(|e| ApiError::engine(&s.layout, e))?;
        let attach = MonRequest::Attach {
            stdin: false,
            stdout: false,
            stderr: false,
        };
        proto::send_request(&mut c, &attach)
            .and_then(|_| proto::write_frame(&mut c, proto::RESIZE, &proto::resize_payload(h, w)))
            .map_err(|e| ApiError::internal(format!("resize {id}: {e}")))?;
        Ok(StatusCode::OK)
    })
    .await
}
