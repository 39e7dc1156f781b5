//! `berth-dns --root R [--ready-fd N] [--resolv-conf PATH] [--timeout-ms MS] [--port P]`
//!
//! DNS for berth's user-defined networks: on each such network's gateway address(es),
//! port 53 UDP and TCP, in the network namespace it was started in, it answers the names
//! of that network's containers (name, aliases, short id, `name.network`; A, AAAA and
//! PTR) from `R/engine/networks/*/endpoints/*.json`, and its services' names (`name`,
//! `name.network`; A and AAAA, every address) from `R/engine/networks/*/services/*.json`,
//! and forwards every other question to the resolvers of the host's resolv.conf.
//!
//! One instance per root (an flock'd pidfile, `R/engine/networks/dns.pid`); a second one
//! finds the lock taken, reports "ok" and exits. The engine starts it on demand (it is
//! up in a few ms: no config beyond the records) and it exits once no endpoint has been
//! left for 30 s (BERTH_DNS_LINGER_MS).
//! With `--ready-fd`, "ok\n" (serving) or "error: MSG\n" is written to that fd.
#![forbid(unsafe_code)]

mod answer;
mod server;
mod upstream;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use berth_network::dns::NetworksDir;
use rustix::fs::FlockOperation;

/// How long the server stays up once no endpoint is left (BERTH_DNS_LINGER_MS).
static LINGER: std::sync::LazyLock<Duration> = std::sync::LazyLock::new(|| {
    Duration::from_millis(
        std::env::var("BERTH_DNS_LINGER_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(30_000),
    )
});

struct Args {
    root: PathBuf,
    ready_fd: Option<i32>,
    resolv_conf: PathBuf,
    timeout: Duration,
    port: u16,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        root: PathBuf::new(),
        ready_fd: None,
        resolv_conf: PathBuf::from("/etc/resolv.conf"),
        timeout: Duration::from_secs(3),
        port: 53,
    };
    let mut root = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--root" => root = Some(PathBuf::from(val("--root")?)),
            "--ready-fd" => {
                let v = val("--ready-fd")?;
                a.ready_fd = Some(v.parse().with_context(|| format!("bad --ready-fd {v:?}"))?);
            }
            "--resolv-conf" => a.resolv_conf = PathBuf::from(val("--resolv-conf")?),
            "--timeout-ms" => {
                let v = val("--timeout-ms")?;
                a.timeout = Duration::from_millis(
                    v.parse()
                        .with_context(|| format!("bad --timeout-ms {v:?}"))?,
                );
            }
            "--port" => {
                let v = val("--port")?;
                a.port = v.parse().with_context(|| format!("bad --port {v:?}"))?;
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    a.root = root.context("--root is required")?;
    Ok(a)
}

/// The pidfile and its lock: held while serving.
struct PidLock {
    path: PathBuf,
    file: Option<File>,
}

impl PidLock {
    /// Takes the lock, retrying for a few ms (a `server_pid` probe holds a shared lock for
    /// microseconds); false when another server holds it.
    fn take(&mut self) -> Result<bool> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&self.path)
            .with_context(|| format!("open {}", self.path.display()))?;
        for _ in 0..20 {
            match rustix::fs::flock(&f, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {
                    f.set_len(0)?;
                    (&f).write_all(format!("{}\n", std::process::id()).as_bytes())?;
                    self.file = Some(f);
                    return Ok(true);
                }
                Err(rustix::io::Errno::WOULDBLOCK) => std::thread::sleep(Duration::from_millis(1)),
                Err(e) => return Err(e).with_context(|| format!("flock {}", self.path.display())),
            }
        }
        Ok(false)
    }

    fn release(&mut self) {
        self.file = None;
    }
}

fn report(fd: Option<i32>, msg: &str) {
    if let Some(fd) = fd {
        // The fd is inherited; reopening it through /proc needs no unsafe.
        if let Ok(mut f) = OpenOptions::new()
            .write(true)
            .open(format!("/proc/self/fd/{fd}"))
        {
            let _ = f.write_all(msg.as_bytes());
        }
    }
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("berth-dns: {e:#}");
            std::process::exit(2);
        }
    };
    let ready = args.ready_fd;
    if let Err(e) = run(args) {
        report(ready, &format!("error: {e:#}\n"));
        eprintln!("berth-dns: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    let dir = NetworksDir::new(&args.root);
    std::fs::create_dir_all(dir.path())
        .with_context(|| format!("create {}", dir.path().display()))?;
    let mut lock = PidLock {
        path: dir.dns_pidfile(),
        file: None,
    };
    if !lock.take()? {
        // Another instance serves this root.
        report(args.ready_fd, "ok\n");
        return Ok(());
    }
    let resolv = std::fs::read_to_string(&args.resolv_conf).unwrap_or_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("tokio runtime")?;
    rt.block_on(async move {
        // Our own addresses are never upstreams (that would loop).
        let ours: Vec<_> = dir
            .load()
            .unwrap_or_default()
            .iter()
            .flat_map(|(n, _)| n.gateways())
            .collect();
        let cfg = server::Config {
            port: args.port,
            upstreams: upstream::parse_resolv_conf(&resolv, &ours),
            timeout: args.timeout,
        };
        let mut srv = server::Server::new(dir.clone(), cfg)?;
        let mut first = true;
        loop {
            let n = srv.reload()?;
            if first {
                report(args.ready_fd, "ok\n");
                first = false;
            }
            if n == 0 {
                // Nothing left to serve: linger a while first, so that containers coming
                // and going one at a time (`run --rm`, a replica replaced) do not pay
                // for a new server each time.
                if let Ok(r) = tokio::time::timeout(*LINGER, srv.changed()).await {
                    r?;
                    continue;
                }
                // Close the sockets (a successor must be able to
                // bind them), then unlock, then look once more: an endpoint written
                // meanwhile was written by an engine that saw the lock held and so
                // started no server; keep serving it if the lock is still ours to take.
                srv.close().await;
                lock.release();
                if endpoints_left(&dir) && lock.take()? {
                    continue;
                }
                return Ok(());
            }
            srv.changed().await?;
        }
    })
}

fn endpoints_left(dir: &NetworksDir) -> bool {
    dir.load()
        .map(|all| all.iter().any(|(n, eps)| n.dns && !eps.is_empty()))
        .unwrap_or(false)
}
