//! A model of the v1 devices controller (as runc's devices emulator): feeding it rules in
//! order yields the same allow/deny state the kernel would reach. It gives v2 the v1
//! semantics and lets v1 updates move between states without a deny-all window.

use std::collections::BTreeMap;

use super::DeviceRule;
use crate::Error;

/// (type, major, minor) of an exception; `None` = wildcard.
pub type Key = (char, Option<u32>, Option<u32>);

/// The controller state: a default verdict plus exceptions with their access bits.
#[derive(Debug, Clone, Eq)]
pub struct Emulator {
    /// true: everything allowed except `exceptions` (v1 "blacklist"); false: the reverse.
    pub default_allow: bool,
    pub exceptions: BTreeMap<Key, String>,
    /// Keys of `exceptions` in the order they were first added: v1 lists
    /// exceptions in write order, and so must a rewrite (crun does this).
    pub order: Vec<Key>,
}

impl Default for Emulator {
    /// A fresh v1 cgroup under an unrestricted parent: allow all.
    fn default() -> Self {
        Emulator {
            default_allow: true,
            exceptions: BTreeMap::new(),
            order: Vec::new(),
        }
    }
}

/// Equal states allow the same accesses, whatever order they were written in.
impl PartialEq for Emulator {
    fn eq(&self, o: &Self) -> bool {
        self.default_allow == o.default_allow && self.exceptions == o.exceptions
    }
}

fn union(a: &str, b: &str) -> String {
    "rwm"
        .chars()
        .filter(|c| a.contains(*c) || b.contains(*c))
        .collect()
}

fn minus(a: &str, b: &str) -> String {
    a.chars().filter(|c| !b.contains(*c)).collect()
}

fn intersects(a: &str, b: &str) -> bool {
    a.chars().any(|c| b.contains(c))
}

impl Emulator {
    /// Applies one rule like a write to devices.allow (allow) or devices.deny (deny).
    pub fn apply(&mut self, r: &DeviceRule) -> Result<(), Error> {
        if r.typ == 'a' {
            // "a" resets the behaviour and drops every exception.
            self.default_allow = r.allow;
            self.exceptions.clear();
            self.order.clear();
            return Ok(());
        }
        let key = (r.typ, r.major, r.minor);
        if r.allow == self.default_allow {
            self.remove(key, &r.access, r)
        } else {
            if !self.exceptions.contains_key(&key) {
                self.order.push(key);
            }
            let e = self.exceptions.entry(key).or_default();
            *e = union(e, &r.access);
            Ok(())
        }
    }

    fn remove(&mut self, key: Key, access: &str, r: &DeviceRule) -> Result<(), Error> {
        // The kernel silently ignores removing part of a wildcard exception; refuse it
        // instead of leaving a false sense of security (runc does the same).
        let (t, ma, mi) = key;
        for partial in [(t, None, mi), (t, ma, None), (t, None, None)] {
            if partial == key {
                continue;
            }
            if let Some(p) = self.exceptions.get(&partial) {
                if intersects(p, access) {
                    return Err(Error::Invalid {
                        field: "devices".into(),
                        value: format!("{} {}", if r.allow { "allow" } else { "deny" }, r.to_v1()),
                        reason: "cannot punch a hole into an earlier wildcard rule".into(),
                    });
                }
            }
        }
        if let Some(cur) = self.exceptions.get_mut(&key) {
            *cur = minus(cur, access);
            if cur.is_empty() {
                self.exceptions.remove(&key);
                self.order.retain(|k| *k != key);
            }
        }
        Ok(())
    }

    /// Builds the state from an ordered rule list, starting from allow-all.
    pub fn from_rules(rules: &[DeviceRule]) -> Result<Emulator, Error> {
        let mut e = Emulator::default();
        for r in rules {
            e.apply(r)?;
        }
        Ok(e)
    }

    /// Reads v1 devices.list. "a *:* rwm" means allow-all; the kernel does not list
    /// deny exceptions in that mode, so `None` says "allow-all, exceptions unknown".
    pub fn from_v1_list(text: &str) -> Result<Option<Emulator>, Error> {
        let mut e = Emulator {
            default_allow: false,
            exceptions: BTreeMap::new(),
            order: Vec::new(),
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let r = DeviceRule::parse_v1(line, true)?;
            if r.typ == 'a' {
                return Ok(None);
            }
            e.apply(&r)?;
        }
        Ok(Some(e))
    }

    /// The exceptions as rules carrying the non-default verdict.
    pub fn exception_rules(&self) -> Vec<DeviceRule> {
        self.order
            .iter()
            .filter_map(|k| self.exceptions.get_key_value(k))
            .map(|(&(typ, major, minor), access)| DeviceRule {
                allow: !self.default_allow,
                typ,
                major,
                minor,
                access: access.clone(),
            })
            .collect()
    }

    /// The v1 writes (allow?, rule line) that take the cgroup from `current` (None =
    /// unknown) to `self`, never passing through a deny-all state when both are
    /// allow-lists.
    pub fn v1_transition(&self, current: Option<&Emulator>) -> Vec<(bool, String)> {
        let mut out = Vec::new();
        let reset = match current {
            Some(c) => c.default_allow != self.default_allow || self.default_allow,
            None => true,
        };
        if reset {
            // Switching modes (or an allow-list whose exceptions we cannot see).
            out.push((self.default_allow, "a *:* rwm".to_string()));
            for r in self.exception_rules() {
                out.push((r.allow, r.to_v1()));
            }
            return out;
        }
        let cur = current.expect("checked above");
        // Allow-list to allow-list: add what is new first, then drop what went away.
        for (k, acc) in &self.exceptions {
            let have = cur.exceptions.get(k).map(String::as_str).unwrap_or("");
            let add = minus(acc, have);
            if !add.is_empty() {
                out.push((
                    true,
                    DeviceRule {
                        allow: true,
                        typ: k.0,
                        major: k.1,
                        minor: k.2,
                        access: add,
                    }
                    .to_v1(),
                ));
            }
        }
        for (k, acc) in &cur.exceptions {
            let want = self.exceptions.get(k).map(String::as_str).unwrap_or("");
            let drop = minus(acc, want);
            if !drop.is_empty() {
                out.push((
                    false,
                    DeviceRule {
                        allow: false,
                        typ: k.0,
                        major: k.1,
                        minor: k.2,
                        access: drop,
                    }
                    .to_v1(),
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(allow: bool, s: &str) -> DeviceRule {
        DeviceRule::parse_v1(s, allow).unwrap()
    }

    #[test]
    fn deny_all_then_allows() {
        let e = Emulator::from_rules(&[
            r(false, "a"),
            r(true, "c 1:3 rw"),
            r(true, "c 1:3 m"),
            r(true, "c 136:* rwm"),
        ])
        .unwrap();
        assert!(!e.default_allow);
        assert_eq!(e.exceptions[&('c', Some(1), Some(3))], "rwm");
        assert_eq!(e.exceptions.len(), 2);
        // A later deny removes bits of the exact exception.
        let e2 = Emulator::from_rules(&[r(false, "a"), r(true, "c 1:3 rwm"), r(false, "c 1:3 w")])
            .unwrap();
        assert_eq!(e2.exceptions[&('c', Some(1), Some(3))], "rm");
        let e3 =
            Emulator::from_rules(&[r(false, "a"), r(true, "c 1:3 rwm"), r(false, "c 1:3 rwm")])
                .unwrap();
        assert!(e3.exceptions.is_empty());
    }

    #[test]
    fn allow_all_with_denies() {
        let e = Emulator::from_rules(&[r(true, "c 1:5 rwm"), r(false, "b 8:* w")]).unwrap();
        // allow on an allow-all cgroup is a no-op.
        assert!(e.default_allow);
        assert_eq!(e.exception_rules(), vec![r(false, "b 8:* w")]);
    }

    #[test]
    fn wildcard_hole_punch_is_refused() {
        let err = Emulator::from_rules(&[r(false, "a"), r(true, "c *:* rwm"), r(false, "c 1:3 r")]);
        assert!(err.is_err());
        let err =
            Emulator::from_rules(&[r(false, "a"), r(true, "c 136:* rwm"), r(false, "c 136:1 w")]);
        assert!(err.is_err());
        // Non-overlapping access is fine.
        Emulator::from_rules(&[r(false, "a"), r(true, "c *:* m"), r(false, "c 1:3 r")]).unwrap();
    }

    #[test]
    fn v1_list_and_transitions() {
        assert_eq!(Emulator::from_v1_list("a *:* rwm\n").unwrap(), None);
        let cur = Emulator::from_v1_list("c 1:3 rwm\nc 1:5 rwm\n")
            .unwrap()
            .unwrap();
        let want =
            Emulator::from_rules(&[r(false, "a"), r(true, "c 1:3 rw"), r(true, "c 1:9 rwm")])
                .unwrap();
        let t = want.v1_transition(Some(&cur));
        assert_eq!(
            t,
            vec![
                (true, "c 1:9 rwm".into()),
                (false, "c 1:3 m".into()),
                (false, "c 1:5 rwm".into())
            ]
        );
        // Unknown or different mode: reset first.
        let t = want.v1_transition(None);
        assert_eq!(t[0], (false, "a *:* rwm".into()));
        assert_eq!(t.len(), 3);
        let allow_all = Emulator::default();
        assert_eq!(
            allow_all.v1_transition(Some(&cur)),
            vec![(true, "a *:* rwm".into())]
        );
    }
}
