//! ADD of a URL: the file fetched over HTTP(S) (the caller's proxy settings apply),
//! hashed on the way and checked against `--checksum`, written 0600 as docker does,
//! its mtime from `Last-Modified`. Never unpacked.

use crate::error::{BuildError, Result};
use sha2::{Digest as _, Sha256};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Most bytes one URL may bring.
const MAX_BYTES: u64 = 16 << 30;

/// Whether an ADD source is a URL (docker: http:// or https://).
pub fn is_url(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://")
}

/// The file name docker gives a URL's download: its last path element.
pub fn file_name(url: &str) -> std::result::Result<String, String> {
    let u = reqwest::Url::parse(url).map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    u.path_segments()
        .and_then(|mut s| s.next_back().map(str::to_string))
        .filter(|n| !n.is_empty() && n != "." && n != "..")
        .ok_or_else(|| {
            format!("cannot determine filename from url: {url}: give the destination file name")
        })
}

/// Fetches `url` into `dir/name`; returns the file's sha256 digest. `checksum`
/// (`sha256:HEX`) must match when given.
pub fn fetch(url: &str, dir: &Path, name: &str, checksum: Option<&str>) -> Result<PathBuf> {
    if let Some(c) = checksum {
        let ok = c
            .strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.chars().all(|x| x.is_ascii_hexdigit()));
        if !ok {
            return Err(BuildError::Invalid(format!(
                "invalid checksum {c:?}: want sha256:<64 hex digits>"
            )));
        }
    }
    let path = dir.join(name);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| BuildError::Io(path.clone(), e))?;
    let err = |m: String| BuildError::Invalid(format!("failed to fetch {url}: {m}"));
    let (digest, modified) = rt.block_on(async {
        let client = reqwest::Client::builder()
            .build()
            .map_err(|e| err(e.to_string()))?;
        let mut resp = client
            .get(url)
            .send()
            .await
            .map_err(|e| err(berth_engine::error::chain(&e)))?;
        if !resp.status().is_success() {
            return Err(err(format!("HTTP {}", resp.status())));
        }
        let modified = resp
            .headers()
            .get(reqwest::header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_http_date);
        let mut f =
            std::fs::File::create_new(&path).map_err(|e| BuildError::Io(path.clone(), e))?;
        let mut h = Sha256::new();
        let mut n = 0u64;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| err(berth_engine::error::chain(&e)))?
        {
            n += chunk.len() as u64;
            if n > MAX_BYTES {
                return Err(err(format!("more than {MAX_BYTES} bytes")));
            }
            h.update(&chunk);
            f.write_all(&chunk)
                .map_err(|e| BuildError::Io(path.clone(), e))?;
        }
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| BuildError::Io(path.clone(), e))?;
        if let Some(t) = modified {
            let _ = f.set_modified(t);
        }
        Ok((format!("sha256:{}", hex::encode(h.finalize())), modified))
    })?;
    let _ = modified;
    if let Some(c) = checksum {
        if !c.eq_ignore_ascii_case(&digest) {
            return Err(BuildError::Invalid(format!(
                "digest mismatch for {url}: want {c}, got {digest}"
            )));
        }
    }
    Ok(path)
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 7231's preferred form).
fn parse_http_date(s: &str) -> Option<std::time::SystemTime> {
    let p: Vec<&str> = s.split_whitespace().collect();
    if p.len() != 6 || p[5] != "GMT" {
        return None;
    }
    let day: i64 = p[1].parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == p[2])? as i64
        + 1;
    let year: i64 = p[3].parse().ok()?;
    let t: Vec<i64> = p[4].split(':').filter_map(|x| x.parse().ok()).collect();
    if t.len() != 3 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + t[0] * 3600 + t[1] * 60 + t[2];
    u64::try_from(secs)
        .ok()
        .map(|s| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_dates() {
        assert_eq!(file_name("http://h/a/b.tar.gz?x=1").unwrap(), "b.tar.gz");
        assert!(file_name("http://h/").is_err());
        let t = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
            784111777
        );
        assert!(parse_http_date("yesterday").is_none());
        assert!(is_url("HTTPS://x/y") && !is_url("git@x:y"));
    }
}
