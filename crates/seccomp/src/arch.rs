//! Architectures (ABIs), their AUDIT_ARCH values and syscall tables.

use std::collections::HashMap;
use std::sync::OnceLock;

use oci_spec::runtime::Arch;

use crate::tables;

pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
/// x32 syscalls arrive as AUDIT_ARCH_X86_64 with this bit set in the number.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// A syscall ABI the compiler has a table for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Abi {
    X86_64,
    X86,
    X32,
    Aarch64,
}

impl Abi {
    pub const ALL: [Abi; 4] = [Abi::X86_64, Abi::X86, Abi::X32, Abi::Aarch64];

    /// The ABI this crate was built for.
    pub fn native() -> Abi {
        if cfg!(target_arch = "aarch64") {
            Abi::Aarch64
        } else if cfg!(target_arch = "x86") {
            Abi::X86
        } else if cfg!(all(target_arch = "x86_64", target_pointer_width = "32")) {
            Abi::X32
        } else {
            Abi::X86_64
        }
    }

    /// `seccomp_data.arch` for this ABI.
    pub fn audit_arch(self) -> u32 {
        match self {
            Abi::X86_64 | Abi::X32 => AUDIT_ARCH_X86_64,
            Abi::X86 => AUDIT_ARCH_I386,
            Abi::Aarch64 => AUDIT_ARCH_AARCH64,
        }
    }

    /// Whether arguments are compared as 64-bit values. x32 counts as 32-bit, as in
    /// libseccomp (`ARCH_SIZE_32`), so profiles behave the same as under runc.
    pub fn args_64bit(self) -> bool {
        matches!(self, Abi::X86_64 | Abi::Aarch64)
    }

    /// The OCI name.
    pub fn oci_name(self) -> &'static str {
        match self {
            Abi::X86_64 => "SCMP_ARCH_X86_64",
            Abi::X86 => "SCMP_ARCH_X86",
            Abi::X32 => "SCMP_ARCH_X32",
            Abi::Aarch64 => "SCMP_ARCH_AARCH64",
        }
    }

    /// ABIs a kernel of this native ABI can run (and so may report in seccomp_data).
    /// `None` entries are ABIs such a kernel runs but we have no table for.
    pub fn family(self) -> &'static [Arch] {
        match self {
            Abi::X86_64 | Abi::X86 | Abi::X32 => {
                &[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
            }
            Abi::Aarch64 => &[Arch::ScmpArchAarch64, Arch::ScmpArchArm],
        }
    }

    pub fn from_oci(a: Arch) -> Option<Abi> {
        match a {
            Arch::ScmpArchX86_64 => Some(Abi::X86_64),
            Arch::ScmpArchX86 => Some(Abi::X86),
            Arch::ScmpArchX32 => Some(Abi::X32),
            Arch::ScmpArchAarch64 => Some(Abi::Aarch64),
            _ => None,
        }
    }

    /// The (name, number) table, sorted by number.
    pub fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Abi::X86_64 => tables::X86_64,
            Abi::X86 => tables::X86,
            Abi::X32 => tables::X32,
            Abi::Aarch64 => tables::AARCH64,
        }
    }

    /// The syscall number of `name` in this ABI, if it has that syscall.
    pub fn resolve(self, name: &str) -> Option<u32> {
        static MAPS: OnceLock<[HashMap<&'static str, u32>; 4]> = OnceLock::new();
        let maps = MAPS.get_or_init(|| Abi::ALL.map(|abi| abi.table().iter().copied().collect()));
        maps[self as usize].get(name).copied()
    }
}

/// On i386 the socket and SysV IPC calls also exist multiplexed through
/// `socketcall(call, args)` and `ipc(call, ...)`. Like libseccomp, a rule on such a
/// name also matches the multiplexer with `arg0 == call`. Returns (multiplexer name,
/// call number).
pub fn x86_multiplexed(name: &str) -> Option<(&'static str, u32)> {
    const SOCKET: [&str; 20] = [
        "socket",
        "bind",
        "connect",
        "listen",
        "accept",
        "getsockname",
        "getpeername",
        "socketpair",
        "send",
        "recv",
        "sendto",
        "recvfrom",
        "shutdown",
        "setsockopt",
        "getsockopt",
        "sendmsg",
        "recvmsg",
        "accept4",
        "recvmmsg",
        "sendmmsg",
    ];
    const IPC: [(&str, u32); 12] = [
        ("semop", 1),
        ("semget", 2),
        ("semctl", 3),
        ("semtimedop", 4),
        ("msgsnd", 11),
        ("msgrcv", 12),
        ("msgget", 13),
        ("msgctl", 14),
        ("shmat", 21),
        ("shmdt", 22),
        ("shmget", 23),
        ("shmctl", 24),
    ];
    if let Some(i) = SOCKET.iter().position(|n| *n == name) {
        return Some(("socketcall", i as u32 + 1));
    }
    IPC.iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| ("ipc", *c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_know_well_known_numbers() {
        assert_eq!(Abi::X86_64.resolve("read"), Some(0));
        assert_eq!(Abi::X86_64.resolve("clone3"), Some(435));
        assert_eq!(Abi::X86.resolve("socketcall"), Some(102));
        assert_eq!(Abi::X86.resolve("socket"), Some(359));
        assert_eq!(Abi::X32.resolve("read"), Some(X32_SYSCALL_BIT));
        assert_eq!(Abi::Aarch64.resolve("openat"), Some(56));
        assert_eq!(Abi::Aarch64.resolve("open"), None);
        assert_eq!(Abi::X86_64.resolve("no_such_call"), None);
    }

    #[test]
    fn tables_are_sorted_and_unique() {
        for abi in Abi::ALL {
            let t = abi.table();
            assert!(
                t.windows(2).all(|w| w[0].1 < w[1].1),
                "{abi:?} not strictly sorted"
            );
            let names: std::collections::HashSet<_> = t.iter().map(|e| e.0).collect();
            assert_eq!(names.len(), t.len());
        }
    }

    #[test]
    fn multiplexed_calls() {
        assert_eq!(x86_multiplexed("socket"), Some(("socketcall", 1)));
        assert_eq!(x86_multiplexed("sendmmsg"), Some(("socketcall", 20)));
        assert_eq!(x86_multiplexed("shmctl"), Some(("ipc", 24)));
        assert_eq!(x86_multiplexed("read"), None);
    }
}
