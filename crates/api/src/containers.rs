//! `/containers/...`: list, create, inspect, start, stop, restart, kill, wait, remove,
//! pause, unpause, rename and logs, each one engine call (the CLI's).

use crate::create;
use crate::error::chain;
use crate::params::{filters, flag, resolve};
use crate::{blocking, ApiError, State};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State as S};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use berth_engine::list::{ListOptions, Listed};
use berth_engine::logfile::LogEntry;
use berth_engine::run::{self, PullPolicy};
use berth_engine::{control, status};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub fn routes() -> Router<State> {
    Router::new()
        .route("/containers/json", get(list))
        .route("/containers/create", post(create_container))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}/pause", post(pause))
        .route("/containers/{id}/unpause", post(unpause))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/{id}/logs", get(logs))
        .route("/containers/{id}", delete(remove))
}

#[derive(Deserialize)]
struct ListQ {
    all: Option<String>,
    limit: Option<i64>,
    size: Option<String>,
    filters: Option<String>,
}

async fn list(S(s): S<State>, Query(q): Query<ListQ>) -> Result<Json<Value>, ApiError> {
    if flag(&q.size) {
        return Err(ApiError::unsupported("size=true on GET /containers/json"));
    }
    let o = ListOptions {
        all: flag(&q.all),
        last: q.limit.filter(|n| *n > 0).map(|n| n as usize),
        filters: filters(&q.filters)?,
    };
    blocking(move || {
        let rows = berth_engine::list::containers(&s.layout, &s.store, &o)
            .map_err(|e| ApiError::engine(&s.layout, e))?;
        Ok(Json(Value::Array(rows.iter().map(summary).collect())))
    })
    .await
}

/// One container in GET /containers/json's shape.
fn summary(l: &Listed) -> Value {
    let c = &l.config;
    let mut command = c.path.clone();
    for a in &c.args {
        command.push(' ');
        command.push_str(a);
    }
    let ports: Vec<Value> = l
        .state
        .network
        .as_ref()
        .map(|n| {
            n.ports
                .iter()
                .map(|p| {
                    json!({"IP": p.host_ip, "PrivatePort": p.container_port,
                           "PublicPort": p.host_port, "Type": p.proto})
                })
                .collect()
        })
        .unwrap_or_default();
    let networks: BTreeMap<String, Value> = c
        .options
        .networks
        .iter()
        .map(|n| (n.name.clone(), json!({"NetworkID": n.network_id})))
        .collect();
    let created = berth_engine::record::parse_rfc3339(&c.created)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    json!({
        "Id": c.id,
        "Names": [format!("/{}", c.name)],
        "Image": c.options.image,
        "ImageID": c.image_id,
        "Command": command,
        "Created": created,
        "Ports": ports,
        "Labels": c.options.labels,
        "State": l.state_word(),
        "Status": l.status_text(),
        "HostConfig": {"NetworkMode": network_mode(c)},
        "NetworkSettings": {"Networks": networks},
        "Mounts": c.volumes.iter().map(|v| json!({
            "Type": "volume", "Name": v.name, "Destination": v.target, "RW": true,
        })).collect::<Vec<_>>(),
    })
}

fn network_mode(c: &berth_engine::record::ContainerConfig) -> String {
    use berth_engine::options::NetworkMode as M;
    match &c.options.network {
        M::Host => "host".into(),
        M::None => "none".into(),
        M::Container(r) => format!("container:{r}"),
        M::Bridge => c
            .options
            .networks
            .first()
            .map_or("bridge".into(), |n| n.name.clone()),
    }
}

#[derive(Deserialize)]
struct CreateQ {
    name: Option<String>,
    platform: Option<String>,
}

/// The API's create does not pull: a missing image is a 404 the client answers with
/// POST /images/create, as docker's.
struct NoPull;

impl run::Frontend for NoPull {
    fn pull(&mut self, image: &str, _: Option<&str>) -> berth_engine::Result<()> {
        Err(berth_engine::Error::Image(berth_image::Error::NoSuchImage(
            image.to_string(),
        )))
    }
    fn say(&mut self, _: &str) {}
}

/// Collects what docker would print as warnings.
struct Warnings(Vec<String>);

impl run::Frontend for Warnings {
    fn pull(&mut self, image: &str, p: Option<&str>) -> berth_engine::Result<()> {
        NoPull.pull(image, p)
    }
    fn say(&mut self, line: &str) {
        self.0.push(line.to_string())
    }
}

async fn create_container(
    S(s): S<State>,
    Query(q): Query<CreateQ>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad(format!("invalid JSON body: {e}")))?;
    let (mut o, mut warnings) = create::options(&b, q.name.as_deref())?;
    if let Some(p) = q.platform.filter(|p| !p.is_empty()) {
        o.platform = Some(p);
    }
    blocking(move || {
        let mut fe = Warnings(std::mem::take(&mut warnings));
        let keep = run::keep_mounted_for_start(&o);
        let c = run::create(&s.layout, &s.store, o, keep, PullPolicy::Never, &mut fe)
            .map_err(|e| ApiError::engine(&s.layout, e))?;
        Ok((
            StatusCode::CREATED,
            Json(json!({"Id": c.id, "Warnings": fe.0})),
        )
            .into_response())
    })
    .await
}

#[derive(Deserialize)]
struct InspectQ {
    size: Option<String>,
}

async fn inspect(
    S(s): S<State>,
    Path(r): Path<String>,
    Query(q): Query<InspectQ>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let id = resolve(&s, &r)?;
        berth_engine::inspect::container(&s.layout, &s.store, &id, flag(&q.size))
            .map(Json)
            .map_err(|e| ApiError::engine(&s.layout, e))
    })
    .await
}

async fn start(S(s): S<State>, Path(r): Path<String>) -> Result<StatusCode, ApiError> {
    blocking(move || {
        let id = resolve(&s, &r)?;
        if status::is_running(
            &status::current(&s.layout, &id).map_err(|e| ApiError::engine(&s.layout, e))?,
        ) {
            return Ok(StatusCode::NOT_MODIFIED);
        }
        let c = s
            .layout
            .load_config(&id)
            .map_err(|e| ApiError::engine(&s.layout, e))?;
        // Attaches made before the start get the streams from the first byte.
        let waiters = s.hub.take(&id);
        match run::start(&s.layout, &s.store, &c, !waiters.is_empty()) {
            Ok(h) if h.already_running => Ok(StatusCode::NOT_MODIFIED),
            Ok(_) => match crate::attach::deliver(&s.layout, &id, waiters) {
                Ok(()) => Ok(StatusCode::NO_CONTENT),
                Err(m) => Err(ApiError::internal(m)),
            },
            Err(f) => Err(ApiError::internal(chain(&f.error))),
        }
    })
    .await
}

#[derive(Deserialize)]
struct StopQ {
    t: Option<i64>,
    signal: Option<String>,
}

fn signal_of(s: &Option<String>) -> Result<Option<i32>, ApiError> {
    s.as_deref()
        .filter(|s| !s.is_empty())
        .map(berth_engine::parse::signal)
        .transpose()
        .map_err(|e| ApiError::bad(chain(&e)))
}

async fn stop(
    S(s): S<State>,
    Path(r): Path<String>,
    Query(q): Query<StopQ>,
) -> Result<StatusCode, ApiError> {
    let sig = signal_of(&q.signal)?;
    blocking(move || {
        let id = resolve(&s, &r)?;
        let st = status::current(&s.layout, &id).map_err(|e| ApiError::engine(&s.layout, e))?;
        if !status::is_running(&st) {
            return Ok(StatusCode::NOT_MODIFIED);
        }
        control::stop(&s.layout, &s.store, &id, sig, q.t)
            .map_err(|e| ApiError::engine(&s.layout, e))?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

async fn restart(
    S(s): S<State>,
    Path(r): Path<String>,
    Query(q): Query<StopQ>,
) -> Result<StatusCode, ApiError> {
    let sig = signal_of(&q.signal)?;
    blocking(move || {
        let id = resolve(&s, &r)?;
        control::stop(&s.layout, &s.store, &id, sig, q.t)
            .map_err(|e| ApiError::engine(&s.layout, e))?;
        control::settle(&s.layout, &id);
        berth_engine::create::start_container(&s.layout, &s.store, &id, false)
            .map_err(|e| ApiError::internal(chain(&e)))?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Deserialize)]
struct KillQ {
    signal: Option<String>,
}

async fn kill(
    S(s): S<State>,
    Path(r): Path<String>,
    Query(q): Query<KillQ>,
) -> Result<StatusCode, ApiError> {
    let sig = signal_of(&q.signal)?.unwrap_or(9);
    blocking(move || {
        let id = resolve(&s, &r)?;
        let st = status::current(&s.layout, &id).map_err(|e| ApiError::engine(&s.layout, e))?;
        if !status::is_running(&st) {
            return Err(ApiError::conflict(format!(
                "Cannot kill container: {r}: Container {id} is not running"
            )));
        }
        control::kill(&s.layout, &s.store, &id, &r, sig)
            .map_err(|e| ApiError::engine(&s.layout, e))?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Deserialize)]
struct WaitQ {
    condition: Option<String>,
}

/// docker's wait: the 200 and its headers go at once (the docker CLI sends the wait
/// before the start and waits for those headers), the status when the condition is met.
async fn wait(
    S(s): S<State>,
    Path(r): Path<String>,
    Query(q): Query<WaitQ>,
) -> Result<Response, ApiError> {
    let cond = q.condition.unwrap_or_default();
    if !["", "not-running", "next-exit", "removed"].contains(&cond.as_str()) {
        return Err(ApiError::bad(format!(
            "invalid condition {cond:?}: not-running, next-exit or removed"
        )));
    }
    let s2 = s.clone();
    let id = blocking(move || resolve(&s2, &r)).await?;
    // A start through this server hands the wait its monitor client before the process
    // runs (the docker CLI waits before it starts; a --rm container may be gone by the
    // time a poll would see it run).
    let at_start = (cond == "next-exit" || cond == "removed")
        .then(|| s.hub.wait(&id, berth_engine::proto::Request::Wait));
    let (mut tx, rx) = tokio::sync::oneshot::channel::<Value>();
    tokio::spawn(async move {
        let v = tokio::select! {
            v = wait_status(s, id, cond, at_start) => v,
            // The client went away: nobody to tell.
            _ = tx.closed() => return,
        };
        let _ = tx.send(v);
    });
    let stream = futures_util::stream::once(async move {
        let v = rx.await.unwrap_or_else(
            |_| json!({"StatusCode": -1, "Error": {"Message": "the wait ended without a status"}}),
        );
        let mut b = serde_json::to_vec(&v).expect("json");
        b.push(b'\n');
        Ok::<_, std::io::Error>(Bytes::from(b))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// How often a wait for a container that does not run looks at its record: only a start
/// from outside this server (`berth start`) is seen that way; one through this server
/// hands the wait its monitor stream at once.
const RECORD_TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// The body of a wait on `id` once `cond` is met: `{"StatusCode": N, "Error": null}`, or
/// -1 and the error.
async fn wait_status(
    s: State,
    id: String,
    cond: String,
    at_start: Option<tokio::sync::oneshot::Receiver<std::os::unix::net::UnixStream>>,
) -> Value {
    match wait_code(s, id, &cond, at_start).await {
        Ok(code) => json!({"StatusCode": code, "Error": null}),
        Err(m) => json!({"StatusCode": -1, "Error": {"Message": m}}),
    }
}

/// `f` on the blocking pool, its error as the wait reports it.
async fn off<T: Send + 'static>(
    f: impl FnOnce() -> berth_engine::Result<T> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| chain(&e)),
        Err(e) => Err(format!("the wait failed: {e}")),
    }
}

async fn wait_code(
    s: State,
    id: String,
    cond: &str,
    mut at_start: Option<tokio::sync::oneshot::Receiver<std::os::unix::net::UnixStream>>,
) -> Result<i32, String> {
    let status_of = || {
        let (s, id) = (s.clone(), id.clone());
        off(move || status::current(&s.layout, &id))
    };
    let first = status_of().await;
    // `removed` of a container never started: its run comes first (docker run --rm).
    let waits_for_start = cond == "next-exit"
        || (cond == "removed"
            && first
                .as_ref()
                .is_ok_and(|st| st.status == berth_engine::record::Status::Created));
    let mut handed = None;
    if waits_for_start {
        let mut st = first?;
        // A run that began and ended between two looks at the record changed this.
        let ended_before = st.finished_at.clone();
        loop {
            if status::is_running(&st) || status::watched(&st) {
                break;
            }
            if st.finished_at != ended_before {
                return Ok(st.exit_code);
            }
            // A container that does not run now exits next after its next start.
            match at_start.as_mut() {
                Some(h) => tokio::select! {
                    r = h => match r {
                        Ok(c) => {
                            handed = Some(c);
                            break;
                        }
                        // Not handed over (the monitor could not be reached): the record
                        // says what happened.
                        Err(_) => at_start = None,
                    },
                    _ = tokio::time::sleep(RECORD_TICK) => {}
                },
                None => tokio::time::sleep(RECORD_TICK).await,
            }
            st = match status_of().await {
                Ok(st) => st,
                // Started from outside and removed at its exit: it is what was waited for.
                Err(_) if cond == "removed" && !here(&s, &id).await => return Ok(0),
                Err(m) => return Err(m),
            };
        }
    }
    drop(at_start);
    let (s2, id2, removed) = (s.clone(), id.clone(), cond == "removed");
    let code = off(move || match handed.and_then(|mut c| exit_frame(&mut c)) {
        Some(c) => Ok(c),
        None => match control::wait(&s2.layout, &id2) {
            // Removed while waited for (docker's --rm): its last exit is gone with it.
            Err(berth_engine::Error::NoSuchContainer(_)) if removed => Ok(0),
            r => r,
        },
    })
    .await?;
    if cond == "removed" {
        // The monitor detaches a --rm container before its EXIT frame, so it is gone at
        // the first look; after a removal that failed it stays until someone removes it.
        let mut n = 0u32;
        while here(&s, &id).await {
            n += 1;
            let ms = if n < 100 { 5 } else { 100 };
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
    }
    Ok(code)
}

/// Whether container `id` is still there (any record of it).
async fn here(s: &State, id: &str) -> bool {
    let (s, id) = (s.clone(), id.to_string());
    off(move || Ok(berth_engine::inventory::entry(&s.layout, &id).is_some()))
        .await
        .unwrap_or(false)
}

/// The exit code from a monitor's wait stream (its EXIT frame), once the monitor has
/// closed the stream (a --rm container is removed by then, or nearly).
fn exit_frame(c: &mut std::os::unix::net::UnixStream) -> Option<i32> {
    loop {
        match berth_engine::proto::read_frame(c) {
            Ok(Some((berth_engine::proto::EXIT, p))) => {
                let x: berth_engine::proto::ExitInfo = serde_json::from_slice(&p).ok()?;
                let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                while let Ok(Some(_)) = berth_engine::proto::read_frame(c) {}
                return Some(x.exit_code);
            }
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return None,
        }
    }
}

async fn pause(S(s): S<State>, Path(r): Path<String>) -> Result<StatusCode, ApiError> {
    pause_to(s, r, true).await
}

async fn unpause(S(s): S<State>, Path(r): Path<String>) -> Result<StatusCode, ApiError> {
    pause_to(s, r, false).await
}

async fn pause_to(s: State, r: String, on: bool) -> Result<StatusCode, ApiError> {
    blocking(move || {
        let id = resolve(&s, &r)?;
        control::pause(&s.layout, &id, on).map_err(|e| match e {
            berth_engine::Error::Invalid(m) => ApiError::conflict(m),
            e => ApiError::engine(&s.layout, e),
        })?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Deserialize)]
struct RenameQ {
    name: String,
}

async fn rename(
    S(s): S<State>,
    Path(r): Path<String>,
    Query(q): Query<RenameQ>,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        let id = resolve(&s, &r)?;
        berth_engine::control::rename(&s.layout, &id, &q.name)
            .map_err(|e| ApiError::engine(&s.layout, e))?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Deserialize)]
struct RemoveQ {
    force: Option<String>,
    v: Option<String>,
    link: Option<String>,
}

async fn remove(
    S(s): S<State>,
    Path(r): Path<String>,
    Query(q): Query<RemoveQ>,
) -> Result<StatusCode, ApiError> {
    if flag(&q.link) {
        return Err(ApiError::unsupported("link=true (legacy links)"));
    }
    blocking(move || {
        let id = resolve(&s, &r)?;
        control::remove(&s.layout, &s.store, &id, &r, flag(&q.force), flag(&q.v))
            .map_err(|e| ApiError::engine(&s.layout, e))?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Deserialize)]
struct LogsQ {
    follow: Option<String>,
    stdout: Option<String>,
    stderr: Option<String>,
    since: Option<String>,
    until: Option<String>,
    timestamps: Option<String>,
    tail: Option<String>,
    details: Option<String>,
}

/// One stdout/stderr frame of docker's multiplexed stream (8-byte header: stream, 0, 0,
/// 0, big-endian length).
pub(crate) fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + data.len());
    f.extend_from_slice(&[stream, 0, 0, 0]);
    f.extend_from_slice(&(data.len() as u32).to_be_bytes());
    f.extend_from_slice(data);
    f
}

/// Log entries as a stream carries them: docker's frames, or raw with a tty; only the
/// streams asked for.
pub(crate) fn frame_entries(
    v: &[LogEntry],
    stdout: bool,
    stderr: bool,
    tty: bool,
    timestamps: bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    for e in v {
        let (want, n) = if e.stream == "stderr" {
            (stderr, 2)
        } else {
            (stdout, 1)
        };
        if !want {
            continue;
        }
        let line = if timestamps {
            format!("{} {}", e.time, e.log).into_bytes()
        } else {
            e.log.clone().into_bytes()
        };
        if tty {
            out.extend_from_slice(&line);
        } else {
            out.extend(frame(n, &line));
        }
    }
    out
}

async fn logs(
    S(s): S<State>,
    Path(r): Path<String>,
    Query(q): Query<LogsQ>,
) -> Result<Response, ApiError> {
    let (want_out, want_err) = (flag(&q.stdout), flag(&q.stderr));
    if !want_out && !want_err {
        return Err(ApiError::bad(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let _ = flag(&q.details);
    let now = std::time::SystemTime::now();
    // docker's clients send 0 for "no bound".
    let time = |v: &Option<String>| -> Result<_, ApiError> {
        match v.as_deref().filter(|v| !v.is_empty() && *v != "0") {
            None => Ok(None),
            Some(v) => berth_engine::logs::parse_time(v, now)
                .map(Some)
                .map_err(|e| ApiError::bad(chain(&e))),
        }
    };
    let o = berth_engine::logs::LogsOptions {
        since: time(&q.since)?,
        until: time(&q.until)?,
        tail: berth_engine::logs::parse_tail(q.tail.as_deref().unwrap_or("all"))
            .map_err(|e| ApiError::bad(chain(&e)))?,
        follow: flag(&q.follow),
    };
    let timestamps = flag(&q.timestamps);
    let s2 = s.clone();
    let (id, tty) = blocking(move || {
        let id = resolve(&s2, &r)?;
        let c = s2
            .layout
            .load_config(&id)
            .map_err(|e| ApiError::engine(&s2.layout, e))?;
        Ok((id, c.options.tty))
    })
    .await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<Result<(), ApiError>>();
    tokio::task::spawn_blocking(move || {
        let mut first = Some(first_tx);
        let mut emit = |v: &[LogEntry]| -> berth_engine::Result<bool> {
            if let Some(f) = first.take() {
                let _ = f.send(Ok(()));
            }
            let out = frame_entries(v, want_out, want_err, tty, timestamps);
            if out.is_empty() {
                return Ok(true);
            }
            Ok(tx.blocking_send(Ok(Bytes::from(out))).is_ok())
        };
        let r = berth_engine::logs::read(&s.layout, &id, &o, &mut emit);
        if let (Err(e), Some(f)) = (&r, first.take()) {
            let _ = f.send(Err(ApiError::bad(chain(e))));
        }
    });
    // An error before the first entry is the response's; later ones end the stream.
    if let Ok(Err(e)) = first_rx.await {
        return Err(e);
    }
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    let ct = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    Ok(([(header::CONTENT_TYPE, ct)], Body::from_stream(stream)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_frames() {
        let f = filters(&Some(
            r#"{"status":["running","exited"],"label":{"a=b":true}}"#.into(),
        ))
        .unwrap();
        assert_eq!(f, vec!["status=running", "status=exited", "label=a=b"]);
        assert!(filters(&Some("{".into())).is_err());
        assert_eq!(filters(&None).unwrap(), Vec::<String>::new());
        assert_eq!(frame(2, b"hi"), vec![2, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
        assert!(flag(&Some("1".into())) && flag(&Some("true".into())) && !flag(&None));
    }
}
