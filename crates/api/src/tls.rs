//! The TCP listener, mutual TLS only (dockerd's `--tlsverify`): the API gives root to
//! whoever reaches it, so a client must show a certificate signed by `--tlscacert`.
//! Handshakes run in their own tasks (a slow or silent client holds up nobody) and the
//! connections that pass go to axum as an ordinary listener.

use crate::Error;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;

/// `--tlscacert`, `--tlscert`, `--tlskey`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How long a client may take to finish its handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

fn bad(p: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("{what} {}: {e}", p.display()))
}

/// The server's TLS config: its certificate and key, and client certificates required,
/// verified against the CA.
pub fn config(f: &TlsFiles) -> Result<rustls::ServerConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&f.ca).map_err(|e| bad(&f.ca, "--tlscacert", e))? {
        roots
            .add(c.map_err(|e| bad(&f.ca, "--tlscacert", e))?)
            .map_err(|e| bad(&f.ca, "--tlscacert", e))?;
    }
    if roots.is_empty() {
        return Err(bad(&f.ca, "--tlscacert", "no certificate in it"));
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| bad(&f.ca, "--tlscacert", e))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&f.cert)
        .map_err(|e| bad(&f.cert, "--tlscert", e))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(&f.cert, "--tlscert", e))?;
    if certs.is_empty() {
        return Err(bad(&f.cert, "--tlscert", "no certificate in it"));
    }
    let key = PrivateKeyDer::from_pem_file(&f.key).map_err(|e| bad(&f.key, "--tlskey", e))?;
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Invalid(format!("tls: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| bad(&f.cert, "--tlscert and --tlskey", e))
}

/// Accepted and handshaken connections.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

impl TlsListener {
    pub async fn bind(addr: SocketAddr, f: &TlsFiles) -> Result<TlsListener, Error> {
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config(f)?));
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Io(addr.to_string(), e))?;
        let addr = tcp
            .local_addr()
            .map_err(|e| Error::Io(addr.to_string(), e))?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let Ok((s, peer)) = tcp.accept().await else {
                    // EMFILE and the like: a moment, then on.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    // A client without a certificate the CA signed never gets further.
                    if let Ok(Ok(t)) = tokio::time::timeout(HANDSHAKE, acceptor.accept(s)).await {
                        let _ = tx.send((t, peer)).await;
                    }
                });
            }
        });
        Ok(TlsListener { rx, addr })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
