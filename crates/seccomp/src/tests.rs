//! Unit tests of the compiler, evaluated with the BPF interpreter.

use crate::arch::{AUDIT_ARCH_AARCH64, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};
use crate::bpf::{self, SeccompData};
use crate::*;
use oci_spec::runtime::LinuxSeccomp;
use serde_json::json;

const ALLOW: u32 = RET_ALLOW;
const fn errno(e: u32) -> u32 {
    RET_ERRNO | e
}

fn prof(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("test profile parses")
}

fn opts(native: Abi) -> Options {
    Options {
        native,
        enosys: true,
    }
}

fn build(v: serde_json::Value) -> Program {
    compile_with(&prof(v), &opts(Abi::X86_64)).expect("compiles")
}

fn run_raw(p: &Program, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let d = SeccompData {
        nr,
        arch,
        instruction_pointer: 0x1000,
        args,
    };
    bpf::run(&p.filter, &d).expect("program passes the kernel checks")
}

fn run(p: &Program, abi: Abi, name: &str, args: [u64; 6]) -> u32 {
    let nr = abi
        .resolve(name)
        .unwrap_or_else(|| panic!("{name} unknown on {abi:?}"));
    run_raw(p, abi.audit_arch(), nr, args)
}

fn a1(i: usize, v: u64) -> [u64; 6] {
    let mut a = [0; 6];
    a[i] = v;
    a
}

fn op_profile(op: &str, value: u64, two: Option<u64>, arches: &[&str]) -> serde_json::Value {
    let mut arg = json!({"index": 1, "value": value, "op": op});
    if let Some(t) = two {
        arg["valueTwo"] = json!(t);
    }
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": arches,
        "syscalls": [{"names": ["lseek", "ioctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 33, "args": [arg]}]
    })
}

fn interesting(v: u64) -> Vec<u64> {
    let mut xs = vec![
        0,
        1,
        u64::MAX,
        u64::MAX - 1,
        0xffff_ffff,
        0x1_0000_0000,
        0x8000_0000_0000_0000,
    ];
    for d in [0u64, 1, 2, 0x1_0000_0000, 0xffff_ffff, 0x1_0000_0001] {
        xs.extend([v.wrapping_add(d), v.wrapping_sub(d)]);
    }
    xs.extend([
        v ^ 0xffff_ffff_0000_0000,
        v & 0xffff_ffff,
        v | 0xffff_ffff_0000_0000,
    ]);
    xs
}

fn op_holds(op: &str, a: u64, v: u64, two: u64) -> bool {
    match op {
        "SCMP_CMP_NE" => a != v,
        "SCMP_CMP_LT" => a < v,
        "SCMP_CMP_LE" => a <= v,
        "SCMP_CMP_EQ" => a == v,
        "SCMP_CMP_GE" => a >= v,
        "SCMP_CMP_GT" => a > v,
        "SCMP_CMP_MASKED_EQ" => a & v == two & v,
        _ => unreachable!(),
    }
}

const OPS: [&str; 7] = [
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

#[test]
fn every_operator_compares_all_64_bits_on_x86_64() {
    for op in OPS {
        for v in [
            0u64,
            5,
            0x1_0000_0005,
            0xffff_ffff,
            0x8000_0000_0000_0001,
            u64::MAX,
            0x7fff_ffff_ffff_ffff,
        ] {
            let two = if op == "SCMP_CMP_MASKED_EQ" {
                Some(v.rotate_left(7) & 0xf0f0_f0f0_0f0f_0f0f)
            } else {
                None
            };
            let p = build(op_profile(op, v, two, &[]));
            for a in interesting(v) {
                let want = if op_holds(op, a, v, two.unwrap_or(0)) {
                    errno(33)
                } else {
                    ALLOW
                };
                assert_eq!(
                    run(&p, Abi::X86_64, "lseek", a1(1, a)),
                    want,
                    "{op} value {v:#x} arg {a:#x}"
                );
                // Other arguments do not matter.
                let mut args = a1(1, a);
                args[0] = !a;
                args[2] = a.rotate_left(13);
                assert_eq!(
                    run(&p, Abi::X86_64, "lseek", args),
                    want,
                    "{op} {v:#x} {a:#x} noise"
                );
            }
        }
    }
}

#[test]
fn every_operator_compares_the_low_word_on_32_bit_abis() {
    for abi in [Abi::X86, Abi::X32] {
        for op in OPS {
            for v in [0u64, 5, 0x1_0000_0005, 0xffff_ffff, 0x8000_0001] {
                let two = if op == "SCMP_CMP_MASKED_EQ" {
                    Some(0x0000_0000_f0f0_0f0f & v.rotate_left(3))
                } else {
                    None
                };
                let p = compile_with(
                    &prof(op_profile(op, v, two, &["SCMP_ARCH_X86", "SCMP_ARCH_X32"])),
                    &opts(Abi::X86_64),
                )
                .unwrap();
                for a in interesting(v) {
                    // libseccomp semantics: the low 32 bits of argument and value.
                    let (al, vl, tl) = (
                        a & 0xffff_ffff,
                        v & 0xffff_ffff,
                        two.unwrap_or(0) & 0xffff_ffff,
                    );
                    let holds = if op == "SCMP_CMP_MASKED_EQ" && vl == 0 {
                        true
                    } else {
                        op_holds(op, al, vl, tl)
                    };
                    let want = if holds { errno(33) } else { ALLOW };
                    assert_eq!(
                        run(&p, abi, "ioctl", a1(1, a)),
                        want,
                        "{abi:?} {op} {v:#x} {a:#x}"
                    );
                }
            }
        }
    }
}

#[test]
fn masked_eq_uses_value_as_mask_and_value_two_as_datum() {
    // moby's clone rule: (flags & 0x7E020000) == 0.
    let p = build(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 2114060288u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]
    }));
    assert_eq!(run(&p, Abi::X86_64, "clone", a1(0, 0x0120_0011)), ALLOW); // fork-like flags
    assert_eq!(run(&p, Abi::X86_64, "clone", a1(0, 0x0002_0000)), errno(1)); // CLONE_NEWNS
    assert_eq!(run(&p, Abi::X86_64, "clone", a1(0, 0x1000_0000)), errno(1)); // CLONE_NEWUSER
                                                                             // A zero mask always matches (libseccomp drops the comparison).
    let p = build(op_profile("SCMP_CMP_MASKED_EQ", 0, Some(0), &[]));
    assert_eq!(run(&p, Abi::X86_64, "lseek", a1(1, 12345)), errno(33));
}

#[test]
fn arguments_of_one_rule_are_anded_and_rules_are_ored() {
    let p = build(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mmap"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5, "args": [
                {"index": 2, "value": 4, "op": "SCMP_CMP_MASKED_EQ", "valueTwo": 4},
                {"index": 3, "value": 0x20, "op": "SCMP_CMP_EQ"}]},
            {"names": ["mmap"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5, "args": [
                {"index": 0, "value": 0x1000, "op": "SCMP_CMP_LT"}]}
        ]
    }));
    let args = |a0: u64, a2: u64, a3: u64| [a0, 0, a2, a3, 0, 0];
    assert_eq!(
        run(&p, Abi::X86_64, "mmap", args(0x1_0000, 7, 0x20)),
        errno(5)
    );
    assert_eq!(run(&p, Abi::X86_64, "mmap", args(0x1_0000, 3, 0x20)), ALLOW);
    assert_eq!(run(&p, Abi::X86_64, "mmap", args(0x1_0000, 7, 0x22)), ALLOW);
    assert_eq!(run(&p, Abi::X86_64, "mmap", args(0xfff, 0, 0)), errno(5));
}

#[test]
fn same_argument_twice_becomes_separate_rules_like_runc() {
    let p = build(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
            {"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}]}]
    }));
    assert_eq!(run(&p, Abi::X86_64, "personality", a1(0, 8)), errno(1));
    assert_eq!(run(&p, Abi::X86_64, "personality", a1(0, 16)), errno(1));
    assert_eq!(run(&p, Abi::X86_64, "personality", a1(0, 9)), ALLOW);
}

#[test]
fn unconditional_rule_wins_otherwise_first_match() {
    let p = build(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 3, "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 4},
            {"names": ["tkill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 3, "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
            {"names": ["tkill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 4, "args": [{"index": 1, "value": 5, "op": "SCMP_CMP_GT"}]},
            // Same action as the default: dropped, as runc does.
            {"names": ["tkill"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 1, "value": 100, "op": "SCMP_CMP_EQ"}]}
        ]
    }));
    assert_eq!(run(&p, Abi::X86_64, "kill", a1(1, 9)), errno(4));
    assert_eq!(run(&p, Abi::X86_64, "kill", a1(1, 1)), errno(4));
    assert_eq!(run(&p, Abi::X86_64, "tkill", a1(1, 9)), errno(3));
    assert_eq!(run(&p, Abi::X86_64, "tkill", a1(1, 6)), errno(4));
    assert_eq!(run(&p, Abi::X86_64, "tkill", a1(1, 100)), errno(4));
    assert_eq!(run(&p, Abi::X86_64, "tkill", a1(1, 2)), ALLOW);
}

#[test]
fn action_encodings() {
    let cases = [
        ("SCMP_ACT_KILL", None, 0x0000_0000),
        ("SCMP_ACT_KILL_THREAD", None, 0x0000_0000),
        ("SCMP_ACT_KILL_PROCESS", None, 0x8000_0000),
        ("SCMP_ACT_TRAP", None, 0x0003_0000),
        ("SCMP_ACT_ERRNO", None, 0x0005_0001),
        ("SCMP_ACT_ERRNO", Some(0), 0x0005_0000),
        ("SCMP_ACT_ERRNO", Some(4095), 0x0005_0fff),
        ("SCMP_ACT_TRACE", None, 0x7ff0_0001),
        ("SCMP_ACT_TRACE", Some(77), 0x7ff0_004d),
        ("SCMP_ACT_LOG", None, 0x7ffc_0000),
        ("SCMP_ACT_ALLOW", None, 0x7fff_0000),
        ("SCMP_ACT_NOTIFY", None, 0x7fc0_0000),
    ];
    for (act, e, want) in cases {
        // As a rule action (default differs) ...
        let mut rule = json!({"names": ["getpid"], "action": act});
        if let Some(e) = e {
            rule["errnoRet"] = json!(e);
        }
        let default = if act == "SCMP_ACT_ERRNO" && e == Some(0) {
            "SCMP_ACT_ALLOW"
        } else {
            "SCMP_ACT_ERRNO"
        };
        let default = if want == errno(1) {
            "SCMP_ACT_ALLOW"
        } else {
            default
        };
        let p = build(json!({"defaultAction": default, "syscalls": [rule]}));
        assert_eq!(run(&p, Abi::X86_64, "getpid", [0; 6]), want, "{act} {e:?}");
        assert_eq!(p.notify, act == "SCMP_ACT_NOTIFY");
        assert_eq!(
            p.flags & berth_sys::seccomp::FILTER_FLAG_NEW_LISTENER != 0,
            p.notify
        );
        // ... and as the default action.
        if act != "SCMP_ACT_NOTIFY" {
            let mut v = json!({"defaultAction": act, "syscalls": [{"names": ["getpid"], "action": if act == "SCMP_ACT_ALLOW" {"SCMP_ACT_LOG"} else {"SCMP_ACT_ALLOW"}}]});
            if let Some(e) = e {
                v["defaultErrnoRet"] = json!(e);
            }
            let p = compile_with(
                &prof(v),
                &Options {
                    native: Abi::X86_64,
                    enosys: false,
                },
            )
            .unwrap();
            assert_eq!(
                run(&p, Abi::X86_64, "getppid", [0; 6]),
                want,
                "default {act}"
            );
        }
    }
}

#[test]
fn bad_input_gets_clear_errors() {
    let err = |v: serde_json::Value| {
        compile_with(&prof(v), &opts(Abi::X86_64))
            .unwrap_err()
            .to_string()
    };
    let e = err(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 3}]}),
    );
    assert!(e.contains("syscalls[0]") && e.contains("errnoRet"), "{e}");
    let e = err(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000}));
    assert!(e.contains("5000"), "{e}");
    let e = err(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
    );
    assert!(e.contains("read") && e.contains('6'), "{e}");
    let e = err(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "valueTwo": 2, "op": "SCMP_CMP_EQ"}]}]}),
    );
    assert!(e.contains("valueTwo"), "{e}");
    let e = err(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [""], "action": "SCMP_ACT_ERRNO"}]}),
    );
    assert!(e.contains("empty"), "{e}");
    let e = err(json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
    assert!(e.contains("default"), "{e}");
    let e = err(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    assert!(e.contains("write"), "{e}");
    let e = err(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}),
    );
    assert!(e.contains("WAIT_KILLABLE_RECV"), "{e}");
    // ARM on an aarch64 host: a real ABI there, but we have no table.
    let e = compile_with(
        &prof(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_ARM"]})),
        &opts(Abi::Aarch64),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("SCMP_ARCH_ARM"), "{e}");
    // Unknown syscall names are skipped (runc/libseccomp), not errors.
    compile_with(&prof(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["no_such_syscall"], "action": "SCMP_ACT_ERRNO"}]})), &opts(Abi::X86_64)).unwrap();
}

#[test]
fn flags() {
    use berth_sys::seccomp::*;
    let p = build(json!({"defaultAction": "SCMP_ACT_ALLOW"}));
    assert_eq!((p.flags, p.optional_flags), (0, FILTER_FLAG_SPEC_ALLOW));
    let p = build(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": []}));
    assert_eq!((p.flags, p.optional_flags), (0, 0));
    let p = build(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}),
    );
    assert_eq!(p.flags, FILTER_FLAG_LOG | FILTER_FLAG_SPEC_ALLOW);
    let p = build(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    assert_eq!(
        p.flags,
        FILTER_FLAG_TSYNC
            | FILTER_FLAG_TSYNC_ESRCH
            | FILTER_FLAG_NEW_LISTENER
            | FILTER_FLAG_WAIT_KILLABLE_RECV
    );
}

#[test]
fn architectures() {
    let rule =
        json!([{"names": ["getpid", "arch_prctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9}]);
    let mk = |arches: &[&str], native| {
        let mut v = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rule.clone()});
        v["architectures"] = json!(arches);
        compile_with(&prof(v), &opts(native)).unwrap()
    };
    // Native only: other ABIs get the bad-arch action.
    let p = mk(&[], Abi::X86_64);
    assert_eq!(run(&p, Abi::X86_64, "getpid", [0; 6]), errno(9));
    assert_eq!(run(&p, Abi::X86_64, "read", [0; 6]), ALLOW);
    assert_eq!(run(&p, Abi::X86, "getpid", [0; 6]), RET_BADARCH);
    assert_eq!(run(&p, Abi::X32, "getpid", [0; 6]), RET_BADARCH);
    assert_eq!(run_raw(&p, AUDIT_ARCH_AARCH64, 172, [0; 6]), RET_BADARCH);
    // nr -1 (a tracer skipping the call) is not a bad arch.
    assert_eq!(run_raw(&p, AUDIT_ARCH_X86_64, u32::MAX, [0; 6]), ALLOW);
    assert_eq!(
        run_raw(&p, AUDIT_ARCH_X86_64, 0x8000_0000, [0; 6]),
        RET_BADARCH
    );
    // Each listed ABI uses its own numbers.
    let p = mk(
        &[
            "SCMP_ARCH_X86_64",
            "SCMP_ARCH_X86",
            "SCMP_ARCH_X32",
            "SCMP_ARCH_S390X",
        ],
        Abi::X86_64,
    );
    for abi in [Abi::X86_64, Abi::X86, Abi::X32] {
        assert_eq!(run(&p, abi, "getpid", [0; 6]), errno(9), "{abi:?}");
        assert_eq!(run(&p, abi, "arch_prctl", [0; 6]), errno(9), "{abi:?}");
        assert_eq!(run(&p, abi, "read", [0; 6]), ALLOW, "{abi:?}");
    }
    // getpid is 20 on i386 and 39 on x86_64: the numbers are not mixed up.
    assert_eq!(run_raw(&p, AUDIT_ARCH_I386, 39, [0; 6]), ALLOW);
    assert_eq!(run_raw(&p, AUDIT_ARCH_X86_64, 20, [0; 6]), ALLOW);
    assert_eq!(
        run_raw(&p, AUDIT_ARCH_X86_64, 20 | X32_SYSCALL_BIT, [0; 6]),
        ALLOW
    );
    assert_eq!(
        run_raw(&p, AUDIT_ARCH_X86_64, 39 | X32_SYSCALL_BIT, [0; 6]),
        errno(9)
    );
    // x32 alone: x86_64 numbers are a bad arch.
    let p = mk(&["SCMP_ARCH_X32"], Abi::X32);
    assert_eq!(run(&p, Abi::X32, "getpid", [0; 6]), errno(9));
    assert_eq!(run(&p, Abi::X86_64, "getpid", [0; 6]), RET_BADARCH);
    // aarch64 native.
    let p = mk(&["SCMP_ARCH_AARCH64", "SCMP_ARCH_X86"], Abi::Aarch64);
    assert_eq!(run(&p, Abi::Aarch64, "getpid", [0; 6]), errno(9));
    assert_eq!(
        run(&p, Abi::X86, "getpid", [0; 6]),
        RET_BADARCH,
        "foreign ABI left out"
    );
}

#[test]
fn i386_socket_calls_also_match_socketcall() {
    let p = compile_with(&prof(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86"],
        "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97,
            "args": [{"index": 0, "value": 38, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 5, "op": "SCMP_CMP_EQ"}]}]
    })), &opts(Abi::X86_64)).unwrap();
    assert_eq!(run(&p, Abi::X86, "socket", [38, 5, 0, 0, 0, 0]), errno(97));
    assert_eq!(run(&p, Abi::X86, "socket", [2, 5, 0, 0, 0, 0]), ALLOW);
    // socketcall(SYS_SOCKET=1, args): arg0 is replaced by the call number, arg1 kept.
    assert_eq!(
        run(&p, Abi::X86, "socketcall", [1, 5, 0, 0, 0, 0]),
        errno(97)
    );
    assert_eq!(run(&p, Abi::X86, "socketcall", [2, 5, 0, 0, 0, 0]), ALLOW);
}

#[test]
fn enosys_for_syscalls_newer_than_the_profile() {
    let v = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["read", "write", "clone", "socket"], "action": "SCMP_ACT_ALLOW"}]
    });
    let p = build(v.clone());
    // clone (56) is the largest on x86_64: clone3 (435) and fork (57) are newer → ENOSYS,
    // open (2) is known to the profile's range → default.
    assert_eq!(run(&p, Abi::X86_64, "clone3", [0; 6]), errno(38));
    assert_eq!(run(&p, Abi::X86_64, "fork", [0; 6]), errno(38));
    assert_eq!(run(&p, Abi::X86_64, "open", [0; 6]), errno(1));
    assert_eq!(run(&p, Abi::X86_64, "clone", [0; 6]), ALLOW);
    assert_eq!(
        run_raw(&p, AUDIT_ARCH_X86_64, 0x3fff_ffff, [0; 6]),
        errno(38)
    );
    // x32: its own maximum (socket is 41|bit).
    assert_eq!(run(&p, Abi::X32, "clone3", [0; 6]), errno(38));
    assert_eq!(run(&p, Abi::X32, "fork", [0; 6]), errno(38));
    assert_eq!(run(&p, Abi::X32, "socket", [0; 6]), ALLOW);
    // i386: socket (359) does not count (a libseccomp pseudo number there); clone is 120.
    assert_eq!(run(&p, Abi::X86, "fork", [0; 6]), errno(1));
    assert_eq!(run(&p, Abi::X86, "setfsuid", [0; 6]), errno(38)); // 138
                                                                  // ... so, exactly as under runc, direct socket (359) is "newer" and gets ENOSYS, which
                                                                  // sends libc to socketcall(SYS_SOCKET), which the rule allows.
    assert_eq!(run(&p, Abi::X86, "socket", [0; 6]), errno(38));
    assert_eq!(run(&p, Abi::X86, "socketcall", a1(0, 1)), ALLOW);
    assert_eq!(run(&p, Abi::X86, "socketcall", a1(0, 2)), errno(1));
    // Permissive defaults get no stub.
    for d in ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"] {
        let mut v2 = v.clone();
        v2["defaultAction"] = json!(d);
        v2["syscalls"][0]["action"] = json!("SCMP_ACT_ERRNO");
        let p = build(v2);
        assert_ne!(run(&p, Abi::X86_64, "clone3", [0; 6]), errno(38), "{d}");
    }
    // KILL defaults do get it.
    let mut v3 = v.clone();
    v3["defaultAction"] = json!("SCMP_ACT_KILL_PROCESS");
    let p = build(v3);
    assert_eq!(run(&p, Abi::X86_64, "clone3", [0; 6]), errno(38));
    assert_eq!(run(&p, Abi::X86_64, "open", [0; 6]), RET_KILL_PROCESS);
    // Disabled by option.
    let p = compile_with(
        &prof(v),
        &Options {
            native: Abi::X86_64,
            enosys: false,
        },
    )
    .unwrap();
    assert_eq!(run(&p, Abi::X86_64, "clone3", [0; 6]), errno(1));
}

/// Profiles large enough that jumps exceed 255 instructions.
#[test]
fn long_jumps_in_large_profiles() {
    let arches = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];
    // Every x86_64 syscall, each with its own conditional rule and action.
    let all: Vec<&str> = Abi::X86_64.table().iter().map(|e| e.0).collect();
    let rules: Vec<_> = all
        .iter()
        .enumerate()
        .map(|(i, n)| {
            json!({"names": [n], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 + i % 4000,
            "args": [{"index": i % 6, "value": i as u64 * 3 + (1 << 33), "op": "SCMP_CMP_GE"}]})
        })
        .collect();
    let p = compile_with(
        &prof(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules})),
        &opts(Abi::X86_64),
    )
    .unwrap();
    assert!(p.filter.len() > 1000, "{}", p.filter.len());
    assert!(
        p.filter.iter().any(|i| i.code == bpf::JMP | bpf::JA),
        "trampolines used"
    );
    for (i, n) in all.iter().enumerate() {
        let v = i as u64 * 3 + (1 << 33);
        assert_eq!(
            run(&p, Abi::X86_64, n, a1(i % 6, v)),
            errno(1 + i as u32 % 4000),
            "{n}"
        );
        assert_eq!(run(&p, Abi::X86_64, n, a1(i % 6, v - 1)), ALLOW, "{n}");
    }
    // All three x86 ABIs with every syscall allowed unconditionally.
    let names: Vec<&str> = Abi::ALL
        .iter()
        .flat_map(|a| a.table().iter().map(|e| e.0))
        .collect();
    let p = compile_with(
        &prof(
            json!({"defaultAction": "SCMP_ACT_KILL_PROCESS", "architectures": arches,
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]}),
        ),
        &opts(Abi::X86_64),
    )
    .unwrap();
    for abi in [Abi::X86_64, Abi::X86, Abi::X32] {
        for (n, _) in abi.table() {
            assert_eq!(run(&p, abi, n, [0; 6]), ALLOW, "{abi:?} {n}");
        }
    }
    assert_eq!(run_raw(&p, AUDIT_ARCH_X86_64, 3000, [0; 6]), errno(38));
    // One syscall with hundreds of rules: the block itself is longer than 255.
    let rules: Vec<_> = (0..300u64)
        .map(|i| {
            json!({"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 + i,
            "args": [{"index": 1, "value": 0x5400 + i, "op": "SCMP_CMP_EQ"}]})
        })
        .collect();
    let p = build(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
    for i in 0..300u64 {
        assert_eq!(
            run(&p, Abi::X86_64, "ioctl", a1(1, 0x5400 + i)),
            errno(1 + i as u32)
        );
    }
    assert_eq!(run(&p, Abi::X86_64, "ioctl", a1(1, 0x5400 + 300)), ALLOW);
    assert_eq!(run(&p, Abi::X86_64, "read", [0; 6]), ALLOW);
}

#[test]
fn too_large_filters_are_refused() {
    let rules: Vec<_> = (0..3000u64)
        .map(|i| {
            json!({"names": ["ioctl"], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 1, "value": i, "op": "SCMP_CMP_EQ"}]})
        })
        .collect();
    let e = compile_with(
        &prof(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules})),
        &opts(Abi::X86_64),
    )
    .unwrap_err();
    assert!(matches!(e, Error::TooLarge(n) if n > 4096), "{e:?}");
}

fn caps(extra: &[&str]) -> Vec<String> {
    // Docker's default 14 capabilities.
    let mut c: Vec<String> = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    c.extend(extra.iter().map(|s| s.to_string()));
    c
}

#[test]
fn default_profile_blocks_what_docker_blocks() {
    let p = default_profile_for(&caps(&[]), Abi::X86_64, Some((6, 1)));
    let archs: Vec<String> = p
        .architectures()
        .iter()
        .flatten()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(
        archs,
        ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    );
    let prog = compile_with(&p, &opts(Abi::X86_64)).unwrap();
    // The count in security-bar.md is over the 6.1 table (numbers up to 450).
    let mut blocked: Vec<&str> = Abi::X86_64
        .table()
        .iter()
        .filter(|(_, nr)| *nr <= 450)
        .filter(|(n, _)| run(&prog, Abi::X86_64, n, [0; 6]) != ALLOW)
        .map(|e| e.0)
        .collect();
    blocked.sort();
    // security-bar.md 2.1: the 67 fully blocked syscalls of a default container.
    let want = "_sysctl acct add_key afs_syscall bpf clock_settime clone3 create_module delete_module fanotify_init \
        finit_module fsconfig fsmount fsopen fspick get_kernel_syms get_mempolicy getpmsg init_module io_uring_enter \
        io_uring_register io_uring_setup ioperm iopl kcmp kexec_file_load kexec_load keyctl lookup_dcookie mbind \
        migrate_pages mount mount_setattr move_mount move_pages nfsservctl open_by_handle_at open_tree perf_event_open \
        pidfd_getfd pivot_root process_madvise putpmsg query_module quotactl quotactl_fd reboot request_key security \
        set_mempolicy set_mempolicy_home_node setdomainname sethostname setns settimeofday swapoff swapon sysfs syslog \
        tuxcall umount2 unshare uselib userfaultfd ustat vhangup vserver";
    let mut want: Vec<&str> = want.split_whitespace().collect();
    want.sort();
    assert_eq!(blocked, want);
    assert_eq!(want.len(), 67);
    assert_eq!(run(&prog, Abi::X86_64, "clone3", [0; 6]), errno(38));
    // Newer syscalls moby allows are allowed, not ENOSYS (DEF-03).
    for n in [
        "cachestat",
        "fchmodat2",
        "futex_wake",
        "statmount",
        "listmount",
        "mseal",
    ] {
        assert_eq!(run(&prog, Abi::X86_64, n, [0; 6]), ALLOW, "{n}");
    }
    assert_eq!(run(&prog, Abi::X86_64, "mount", [0; 6]), errno(1));
    // socket: AF_ALG (38) and AF_VSOCK (40) refused.
    for (dom, ok) in [
        (1, true),
        (2, true),
        (10, true),
        (37, true),
        (38, false),
        (39, true),
        (40, false),
        (41, true),
        (44, true),
    ] {
        let want = if ok { ALLOW } else { errno(1) };
        assert_eq!(
            run(&prog, Abi::X86_64, "socket", a1(0, dom)),
            want,
            "x86_64 domain {dom}"
        );
        assert_eq!(
            run(&prog, Abi::X86, "socket", a1(0, dom)),
            want,
            "i386 domain {dom}"
        );
        assert_eq!(
            run(&prog, Abi::X32, "socket", a1(0, dom)),
            want,
            "x32 domain {dom}"
        );
    }
    // personality: only the listed personas.
    for (pers, ok) in [
        (0u64, true),
        (8, true),
        (0x20000, true),
        (0x20008, true),
        (0xffff_ffff, true),
        (1, false),
        (0x0040_0000, false),
    ] {
        assert_eq!(
            run(&prog, Abi::X86_64, "personality", a1(0, pers)),
            if ok { ALLOW } else { errno(1) },
            "{pers:#x}"
        );
    }
    // clone without namespace flags only.
    assert_eq!(run(&prog, Abi::X86_64, "clone", a1(0, 0x0120_0011)), ALLOW);
    assert_eq!(
        run(&prog, Abi::X86_64, "clone", a1(0, 0x4000_0000)),
        errno(1)
    ); // CLONE_NEWNET
    assert_eq!(run(&prog, Abi::X86_64, "arch_prctl", [0; 6]), ALLOW);
    assert_eq!(run(&prog, Abi::X86_64, "ptrace", [0; 6]), ALLOW); // kernel >= 4.8

    // CAP_SYS_ADMIN opens the admin set, including clone3 and namespaced clone.
    let admin = compile_with(
        &default_profile_for(&caps(&["CAP_SYS_ADMIN"]), Abi::X86_64, Some((6, 1))),
        &opts(Abi::X86_64),
    )
    .unwrap();
    for n in [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "clone3",
        "sethostname",
        "bpf",
    ] {
        assert_eq!(run(&admin, Abi::X86_64, n, [0; 6]), ALLOW, "{n}");
    }
    assert_eq!(run(&admin, Abi::X86_64, "clone", a1(0, 0x4000_0000)), ALLOW);
    assert_eq!(run(&admin, Abi::X86_64, "reboot", [0; 6]), errno(1));
    // Old kernels do not get ptrace.
    let old = compile_with(
        &default_profile_for(&caps(&[]), Abi::X86_64, Some((4, 4))),
        &opts(Abi::X86_64),
    )
    .unwrap();
    assert_eq!(run(&old, Abi::X86_64, "ptrace", [0; 6]), errno(1));
    // Other capabilities.
    let p = compile_with(
        &default_profile_for(
            &caps(&["CAP_SYS_PTRACE", "CAP_SYS_TIME", "CAP_DAC_READ_SEARCH"]),
            Abi::X86_64,
            Some((6, 1)),
        ),
        &opts(Abi::X86_64),
    )
    .unwrap();
    for n in [
        "ptrace",
        "kcmp",
        "pidfd_getfd",
        "settimeofday",
        "clock_settime",
        "open_by_handle_at",
    ] {
        assert_eq!(run(&p, Abi::X86_64, n, [0; 6]), ALLOW, "{n}");
    }
    // Filter size stays well inside the kernel's limit.
    assert!(prog.filter.len() < 2500, "{}", prog.filter.len());
}

#[test]
fn default_profile_on_aarch64() {
    let p = default_profile_for(&caps(&[]), Abi::Aarch64, Some((6, 1)));
    let archs: Vec<String> = p
        .architectures()
        .iter()
        .flatten()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(archs, ["SCMP_ARCH_AARCH64"]);
    let prog = compile_with(&p, &opts(Abi::Aarch64)).unwrap();
    assert_eq!(run(&prog, Abi::Aarch64, "openat", [0; 6]), ALLOW);
    assert_eq!(run(&prog, Abi::Aarch64, "mount", [0; 6]), errno(1));
    assert_eq!(run(&prog, Abi::Aarch64, "clone3", [0; 6]), errno(38));
    assert_eq!(run(&prog, Abi::Aarch64, "socket", a1(0, 38)), errno(1));
}

#[test]
fn default_profile_for_this_host() {
    let p = default_profile(&caps(&[]));
    compile(&p).unwrap();
}

#[test]
fn notify_message_is_the_oci_container_process_state() {
    let state: oci_spec::runtime::State = serde_json::from_value(json!({
        "ociVersion": "1.2.0", "id": "c1", "status": "creating", "pid": 42, "bundle": "/b"
    }))
    .unwrap();
    let msg: serde_json::Value =
        serde_json::from_slice(&notify_message(&state, 42, Some("meta")).unwrap()).unwrap();
    assert_eq!(msg["fds"], json!(["seccompFd"]));
    assert_eq!(msg["pid"], json!(42));
    assert_eq!(msg["metadata"], json!("meta"));
    assert_eq!(msg["state"]["id"], json!("c1"));
    assert_eq!(msg["ociVersion"], json!("1.2.0"));
}

#[test]
fn interpreter_and_checker_basics() {
    use bpf::*;
    let f = |code, jt, jf, k| SockFilter { code, jt, jf, k };
    // Accumulator arithmetic, scratch memory and X register.
    let prog = [
        f(LD | W | ABS, 0, 0, 0),
        f(ALU | ADD | K, 0, 0, 5),
        f(ST, 0, 0, 3),
        f(LDX | IMM, 0, 0, 2),
        f(ALU | MUL | X, 0, 0, 0),
        f(MISC | TAX, 0, 0, 0),
        f(LD | MEM, 0, 0, 3),
        f(JMP | JGT | X, 0, 1, 0),
        f(RET | K, 0, 0, 1),
        f(MISC | TXA, 0, 0, 0),
        f(RET | A, 0, 0, 0),
    ];
    let d = SeccompData {
        nr: 7,
        ..Default::default()
    };
    assert_eq!(run(&prog, &d), Ok(24));
    assert_eq!(
        check(&[f(LD | W | ABS, 0, 0, 2), f(RET | K, 0, 0, 0)]),
        Err(CheckError::BadLoad(0, 2))
    );
    assert_eq!(
        check(&[f(LD | W | ABS, 0, 0, 64), f(RET | K, 0, 0, 0)]),
        Err(CheckError::BadLoad(0, 64))
    );
    assert_eq!(
        check(&[f(JMP | JEQ | K, 1, 0, 0), f(RET | K, 0, 0, 0)]),
        Err(CheckError::JumpOutOfRange(0))
    );
    assert_eq!(
        check(&[f(JMP | JA, 0, 0, 1), f(RET | K, 0, 0, 0)]),
        Err(CheckError::JumpOutOfRange(0))
    );
    assert_eq!(
        check(&[f(LD | W | ABS, 0, 0, 0)]),
        Err(CheckError::NoFinalReturn)
    );
    assert_eq!(check(&[]), Err(CheckError::Length(0)));
    assert_eq!(
        check(&[f(ALU | DIV | K, 0, 0, 0), f(RET | K, 0, 0, 0)]),
        Err(CheckError::DivByZero(0))
    );
}

#[test]
fn assembler_trampolines_keep_targets() {
    use bpf::*;
    // A conditional jump over 600 instructions on both sides.
    let mut asm = Asm::new();
    let (t, f) = (asm.label(), asm.label());
    asm.load(0);
    asm.jump(JEQ, 5, Target::Label(t), Target::Label(f));
    for i in 0..600 {
        asm.ret(1000 + i);
    }
    asm.bind(t);
    asm.ret(1);
    for i in 0..300 {
        asm.ret(2000 + i);
    }
    asm.bind(f);
    asm.ret(2);
    let prog = asm.finish().unwrap();
    check(&prog).unwrap();
    assert_eq!(
        run(
            &prog,
            &SeccompData {
                nr: 5,
                ..Default::default()
            }
        ),
        Ok(1)
    );
    assert_eq!(
        run(
            &prog,
            &SeccompData {
                nr: 6,
                ..Default::default()
            }
        ),
        Ok(2)
    );
}

#[test]
fn hostile_sizes_fail_fast_and_cleanly() {
    // 300 conditions on one argument: split into 300 rules (no counter overflow).
    let args: Vec<_> = (0..300u64)
        .map(|i| json!({"index": 0, "value": i, "op": "SCMP_CMP_EQ"}))
        .collect();
    let p = build(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": args}]}));
    assert_eq!(run(&p, Abi::X86_64, "personality", a1(0, 299)), errno(1));
    assert_eq!(run(&p, Abi::X86_64, "personality", a1(0, 300)), ALLOW);
    // A huge profile is refused without building a huge program first.
    let rules: Vec<_> = (0..50_000u64)
        .map(|i| json!({"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": i, "op": "SCMP_CMP_EQ"}]}))
        .collect();
    let t = std::time::Instant::now();
    let e = compile_with(
        &prof(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules})),
        &opts(Abi::X86_64),
    )
    .unwrap_err();
    assert!(matches!(e, Error::TooLarge(_)), "{e:?}");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn kernel_support_is_probed_before_loading() {
    use berth_sys::seccomp::{flags_supported, FILTER_FLAG_SPEC_ALLOW};
    let p = build(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_LOG"}]}),
    );
    let want = if flags_supported(FILTER_FLAG_SPEC_ALLOW) {
        FILTER_FLAG_SPEC_ALLOW
    } else {
        0
    };
    assert_eq!(p.kernel_flags().unwrap(), want);
    let mut bad = p.clone();
    bad.flags |= 1 << 30;
    assert!(matches!(bad.kernel_flags(), Err(Error::FlagsUnsupported(f)) if f & (1 << 30) != 0));
    let mut bad = p.clone();
    bad.actions.push(0x1234_0000);
    let e = bad.kernel_flags().unwrap_err();
    assert!(matches!(e, Error::ActionUnsupported(_)), "{e:?}");
    // Notify with WAIT_KILLABLE_RECV (Linux >= 5.19; the test kernel is newer).
    let n = build(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    assert_eq!(n.kernel_flags().unwrap(), n.flags);
}
