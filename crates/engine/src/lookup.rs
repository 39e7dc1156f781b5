//! A user's container reference (full ID, unique ID prefix, or name) -> the container ID.
//! Like docker, an exact ID wins, then an exact name, then a unique ID prefix.

use crate::error::{Error, Result};
use crate::layout::Layout;

/// True for 64 lowercase hex characters.
pub fn is_full_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The ID a name link points to, if the name exists.
pub fn id_of_name(layout: &Layout, name: &str) -> Option<String> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return None;
    }
    let t = std::fs::read_link(layout.names_dir().join(name)).ok()?;
    let id = t.to_str()?.to_string();
    is_full_id(&id).then_some(id)
}

/// Resolves `reference` to a container ID; docker's errors for none or many. A container
/// whose records are half-made or unreadable resolves too (so `rm -f` can remove it).
pub fn resolve(layout: &Layout, reference: &str) -> Result<String> {
    // docker accepts names with their leading slash ("/web").
    let r = reference.strip_prefix('/').unwrap_or(reference);
    if r.is_empty() {
        return Err(Error::NoSuchContainer(reference.to_string()));
    }
    if is_full_id(r) && layout.container_dir(r).is_dir() {
        return Ok(r.to_string());
    }
    if let Some(id) = id_of_name(layout, r) {
        if layout.container_dir(&id).is_dir() {
            return Ok(id);
        }
    }
    if r.bytes().all(|b| b.is_ascii_hexdigit()) {
        let lower = r.to_ascii_lowercase();
        let hits: Vec<String> = crate::inventory::ids(layout)?
            .into_iter()
            .filter(|id| id.starts_with(&lower))
            .collect();
        match hits.len() {
            0 => {}
            1 => return Ok(hits.into_iter().next().expect("one hit")),
            _ => {
                return Err(Error::Invalid(format!(
                    "multiple IDs found with provided prefix: {reference}"
                )))
            }
        }
    }
    Err(Error::NoSuchContainer(reference.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make(l: &Layout, id: &str, name: &str) {
        std::fs::create_dir_all(l.container_dir(id)).unwrap();
        std::fs::write(l.config_path(id), "{}").unwrap();
        std::os::unix::fs::symlink(id, l.names_dir().join(name)).unwrap();
    }

    #[test]
    fn resolves_ids_names_prefixes() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::open(d.path()).unwrap();
        let a = format!("ab{}", "1".repeat(62));
        let b = format!("ac{}", "2".repeat(62));
        make(&l, &a, "web");
        make(&l, &b, "db");
        assert_eq!(resolve(&l, &a).unwrap(), a);
        assert_eq!(resolve(&l, "web").unwrap(), a);
        assert_eq!(resolve(&l, "/db").unwrap(), b);
        assert_eq!(resolve(&l, "ab").unwrap(), a);
        let e = resolve(&l, "a").unwrap_err().to_string();
        assert!(
            e.contains("multiple IDs found with provided prefix: a"),
            "{e}"
        );
        assert!(matches!(
            resolve(&l, "nope"),
            Err(Error::NoSuchContainer(_))
        ));
        assert!(matches!(resolve(&l, "ff"), Err(Error::NoSuchContainer(_))));
        assert!(matches!(resolve(&l, ""), Err(Error::NoSuchContainer(_))));
        assert!(matches!(
            resolve(&l, "../x"),
            Err(Error::NoSuchContainer(_))
        ));
    }
}
