//! Profile JSON → BPF: the compiler must never panic, and every program it returns
//! must pass the kernel's checks and run to a verdict on any input.
#![no_main]

use berth_seccomp::bpf::{self, SeccompData};
use berth_seccomp::{compile_with, Abi, Options};
use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::LinuxSeccomp;

fuzz_target!(|data: &[u8]| {
    // The last 16 bytes (if any) pick the syscall input; the rest is the profile.
    let (json, tail) = data.split_at(data.len().saturating_sub(16));
    let Ok(profile) = serde_json::from_slice::<LinuxSeccomp>(json) else {
        return;
    };
    let mut word = [0u8; 16];
    word[..tail.len()].copy_from_slice(tail);
    let nr = u32::from_le_bytes(word[0..4].try_into().unwrap());
    let arg = u64::from_le_bytes(word[8..16].try_into().unwrap());
    for native in [Abi::X86_64, Abi::Aarch64] {
        for enosys in [false, true] {
            let Ok(prog) = compile_with(&profile, &Options { native, enosys }) else {
                continue;
            };
            bpf::check(&prog.filter).expect("compiled program passes the kernel checks");
            for abi in Abi::ALL {
                let d = SeccompData {
                    nr,
                    arch: abi.audit_arch(),
                    instruction_pointer: 0,
                    args: [arg; 6],
                };
                bpf::run(&prog.filter, &d).expect("program runs");
            }
        }
    }
});
