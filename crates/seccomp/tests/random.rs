//! Fast seeded randomized tests (the stable-toolchain companion of fuzz/): compiled
//! programs against a direct evaluation of the documented semantics, and robustness of
//! the compiler on hostile input.

mod common;

use berth_seccomp::bpf::{self, SeccompData};
use berth_seccomp::{compile_with, Abi, Options};
use common::{gen_inputs, gen_profile, model, Rng};
use oci_spec::runtime::LinuxSeccomp;
use serde_json::{json, Value};

#[test]
fn compiled_programs_follow_the_model() {
    let mut names: Vec<&str> = Abi::ALL
        .iter()
        .flat_map(|a| a.table().iter().map(|e| e.0))
        .collect();
    names.sort();
    names.dedup();
    names.push("no_such_syscall");
    let mut checked = 0;
    for seed in 1000..1400u64 {
        let mut rng = Rng::new(seed);
        let pj = gen_profile(&mut rng, &names, true);
        let profile: LinuxSeccomp = serde_json::from_value(pj.clone()).unwrap();
        for enosys in [false, true] {
            let prog = match compile_with(
                &profile,
                &Options {
                    native: Abi::X86_64,
                    enosys,
                },
            ) {
                Ok(p) => p,
                Err(e) => {
                    assert!(
                        e.to_string().contains("SCMP_ACT_NOTIFY"),
                        "seed {seed}: {e}"
                    );
                    continue;
                }
            };
            bpf::check(&prog.filter).unwrap();
            for d in gen_inputs(&mut rng, &pj, 200) {
                let got = bpf::run(&prog.filter, &d).unwrap();
                let want = model(&pj, enosys, &d);
                assert_eq!(
                    got, want,
                    "seed {seed} enosys {enosys}: {d:x?}\nprofile: {pj}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100_000, "{checked}");
}

fn mutate(rng: &mut Rng, v: &mut Value) {
    match v {
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            if !keys.is_empty() {
                let k = rng.pick(&keys).clone();
                if rng.chance(10) {
                    m.remove(&k);
                } else {
                    mutate(rng, m.get_mut(&k).unwrap());
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let i = rng.below(a.len());
            if rng.chance(10) {
                let x = a[i].clone();
                a.push(x);
            } else {
                mutate(rng, &mut a[i]);
            }
        }
        Value::Number(_) => {
            let r = rng.next();
            *v = json!(*rng.pick(&[0u64, 5, 6, 7, 4095, 4096, 65535, 1 << 40, u64::MAX, r]));
        }
        Value::String(s) => {
            let choices = [
                "SCMP_ARCH_AARCH64",
                "SCMP_ARCH_ARM",
                "SCMP_ARCH_S390X",
                "SCMP_ARCH_NATIVE",
                "SCMP_ACT_NOTIFY",
                "SCMP_ACT_KILL",
                "SCMP_CMP_MASKED_EQ",
                "",
                "write",
                "SECCOMP_FILTER_FLAG_TSYNC",
                "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
            ];
            *s = rng.pick(&choices).to_string();
        }
        _ => {}
    }
}

#[test]
fn hostile_profiles_give_errors_not_panics() {
    let names: Vec<&str> = Abi::X86_64.table().iter().map(|e| e.0).collect();
    let (mut ok, mut err) = (0, 0);
    for seed in 0..3000u64 {
        let mut rng = Rng::new(seed);
        let mut pj = gen_profile(&mut rng, &names, true);
        for _ in 0..1 + rng.below(4) {
            mutate(&mut rng, &mut pj);
        }
        // Inputs the OCI types reject never reach us; that is fine.
        let Ok(profile) = serde_json::from_value::<LinuxSeccomp>(pj) else {
            continue;
        };
        for native in [Abi::X86_64, Abi::Aarch64] {
            match compile_with(
                &profile,
                &Options {
                    native,
                    enosys: true,
                },
            ) {
                Ok(p) => {
                    bpf::check(&p.filter).unwrap();
                    let d = SeccompData {
                        nr: 1,
                        arch: native.audit_arch(),
                        ..Default::default()
                    };
                    bpf::run(&p.filter, &d).unwrap();
                    ok += 1;
                }
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    err += 1;
                }
            }
        }
    }
    assert!(ok > 1000 && err > 100, "ok {ok} err {err}");
}
