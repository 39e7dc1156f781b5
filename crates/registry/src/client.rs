//! OCI distribution v2 client: manifests, blobs (verified while streaming), uploads, auth.

use crate::auth::{self, Challenge, Credentials};
use crate::manifest::MANIFEST_ACCEPT;
use crate::reference::Reference;
use base64::Engine as _;
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION};
use reqwest::{Method, Response, StatusCode};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("request to {url} failed")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{method} {url}: registry answered {status}{detail}")]
    Status {
        method: String,
        url: String,
        status: u16,
        detail: String,
    },
    #[error("authentication required by {0} (use `berth login {0}`)")]
    Unauthorized(String),
    #[error("{registry} rejected the credentials")]
    BadCredentials { registry: String },
    #[error("token request to {url} failed")]
    Token {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("token server {0} returned no token")]
    NoToken(String),
    #[error("unsupported authentication challenge {0:?}")]
    BadChallenge(String),
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("{what} is larger than the {limit} byte limit")]
    TooLarge { what: String, limit: u64 },
    #[error("registry gave no upload location for {0}")]
    NoLocation(String),
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    #[error("i/o on {0}")]
    Io(String, #[source] std::io::Error),
    #[error("cannot build http client")]
    Build(#[source] reqwest::Error),
    #[error("invalid CA certificate {0}")]
    Cert(String, #[source] reqwest::Error),
}

type Result<T> = std::result::Result<T, RegistryError>;

/// Largest manifest or config we read into memory.
pub const MAX_DOCUMENT: u64 = 8 << 20;

#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Verify TLS certificates (false also allows falling back to plain HTTP).
    pub tls_verify: bool,
    /// Registries (host[:port]) reached without TLS verification, falling back to HTTP.
    pub insecure_registries: Vec<String>,
    /// berth's credentials file; docker's config.json is also read.
    pub authfile: Option<PathBuf>,
    /// Explicit credentials, overriding the files.
    pub credentials: Option<Credentials>,
    /// Attempts for each request on transport errors and 5xx/429 answers.
    pub attempts: u32,
    /// Upload blobs larger than this in chunks of this size (0 = always monolithic).
    pub chunk_size: u64,
    /// Extra CAs per registry: `<certs_dir>/<host[:port]>/*.crt` (docker's certs.d layout).
    pub certs_dir: Option<PathBuf>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            tls_verify: true,
            insecure_registries: Vec::new(),
            authfile: None,
            credentials: None,
            attempts: 4,
            chunk_size: 16 << 20,
            certs_dir: None,
        }
    }
}

pub struct Client {
    opts: ClientOptions,
    /// Authorization header per (host, scope-set).
    auth_cache: Mutex<HashMap<(String, String), HeaderValue>>,
    /// Base URL and HTTP client per host, once decided.
    hosts: Mutex<HashMap<String, (String, reqwest::Client)>>,
}

/// How a blob push went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    AlreadyExists,
    Mounted,
    Uploaded,
}

fn is_loopback(host: &str) -> bool {
    let h = host
        .rsplit_once(':')
        .map(|(h, p)| {
            if p.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
        .unwrap_or(host);
    let h = h.trim_start_matches('[').trim_end_matches(']');
    h == "localhost" || h == "::1" || h.starts_with("127.")
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

impl Client {
    pub fn new(opts: ClientOptions) -> Result<Client> {
        Ok(Client {
            opts,
            auth_cache: Mutex::new(HashMap::new()),
            hosts: Mutex::new(HashMap::new()),
        })
    }

    fn insecure(&self, host: &str) -> bool {
        !self.opts.tls_verify || self.opts.insecure_registries.iter().any(|h| h == host)
    }

    fn build(&self, host: &str, noverify: bool) -> Result<reqwest::Client> {
        // Names through hickory (/etc/hosts, then resolv.conf's servers), never glibc's
        // getaddrinfo: the binary is static and must not load NSS modules at run time.
        let mut b = reqwest::Client::builder()
            .hickory_dns(true)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .danger_accept_invalid_certs(noverify);
        if let Some(dir) = &self.opts.certs_dir {
            let dir = dir.join(host);
            if let Ok(rd) = std::fs::read_dir(&dir) {
                for e in rd.flatten() {
                    let p = e.path();
                    if p.extension().is_some_and(|x| x == "crt") {
                        let pem = std::fs::read(&p)
                            .map_err(|e| RegistryError::Io(p.display().to_string(), e))?;
                        let cert = reqwest::Certificate::from_pem(&pem)
                            .map_err(|e| RegistryError::Cert(p.display().to_string(), e))?;
                        b = b.add_root_certificate(cert);
                    }
                }
            }
        }
        b.build().map_err(RegistryError::Build)
    }

    /// Base URL and client for a host: loopback is plain HTTP; insecure hosts try HTTPS
    /// without verification and fall back to HTTP; everything else is verified HTTPS.
    async fn conn(&self, host: &str) -> Result<(String, reqwest::Client)> {
        if let Some(c) = self.hosts.lock().unwrap().get(host) {
            return Ok(c.clone());
        }
        let c = if is_loopback(host) {
            (format!("http://{host}"), self.build(host, false)?)
        } else if self.insecure(host) {
            let client = self.build(host, true)?;
            match client.get(format!("https://{host}/v2/")).send().await {
                Ok(_) => (format!("https://{host}"), client),
                Err(_) => (format!("http://{host}"), client),
            }
        } else {
            (format!("https://{host}"), self.build(host, false)?)
        };
        self.hosts
            .lock()
            .unwrap()
            .insert(host.to_string(), c.clone());
        Ok(c)
    }

    fn creds(&self, registry: &str) -> Result<Option<Credentials>> {
        if let Some(c) = &self.opts.credentials {
            return Ok(Some(c.clone()));
        }
        Ok(auth::lookup(self.opts.authfile.as_deref(), registry)?)
    }

    /// Sends a request, answering auth challenges once and retrying transient failures.
    /// `make` builds the request (it may be called several times).
    async fn send<F>(&self, r: &Reference, scopes: &[String], make: F) -> Result<Response>
    where
        F: Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    {
        let host = r.api_host().to_string();
        let (base, client) = self.conn(&host).await?;
        let client = &client;
        let key = (host.clone(), scopes.join(" "));
        let mut authed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = make(client, &base);
            if let Some(h) = self.auth_cache.lock().unwrap().get(&key) {
                req = req.header(AUTHORIZATION, h.clone());
            }
            let req = req.build().map_err(|e| RegistryError::Http {
                url: base.clone(),
                source: e,
            })?;
            let url = req.url().to_string();
            match client.execute(req).await {
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED && !authed => {
                    authed = true;
                    let challenge = resp
                        .headers()
                        .get(reqwest::header::WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                        .ok_or_else(|| RegistryError::Unauthorized(r.registry.clone()))?;
                    let h = self.authenticate(r, &challenge, scopes, client).await?;
                    self.auth_cache.lock().unwrap().insert(key.clone(), h);
                    attempt -= 1;
                }
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED => {
                    return Err(if self.creds(&r.registry)?.is_some() {
                        RegistryError::BadCredentials {
                            registry: r.registry.clone(),
                        }
                    } else {
                        RegistryError::Unauthorized(r.registry.clone())
                    });
                }
                Ok(resp)
                    if (resp.status().is_server_error()
                        || resp.status() == StatusCode::TOO_MANY_REQUESTS)
                        && attempt < self.opts.attempts =>
                {
                    backoff(attempt).await;
                }
                Ok(resp) => return Ok(resp),
                Err(e)
                    if attempt < self.opts.attempts
                        && (e.is_connect() || e.is_timeout() || e.is_request()) =>
                {
                    backoff(attempt).await;
                }
                Err(e) => return Err(RegistryError::Http { url, source: e }),
            }
        }
    }

    async fn authenticate(
        &self,
        r: &Reference,
        challenge: &str,
        scopes: &[String],
        client: &reqwest::Client,
    ) -> Result<HeaderValue> {
        let creds = self.creds(&r.registry)?;
        match auth::parse_challenge(challenge) {
            Some(Challenge::Basic) => {
                let c = creds.ok_or_else(|| RegistryError::Unauthorized(r.registry.clone()))?;
                Ok(basic_header(&c))
            }
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                let mut url = url::Url::parse(&realm)
                    .map_err(|_| RegistryError::BadChallenge(challenge.to_string()))?;
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = &service {
                        q.append_pair("service", s);
                    }
                    if scopes.is_empty() {
                        if let Some(s) = &scope {
                            q.append_pair("scope", s);
                        }
                    }
                    for s in scopes {
                        q.append_pair("scope", s);
                    }
                }
                let mut req = client.get(url.clone());
                if let Some(c) = &creds {
                    req = req.basic_auth(&c.username, Some(&c.password));
                }
                let terr = |e| RegistryError::Token {
                    url: url.to_string(),
                    source: e,
                };
                let resp = req.send().await.map_err(terr)?;
                if resp.status() == StatusCode::UNAUTHORIZED
                    || resp.status() == StatusCode::FORBIDDEN
                {
                    return Err(if creds.is_some() {
                        RegistryError::BadCredentials {
                            registry: r.registry.clone(),
                        }
                    } else {
                        RegistryError::Unauthorized(r.registry.clone())
                    });
                }
                let resp = resp.error_for_status().map_err(terr)?;
                let raw = resp.bytes().await.map_err(terr)?;
                let v: serde_json::Value = serde_json::from_slice(&raw)
                    .map_err(|_| RegistryError::NoToken(url.to_string()))?;
                let tok = v
                    .get("token")
                    .or_else(|| v.get("access_token"))
                    .and_then(|t| t.as_str())
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| RegistryError::NoToken(url.to_string()))?;
                HeaderValue::from_str(&format!("Bearer {tok}"))
                    .map_err(|_| RegistryError::NoToken(url.to_string()))
            }
            None => Err(RegistryError::BadChallenge(challenge.to_string())),
        }
    }

    /// `GET /v2/` with credentials, for `berth login`.
    pub async fn check_login(&self, registry: &str) -> Result<()> {
        let r = Reference {
            registry: registry.to_string(),
            repository: String::new(),
            tag: None,
            digest: None,
        };
        let resp = self.send(&r, &[], |c, b| c.get(format!("{b}/v2/"))).await?;
        check(resp, "GET").await.map(|_| ())
    }

    /// Fetches a manifest by tag or digest. Returns body, content type and digest
    /// (verified when the reference pins one).
    pub async fn get_manifest(
        &self,
        r: &Reference,
        target: &str,
    ) -> Result<(Vec<u8>, Option<String>, String)> {
        let scopes = [pull_scope(r)];
        let repo = r.repository.clone();
        let resp = self
            .send(r, &scopes, |c, b| {
                c.get(format!("{b}/v2/{repo}/manifests/{target}"))
                    .header(ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        let resp = check(resp, "GET").await?;
        let ct = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = read_limited(resp, MAX_DOCUMENT, &format!("manifest {r}")).await?;
        let digest = format!("sha256:{}", sha256_hex(&body));
        if target.starts_with("sha256:") && target != digest {
            return Err(RegistryError::DigestMismatch {
                what: format!("manifest {r}"),
                expected: target.to_string(),
                actual: digest,
            });
        }
        Ok((body, ct, digest))
    }

    /// Fetches a small blob (a config) into memory, verified.
    pub async fn get_blob_bytes(&self, r: &Reference, digest: &str, size: u64) -> Result<Vec<u8>> {
        if size > MAX_DOCUMENT {
            return Err(RegistryError::TooLarge {
                what: format!("blob {digest}"),
                limit: MAX_DOCUMENT,
            });
        }
        let mut buf = Vec::new();
        self.get_blob(r, digest, size, &mut buf, &mut |_| {})
            .await?;
        Ok(buf)
    }

    /// Streams a blob into `out`, hashing as it goes; fails unless size and digest match.
    /// No retry here: a partial write cannot be undone, see [`Client::get_blob_to_file`].
    pub async fn get_blob<W: AsyncWrite + Unpin>(
        &self,
        r: &Reference,
        digest: &str,
        size: u64,
        out: &mut W,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<()> {
        let scopes = [pull_scope(r)];
        let repo = r.repository.clone();
        let what = format!("blob {digest}");
        let resp = self
            .send(r, &scopes, |c, b| {
                c.get(format!("{b}/v2/{repo}/blobs/{digest}"))
            })
            .await?;
        let resp = check(resp, "GET").await?;
        let url = resp.url().to_string();
        let mut hasher = Sha256::new();
        let mut n: u64 = 0;
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| RegistryError::Http {
                url: url.clone(),
                source: e,
            })?;
            n += chunk.len() as u64;
            if n > size {
                return Err(RegistryError::SizeMismatch {
                    what,
                    expected: size,
                    actual: n,
                });
            }
            hasher.update(&chunk);
            out.write_all(&chunk)
                .await
                .map_err(|e| RegistryError::Io(what.clone(), e))?;
            progress(chunk.len() as u64);
        }
        if n != size {
            return Err(RegistryError::SizeMismatch {
                what,
                expected: size,
                actual: n,
            });
        }
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        if actual != digest {
            return Err(RegistryError::DigestMismatch {
                what,
                expected: digest.to_string(),
                actual,
            });
        }
        out.flush().await.map_err(|e| RegistryError::Io(what, e))?;
        Ok(())
    }

    /// Downloads a blob into `file` (truncated first), retrying the whole transfer on
    /// transport errors. The file holds exactly the verified blob on success.
    pub async fn get_blob_to_file(
        &self,
        r: &Reference,
        digest: &str,
        size: u64,
        file: &mut tokio::fs::File,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<()> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let io = |e| RegistryError::Io(format!("blob {digest}"), e);
            file.set_len(0).await.map_err(io)?;
            file.seek(std::io::SeekFrom::Start(0)).await.map_err(io)?;
            // Network chunks are small; batch them into large writes.
            let mut w = tokio::io::BufWriter::with_capacity(1 << 20, &mut *file);
            let res = self.get_blob(r, digest, size, &mut w, progress).await;
            drop(w);
            match res {
                Err(RegistryError::Http { .. }) if attempt < self.opts.attempts => {
                    backoff(attempt).await;
                }
                other => return other,
            }
        }
    }

    /// Whether the registry already has a blob.
    pub async fn blob_exists(&self, r: &Reference, digest: &str) -> Result<bool> {
        let scopes = [push_scope(r)];
        let repo = r.repository.clone();
        let resp = self
            .send(r, &scopes, |c, b| {
                c.head(format!("{b}/v2/{repo}/blobs/{digest}"))
            })
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => check(resp, "HEAD").await.map(|_| false),
        }
    }

    /// Uploads a blob from a file unless the registry has it, trying a cross-repository
    /// mount from `mount_from` (a repository on the same registry) first.
    pub async fn push_blob(
        &self,
        r: &Reference,
        digest: &str,
        size: u64,
        path: &std::path::Path,
        mount_from: Option<&str>,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<PushOutcome> {
        if self.blob_exists(r, digest).await? {
            progress(size);
            return Ok(PushOutcome::AlreadyExists);
        }
        let mut scopes = vec![push_scope(r)];
        let repo = r.repository.clone();
        let from = mount_from.filter(|f| *f != r.repository);
        if let Some(f) = from {
            scopes.push(format!("repository:{f}:pull"));
        }
        let resp = self
            .send(r, &scopes, |c, b| {
                let mut u = format!("{b}/v2/{repo}/blobs/uploads/");
                if let Some(f) = from {
                    u.push_str(&format!("?mount={digest}&from={f}"));
                }
                c.post(u).header(reqwest::header::CONTENT_LENGTH, "0")
            })
            .await?;
        let resp = check(resp, "POST").await?;
        if resp.status() == StatusCode::CREATED {
            progress(size);
            return Ok(PushOutcome::Mounted);
        }
        let mut location = upload_location(&resp, r)?;
        let io = |e| RegistryError::Io(path.display().to_string(), e);
        let mut f = tokio::fs::File::open(path).await.map_err(io)?;
        let chunk = self.opts.chunk_size;
        if chunk > 0 && size > chunk {
            let mut off = 0u64;
            while off < size {
                let len = chunk.min(size - off);
                let mut buf = vec![0u8; len as usize];
                f.read_exact(&mut buf).await.map_err(io)?;
                let loc = location.clone();
                let range = format!("{}-{}", off, off + len - 1);
                let body = bytes::Bytes::from(buf);
                let resp = self
                    .send(r, &scopes, |c, _| {
                        c.request(Method::PATCH, &loc)
                            .header(CONTENT_TYPE, "application/octet-stream")
                            .header("Content-Range", range.clone())
                            .body(body.clone())
                    })
                    .await?;
                let resp = check(resp, "PATCH").await?;
                location = upload_location(&resp, r)?;
                off += len;
                progress(len);
            }
            let loc = with_digest(&location, digest);
            let resp = self
                .send(r, &scopes, |c, _| {
                    c.put(&loc).header(reqwest::header::CONTENT_LENGTH, "0")
                })
                .await?;
            check(resp, "PUT").await?;
        } else {
            let mut buf = Vec::with_capacity(size as usize);
            f.read_to_end(&mut buf).await.map_err(io)?;
            if buf.len() as u64 != size {
                return Err(RegistryError::SizeMismatch {
                    what: path.display().to_string(),
                    expected: size,
                    actual: buf.len() as u64,
                });
            }
            let body = bytes::Bytes::from(buf);
            let loc = with_digest(&location, digest);
            let resp = self
                .send(r, &scopes, |c, _| {
                    c.put(&loc)
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .body(body.clone())
                })
                .await?;
            check(resp, "PUT").await?;
            progress(size);
        }
        Ok(PushOutcome::Uploaded)
    }

    /// Uploads a manifest under a tag or digest; returns its digest.
    pub async fn put_manifest(
        &self,
        r: &Reference,
        target: &str,
        media_type: &str,
        body: &[u8],
    ) -> Result<String> {
        let scopes = [push_scope(r)];
        let repo = r.repository.clone();
        let body = bytes::Bytes::copy_from_slice(body);
        let mt = media_type.to_string();
        let resp = self
            .send(r, &scopes, |c, b| {
                c.put(format!("{b}/v2/{repo}/manifests/{target}"))
                    .header(CONTENT_TYPE, mt.clone())
                    .body(body.clone())
            })
            .await?;
        check(resp, "PUT").await?;
        Ok(format!("sha256:{}", sha256_hex(&body)))
    }
}

fn pull_scope(r: &Reference) -> String {
    format!("repository:{}:pull", r.repository)
}

fn push_scope(r: &Reference) -> String {
    format!("repository:{}:pull,push", r.repository)
}

fn basic_header(c: &Credentials) -> HeaderValue {
    let enc =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password));
    let mut h = HeaderValue::from_str(&format!("Basic {enc}")).expect("base64 is a valid header");
    h.set_sensitive(true);
    h
}

fn with_digest(location: &str, digest: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

/// Resolves the `Location` of an upload session (it may be relative).
fn upload_location(resp: &Response, r: &Reference) -> Result<String> {
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| RegistryError::NoLocation(r.to_string()))?;
    resp.url()
        .join(loc)
        .map(|u| u.to_string())
        .map_err(|_| RegistryError::NoLocation(r.to_string()))
}

async fn backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(200u64 << attempt.min(6))).await;
}

/// Turns non-2xx answers into errors carrying the registry's own error code/message.
async fn check(resp: Response, method: &str) -> Result<Response> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status().as_u16();
    let url = resp.url().to_string();
    let _: &HeaderMap = resp.headers();
    let body = resp.bytes().await.unwrap_or_default();
    let detail = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            let e = v.get("errors")?.get(0)?.clone();
            Some(format!(
                ": {} {}",
                e.get("code").and_then(|c| c.as_str()).unwrap_or(""),
                e.get("message").and_then(|c| c.as_str()).unwrap_or("")
            ))
        })
        .unwrap_or_default();
    Err(RegistryError::Status {
        method: method.to_string(),
        url,
        status,
        detail,
    })
}

async fn read_limited(resp: Response, limit: u64, what: &str) -> Result<Vec<u8>> {
    let url = resp.url().to_string();
    let mut out = Vec::new();
    let mut s = resp.bytes_stream();
    while let Some(c) = s.next().await {
        let c = c.map_err(|e| RegistryError::Http {
            url: url.clone(),
            source: e,
        })?;
        if out.len() as u64 + c.len() as u64 > limit {
            return Err(RegistryError::TooLarge {
                what: what.to_string(),
                limit,
            });
        }
        out.extend_from_slice(&c);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("127.0.0.1:35123"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("registry.example.com"));
        assert!(!is_loopback("10.0.0.1:5000"));
    }

    #[test]
    fn digest_param() {
        assert_eq!(
            with_digest("http://h/u?x=1", "sha256:a"),
            "http://h/u?x=1&digest=sha256:a"
        );
        assert_eq!(
            with_digest("http://h/u", "sha256:a"),
            "http://h/u?digest=sha256:a"
        );
    }
}
