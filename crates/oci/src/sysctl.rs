//! linux.sysctl validation, as runc's validator does it, plus the checks
//! that keep a key inside /proc/sys (CVE-2025-52881) and a value in one file
//! (CVE-2022-0811).

use std::collections::{BTreeMap, HashMap};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("sysctl {key:?}: {msg}")]
    Invalid { key: String, msg: String },
}

/// Which namespaces the container has (new or joined).
pub struct Namespaces {
    pub ipc: bool,
    pub net: bool,
    pub uts: bool,
}

/// The IPC sysctls an IPC namespace owns (besides fs.mqueue.*).
pub const IPC_KEYS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Normalise `a/b/c` to `a.b.c` and refuse anything that is not a plain
/// dotted name.
fn normalise(key: &str) -> Result<String, String> {
    if key.is_empty() {
        return Err("empty key".into());
    }
    let k = key.replace('/', ".");
    for part in k.split('.') {
        if part.is_empty() || part == ".." {
            return Err("has an empty or .. component".into());
        }
        if !part.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || b == b'_'
                || b == b'-'
                || b == b'+'
                || b == b':'
                || b == b'@'
        }) {
            return Err("has characters outside [A-Za-z0-9_-+:@]".into());
        }
    }
    Ok(k)
}

pub fn validate(
    sysctls: Option<&HashMap<String, String>>,
    ns: &Namespaces,
) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for (key, value) in sysctls.into_iter().flatten() {
        let bad = |msg: &str| Error::Invalid {
            key: key.clone(),
            msg: msg.to_string(),
        };
        let k = normalise(key).map_err(|m| bad(&m))?;
        if value.contains('\n') || value.contains('\0') {
            return Err(bad("value holds a newline or NUL"));
        }
        let ok = if IPC_KEYS.contains(&k.as_str()) || k.starts_with("fs.mqueue.") {
            if !ns.ipc {
                return Err(bad("needs an IPC namespace"));
            }
            true
        } else if k.starts_with("net.") {
            if !ns.net {
                return Err(bad("needs a network namespace of the container's own"));
            }
            true
        } else if k == "kernel.domainname" {
            if !ns.uts {
                return Err(bad("needs a UTS namespace"));
            }
            true
        } else if k == "kernel.hostname" {
            return Err(bad("conflicts with the hostname field; set that instead"));
        } else {
            false
        };
        if !ok {
            return Err(bad("is not namespaced, so it would change the host"));
        }
        if out.insert(k, value.clone()).is_some() {
            return Err(bad("is given twice (as a.b and a/b)"));
        }
    }
    Ok(out)
}

/// The path under /proc/sys for a validated key.
pub fn proc_path(key: &str) -> String {
    key.replace('.', "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(k: &str, v: &str, ns: Namespaces) -> Result<BTreeMap<String, String>, Error> {
        let mut m = HashMap::new();
        m.insert(k.to_string(), v.to_string());
        validate(Some(&m), &ns)
    }
    fn all() -> Namespaces {
        Namespaces {
            ipc: true,
            net: true,
            uts: true,
        }
    }
    fn none() -> Namespaces {
        Namespaces {
            ipc: false,
            net: false,
            uts: false,
        }
    }

    #[test]
    fn namespaced_ok() {
        assert!(one("net.ipv4.ip_forward", "1", all()).is_ok());
        assert!(one("net/ipv4/ip_forward", "1", all()).is_ok());
        assert!(one("kernel.shm_rmid_forced", "1", all()).is_ok());
        assert!(one("fs.mqueue.msg_max", "20", all()).is_ok());
        assert!(one("kernel.domainname", "x", all()).is_ok());
    }

    #[test]
    fn cve_2025_52881_traversal_rejected() {
        assert!(one("kernel/../../sysrq-trigger", "1", all()).is_err());
        assert!(one("net.ipv4.ip_forward/../..", "1", all()).is_err());
        assert!(one("net..ipv4", "1", all()).is_err());
        assert!(one("", "1", all()).is_err());
    }

    #[test]
    fn not_namespaced_rejected() {
        assert!(one("kernel.core_pattern", "|/x", all()).is_err());
        assert!(one("vm.overcommit_memory", "1", all()).is_err());
        assert!(one("kernel.hostname", "x", all()).is_err());
        assert!(one("net.ipv4.ip_forward", "1", none()).is_err());
        assert!(one("kernel.msgmax", "1", none()).is_err());
    }

    #[test]
    fn cve_2022_0811_value_stays_one_value() {
        // The value is written verbatim to one file; newlines are refused.
        let r = one("kernel.shm_rmid_forced", "1+kernel.core_pattern=|/x", all()).unwrap();
        assert_eq!(r["kernel.shm_rmid_forced"], "1+kernel.core_pattern=|/x");
        assert!(one("kernel.shm_rmid_forced", "1\nkernel.core_pattern=x", all()).is_err());
    }
}
