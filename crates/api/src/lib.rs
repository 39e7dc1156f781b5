//! `berth serve`: the Docker Engine API (v1.41, docker 20.10) on a unix socket, so the
//! docker CLI, docker-compose and the Docker SDKs drive Berth unchanged. Every handler is
//! a thin front-end over the same engine calls as the CLI (crates/engine): a container
//! made here and one made by `berth run` are the same kind of container. Berth stays
//! daemonless: the server holds no state beyond the store, and its containers keep their
//! own monitors when it exits.
//!
//! Shape (mini-redis): the listener accepts, a handler per request, one shutdown signal
//! (SIGINT/SIGTERM, or `--timeout` seconds without a request) that stops accepting and
//! lets requests in flight finish.
#![forbid(unsafe_code)]
// serde_json::json! of a whole create request nests deeper than the default.
#![recursion_limit = "256"]

mod attach;
mod build;
mod containers;
mod create;
mod error;
mod exec;
mod images;
mod netvol;
mod observe;
mod params;
mod system;
mod tls;
mod transfer;

pub use error::ApiError;
pub use tls::TlsFiles;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use berth_engine::layout::Layout;
use berth_image::store::Store;
use berth_registry::ClientOptions;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The API version served, and the oldest a client may ask for (docker 20.10's).
pub const API_VERSION: &str = berth_engine::info::API_VERSION;
pub const MIN_API_VERSION: &str = "1.24";

/// How long requests in flight may finish after SIGTERM (dockerd's default is 10 s for
/// its containers; a client's stream needs no more).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error(transparent)]
    Engine(#[from] berth_engine::Error),
    #[error(transparent)]
    Image(#[from] berth_image::Error),
    #[error("{0}")]
    Invalid(String),
}

/// Where `berth serve` listens.
#[derive(Debug, Clone)]
pub enum Listen {
    /// A unix socket (`-H unix://PATH`).
    Unix(PathBuf),
    /// TCP with mutual TLS (`-H tcp://ADDR:PORT --tlsverify ...`).
    Tcp(std::net::SocketAddr, TlsFiles),
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Unix(p) => write!(f, "unix://{}", p.display()),
            Listen::Tcp(a, _) => write!(f, "tcp://{a} (mutual TLS)"),
        }
    }
}

/// What `berth serve` was asked for.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: Listen,
    /// The group that may use the socket (mode 0660), else root only (0600).
    pub group: Option<String>,
    /// Exit after this long without a request (podman's `--time`); None: never.
    pub idle: Option<Duration>,
    /// The engine's root (`berth --root`).
    pub root: PathBuf,
    /// How the registry client connects (pulls, pushes).
    pub client_opts: ClientOptions,
}

/// What every handler works on.
pub(crate) struct Ctx {
    pub layout: Layout,
    pub store: Store,
    pub client_opts: ClientOptions,
    /// Attaches waiting for their container's start.
    pub hub: attach::Hub,
    /// Exec instances made by `POST /containers/{id}/exec` (held by this server, as
    /// dockerd holds them).
    pub execs: exec::Execs,
}

pub(crate) type State = Arc<Ctx>;

/// `-H` values: `unix:///path` (or a bare absolute path), or `tcp://ADDR:PORT` with
/// `tls` (mutual TLS: without it, TCP would give root to the network).
pub fn listen_of(host: &str, tls: Option<TlsFiles>) -> Result<Listen, Error> {
    if let Some(a) = host.strip_prefix("tcp://") {
        let Some(tls) = tls else {
            return Err(Error::Invalid(format!(
                "-H {host}: a tcp listener needs --tlsverify with --tlscacert, --tlscert and \
                 --tlskey (mutual TLS): the API gives root to whoever reaches it"
            )));
        };
        let addr = a
            .trim_end_matches('/')
            .parse()
            .map_err(|_| Error::Invalid(format!("invalid -H {host:?}: tcp://ADDRESS:PORT")))?;
        return Ok(Listen::Tcp(addr, tls));
    }
    if tls.is_some() {
        return Err(Error::Invalid(format!(
            "--tlsverify is for a tcp listener; -H {host} is a unix socket"
        )));
    }
    let p = match host.strip_prefix("unix://") {
        Some(p) => p,
        None if host.starts_with('/') => host,
        None => {
            return Err(Error::Invalid(format!(
                "invalid -H {host:?}: unix:///PATH or tcp://ADDRESS:PORT"
            )))
        }
    };
    if !p.starts_with('/') {
        return Err(Error::Invalid(format!(
            "invalid -H {host:?}: the socket path must be absolute"
        )));
    }
    Ok(Listen::Unix(PathBuf::from(p)))
}

/// Serves until SIGINT/SIGTERM or `idle` passes without a request, then removes the
/// socket. `ready` is called once the listener accepts.
pub async fn serve(o: ServeOptions, ready: impl FnOnce(&Listen)) -> Result<(), Error> {
    let layout = Layout::open(&o.root)?;
    let store = Store::open(&o.root)?;
    let state = Arc::new(Ctx {
        layout,
        store,
        client_opts: o.client_opts.clone(),
        hub: attach::Hub::default(),
        execs: exec::Execs::default(),
    });
    let activity = Activity::new();
    let app = routes(state);
    let act = activity.clone();
    let app = app.layer(axum::middleware::from_fn(move |req, next| {
        let act = act.clone();
        async move { act.track(req, next).await }
    }));
    // Versions are checked and stripped before routing (`/v1.41/x` and `/x` are one route).
    let app = tower::Layer::layer(&axum::middleware::map_request(strip_version), app);
    // One router that sends everything through the stack above (a plain type to serve).
    let app = Router::new().fallback_service(app);
    let stop = shutdown(o.idle, activity);
    match &o.listen {
        Listen::Unix(path) => {
            let l = bind(path, o.group.as_deref())?;
            ready(&o.listen);
            let served = run(l, app, stop).await;
            let _ = std::fs::remove_file(path);
            served.map_err(|e| Error::Io(path.display().to_string(), e))
        }
        Listen::Tcp(addr, files) => {
            if o.group.is_some() {
                return Err(Error::Invalid("--group is for a unix socket".into()));
            }
            let l = tls::TlsListener::bind(*addr, files).await?;
            ready(&Listen::Tcp(
                axum::serve::Listener::local_addr(&l).unwrap_or(*addr),
                files.clone(),
            ));
            run(l, app, stop)
                .await
                .map_err(|e| Error::Io(addr.to_string(), e))
        }
    }
}

/// Serves `app` on `l` until `stop`; requests in flight get a grace period, and a stream
/// that never ends (events, logs -f, stats, attach) does not hold the exit.
async fn run<L>(
    l: L,
    app: Router,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let stopping = Arc::new(Notify::new());
    let notify = stopping.clone();
    let served = axum::serve(l, app.into_make_service()).with_graceful_shutdown(async move {
        stop.await;
        notify.notify_one();
    });
    tokio::select! {
        r = served => r,
        _ = async {
            stopping.notified().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => Ok(()),
    }
}

/// Binds the socket: a stale one (nobody listening) is replaced, a live one refused;
/// mode 0600, or 0660 with `group`.
fn bind(path: &Path, group: Option<&str>) -> Result<tokio::net::UnixListener, Error> {
    let io = |e| Error::Io(path.display().to_string(), e);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    if let Ok(m) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !m.file_type().is_socket() {
            return Err(Error::Invalid(format!(
                "{} exists and is not a socket",
                path.display()
            )));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(Error::Invalid(format!(
                "{} is in use: another server listens there",
                path.display()
            )));
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    let gid = match group {
        Some(g) => Some(gid_of(g)?),
        None => None,
    };
    let l = tokio::net::UnixListener::bind(path).map_err(io)?;
    use std::os::unix::fs::PermissionsExt;
    let mode = if gid.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io)?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(io)?;
    }
    Ok(l)
}

/// A group's id from /etc/group, or a number.
fn gid_of(g: &str) -> Result<u32, Error> {
    if let Ok(n) = g.parse() {
        return Ok(n);
    }
    let text =
        std::fs::read_to_string("/etc/group").map_err(|e| Error::Io("/etc/group".into(), e))?;
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            Some((f.next()?, f.nth(1)?))
        })
        .find(|(n, _)| *n == g)
        .and_then(|(_, id)| id.parse().ok())
        .ok_or_else(|| Error::Invalid(format!("--group {g:?}: no such group")))
}

/// `/vX.Y/rest` becomes `/rest` once X.Y is checked; a version out of range is docker's
/// 400.
async fn strip_version(mut req: Request) -> Result<Request, Response> {
    let path = req.uri().path();
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok(req);
    };
    let (ver, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let Some(v) = parse_version(ver) else {
        return Ok(req);
    };
    if v > parse_version(API_VERSION).expect("valid") {
        return Err(ApiError::bad(format!(
            "client version {ver} is too new. Maximum supported API version is {API_VERSION}"
        ))
        .into_response());
    }
    if v < parse_version(MIN_API_VERSION).expect("valid") {
        return Err(ApiError::bad(format!(
            "client version {ver} is too old. Minimum supported API version is \
             {MIN_API_VERSION}, please upgrade your client to a newer version"
        ))
        .into_response());
    }
    let pq = match req.uri().query() {
        Some(q) => format!("{tail}?{q}"),
        None => tail.to_string(),
    };
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = Some(
        pq.parse()
            .map_err(|_| ApiError::bad(format!("bad request path {pq:?}")).into_response())?,
    );
    *req.uri_mut() =
        Uri::from_parts(parts).map_err(|_| ApiError::bad("bad uri").into_response())?;
    Ok(req)
}

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn routes(s: State) -> Router {
    Router::new()
        .merge(system::routes())
        .merge(containers::routes())
        .merge(attach::routes())
        .merge(exec::routes())
        .merge(images::routes())
        .merge(netvol::routes())
        .merge(observe::routes())
        .merge(transfer::routes())
        .fallback(|req: Request| async move {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("page not found: {} {}", req.method(), req.uri().path()),
            )
        })
        .with_state(s)
}

/// Requests in flight and the last one's end: the idle timer waits for both.
#[derive(Clone)]
struct Activity {
    inflight: Arc<AtomicUsize>,
    changed: Arc<Notify>,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            inflight: Arc::new(AtomicUsize::new(0)),
            changed: Arc::new(Notify::new()),
        }
    }

    async fn track(&self, req: Request, next: axum::middleware::Next) -> Response {
        self.inflight.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
        let mut r = next.run(req).await;
        // A streamed body (logs -f, a pull's progress) counts until it ends.
        let guard = InFlight(self.clone());
        let body = std::mem::take(r.body_mut());
        *r.body_mut() = axum::body::Body::new(Tracked {
            body,
            _guard: guard,
        });
        let h = r.headers_mut();
        h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
        h.insert("Server", HeaderValue::from_static("Berth (linux)"));
        r
    }
}

struct InFlight(Activity);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }
}

/// A body that holds its request's place in the count until it is dropped.
struct Tracked {
    body: axum::body::Body,
    _guard: InFlight,
}

impl axum::body::HttpBody for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }
    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }
    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Resolves on SIGINT or SIGTERM, or after `idle` with no request in flight.
async fn shutdown(idle: Option<Duration>, act: Activity) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let quiet = async {
        let Some(idle) = idle else {
            return std::future::pending().await;
        };
        loop {
            let changed = act.changed.notified();
            if act.inflight.load(Ordering::SeqCst) > 0 {
                changed.await;
                continue;
            }
            tokio::select! {
                _ = changed => continue,
                _ = tokio::time::sleep(idle) => return,
            }
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        _ = quiet => {}
    }
}

/// Runs a blocking engine call off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("handler failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_versions() {
        let unix = |h: &str| match listen_of(h, None) {
            Ok(Listen::Unix(p)) => Ok(p),
            Ok(l) => panic!("{l}"),
            Err(e) => Err(e.to_string()),
        };
        assert_eq!(
            unix("unix:///run/b.sock").unwrap(),
            PathBuf::from("/run/b.sock")
        );
        assert_eq!(unix("/x.sock").unwrap(), PathBuf::from("/x.sock"));
        assert!(unix("tcp://0.0.0.0:2375")
            .unwrap_err()
            .contains("--tlsverify"));
        assert!(unix("unix://rel.sock").is_err());
        let files = TlsFiles {
            ca: "ca".into(),
            cert: "c".into(),
            key: "k".into(),
        };
        assert!(matches!(
            listen_of("tcp://127.0.0.1:2376", Some(files.clone())),
            Ok(Listen::Tcp(a, _)) if a.port() == 2376
        ));
        assert!(listen_of("tcp://nohost", Some(files.clone())).is_err());
        assert!(listen_of("unix:///x.sock", Some(files)).is_err());
        assert_eq!(parse_version("1.41"), Some((1, 41)));
        assert_eq!(parse_version("x"), None);
    }
}
