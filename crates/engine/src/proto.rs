//! The monitor's socket protocol (`R/engine/containers/<id>/attach`, a unix stream socket).
//!
//! Every message is a frame: `[kind: u8][len: u32 big-endian][payload: len bytes]`.
//! A client opens a connection and sends one `REQUEST` frame whose payload is a JSON
//! [`Request`]. Then:
//!
//! ```text
//!  client                                   monitor
//!  REQUEST {"attach":{stdin,..}}  ───────▶  (first attach releases `runtime start` when the
//!                                            monitor was started with --attach-wait)
//!                                 ◀───────  STDOUT / STDERR frames (a tty's output is STDOUT)
//!  STDIN / RESIZE / STDIN_EOF     ───────▶
//!                                 ◀───────  EXIT {"exitCode":N,"oomKilled":b}, then close
//!
//!  REQUEST {"stop":{signal,timeout}} ────▶  signal, wait timeout, SIGKILL; no restart after
//!                                 ◀───────  EXIT ..., then close
//!  REQUEST {"kill":{signal}}      ───────▶  signal (no restart after, as docker's kill)
//!                                 ◀───────  OK, then close
//!  REQUEST "wait"                 ───────▶
//!                                 ◀───────  EXIT ... when the container exits (next exit)
//!  REQUEST "start"                ───────▶  releases an --attach-wait start as an attach does
//!                                 ◀───────  OK once the process runs (at once if it did
//!                                            already), ERROR with the runtime's message
//! ```
//! Errors come back as one `ERROR` frame carrying the message, then close.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const EXIT: u8 = 3;
pub const ERROR: u8 = 4;
pub const OK: u8 = 5;
pub const RESIZE: u8 = 6;
pub const STDIN_EOF: u8 = 7;
pub const REQUEST: u8 = 8;

/// Largest payload accepted (a client cannot make the monitor allocate more).
pub const MAX_FRAME: u32 = 1 << 20;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub enum Request {
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    Stop {
        signal: i32,
        timeout_secs: i64,
        /// `rm -f`: the monitor removes the container itself at its exit, as it does a
        /// `--rm` one (nothing waits for the disk; the trees go after the EXIT frame).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        removing: bool,
        /// With `removing`: its anonymous volumes too (`rm -f -v`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        remove_volumes: bool,
    },
    Kill {
        signal: i32,
    },
    Wait,
    /// Release a start held for a client (`--attach-wait`) and answer once it has started:
    /// a start through the API returns only when the container runs, as dockerd's does.
    Start,
    /// Freeze (true) or thaw (false) the container's processes.
    Pause(bool),
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExitInfo {
    pub exit_code: i32,
    pub oom_killed: bool,
}

pub fn write_frame(w: &mut impl Write, kind: u8, payload: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|l| *l <= MAX_FRAME)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame too big"))?;
    let mut buf = Vec::with_capacity(5 + payload.len());
    buf.push(kind);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(payload);
    w.write_all(&buf)
}

/// Reads one frame; Ok(None) at a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut hdr = [0u8; 5];
    match r.read_exact(&mut hdr) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]);
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes"),
        ));
    }
    let mut p = vec![0u8; len as usize];
    r.read_exact(&mut p)?;
    Ok(Some((hdr[0], p)))
}

pub fn send_request(s: &mut UnixStream, req: &Request) -> std::io::Result<()> {
    write_frame(
        s,
        REQUEST,
        &serde_json::to_vec(req).expect("requests serialise"),
    )
}

pub fn resize_payload(rows: u16, cols: u16) -> [u8; 4] {
    let (r, c) = (rows.to_be_bytes(), cols.to_be_bytes());
    [r[0], r[1], c[0], c[1]]
}

pub fn parse_resize(p: &[u8]) -> Option<(u16, u16)> {
    (p.len() == 4).then(|| {
        (
            u16::from_be_bytes([p[0], p[1]]),
            u16::from_be_bytes([p[2], p[3]]),
        )
    })
}

/// `sun_path` holds 108 bytes; storage roots can be deeper. Go through an O_PATH fd of
/// the directory so the socket path is always short.
fn short_path<T>(p: &Path, f: impl FnOnce(&Path) -> std::io::Result<T>) -> Result<T> {
    let dir = p.parent().unwrap_or(Path::new("/"));
    let name = p
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("socket path {}", p.display())))?;
    let d = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(dir)
        .map_err(|e| Error::io(dir, e))?;
    let short = Path::new("/proc/self/fd")
        .join(d.as_raw_fd().to_string())
        .join(name);
    f(&short).map_err(|e| Error::io(p, e))
}

use std::os::unix::fs::OpenOptionsExt;

/// Connects to the monitor socket at `p`.
pub fn connect(p: &Path) -> Result<UnixStream> {
    short_path(p, |s| UnixStream::connect(s))
}

/// Binds the monitor socket at `p` (removing a stale one first).
pub fn bind(p: &Path) -> Result<UnixListener> {
    let _ = std::fs::remove_file(p);
    short_path(p, |s| UnixListener::bind(s))
}

/// Receives one fd sent with SCM_RIGHTS on `sock` (a runtime's `--console-socket`
/// sends the pty master this way); it arrives close-on-exec.
pub fn recv_fd(sock: std::os::fd::BorrowedFd<'_>) -> std::io::Result<std::os::fd::OwnedFd> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    let mut buf = [0u8; 4096];
    let r = rustix::net::recvmsg(
        sock,
        &mut [std::io::IoSliceMut::new(&mut buf)],
        &mut anc,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    for m in anc.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = m {
            if let Some(fd) = fds.next() {
                return Ok(fd);
            }
        }
    }
    Err(std::io::Error::new(
        if r.bytes == 0 {
            std::io::ErrorKind::UnexpectedEof
        } else {
            std::io::ErrorKind::InvalidData
        },
        "no fd arrived on the console socket",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut b = Vec::new();
        write_frame(&mut b, STDOUT, b"hello").unwrap();
        write_frame(&mut b, EXIT, b"").unwrap();
        let mut r = &b[..];
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Some((STDOUT, b"hello".to_vec()))
        );
        assert_eq!(read_frame(&mut r).unwrap(), Some((EXIT, vec![])));
        assert_eq!(read_frame(&mut r).unwrap(), None);
        let big = [9u8, 0xff, 0xff, 0xff, 0xff];
        assert!(read_frame(&mut &big[..]).is_err());
        assert_eq!(parse_resize(&resize_payload(24, 80)), Some((24, 80)));
    }

    #[test]
    fn long_socket_path() {
        let d = tempfile::tempdir().unwrap();
        let deep = d.path().join("x".repeat(100)).join("y".repeat(100));
        std::fs::create_dir_all(&deep).unwrap();
        let p = deep.join("attach");
        let l = bind(&p).unwrap();
        let mut c = connect(&p).unwrap();
        send_request(&mut c, &Request::Wait).unwrap();
        let (mut s, _) = l.accept().unwrap();
        let (k, body) = read_frame(&mut s).unwrap().unwrap();
        assert_eq!(k, REQUEST);
        assert_eq!(
            serde_json::from_slice::<Request>(&body).unwrap(),
            Request::Wait
        );
    }
}
