//! Device access rules: the v1 devices.allow/deny text form, runc's implicit rules and
//! (in [`ebpf`]) the v2 BPF_PROG_TYPE_CGROUP_DEVICE program.

pub mod ebpf;
pub mod emulator;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::Error;

/// One device rule in a neutral form (`None` = wildcard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    /// 'a' (all), 'b' or 'c'.
    pub typ: char,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// Subset of "rwm", kept in that order.
    pub access: String,
}

impl DeviceRule {
    /// Converts and validates an OCI rule (`linux.resources.devices[i]`).
    pub fn from_oci(r: &LinuxDeviceCgroup, index: usize) -> Result<DeviceRule, Error> {
        let field = || format!("devices[{index}]");
        let typ = match r.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => 'a',
            LinuxDeviceType::B => 'b',
            LinuxDeviceType::C | LinuxDeviceType::U => 'c',
            LinuxDeviceType::P => {
                return Err(Error::Invalid {
                    field: field(),
                    value: "p".into(),
                    reason: "device cgroups cannot filter FIFOs (types are a, b, c)".into(),
                })
            }
        };
        let num = |v: Option<i64>, what: &str| -> Result<Option<u32>, Error> {
            match v {
                None | Some(-1) => Ok(None),
                Some(n) if (0..=u32::MAX as i64).contains(&n) => Ok(Some(n as u32)),
                Some(n) => Err(Error::Invalid {
                    field: format!("{}.{what}", field()),
                    value: n.to_string(),
                    reason: "device numbers are 0..2^32-1 or -1 for any".into(),
                }),
            }
        };
        let access =
            normalize_access(r.access().as_deref().unwrap_or("rwm")).map_err(|reason| {
                Error::Invalid {
                    field: format!("{}.access", field()),
                    value: r.access().clone().unwrap_or_default(),
                    reason,
                }
            })?;
        Ok(DeviceRule {
            allow: r.allow(),
            typ,
            major: num(r.major(), "major")?,
            minor: num(r.minor(), "minor")?,
            access,
        })
    }

    /// The v1 devices.allow/devices.deny line: "c 1:3 rwm", "a *:* rwm".
    pub fn to_v1(&self) -> String {
        let n = |v: Option<u32>| v.map_or("*".to_string(), |x| x.to_string());
        format!(
            "{} {}:{} {}",
            self.typ,
            n(self.major),
            n(self.minor),
            self.access
        )
    }

    /// Parses a v1 rule line ("c 1:3 rwm", also devices.list output; "a" alone).
    pub fn parse_v1(line: &str, allow: bool) -> Result<DeviceRule, Error> {
        let bad = |reason: &str| Error::Parse {
            what: "device rule",
            text: line.to_string(),
            reason: reason.to_string(),
        };
        let mut it = line.split_whitespace();
        let t = it.next().ok_or_else(|| bad("empty"))?;
        let typ = match t {
            "a" => 'a',
            "b" => 'b',
            "c" => 'c',
            _ => return Err(bad("type is not a, b or c")),
        };
        let Some(nums) = it.next() else {
            if typ == 'a' {
                return Ok(DeviceRule {
                    allow,
                    typ,
                    major: None,
                    minor: None,
                    access: "rwm".into(),
                });
            }
            return Err(bad("no major:minor"));
        };
        let (ma, mi) = nums
            .split_once(':')
            .ok_or_else(|| bad("no ':' in major:minor"))?;
        let n = |s: &str| -> Result<Option<u32>, Error> {
            if s == "*" {
                Ok(None)
            } else {
                s.parse()
                    .map(Some)
                    .map_err(|_| bad("device number is not a number or '*'"))
            }
        };
        let access =
            normalize_access(it.next().ok_or_else(|| bad("no access"))?).map_err(|r| bad(&r))?;
        if it.next().is_some() {
            return Err(bad("trailing text"));
        }
        Ok(DeviceRule {
            allow,
            typ,
            major: n(ma)?,
            minor: n(mi)?,
            access,
        })
    }
}

fn normalize_access(a: &str) -> Result<String, String> {
    if a.is_empty() {
        return Err("empty access (use a subset of \"rwm\")".into());
    }
    let mut out = String::new();
    for c in ['r', 'w', 'm'] {
        if a.contains(c) {
            out.push(c);
        }
    }
    // runc 1.1 takes "a" in an access string and grants nothing for it ("rwa" is "rw").
    if a.chars().any(|c| !"rwma".contains(c)) {
        return Err("access may only contain r, w and m".into());
    }
    if out.is_empty() {
        return Err(format!("access {a:?} grants none of r, w and m"));
    }
    Ok(out)
}

fn rule(typ: char, major: Option<u32>, minor: Option<u32>, access: &str) -> DeviceRule {
    DeviceRule {
        allow: true,
        typ,
        major,
        minor,
        access: access.into(),
    }
}

impl DeviceRule {
    /// Back to the OCI form (for building `linux.resources.devices`).
    pub fn to_oci(&self) -> LinuxDeviceCgroup {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(self.allow);
        r.set_typ(Some(match self.typ {
            'b' => LinuxDeviceType::B,
            'c' => LinuxDeviceType::C,
            _ => LinuxDeviceType::A,
        }));
        r.set_major(self.major.map(i64::from));
        r.set_minor(self.minor.map(i64::from));
        r.set_access(Some(self.access.clone()));
        r
    }
}

/// The rules runc always appends after the spec's own (runc libcontainer/specconv
/// AllowedDevices), with the device path a rule belongs to: mknod of any device, the
/// standard /dev/{null,random,full,tty,zero,urandom}, ptys, /dev/ptmx and /dev/net/tun.
pub fn runc_default_rules() -> Vec<(Option<&'static str>, DeviceRule)> {
    vec![
        (None, rule('c', None, None, "m")),
        (None, rule('b', None, None, "m")),
        (Some("/dev/null"), rule('c', Some(1), Some(3), "rwm")),
        (Some("/dev/random"), rule('c', Some(1), Some(8), "rwm")),
        (Some("/dev/full"), rule('c', Some(1), Some(7), "rwm")),
        (Some("/dev/tty"), rule('c', Some(5), Some(0), "rwm")),
        (Some("/dev/zero"), rule('c', Some(1), Some(5), "rwm")),
        (Some("/dev/urandom"), rule('c', Some(1), Some(9), "rwm")),
        (None, rule('c', Some(136), None, "rwm")), // /dev/pts/*
        (None, rule('c', Some(5), Some(2), "rwm")), // /dev/ptmx
        (None, rule('c', Some(10), Some(200), "rwm")), // /dev/net/tun (runc keeps it for compatibility)
    ]
}

/// `linux.resources.devices` as runc applies it: the spec's rules (validated), then the
/// defaults, except a default whose device path the spec's `linux.devices` also lists
/// (runc drops those). Put the result into the resources passed to
/// [`crate::Manager::apply`].
pub fn effective_rules(
    spec: &[LinuxDeviceCgroup],
    spec_device_paths: &[&std::path::Path],
) -> Result<Vec<LinuxDeviceCgroup>, Error> {
    let mut out = Vec::with_capacity(spec.len() + 11);
    for (i, r) in spec.iter().enumerate() {
        DeviceRule::from_oci(r, i)?;
        out.push(r.clone());
    }
    for (path, r) in runc_default_rules() {
        if path.is_some_and(|p| {
            spec_device_paths
                .iter()
                .any(|d| *d == std::path::Path::new(p))
        }) {
            continue;
        }
        out.push(r.to_oci());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    #[test]
    fn oci_to_v1() {
        let r = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap();
        assert_eq!(DeviceRule::from_oci(&r, 0).unwrap().to_v1(), "a *:* rwm");
        let r = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .access("wr")
            .build()
            .unwrap();
        let d = DeviceRule::from_oci(&r, 0).unwrap();
        assert_eq!(d.to_v1(), "c 1:3 rw");
        assert!(d.allow);
        let r = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .access("rwx")
            .build()
            .unwrap();
        assert!(DeviceRule::from_oci(&r, 2).is_err());
        let r = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .major(-5)
            .build()
            .unwrap();
        assert!(DeviceRule::from_oci(&r, 0).is_err());
        let r = LinuxDeviceCgroupBuilder::default()
            .typ(LinuxDeviceType::P)
            .build()
            .unwrap();
        assert!(DeviceRule::from_oci(&r, 0).is_err());
    }

    #[test]
    fn parse_v1_lines() {
        assert_eq!(
            DeviceRule::parse_v1("c 136:* rwm", true).unwrap(),
            rule('c', Some(136), None, "rwm")
        );
        assert_eq!(
            DeviceRule::parse_v1("a *:* rwm", true).unwrap().to_v1(),
            "a *:* rwm"
        );
        assert_eq!(
            DeviceRule::parse_v1("a", true).unwrap().to_v1(),
            "a *:* rwm"
        );
        for bad in [
            "",
            "x 1:1 r",
            "c 1 r",
            "c 1:1",
            "c a:1 r",
            "c 1:1 rq",
            "c 1:1 r x",
        ] {
            assert!(DeviceRule::parse_v1(bad, true).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn defaults_follow_spec_rules() {
        let deny = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap();
        let conv = |r: &[LinuxDeviceCgroup]| -> Vec<DeviceRule> {
            r.iter()
                .enumerate()
                .map(|(i, d)| DeviceRule::from_oci(d, i).unwrap())
                .collect()
        };
        let r = conv(&effective_rules(std::slice::from_ref(&deny), &[]).unwrap());
        assert_eq!(r.len(), 12);
        assert_eq!(r[0].to_v1(), "a *:* rwm");
        assert!(!r[0].allow);
        assert!(r[1..].iter().all(|d| d.allow));
        assert!(r.iter().any(|d| d.to_v1() == "c 1:3 rwm"));
        assert!(r.iter().any(|d| d.to_v1() == "c 136:* rwm"));
        assert!(r.iter().any(|d| d.to_v1() == "c 10:200 rwm"));
        // A spec device with a default's path replaces that default's rule.
        let r = conv(&effective_rules(&[deny], &[std::path::Path::new("/dev/null")]).unwrap());
        assert_eq!(r.len(), 11);
        assert!(!r.iter().any(|d| d.to_v1() == "c 1:3 rwm"));
        assert!(
            !super::emulator::Emulator::from_rules(&r)
                .unwrap()
                .default_allow
        );
    }
}
