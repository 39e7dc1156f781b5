//! docker's json-file log: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2026-01-02T03:04:05.123456789Z"}`.
//!
//! The monitor writes it with [`LogWriter`] (one entry per line of each chunk read from the
//! container; a chunk's unterminated tail is an entry without "\n", as docker's partial
//! messages). With a size limit the file rotates: `<id>-json.log` -> `.1` -> `.2` ..., keeping
//! `max_file` files in all (docker's max-size / max-file).
//!
//! `berth logs` reads it with [`read`] (every rotated file, oldest first, then the current
//! one), and `logs -f` with [`read_then_follow`]: the entries so far plus a [`Follower`]
//! positioned right after them; call [`Follower::poll`] until the container has stopped
//! (then poll once more to get the last lines). The follower notices rotation (the path
//! names a new file) and finishes the old file before switching.

use crate::error::{Error, Result};
use crate::options::LogOptions;
use crate::record::{parse_rfc3339, rfc3339};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogEntry {
    pub log: String,
    /// "stdout" or "stderr"
    pub stream: String,
    /// RFC 3339 with nanoseconds, UTC.
    pub time: String,
}

/// Appends entries to a json-file log, rotating it by size.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: Option<u64>,
    max_file: u32,
    line: Vec<u8>,
    /// --log-driver none: nothing is written.
    discard: bool,
}

fn open_append(p: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW)
        .open(p)
        .map_err(|e| Error::io(p, e))
}

fn rotated(p: &Path, n: u32) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl LogWriter {
    pub fn open(path: &Path, opts: &LogOptions) -> Result<LogWriter> {
        let discard = opts.driver == crate::options::LogDriver::None;
        // none: no file at all (/dev/null keeps the writer's shape).
        let file = if discard {
            File::options()
                .append(true)
                .open("/dev/null")
                .map_err(|e| Error::io("/dev/null", e))?
        } else {
            open_append(path)?
        };
        let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size,
            max_size: opts.max_size.filter(|s| *s > 0),
            max_file: opts.max_file.unwrap_or(1).max(1),
            line: Vec::with_capacity(256),
            discard,
        })
    }

    /// Writes `data` read from `stream` at time `t`: one entry per line, in one write
    /// unless the file rotates in between.
    pub fn write(&mut self, stream: &str, data: &[u8], t: SystemTime) -> Result<()> {
        if self.discard {
            return Ok(());
        }
        let time = rfc3339(t);
        self.line.clear();
        for piece in data.split_inclusive(|b| *b == b'\n') {
            let start = self.line.len();
            let e = LogEntry {
                log: String::from_utf8_lossy(piece).into_owned(),
                stream: stream.to_string(),
                time: time.clone(),
            };
            serde_json::to_writer(&mut self.line, &e).expect("log entries serialise");
            self.line.push(b'\n');
            if let Some(max) = self.max_size {
                if self.size + start as u64 > 0 && self.size + self.line.len() as u64 > max {
                    // Flush what fits, rotate, keep this entry for the new file.
                    let rest = self.line.split_off(start);
                    self.flush()?;
                    if self.size > 0 {
                        self.rotate()?;
                    }
                    self.line = rest;
                }
            }
        }
        self.flush()
    }

    fn flush(&mut self) -> Result<()> {
        self.file
            .write_all(&self.line)
            .map_err(|e| Error::io(&self.path, e))?;
        self.size += self.line.len() as u64;
        self.line.clear();
        Ok(())
    }

    fn rotate(&mut self) -> Result<()> {
        if self.max_file <= 1 {
            self.file.set_len(0).map_err(|e| Error::io(&self.path, e))?;
            self.size = 0;
            return Ok(());
        }
        let _ = std::fs::remove_file(rotated(&self.path, self.max_file - 1));
        for n in (1..self.max_file - 1).rev() {
            let from = rotated(&self.path, n);
            match std::fs::rename(&from, rotated(&self.path, n + 1)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(from, e)),
            }
        }
        let one = rotated(&self.path, 1);
        std::fs::rename(&self.path, &one).map_err(|e| Error::io(&one, e))?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// The log files of `current`, oldest first (`.N` ... `.1`, then `current`), those that exist.
pub fn files(current: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut n = 1;
    loop {
        let p = rotated(current, n);
        if !p.exists() {
            break;
        }
        v.push(p);
        n += 1;
    }
    v.reverse();
    if current.exists() {
        v.push(current.to_path_buf());
    }
    v
}

/// Entries of every log file of `current` (oldest first), those at or after `since` and
/// before `until`, then the last `tail` of them. A missing log is empty.
pub fn read(
    current: &Path,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
    tail: Option<usize>,
) -> Result<Vec<LogEntry>> {
    Ok(read_then_follow(current, since, until, tail)?.0)
}

/// As [`read`], and a follower that continues right after the last line read.
pub fn read_then_follow(
    current: &Path,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
    tail: Option<usize>,
) -> Result<(Vec<LogEntry>, Follower)> {
    // Open the current file first: what rotates away meanwhile is then in `.1` and read
    // twice at worst, never lost.
    let mut fol = Follower::open(current)?;
    let mut out = Vec::new();
    let keep = |e: &LogEntry| {
        let t = parse_rfc3339(&e.time);
        since.is_none_or(|s| t.is_some_and(|t| t >= s))
            && until.is_none_or(|u| t.is_some_and(|t| t < u))
    };
    for p in files(current) {
        if p == current {
            break;
        }
        let b = match std::fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(p, e)),
        };
        out.extend(parse_lines(&b).0.into_iter().filter(|e| keep(e)));
    }
    out.extend(fol.poll()?.into_iter().filter(|e| keep(e)));
    if let Some(n) = tail {
        let skip = out.len().saturating_sub(n);
        out.drain(..skip);
    }
    Ok((out, fol))
}

/// Complete lines of `b` as entries (lines that do not parse are skipped) and how many
/// bytes they took.
fn parse_lines(b: &[u8]) -> (Vec<LogEntry>, usize) {
    let mut v = Vec::new();
    let mut used = 0;
    while let Some(nl) = b[used..].iter().position(|c| *c == b'\n') {
        if let Ok(e) = serde_json::from_slice(&b[used..used + nl]) {
            v.push(e);
        }
        used += nl + 1;
    }
    (v, used)
}

/// Reads new entries of a log as they are written, across rotation.
pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    ino: u64,
    buf: Vec<u8>,
}

impl Follower {
    /// A follower at the start of the current file (which need not exist yet).
    pub fn open(path: &Path) -> Result<Follower> {
        let mut f = Follower {
            path: path.to_path_buf(),
            file: None,
            ino: 0,
            buf: Vec::new(),
        };
        f.reopen()?;
        Ok(f)
    }

    fn reopen(&mut self) -> Result<bool> {
        match File::open(&self.path) {
            Ok(f) => {
                self.ino = f.metadata().map_err(|e| Error::io(&self.path, e))?.ino();
                self.file = Some(f);
                self.buf.clear();
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(&self.path, e)),
        }
    }

    fn drain(&mut self, out: &mut Vec<LogEntry>) -> Result<()> {
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        // A file truncated in place (max-file 1) starts over.
        let pos = f.stream_position().map_err(|e| Error::io(&self.path, e))?;
        let len = f.metadata().map_err(|e| Error::io(&self.path, e))?.len();
        if len < pos {
            f.seek(SeekFrom::Start(0))
                .map_err(|e| Error::io(&self.path, e))?;
            self.buf.clear();
        }
        f.read_to_end(&mut self.buf)
            .map_err(|e| Error::io(&self.path, e))?;
        let (v, used) = parse_lines(&self.buf);
        self.buf.drain(..used);
        out.extend(v);
        Ok(())
    }

    /// Entries written since the last call.
    pub fn poll(&mut self) -> Result<Vec<LogEntry>> {
        let mut out = Vec::new();
        self.drain(&mut out)?;
        let now = std::fs::metadata(&self.path).ok().map(|m| m.ino());
        if self.file.is_none() || now.is_some_and(|i| i != self.ino) {
            // Rotated (or created): the old file is complete now; read its rest, switch.
            self.drain(&mut out)?;
            if self.reopen()? {
                self.drain(&mut out)?;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(s: u64) -> SystemTime {
        std::time::UNIX_EPOCH + Duration::from_secs(1_795_000_000 + s)
    }

    #[test]
    fn lines_and_partial_tail() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c-json.log");
        let mut w = LogWriter::open(&p, &LogOptions::default()).unwrap();
        w.write("stdout", b"one\ntwo\nthr", at(0)).unwrap();
        w.write("stderr", b"ee\n", at(1)).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            text.lines().next().unwrap(),
            r#"{"log":"one\n","stream":"stdout","time":"2026-11-18T11:06:40.000000000Z"}"#
        );
        let v = read(&p, None, None, None).unwrap();
        let logs: Vec<_> = v
            .iter()
            .map(|e| (e.stream.as_str(), e.log.as_str()))
            .collect();
        assert_eq!(
            logs,
            [
                ("stdout", "one\n"),
                ("stdout", "two\n"),
                ("stdout", "thr"),
                ("stderr", "ee\n")
            ]
        );
        assert_eq!(read(&p, None, None, Some(1)).unwrap()[0].log, "ee\n");
        assert_eq!(read(&p, Some(at(1)), None, None).unwrap().len(), 1);
        assert_eq!(read(&p, None, Some(at(1)), None).unwrap().len(), 3);
        assert!(read(&d.path().join("none"), None, None, None)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn rotation_keeps_max_file_and_reads_oldest_first() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c-json.log");
        let opts = LogOptions {
            max_size: Some(200),
            max_file: Some(3),
            ..Default::default()
        };
        let mut w = LogWriter::open(&p, &opts).unwrap();
        for i in 0..20 {
            w.write("stdout", format!("line {i:02}\n").as_bytes(), at(i))
                .unwrap();
        }
        assert!(rotated(&p, 2).exists());
        assert!(!rotated(&p, 3).exists());
        for f in files(&p) {
            assert!(std::fs::metadata(&f).unwrap().len() <= 200);
        }
        let v = read(&p, None, None, None).unwrap();
        assert_eq!(v.last().unwrap().log, "line 19\n");
        let nums: Vec<u32> = v.iter().map(|e| e.log[5..7].parse().unwrap()).collect();
        assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
        assert!(nums[0] > 0, "the oldest lines rotated away");
    }

    #[test]
    fn rotation_inside_one_chunk() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c-json.log");
        let opts = LogOptions {
            max_size: Some(200),
            max_file: Some(10),
            ..Default::default()
        };
        let mut w = LogWriter::open(&p, &opts).unwrap();
        let chunk: String = (0..12).map(|i| format!("line {i:02}\n")).collect();
        w.write("stdout", chunk.as_bytes(), at(0)).unwrap();
        for f in files(&p) {
            assert!(std::fs::metadata(&f).unwrap().len() <= 200);
        }
        let v = read(&p, None, None, None).unwrap();
        let all: String = v.iter().map(|e| e.log.as_str()).collect();
        assert_eq!(all, chunk);
    }

    #[test]
    fn max_file_one_truncates() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c-json.log");
        let opts = LogOptions {
            max_size: Some(100),
            max_file: None,
            ..Default::default()
        };
        let mut w = LogWriter::open(&p, &opts).unwrap();
        for i in 0..10 {
            w.write("stdout", format!("l{i}\n").as_bytes(), at(i))
                .unwrap();
        }
        assert!(!rotated(&p, 1).exists());
        assert!(std::fs::metadata(&p).unwrap().len() <= 100);
        assert_eq!(
            read(&p, None, None, None).unwrap().last().unwrap().log,
            "l9\n"
        );
    }

    #[test]
    fn follow_across_rotation() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c-json.log");
        let opts = LogOptions {
            max_size: Some(150),
            max_file: Some(2),
            ..Default::default()
        };
        let mut w = LogWriter::open(&p, &opts).unwrap();
        w.write("stdout", b"a\n", at(0)).unwrap();
        let (first, mut f) = read_then_follow(&p, None, None, None).unwrap();
        assert_eq!(first.len(), 1);
        assert!(f.poll().unwrap().is_empty());
        let mut seen = Vec::new();
        for i in 0..6 {
            w.write("stdout", format!("n{i}\n").as_bytes(), at(i))
                .unwrap();
            seen.extend(f.poll().unwrap().into_iter().map(|e| e.log));
        }
        assert!(rotated(&p, 1).exists());
        assert_eq!(seen, ["n0\n", "n1\n", "n2\n", "n3\n", "n4\n", "n5\n"]);
    }
}
