//! Attaching the CLI to a container's monitor: its output to ours, our stdin to it, our
//! terminal in raw mode with -t (restored on exit), window size changes as RESIZE frames,
//! and our signals forwarded to the container (sig-proxy) as kill requests.

use berth_engine::layout::Layout;
use berth_engine::parse::Escape;
use berth_engine::proto::{self, ExitInfo, Request};
use berth_engine::{status, Error, Result};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

pub struct Opts {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
    pub sig_proxy: bool,
    /// With a tty, this sequence on stdin detaches (docker's --detach-keys): the
    /// container runs on and attach returns 0.
    pub detach_keys: Vec<u8>,
}

fn io_err(what: &str, e: std::io::Error) -> Error {
    Error::io(what, e)
}

fn winsize() -> Option<(u16, u16)> {
    crate::term::size().map(|w| (w.ws_row, w.ws_col))
}

fn send_resize(w: &Mutex<UnixStream>) {
    if let Some((r, c)) = winsize() {
        if let Ok(mut s) = w.lock() {
            let _ = proto::write_frame(&mut *s, proto::RESIZE, &proto::resize_payload(r, c));
        }
    }
}

/// Signals forwarded to the container; the rest keep their default meaning (job control
/// signals stay with the CLI so a shell can still stop and resume it).
const PROXIED: &[i32] = &[
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGIO,
    libc::SIGPWR,
    libc::SIGSYS,
];

/// Attaches to container `id`'s monitor; returns the container's exit code. A start failure
/// the monitor reports (attach-wait) is `Error::Protocol(msg)`.
pub fn attach(layout: &Layout, id: &str, o: &Opts) -> Result<i32> {
    let sock_path = layout.attach_path(id);
    let mut sock = proto::connect(&sock_path)?;
    proto::send_request(
        &mut sock,
        &Request::Attach {
            stdin: o.stdin,
            stdout: o.stdout,
            stderr: o.stderr,
        },
    )
    .map_err(|e| io_err("attach request", e))?;
    let writer = Arc::new(Mutex::new(
        sock.try_clone().map_err(|e| io_err("socket", e))?,
    ));
    let stdin_tty = rustix::termios::isatty(rustix::stdio::stdin());
    let _raw = (o.tty && o.stdin && stdin_tty).then(crate::term::RawMode::enter);
    if o.tty {
        send_resize(&writer);
    }

    // Signals: a self-pipe thread (signal-hook), no unsafe here.
    let mut sigs: Vec<i32> = Vec::new();
    if o.sig_proxy {
        sigs.extend_from_slice(PROXIED);
    }
    if o.tty {
        sigs.push(libc::SIGWINCH);
    }
    if !sigs.is_empty() {
        if let Ok(mut signals) = signal_hook::iterator::Signals::new(&sigs) {
            let w = writer.clone();
            let (tty, path) = (o.tty, sock_path.clone());
            std::thread::spawn(move || {
                for s in signals.forever() {
                    if s == libc::SIGWINCH && tty {
                        send_resize(&w);
                        continue;
                    }
                    // A new connection per signal: the attach stream stays a byte stream.
                    if let Ok(mut c) = proto::connect(&path) {
                        let _ = proto::send_request(&mut c, &Request::Kill { signal: s });
                        let _ = proto::read_frame(&mut c);
                    }
                }
            });
        }
    }

    let detached = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if o.stdin {
        let w = writer.clone();
        // Detach keys apply with a tty only, as docker's.
        let keys = if o.tty {
            o.detach_keys.clone()
        } else {
            Vec::new()
        };
        let det = detached.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 32 * 1024];
            let mut input = std::io::stdin().lock();
            let mut esc = Escape::new(&keys);
            let mut out = Vec::with_capacity(buf.len());
            loop {
                match input.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        out.clear();
                        let done = esc.feed(&buf[..n], &mut out);
                        let Ok(mut s) = w.lock() else { return };
                        if !out.is_empty()
                            && proto::write_frame(&mut *s, proto::STDIN, &out).is_err()
                        {
                            return;
                        }
                        if done {
                            // The container's stdin stays open; our end of the stream goes.
                            det.store(true, std::sync::atomic::Ordering::SeqCst);
                            let _ = s.shutdown(std::net::Shutdown::Both);
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            if let Ok(mut s) = w.lock() {
                let _ = proto::write_frame(&mut *s, proto::STDIN_EOF, &[]);
            }
        });
    }

    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    loop {
        match proto::read_frame(&mut sock) {
            Ok(Some((proto::STDOUT, p))) => {
                let _ = out.write_all(&p);
                let _ = out.flush();
            }
            Ok(Some((proto::STDERR, p))) => {
                let _ = err.write_all(&p);
                let _ = err.flush();
            }
            Ok(Some((proto::EXIT, p))) => {
                let x: ExitInfo = serde_json::from_slice(&p).unwrap_or_default();
                return Ok(x.exit_code);
            }
            Ok(Some((proto::ERROR, p))) => {
                return Err(Error::Protocol(String::from_utf8_lossy(&p).into_owned()))
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    if detached.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(0);
    }
    // The monitor went away without an EXIT frame: the record decides.
    let s = status::current(layout, id)?;
    if status::is_running(&s) {
        return Err(Error::Protocol(format!(
            "lost the connection to the monitor of container {id}"
        )));
    }
    Ok(s.exit_code)
}
