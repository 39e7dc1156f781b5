//! On-disk cache of compiled filters, keyed by sha256 of the canonical profile JSON,
//! the target ABI, the options and the compiler version.

use std::io::Write;
use std::path::Path;

use oci_spec::runtime::LinuxSeccomp;
use sha2::{Digest, Sha256};

use crate::compile::{compile_with, Options};
use crate::{Error, Program, SockFilter};

/// Bumped whenever the generated code may change for the same input.
/// Bump the suffix whenever the output for a profile changes (tables, code shape).
pub const COMPILER_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "+bpf-2-linux-6.17");
const MAGIC: &[u8; 10] = b"BERTHBPF1\n";

/// How [`compile_cached_with`] got its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    Miss,
    /// An entry existed but did not verify; it was recompiled and rewritten.
    Corrupt,
}

/// [`compile_with`] with the runtime's defaults, through the cache in `cache_dir`
/// (created if missing).
pub fn compile_cached(profile: &LinuxSeccomp, cache_dir: &Path) -> Result<Program, Error> {
    compile_cached_with(profile, &Options::default(), cache_dir).map(|r| r.0)
}

pub fn compile_cached_with(
    profile: &LinuxSeccomp,
    opts: &Options,
    cache_dir: &Path,
) -> Result<(Program, CacheStatus), Error> {
    let key = cache_key(profile, opts);
    let path = cache_dir.join(format!("{key}.bpf"));
    let status = match std::fs::read(&path) {
        Ok(bytes) => match decode(&bytes) {
            Some(p) => return Ok((p, CacheStatus::Hit)),
            None => CacheStatus::Corrupt,
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => CacheStatus::Miss,
        // Unreadable entries are rewritten like corrupt ones.
        Err(_) => CacheStatus::Corrupt,
    };
    let prog = compile_with(profile, opts)?;
    let cache_err = |source| Error::Cache {
        path: cache_dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(cache_dir).map_err(cache_err)?;
    let mut tmp = tempfile::NamedTempFile::new_in(cache_dir).map_err(cache_err)?;
    tmp.write_all(&encode(&prog)).map_err(cache_err)?;
    tmp.as_file().sync_all().map_err(cache_err)?;
    tmp.persist(&path).map_err(|e| Error::Cache {
        path: path.clone(),
        source: e.error,
    })?;
    Ok((prog, status))
}

fn cache_key(profile: &LinuxSeccomp, opts: &Options) -> String {
    let mut h = Sha256::new();
    // serde_json writes struct fields in declaration order: canonical for a given oci-spec.
    h.update(serde_json::to_vec(profile).expect("LinuxSeccomp always serializes"));
    h.update(b"\0");
    h.update(opts.native.oci_name());
    h.update(if opts.enosys {
        b"\0enosys\0"
    } else {
        b"\0plain\0\0"
    });
    h.update(COMPILER_VERSION);
    hex::encode(h.finalize())
}

fn encode(p: &Program) -> Vec<u8> {
    let mut b = MAGIC.to_vec();
    b.extend(p.flags.to_le_bytes());
    b.extend(p.optional_flags.to_le_bytes());
    b.push(p.notify as u8);
    b.extend((p.actions.len() as u32).to_le_bytes());
    for a in &p.actions {
        b.extend(a.to_le_bytes());
    }
    b.extend((p.filter.len() as u32).to_le_bytes());
    for i in &p.filter {
        b.extend(i.code.to_le_bytes());
        b.push(i.jt);
        b.push(i.jf);
        b.extend(i.k.to_le_bytes());
    }
    let sum = Sha256::digest(&b);
    b.extend(sum);
    b
}

fn decode(b: &[u8]) -> Option<Program> {
    let (body, sum) = b.split_at(b.len().checked_sub(32)?);
    if Sha256::digest(body).as_slice() != sum {
        return None;
    }
    let mut r = body.strip_prefix(MAGIC.as_slice())?;
    let u32_ = |r: &mut &[u8]| -> Option<u32> {
        let (v, rest) = r.split_first_chunk::<4>()?;
        *r = rest;
        Some(u32::from_le_bytes(*v))
    };
    let flags = u32_(&mut r)?;
    let optional_flags = u32_(&mut r)?;
    let (&notify, rest) = r.split_first()?;
    r = rest;
    let n = u32_(&mut r)? as usize;
    let actions = (0..n).map(|_| u32_(&mut r)).collect::<Option<Vec<_>>>()?;
    let n = u32_(&mut r)? as usize;
    if r.len() != n * 8 {
        return None;
    }
    let filter: Vec<SockFilter> = r
        .chunks_exact(8)
        .map(|c| SockFilter {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    // A checksum collision with a broken program is not plausible, but never hand the
    // kernel something it would reject.
    crate::bpf::check(&filter).ok()?;
    Some(Program {
        filter,
        flags,
        optional_flags,
        notify: notify != 0,
        actions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxSeccompAction, LinuxSeccompBuilder, LinuxSyscallBuilder};

    fn profile(name: &str) -> LinuxSeccomp {
        LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActErrno)
            .syscalls(vec![LinuxSyscallBuilder::default()
                .names(vec![name.to_string()])
                .action(LinuxSeccompAction::ScmpActAllow)
                .build()
                .unwrap()])
            .build()
            .unwrap()
    }

    #[test]
    fn miss_then_hit_with_the_same_program() {
        let dir = tempfile::tempdir().unwrap();
        let o = Options::default();
        let (a, s1) = compile_cached_with(&profile("read"), &o, dir.path()).unwrap();
        let (b, s2) = compile_cached_with(&profile("read"), &o, dir.path()).unwrap();
        assert_eq!((s1, s2), (CacheStatus::Miss, CacheStatus::Hit));
        assert_eq!(a, b);
        assert_eq!(a, compile_with(&profile("read"), &o).unwrap());
        // A different profile or ABI is a different entry.
        let (_, s3) = compile_cached_with(&profile("write"), &o, dir.path()).unwrap();
        assert_eq!(s3, CacheStatus::Miss);
        let o2 = Options {
            native: crate::Abi::Aarch64,
            ..o
        };
        let (_, s4) = compile_cached_with(&profile("read"), &o2, dir.path()).unwrap();
        assert_eq!(s4, CacheStatus::Miss);
        // Only final entries remain, no temp files.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names.iter().all(|n| n.to_string_lossy().ends_with(".bpf")));
    }

    #[test]
    fn corrupt_entries_are_ignored_and_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let o = Options::default();
        let (good, _) = compile_cached_with(&profile("read"), &o, dir.path()).unwrap();
        let entry = std::fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let orig = std::fs::read(&entry).unwrap();
        let mut variants = vec![
            Vec::new(),
            orig[..orig.len() / 2].to_vec(),
            b"garbage".to_vec(),
        ];
        for i in [0, 12, orig.len() / 2, orig.len() - 1] {
            let mut v = orig.clone();
            v[i] ^= 0x40;
            variants.push(v);
        }
        for bad in variants {
            std::fs::write(&entry, &bad).unwrap();
            let (p, s) = compile_cached_with(&profile("read"), &o, dir.path()).unwrap();
            assert_eq!(s, CacheStatus::Corrupt);
            assert_eq!(p, good);
            assert_eq!(std::fs::read(&entry).unwrap(), orig, "entry rewritten");
            let (_, s) = compile_cached_with(&profile("read"), &o, dir.path()).unwrap();
            assert_eq!(s, CacheStatus::Hit);
        }
    }

    #[test]
    fn creates_the_cache_dir() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        compile_cached(&profile("read"), &sub).unwrap();
        assert_eq!(std::fs::read_dir(&sub).unwrap().count(), 1);
    }

    #[test]
    fn unwritable_cache_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let err = compile_cached(&profile("read"), &file).unwrap_err();
        assert!(matches!(err, Error::Cache { .. }), "{err:?}");
        assert!(err.to_string().contains("file"));
    }
}
