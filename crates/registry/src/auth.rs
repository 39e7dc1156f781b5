//! Credentials in docker's config format, and `WWW-Authenticate` challenges.

use base64::Engine as _;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read credentials file {0}")]
    Read(PathBuf, #[source] std::io::Error),
    #[error("cannot write credentials file {0}")]
    Write(PathBuf, #[source] std::io::Error),
    #[error("malformed credentials file {0}")]
    Parse(PathBuf, #[source] serde_json::Error),
    #[error("malformed auth entry for {0} in {1}")]
    BadEntry(String, PathBuf),
    #[error("not logged in to {0}")]
    NotLoggedIn(String),
    #[error("credentials for {registry} are kept by credential helper {helper:?} ({file}), which berth does not support; use `berth login`")]
    CredHelper {
        registry: String,
        helper: String,
        file: PathBuf,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// Where berth keeps its own logins: `$BERTH_AUTH_FILE`, else `$XDG_CONFIG_HOME/berth/auth.json`,
/// else `~/.config/berth/auth.json`.
pub fn default_auth_file() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_AUTH_FILE") {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".config"));
    base.join("berth").join("auth.json")
}

/// docker's own file: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
pub fn docker_config_file() -> PathBuf {
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".docker"))
        .join("config.json")
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

/// Keys docker uses for a registry: `host`, `https://host`, and for docker.io the legacy URL.
fn keys_for(registry: &str) -> Vec<String> {
    let mut v = vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ];
    if registry == "docker.io" || registry == "registry-1.docker.io" {
        v.push("https://index.docker.io/v1/".into());
        v.push("index.docker.io".into());
    }
    v
}

fn read_json(path: &Path) -> Result<Option<Map<String, Value>>, AuthError> {
    match std::fs::read(path) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(Some(Map::new())),
        Ok(b) => match serde_json::from_slice::<Value>(&b) {
            Ok(Value::Object(m)) => Ok(Some(m)),
            Ok(_) => Err(AuthError::BadEntry("<root>".into(), path.to_path_buf())),
            Err(e) => Err(AuthError::Parse(path.to_path_buf(), e)),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AuthError::Read(path.to_path_buf(), e)),
    }
}

/// Looks `registry` up in one file.
pub fn lookup_in(path: &Path, registry: &str) -> Result<Option<Credentials>, AuthError> {
    let Some(doc) = read_json(path)? else {
        return Ok(None);
    };
    let helper = |h: &str| AuthError::CredHelper {
        registry: registry.to_string(),
        helper: h.to_string(),
        file: path.to_path_buf(),
    };
    if let Some(Value::Object(helpers)) = doc.get("credHelpers") {
        for key in keys_for(registry) {
            if let Some(Value::String(h)) = helpers.get(&key) {
                return Err(helper(h));
            }
        }
    }
    let Some(Value::Object(auths)) = doc.get("auths") else {
        return Ok(None);
    };
    let store = doc.get("credsStore").and_then(Value::as_str);
    for key in keys_for(registry) {
        let Some(entry) = auths.get(&key) else {
            continue;
        };
        let bad = || AuthError::BadEntry(key.clone(), path.to_path_buf());
        if let Some(Value::String(a)) = entry.get("auth") {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(a)
                .map_err(|_| bad())?;
            let s = String::from_utf8(raw).map_err(|_| bad())?;
            let (u, p) = s.split_once(':').ok_or_else(bad)?;
            return Ok(Some(Credentials {
                username: u.into(),
                password: p.into(),
            }));
        }
        if let (Some(Value::String(u)), Some(Value::String(p))) =
            (entry.get("username"), entry.get("password"))
        {
            return Ok(Some(Credentials {
                username: u.clone(),
                password: p.clone(),
            }));
        }
        // docker leaves `{}` here when a credential store holds the secret.
        if let Some(h) = store {
            return Err(helper(h));
        }
    }
    Ok(None)
}

/// Looks in berth's file first, then docker's.
pub fn lookup(authfile: Option<&Path>, registry: &str) -> Result<Option<Credentials>, AuthError> {
    let own = authfile
        .map(Path::to_path_buf)
        .unwrap_or_else(default_auth_file);
    if let Some(c) = lookup_in(&own, registry)? {
        return Ok(Some(c));
    }
    lookup_in(&docker_config_file(), registry)
}

/// Stores credentials (mode 0600, written to a temp file then renamed).
pub fn store(path: &Path, registry: &str, creds: &Credentials) -> Result<(), AuthError> {
    let mut doc = read_json(path)?.unwrap_or_default();
    let auths = doc
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(auths) = auths else {
        return Err(AuthError::BadEntry("auths".into(), path.to_path_buf()));
    };
    let enc = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", creds.username, creds.password));
    auths.insert(registry.to_string(), serde_json::json!({ "auth": enc }));
    write_doc(path, &doc)
}

/// Removes credentials for `registry` (under any of its key spellings).
pub fn remove(path: &Path, registry: &str) -> Result<(), AuthError> {
    let mut doc = read_json(path)?.unwrap_or_default();
    let mut removed = false;
    if let Some(Value::Object(auths)) = doc.get_mut("auths") {
        for k in keys_for(registry) {
            removed |= auths.remove(&k).is_some();
        }
    }
    if !removed {
        return Err(AuthError::NotLoggedIn(registry.to_string()));
    }
    write_doc(path, &doc)
}

fn write_doc(path: &Path, doc: &Map<String, Value>) -> Result<(), AuthError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let werr = |e| AuthError::Write(path.to_path_buf(), e);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(werr)?;
    let tmp = dir.join(format!(".auth.json.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(werr)?;
    let body = serde_json::to_vec_pretty(doc).expect("json map serialises");
    f.write_all(&body)
        .and_then(|_| f.sync_all())
        .map_err(werr)?;
    std::fs::rename(&tmp, path).map_err(werr)
}

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Bearer realm="...",service="...",scope="..."` or `Basic realm="..."`.
pub fn parse_challenge(h: &str) -> Option<Challenge> {
    let h = h.trim();
    let (scheme, rest) = h.split_once(char::is_whitespace).unwrap_or((h, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    Some(Challenge::Bearer {
        realm: get("realm")?,
        service: get("service"),
        scope: get("scope"),
    })
}

fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => val.extend(chars.next()),
                    '"' => break,
                    c => val.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                val.push(*c);
                chars.next();
            }
        }
        out.push((key.trim().to_string(), val.trim().to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull,push".into()),
            }
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn store_lookup_remove() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("a/auth.json");
        let c = Credentials {
            username: "u".into(),
            password: "p:w".into(),
        };
        store(&f, "127.0.0.1:5000", &c).unwrap();
        assert_eq!(lookup_in(&f, "127.0.0.1:5000").unwrap(), Some(c));
        let raw: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        assert_eq!(raw["auths"]["127.0.0.1:5000"]["auth"], "dTpwOnc=");
        remove(&f, "127.0.0.1:5000").unwrap();
        assert_eq!(lookup_in(&f, "127.0.0.1:5000").unwrap(), None);
        assert!(matches!(
            remove(&f, "127.0.0.1:5000"),
            Err(AuthError::NotLoggedIn(_))
        ));
    }

    #[test]
    fn credential_helpers_are_a_clear_error() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("config.json");
        std::fs::write(
            &f,
            r#"{"credHelpers":{"gcr.io":"gcloud"},"credsStore":"desktop","auths":{"q.io":{}}}"#,
        )
        .unwrap();
        assert!(matches!(
            lookup_in(&f, "gcr.io"),
            Err(AuthError::CredHelper { .. })
        ));
        assert!(matches!(
            lookup_in(&f, "q.io"),
            Err(AuthError::CredHelper { .. })
        ));
        assert_eq!(lookup_in(&f, "other.io").unwrap(), None);
    }

    #[test]
    fn docker_style_https_key() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("config.json");
        std::fs::write(
            &f,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"YTpi"}}}"#,
        )
        .unwrap();
        assert_eq!(lookup_in(&f, "docker.io").unwrap().unwrap().username, "a");
    }
}
