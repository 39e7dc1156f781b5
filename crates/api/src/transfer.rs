//! What moves data in and out: images (`history`, `push`, `save` as `GET
//! /images/{name}/get` and `GET /images/get`, `load`, and `search`, which Berth answers
//! with an error) and containers (`GET`/`HEAD`/`PUT /containers/{id}/archive` for `docker
//! cp`, `GET /containers/{id}/export`). Each is the CLI's engine call; tars and JSON
//! progress are streamed, never held whole in memory.

use crate::error::chain;
use crate::params::{flag, resolve};
use crate::{blocking, ApiError, State};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, RawQuery, State as S};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_engine::cp::{self, CopyOptions, Owner};
use berth_engine::rootfs::{self, ContainerPath};
use berth_image::distribution::Progress;
use berth_registry::auth::Credentials;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

pub(crate) fn routes() -> Router<State> {
    Router::new()
        .route("/images/get", get(save_many))
        .route("/images/load", post(load))
        .route("/images/search", get(search))
        .route(
            "/containers/{id}/archive",
            get(archive_get).head(archive_head).put(archive_put),
        )
        .route("/containers/{id}/export", get(export))
}

/// `a=1&b=x%2Fy&b=z` as pairs, repeated keys kept (`names=` of save).
fn query_pairs(q: &str) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' => match s
                    .get(i + 1..i + 3)
                    .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(x) => {
                        out.push(x);
                        i += 2;
                    }
                    None => out.push(b'%'),
                },
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// A `Write` that hands the bytes to a response body, in chunks; fails once the client
/// is gone (the blocking writer then stops).
struct ChanWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 64 << 10;

impl ChanWriter {
    fn new(tx: mpsc::Sender<Result<Bytes, std::io::Error>>) -> ChanWriter {
        ChanWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let b = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(b)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
    /// Ends the body with an error: the client sees a cut stream, not a short archive.
    fn fail(self, m: String) {
        let _ = self.tx.blocking_send(Err(std::io::Error::other(m)));
    }
}

impl std::io::Write for ChanWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

fn body_of(rx: mpsc::Receiver<Result<Bytes, std::io::Error>>) -> Body {
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|x| (x, rx))
    }))
}

/// A request body read from a blocking thread: an async task feeds it in.
pub(crate) struct ChanReader {
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
    cur: Bytes,
}

impl ChanReader {
    pub(crate) fn new(body: Body) -> ChanReader {
        use futures_util::StreamExt;
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            let mut s = body.into_data_stream();
            while let Some(c) = s.next().await {
                let c = c.map_err(std::io::Error::other);
                let stop = c.is_err();
                if tx.send(c).await.is_err() || stop {
                    return;
                }
            }
        });
        ChanReader {
            rx,
            cur: Bytes::new(),
        }
    }
    /// Reads what the client still sends after the tar's end (its zero blocks), up to a
    /// bound: a response sent before the body is read makes the client's write fail
    /// ("broken pipe") instead of reading the answer.
    pub(crate) fn drain(&mut self) {
        const MAX_TAIL: u64 = 16 << 20;
        let _ = std::io::copy(
            &mut std::io::Read::take(&mut *self, MAX_TAIL),
            &mut std::io::sink(),
        );
    }

    /// The first bytes of what is left (empty at the end).
    pub(crate) fn peek(&mut self) -> std::io::Result<&[u8]> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => break,
            }
        }
        Ok(&self.cur)
    }
}

impl std::io::Read for ChanReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = {
            let b = self.peek()?;
            let n = b.len().min(out.len());
            out[..n].copy_from_slice(&b[..n]);
            n
        };
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

/// Refuses a compressed archive by its magic bytes, naming it (Berth takes plain tars).
pub(crate) fn plain_tar(r: &mut ChanReader, what: &str) -> Result<(), ApiError> {
    let b = r
        .peek()
        .map_err(|e| ApiError::bad(format!("read the {what}: {e}")))?;
    let kind = if b.starts_with(&[0x1f, 0x8b]) {
        "gzip"
    } else if b.starts_with(b"BZh") {
        "bzip2"
    } else if b.starts_with(&[0xfd, b'7', b'z', b'X', b'Z']) {
        "xz"
    } else if b.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        "zstd"
    } else {
        return Ok(());
    };
    Err(ApiError::unsupported(&format!(
        "a {kind}-compressed {what} (send an uncompressed tar)"
    )))
}

fn json_line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).expect("json");
    b.extend_from_slice(b"\r\n");
    Bytes::from(b)
}

pub(crate) fn json_stream(mut rx: mpsc::UnboundedReceiver<Value>) -> Response {
    let stream = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|o| o.map(|v| Ok::<_, std::io::Error>(json_line(&v))))
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

fn tar_response(rx: mpsc::Receiver<Result<Bytes, std::io::Error>>) -> Response {
    ([(header::CONTENT_TYPE, "application/x-tar")], body_of(rx)).into_response()
}

// ---- images ----

/// `GET /images/{name}/history`: docker's rows, newest first.
pub(crate) async fn history(s: State, name: String) -> Result<Response, ApiError> {
    blocking(move || {
        let rows = berth_engine::images::history(&s.store, &name)
            .map_err(|e| ApiError::engine(&s.layout, e))?;
        let v: Vec<Value> = rows
            .into_iter()
            .map(|r| {
                json!({
                    "Id": r.id, "Created": r.created, "CreatedBy": r.created_by,
                    // Go's nil slice: rows without tags say null, as dockerd's.
                    "Tags": if r.tags.is_empty() { Value::Null } else { json!(r.tags) },
                    "Size": r.size, "Comment": r.comment,
                })
            })
            .collect();
        Ok(Json(v).into_response())
    })
    .await
}

/// `GET /images/{name}/get`: one image as a docker-archive.
pub(crate) async fn save_one(s: State, name: String) -> Result<Response, ApiError> {
    save(s, vec![name]).await
}

async fn save_many(S(s): S<State>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let names: Vec<String> = query_pairs(q.as_deref().unwrap_or(""))
        .into_iter()
        .filter(|(k, v)| k == "names" && !v.is_empty())
        .map(|(_, v)| v)
        .collect();
    if names.is_empty() {
        return Err(ApiError::bad("names is required: the images to save"));
    }
    save(s, names).await
}

/// docker's `save`: the names resolved first (a missing one is the response's 404), then
/// the archive streamed.
async fn save(s: State, names: Vec<String>) -> Result<Response, ApiError> {
    let (tx, rx) = mpsc::channel(8);
    let (first_tx, first_rx) = oneshot::channel::<Result<(), ApiError>>();
    tokio::task::spawn_blocking(move || {
        let imgs = match berth_engine::images::save_targets(&s.store, &names) {
            Ok(i) => i,
            Err(e) => {
                let _ = first_tx.send(Err(ApiError::engine(&s.layout, e)));
                return;
            }
        };
        let _ = first_tx.send(Ok(()));
        let mut w = ChanWriter::new(tx);
        let r = berth_engine::images::save(
            &s.store,
            &imgs,
            berth_image::archive::Format::DockerArchive,
            &mut w,
        );
        match r
            .map_err(|e| chain(&e))
            .and_then(|()| std::io::Write::flush(&mut w).map_err(|e| e.to_string()))
        {
            Ok(()) => {}
            Err(m) => w.fail(m),
        }
    });
    first_rx
        .await
        .map_err(|_| ApiError::internal("save ended early"))??;
    Ok(tar_response(rx))
}

#[derive(Deserialize)]
struct LoadQ {
    quiet: Option<String>,
}

/// `POST /images/load`: the archive in the body, streamed into the engine's load; docker's
/// `{"stream":"Loaded image: ...\n"}` lines after it.
async fn load(S(s): S<State>, Query(q): Query<LoadQ>, body: Body) -> Result<Response, ApiError> {
    // Layer progress is not reported: quiet or not, the same lines.
    let _ = q.quiet;
    let mut r = ChanReader::new(body);
    let lines = blocking(move || {
        let lines = plain_tar(&mut r, "image archive").and_then(|()| {
            berth_engine::images::load(&s.store, &mut r).map_err(|e| match e {
                berth_engine::Error::Image(berth_image::Error::Invalid(m)) => ApiError::bad(m),
                e => ApiError::engine(&s.layout, e),
            })
        });
        r.drain();
        lines
    })
    .await?;
    let (tx, rx) = mpsc::unbounded_channel();
    for l in lines {
        let _ = tx.send(json!({ "stream": format!("{l}\n") }));
    }
    drop(tx);
    Ok(json_stream(rx))
}

/// `GET /images/search`: Berth has no registry index client; said plainly, in docker's
/// shape and status for an index it cannot reach, rather than an empty (false) result.
async fn search(RawQuery(q): RawQuery) -> ApiError {
    let term = query_pairs(q.as_deref().unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == "term")
        .map(|(_, v)| v)
        .unwrap_or_default();
    ApiError::internal(format!(
        "cannot search for {term:?}: berth does not search registries (it works offline and \
         has no client for an index's search API, such as index.docker.io/v1/search); pull \
         or inspect images by their full name instead"
    ))
}

/// X-Registry-Auth (base64 JSON of docker's AuthConfig): a username and password (or
/// `auth`, base64 of `user:pass`) for this request; empty means none given. Tokens are
/// refused, naming them.
pub(crate) fn registry_credentials(h: &HeaderMap) -> Result<Option<Credentials>, ApiError> {
    use base64::Engine;
    let Some(v) = h.get("x-registry-auth").and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(v)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(v))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(v))
        .map_err(|_| ApiError::bad("X-Registry-Auth is not base64"))?;
    let j: Value = serde_json::from_slice(&raw)
        .map_err(|_| ApiError::bad("X-Registry-Auth is not base64 of a JSON object"))?;
    let field = |k: &str| {
        j.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    for t in ["identitytoken", "registrytoken"] {
        if field(t).is_some() {
            return Err(ApiError::unsupported(&format!(
                "{t} in X-Registry-Auth (send a username and password)"
            )));
        }
    }
    let (mut user, mut pass) = (field("username"), field("password"));
    if user.is_none() {
        if let Some(a) = field("auth") {
            let d = base64::engine::general_purpose::STANDARD
                .decode(a.trim())
                .map_err(|_| ApiError::bad("X-Registry-Auth: auth is not base64"))?;
            let d = String::from_utf8_lossy(&d).into_owned();
            if let Some((u, p)) = d.split_once(':') {
                user = Some(u.to_string());
                pass = Some(p.to_string());
            }
        }
    }
    Ok(user.map(|username| Credentials {
        username,
        password: pass.unwrap_or_default(),
    }))
}

/// Blob progress as dockerd's push lines.
struct PushProgress {
    tx: mpsc::UnboundedSender<Value>,
    totals: Mutex<HashMap<String, (u64, u64)>>,
}

impl Progress for PushProgress {
    fn start(&self, id: &str, total: u64, _what: &str) {
        self.totals
            .lock()
            .expect("lock")
            .insert(id.to_string(), (0, total));
        let _ = self
            .tx
            .send(json!({"status": "Preparing", "progressDetail": {}, "id": id}));
    }
    fn advance(&self, id: &str, n: u64) {
        let mut t = self.totals.lock().expect("lock");
        let e = t.entry(id.to_string()).or_insert((0, 0));
        e.0 += n;
        let _ = self.tx.send(json!({
            "status": "Pushing", "id": id,
            "progressDetail": {"current": e.0, "total": e.1},
        }));
    }
    fn finish(&self, id: &str, status: &str) {
        let _ = self
            .tx
            .send(json!({"status": status, "progressDetail": {}, "id": id}));
    }
}

/// `POST /images/{name}/push?tag=`: dockerd's streamed JSON; an image that is not here is
/// the response's 404, a failure on the way an `errorDetail` line after the 200. No tag:
/// every tag of the repository, as docker's `push --all-tags`.
pub(crate) async fn push(
    s: State,
    name: String,
    q: HashMap<String, String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let creds = registry_credentials(&headers)?;
    let tag = q.get("tag").filter(|t| !t.is_empty()).cloned();
    let s2 = s.clone();
    let images: Vec<String> = blocking(move || {
        let missing = || {
            ApiError::not_found(format!(
                "An image does not exist locally with the tag: {name}"
            ))
        };
        let repo = berth_registry::Reference::parse(&name).map_err(|e| ApiError::bad(chain(&e)))?;
        if let Some(t) = tag {
            let image = if t.starts_with("sha256:") {
                format!("{name}@{t}")
            } else {
                format!("{name}:{t}")
            };
            return Ok(vec![image]);
        }
        let recs = s2.store.records().map_err(ApiError::from)?;
        let all: Vec<String> = recs
            .tags
            .keys()
            .filter_map(|t| berth_registry::Reference::parse(t).ok())
            .filter(|r| r.name() == repo.name() && r.tag.is_some() && r.digest.is_none())
            .map(|r| r.to_string())
            .collect();
        if all.is_empty() {
            return Err(missing());
        }
        Ok(all)
    })
    .await?;
    let s3 = s.clone();
    let imgs = images.clone();
    let pushes = blocking(move || {
        imgs.iter()
            .map(|i| {
                berth_engine::images::Push::new(&s3.store, i, None).map_err(|e| match e {
                    berth_engine::Error::Image(berth_image::Error::NoSuchImage(_)) => {
                        ApiError::not_found(format!(
                            "An image does not exist locally with the tag: {i}"
                        ))
                    }
                    e => ApiError::engine(&s3.layout, e),
                })
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await?;
    let mut opts = s.client_opts.clone();
    if creds.is_some() {
        opts.credentials = creds;
    }
    let (tx, rx) = mpsc::unbounded_channel::<Value>();
    tokio::spawn(async move {
        for p in pushes {
            let _ = tx.send(json!({
                "status": format!("The push refers to repository [{}]", p.dest.name())
            }));
            let progress = Arc::new(PushProgress {
                tx: tx.clone(),
                totals: Mutex::new(HashMap::new()),
            });
            match p.run(&s.store, &opts, progress).await {
                Ok(d) => {
                    let _ = tx.send(json!({
                        "status": format!("{}: digest: {} size: {}", d.tag, d.digest, d.size)
                    }));
                    let _ = tx.send(json!({
                        "progressDetail": {},
                        "aux": {"Tag": d.tag, "Digest": d.digest, "Size": d.size},
                    }));
                }
                // docker reports a failed push inside the stream, after the 200.
                Err(e) => {
                    let m = chain(&e);
                    let _ = tx.send(json!({"errorDetail": {"message": m}, "error": m}));
                    return;
                }
            }
        }
    });
    Ok(json_stream(rx))
}

// ---- containers ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchiveQ {
    path: Option<String>,
    no_overwrite_dir_non_dir: Option<String>,
    #[serde(rename = "copyUIDGID")]
    copy_uid_gid: Option<String>,
}

fn path_of(q: &ArchiveQ) -> Result<String, ApiError> {
    q.path
        .clone()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::bad("path cannot be empty"))
}

fn not_found(path: &str, ctr: &str) -> ApiError {
    ApiError::not_found(format!("Could not find the file {path} in container {ctr}"))
}

/// Errors of a container path: docker's 403 for a read-only target, 400 for a path the
/// copy refuses.
fn path_error(s: &State, e: berth_engine::Error) -> ApiError {
    match e {
        berth_engine::Error::Invalid(m) if m.ends_with("is marked read-only") => {
            ApiError::new(StatusCode::FORBIDDEN, m)
        }
        berth_engine::Error::Invalid(m) => ApiError::bad(m),
        e => ApiError::engine(&s.layout, e),
    }
}

/// Go's `time.Time` in JSON (RFC 3339, nanoseconds without trailing zeros).
fn go_time(t: std::time::SystemTime) -> String {
    let s = berth_engine::record::rfc3339(t);
    let (head, frac) = s.trim_end_matches('Z').split_once('.').unwrap_or((&s, ""));
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{head}Z")
    } else {
        format!("{head}.{frac}Z")
    }
}

/// The `X-Docker-Container-Path-Stat` header: base64 of the stat's JSON.
fn stat_header(st: &cp::PathStat) -> HeaderValue {
    use base64::Engine;
    let j = json!({
        "name": st.name, "size": st.size, "mode": st.mode,
        "mtime": go_time(st.mtime), "linkTarget": st.link_target,
    });
    let v = base64::engine::general_purpose::STANDARD.encode(j.to_string());
    HeaderValue::from_str(&v).expect("base64 is a header value")
}

const STAT_HEADER: &str = "x-docker-container-path-stat";

async fn archive_head(
    S(s): S<State>,
    Path(r): Path<String>,
    Query(q): Query<ArchiveQ>,
) -> Result<Response, ApiError> {
    let path = path_of(&q)?;
    blocking(move || {
        let id = resolve(&s, &r)?;
        let c = ContainerPath::open(&s.layout, &s.store, &id, &path, false)
            .map_err(|e| path_error(&s, e))?;
        let st = cp::stat(c.side())
            .map_err(|e| path_error(&s, e))?
            .ok_or_else(|| not_found(&path, &r))?;
        Ok(([(STAT_HEADER, stat_header(&st))], StatusCode::OK).into_response())
    })
    .await
}

/// `GET /containers/{id}/archive?path=`: the path as a tar named as dockerd names it, its
/// stat in the header; a missing path is the response's 404.
async fn archive_get(
    S(s): S<State>,
    Path(r): Path<String>,
    Query(q): Query<ArchiveQ>,
) -> Result<Response, ApiError> {
    let path = path_of(&q)?;
    let (tx, rx) = mpsc::channel(8);
    let (first_tx, first_rx) = oneshot::channel::<Result<cp::PathStat, ApiError>>();
    tokio::task::spawn_blocking(move || {
        let opened = resolve(&s, &r).and_then(|id| {
            ContainerPath::open(&s.layout, &s.store, &id, &path, false)
                .map_err(|e| path_error(&s, e))
        });
        let c = match opened {
            Ok(c) => c,
            Err(e) => {
                let _ = first_tx.send(Err(e));
                return;
            }
        };
        // Resolved once: the stat header and the tar are of the same file.
        let source = match cp::docker_source(c.side()) {
            Ok(Some(src)) => {
                let _ = first_tx.send(Ok(src.stat()));
                src
            }
            Ok(None) => {
                let _ = first_tx.send(Err(not_found(&path, &r)));
                return;
            }
            Err(e) => {
                let _ = first_tx.send(Err(path_error(&s, e)));
                return;
            }
        };
        let mut w = ChanWriter::new(tx);
        let r = source.write_tar(&mut w);
        drop(c);
        match r
            .map_err(|e| chain(&e))
            .and_then(|_| std::io::Write::flush(&mut w).map_err(|e| e.to_string()))
        {
            Ok(()) => {}
            Err(m) => w.fail(m),
        }
    });
    let st = first_rx
        .await
        .map_err(|_| ApiError::internal("archive ended early"))??;
    let mut resp = tar_response(rx);
    resp.headers_mut().insert(STAT_HEADER, stat_header(&st));
    Ok(resp)
}

/// `PUT /containers/{id}/archive?path=`: extracts the body's tar into directory `path`,
/// every entry created through directory fds inside the rootfs (names with `..` or a
/// leading `/`, and links on the way, are refused: nothing lands outside).
async fn archive_put(
    S(s): S<State>,
    Path(r): Path<String>,
    Query(q): Query<ArchiveQ>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let path = path_of(&q);
    // Berth never replaces a directory with a non-directory or back: noOverwriteDirNonDir
    // is always on (the docker CLI always asks for it).
    let _ = q.no_overwrite_dir_non_dir;
    let owner = if flag(&q.copy_uid_gid) {
        Owner::Source
    } else {
        // docker: what is copied in belongs to the container's root.
        Owner::Set(0, 0)
    };
    let mut body = ChanReader::new(body);
    blocking(move || {
        let mut path = Some(path);
        let mut put = || {
            let path = path.take().expect("put runs once")?;
            let id = resolve(&s, &r)?;
            let c = ContainerPath::open(&s.layout, &s.store, &id, &path, true)
                .map_err(|e| path_error(&s, e))?;
            if cp::stat(c.side()).map_err(|e| path_error(&s, e))?.is_none() {
                return Err(not_found(&path, &r));
            }
            plain_tar(&mut body, "archive")?;
            let opts = CopyOptions {
                follow_link: false,
                owner,
            };
            cp::extract_tar(&mut body, c.side(), &opts).map_err(|e| path_error(&s, e))
        };
        // The rootfs (and its lock) is let go before the rest of the body is read; every
        // refusal is answered after it (see build.rs).
        let done = put();
        body.drain();
        done.map(|_| StatusCode::OK)
    })
    .await
}

/// `GET /containers/{id}/export`: the container's rootfs as a tar (`docker export`).
async fn export(S(s): S<State>, Path(r): Path<String>) -> Result<Response, ApiError> {
    let (tx, rx) = mpsc::channel(8);
    let (first_tx, first_rx) = oneshot::channel::<Result<(), ApiError>>();
    tokio::task::spawn_blocking(move || {
        // The rootfs is opened (mounted if need be) before the status is answered.
        let opened = resolve(&s, &r).and_then(|id| {
            let fs =
                rootfs::Rootfs::open(&s.layout, &s.store, &id).map_err(|e| path_error(&s, e))?;
            Ok((id, fs))
        });
        let (id, fs) = match opened {
            Ok(x) => x,
            Err(e) => {
                let _ = first_tx.send(Err(e));
                return;
            }
        };
        let _ = first_tx.send(Ok(()));
        let mut w = ChanWriter::new(tx);
        let r = rootfs::export_rootfs(&fs, &id, &mut w);
        drop(fs);
        match r
            .map_err(|e| chain(&e))
            .and_then(|_| std::io::Write::flush(&mut w).map_err(|e| e.to_string()))
        {
            Ok(()) => {}
            Err(m) => w.fail(m),
        }
    });
    first_rx
        .await
        .map_err(|_| ApiError::internal("export ended early"))??;
    Ok(tar_response(rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_times_and_credentials() {
        assert_eq!(
            query_pairs("names=busybox%3Alatest&names=a%2Fb+c&x"),
            vec![
                ("names".into(), "busybox:latest".into()),
                ("names".into(), "a/b c".into()),
                ("x".into(), String::new()),
            ]
        );
        assert_eq!(query_pairs("t=100%"), vec![("t".into(), "100%".into())]);
        let t = std::time::UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 500_000_000);
        assert_eq!(go_time(t), "2023-11-14T22:13:20.5Z");
        assert_eq!(
            go_time(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000)),
            "2023-11-14T22:13:20Z"
        );
        use base64::Engine;
        let enc = |v: Value| {
            let mut h = HeaderMap::new();
            let b = base64::engine::general_purpose::URL_SAFE.encode(v.to_string());
            h.insert("x-registry-auth", b.parse().unwrap());
            h
        };
        let c = registry_credentials(&enc(json!({"username": "u", "password": "p"})))
            .unwrap()
            .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p"));
        let c = registry_credentials(&enc(json!({"auth": "dTpwOng="})))
            .unwrap()
            .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p:x"));
        assert!(registry_credentials(&enc(json!({"serveraddress": "h"})))
            .unwrap()
            .is_none());
        assert!(registry_credentials(&enc(json!({"identitytoken": "t"}))).is_err());
        assert!(registry_credentials(&HeaderMap::new()).unwrap().is_none());
    }

    #[test]
    fn stat_header_is_base64_json() {
        use base64::Engine;
        let st = cp::PathStat {
            name: "x".into(),
            size: 3,
            mode: cp::go_file_mode(0o40755),
            mtime: std::time::UNIX_EPOCH,
            link_target: String::new(),
        };
        let h = stat_header(&st);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(h.to_str().unwrap())
            .unwrap();
        let v: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(v["name"], "x");
        assert_eq!(v["mode"], (1u64 << 31) | 0o755);
        assert_eq!(v["mtime"], "1970-01-01T00:00:00Z");
        assert_eq!(v["linkTarget"], "");
    }
}
