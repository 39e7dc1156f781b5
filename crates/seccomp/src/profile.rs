//! Moby's default seccomp profile.
//!
//! `default.json` is moby/profiles `seccomp/default.json` at commit cd3bed8061c7
//! (2026-06-30), Copyright The Moby Authors, licensed under the Apache License 2.0
//! (the same licence as Berth). It is converted the way moby's `setupSeccomp` does:
//! the native architecture's `archMap` entry gives the architectures, and each rule's
//! `includes`/`excludes` (capabilities in the bounding set, host architecture, minimum
//! kernel) decide whether the rule is kept.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompBuilder, LinuxSyscall,
};
use serde::Deserialize;

use crate::Abi;

/// The profile as shipped (moby's format, with `archMap` and conditional rules).
pub const DEFAULT_PROFILE_JSON: &str = include_str!("default.json");

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MobyProfile {
    default_action: LinuxSeccompAction,
    default_errno_ret: Option<u32>,
    arch_map: Vec<ArchMap>,
    syscalls: Vec<MobySyscall>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: Arch,
    sub_architectures: Option<Vec<Arch>>,
}

#[derive(Deserialize)]
struct MobySyscall {
    #[serde(flatten)]
    call: LinuxSyscall,
    #[serde(default)]
    includes: Option<Filter>,
    #[serde(default)]
    excludes: Option<Filter>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    min_kernel: Option<String>,
}

fn parse_version(s: &str) -> Option<(u64, u64)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// moby's name for the host architecture (Go's GOARCH mapped to libseccomp names).
fn moby_arch(abi: Abi) -> &'static str {
    match abi {
        Abi::X86_64 => "amd64",
        Abi::X86 => "x86",
        Abi::X32 => "x32",
        Abi::Aarch64 => "arm64",
    }
}

/// The default profile for the native architecture and the running kernel, keeping the
/// rules gated on capabilities in `bounding_caps` (names like `CAP_SYS_ADMIN`), like
/// moby's `GetDefaultProfile`.
pub fn default_profile(bounding_caps: &[String]) -> LinuxSeccomp {
    let release = rustix::system::uname();
    let kernel = parse_version(&release.release().to_string_lossy());
    default_profile_for(bounding_caps, Abi::native(), kernel)
}

/// [`default_profile`] for an explicit host ABI and kernel version (`None`: assume a
/// kernel new enough for every rule).
///
/// On aarch64 the 32-bit ARM sub-architecture is left out (this crate has no ARM
/// table), so 32-bit ARM processes get the bad-architecture action instead.
pub fn default_profile_for(
    bounding_caps: &[String],
    host: Abi,
    kernel: Option<(u64, u64)>,
) -> LinuxSeccomp {
    let p: MobyProfile =
        serde_json::from_str(DEFAULT_PROFILE_JSON).expect("the bundled profile parses");
    let host_oci = match host {
        Abi::X86_64 => Arch::ScmpArchX86_64,
        Abi::X86 => Arch::ScmpArchX86,
        Abi::X32 => Arch::ScmpArchX32,
        Abi::Aarch64 => Arch::ScmpArchAarch64,
    };
    let mut arches = Vec::new();
    if let Some(m) = p.arch_map.iter().find(|m| m.architecture == host_oci) {
        arches.push(m.architecture);
        arches.extend(m.sub_architectures.iter().flatten().copied());
    }
    arches.retain(|a| host.family().contains(a) && Abi::from_oci(*a).is_some());

    let has = |c: &String| bounding_caps.contains(c);
    let kernel_at_least = |min: &str| match (kernel, parse_version(min)) {
        (Some(k), Some(m)) => k >= m,
        _ => true,
    };
    let arch = moby_arch(host);
    let mut syscalls = Vec::new();
    for s in p.syscalls {
        if let Some(ex) = &s.excludes {
            if ex.arches.iter().any(|a| a == arch)
                || ex.caps.iter().any(has)
                || ex.min_kernel.as_deref().is_some_and(kernel_at_least)
            {
                continue;
            }
        }
        if let Some(inc) = &s.includes {
            if (!inc.arches.is_empty() && !inc.arches.iter().any(|a| a == arch))
                || !inc.caps.iter().all(has)
                || inc
                    .min_kernel
                    .as_deref()
                    .is_some_and(|m| !kernel_at_least(m))
            {
                continue;
            }
        }
        syscalls.push(s.call);
    }
    let mut b = LinuxSeccompBuilder::default()
        .default_action(p.default_action)
        .architectures(arches)
        .syscalls(syscalls);
    if let Some(e) = p.default_errno_ret {
        b = b.default_errno_ret(e);
    }
    b.build().expect("all fields set")
}
