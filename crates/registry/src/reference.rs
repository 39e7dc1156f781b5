//! Image references in docker's normalised form (`docker.io/library/busybox:latest`).

use std::fmt;

/// Registry used when a reference names no host.
pub const DEFAULT_REGISTRY: &str = "docker.io";

#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid image reference {0:?}: {1}")]
    Invalid(String, &'static str),
}

/// A parsed image reference. At least one of `tag` and `digest` is set after parsing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    /// Parses `[host[:port]/]path[:tag][@digest]`, defaulting to docker.io and `latest`.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let bad = |why| ReferenceError::Invalid(s.to_string(), why);
        if s.is_empty() || s.len() > 4096 {
            return Err(bad("empty or too long"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                validate_digest(d).map_err(|_| bad("bad digest"))?;
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        // A tag is a ':' after the last '/'.
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_string())),
            _ => (rest, None),
        };
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
                && !t.starts_with(['.', '-']);
            if !ok {
                return Err(bad("bad tag"));
            }
        }
        let (registry, mut repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        if repository.is_empty()
            || repository.split('/').any(|c| {
                c.is_empty()
                    || !c.chars().all(|ch| {
                        ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch)
                    })
                    || c == "."
                    || c == ".."
            })
        {
            // docker's two messages: only an upper-case letter is "must be lowercase".
            let upper = repository.chars().any(|c| c.is_ascii_uppercase())
                && repository
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c));
            return Err(bad(if upper {
                "repository name must be lowercase"
            } else {
                "invalid reference format"
            }));
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What to ask the registry for: the digest if pinned, else the tag.
    pub fn target(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The host to talk to (docker.io's API lives elsewhere).
    pub fn api_host(&self) -> &str {
        if self.registry == DEFAULT_REGISTRY {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// Same repository with a different tag.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// Same repository pinned to a digest.
    pub fn with_digest(&self, digest: &str) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Accepts only `sha256:<64 lowercase hex>` (what we can verify).
pub fn validate_digest(d: &str) -> Result<&str, ReferenceError> {
    let hex = d.strip_prefix("sha256:").ok_or_else(|| {
        ReferenceError::Invalid(d.to_string(), "only sha256 digests are supported")
    })?;
    if hex.len() != 64
        || !hex
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    {
        return Err(ReferenceError::Invalid(
            d.to_string(),
            "digest must be 64 lowercase hex digits",
        ));
    }
    Ok(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_docker_hub() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(r.api_host(), "registry-1.docker.io");
    }

    #[test]
    fn host_with_port_and_digest() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("127.0.0.1:5000/a/b:v1@{d}")).unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "a/b");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.target(), d);
        let r = Reference::parse("localhost:5000/x").unwrap();
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.tag.as_deref(), Some("latest"));
    }

    #[test]
    fn errors_say_what_docker_says() {
        let msg = |s: &str| Reference::parse(s).unwrap_err().to_string();
        assert!(
            msg("bb:lat:est").ends_with("invalid reference format"),
            "{}",
            msg("bb:lat:est")
        );
        assert!(msg("UPPER/case").ends_with("repository name must be lowercase"));
        assert!(msg("a//b").ends_with("invalid reference format"));
    }

    #[test]
    fn rejects_bad() {
        for s in ["", "UPPER/x", "a/../b", "x:", "x@sha256:zz", "a//b", "x:-t"] {
            assert!(Reference::parse(s).is_err(), "{s}");
        }
    }
}
