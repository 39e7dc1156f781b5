//! Differential test against libseccomp (test-only: Debian libseccomp-dev + gcc).
//!
//! For many seeded random profiles, the same profile goes through runc's conversion
//! (rules with the default action dropped, same-argument conditions split, names
//! resolved natively) into libseccomp, whose exported BPF is run next to ours in the
//! interpreter on many inputs; the verdicts must be identical. Our ENOSYS stub is
//! checked against runc's patchbpf semantics on top of libseccomp's verdict.
//!
//! Skipped, with a message, only when gcc or libseccomp-dev is not installed.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use berth_seccomp::bpf::{self, SeccompData, SockFilter};
use berth_seccomp::{compile_with, Abi, Options};
use common::{gen_inputs, gen_profile, Rng};
use oci_spec::runtime::LinuxSeccomp;
use serde_json::Value;

const PROFILES: u64 = 300;
const INPUTS: usize = 300;

struct Helper {
    _dir: tempfile::TempDir,
    exe: PathBuf,
}

fn helper() -> Option<&'static Helper> {
    static H: OnceLock<Option<Helper>> = OnceLock::new();
    H.get_or_init(|| {
        if !Path::new("/usr/include/seccomp.h").exists() {
            eprintln!("SKIPPED: libseccomp-dev is not installed (no /usr/include/seccomp.h)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("libseccomp_helper");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/libseccomp_helper.c");
        let out = match Command::new("gcc")
            .arg("-O1")
            .arg("-o")
            .arg(&exe)
            .arg(&src)
            .arg("-lseccomp")
            .output()
        {
            Ok(o) => o,
            Err(e) => {
                eprintln!("SKIPPED: cannot run gcc: {e}");
                return None;
            }
        };
        assert!(
            out.status.success(),
            "building the libseccomp helper failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(Helper { _dir: dir, exe })
    })
    .as_ref()
}

fn token(abi: Abi) -> u32 {
    match abi {
        Abi::X86_64 => 0xc000_003e,
        Abi::X86 => 0x4000_0003,
        Abi::X32 => 0x4000_003e,
        Abi::Aarch64 => 0xc000_00b7,
    }
}

/// libseccomp's number for every name we know, per ABI.
fn lib_numbers(h: &Helper) -> &'static HashMap<(Abi, String), i64> {
    static M: OnceLock<HashMap<(Abi, String), i64>> = OnceLock::new();
    M.get_or_init(|| {
        let mut names: Vec<&str> = Abi::ALL
            .iter()
            .flat_map(|a| a.table().iter().map(|e| e.0))
            .collect();
        names.sort();
        names.dedup();
        let mut m = HashMap::new();
        for abi in [Abi::X86_64, Abi::X86, Abi::X32] {
            let mut child = Command::new(&h.exe)
                .arg("resolve")
                .arg(token(abi).to_string())
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(names.join("\n").as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            for line in String::from_utf8(out.stdout).unwrap().lines() {
                let (n, v) = line.split_once(' ').unwrap();
                m.insert((abi, n.to_string()), v.parse().unwrap());
            }
        }
        m
    })
}

/// Names both sides resolve the same way on x86_64, x86 and x32 (libseccomp 2.5 has an
/// older table than the kernel headers we generate from).
fn agreed_names(h: &Helper) -> Vec<&'static str> {
    let lib = lib_numbers(h);
    let mut names: Vec<&'static str> = Abi::ALL
        .iter()
        .flat_map(|a| a.table().iter().map(|e| e.0))
        .collect();
    names.sort();
    names.dedup();
    names.retain(|n| {
        *n != "socketcall"
            && *n != "ipc"
            && [Abi::X86_64, Abi::X86, Abi::X32].iter().all(|&abi| {
                let l = lib[&(abi, n.to_string())];
                let mine = abi.resolve(n);
                if abi == Abi::X86 && berth_seccomp::arch::x86_multiplexed(n).is_some() {
                    // libseccomp answers a pseudo number and multiplexes internally.
                    return l < 0;
                }
                match mine {
                    Some(v) => l >= 0 && v as i64 == l,
                    None => l < 0,
                }
            })
    });
    names
}

fn action_value(act: &str, errno: Option<u64>) -> u32 {
    let e = errno.unwrap_or(1) as u32;
    match act {
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => 0,
        "SCMP_ACT_KILL_PROCESS" => 0x8000_0000,
        "SCMP_ACT_TRAP" => 0x0003_0000,
        "SCMP_ACT_ERRNO" => 0x0005_0000 | e,
        "SCMP_ACT_TRACE" => 0x7ff0_0000 | e,
        "SCMP_ACT_LOG" => 0x7ffc_0000,
        "SCMP_ACT_ALLOW" => 0x7fff_0000,
        "SCMP_ACT_NOTIFY" => 0x7fc0_0000,
        _ => panic!("{act}"),
    }
}

fn op_code(op: &str) -> u32 {
    common::OPS.iter().position(|o| *o == op).unwrap() as u32 + 1
}

/// runc's InitSeccomp/matchCall as libseccomp calls, in the helper's input format.
fn runc_input(p: &Value) -> String {
    let default = action_value(
        p["defaultAction"].as_str().unwrap(),
        p["defaultErrnoRet"].as_u64(),
    );
    let mut s = format!("default {default}\n");
    for a in p["architectures"].as_array().into_iter().flatten() {
        let abi = match a.as_str().unwrap() {
            "SCMP_ARCH_X86_64" => Abi::X86_64,
            "SCMP_ARCH_X86" => Abi::X86,
            "SCMP_ARCH_X32" => Abi::X32,
            other => panic!("{other}"),
        };
        s += &format!("arch {}\n", token(abi));
    }
    let calls = p["syscalls"].as_array().unwrap();
    if calls.len() > 32 {
        s += "optimize 2\n";
    }
    for c in calls {
        let act = action_value(c["action"].as_str().unwrap(), c["errnoRet"].as_u64());
        if act == default {
            continue;
        }
        let args: Vec<(u64, u32, u64, u64)> = c["args"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                (
                    a["index"].as_u64().unwrap(),
                    op_code(a["op"].as_str().unwrap()),
                    a["value"].as_u64().unwrap(),
                    a["valueTwo"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        let mut count = [0; 6];
        for a in &args {
            count[a.0 as usize] += 1;
        }
        let groups: Vec<Vec<_>> = if count.iter().any(|&c| c > 1) {
            args.iter().map(|a| vec![*a]).collect()
        } else {
            vec![args.clone()]
        };
        for name in c["names"].as_array().unwrap() {
            for g in &groups {
                s += &format!("rule {act} {} {}", name.as_str().unwrap(), g.len());
                for (i, op, a, b) in g {
                    s += &format!(" {i} {op} {a} {b}");
                }
                s += "\n";
            }
        }
    }
    s
}

fn read_bpf(path: &Path) -> Vec<SockFilter> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(8)
        .map(|c| SockFilter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}

/// runc's patchbpf -ENOSYS stub (enosys_linux.go), evaluated directly.
fn runc_stub(p: &Value, lib: &HashMap<(Abi, String), i64>, d: &SeccompData) -> Option<u32> {
    if matches!(
        p["defaultAction"].as_str().unwrap(),
        "SCMP_ACT_ALLOW" | "SCMP_ACT_LOG" | "SCMP_ACT_TRACE"
    ) {
        return None;
    }
    let mut abis = vec![Abi::X86_64];
    for a in p["architectures"].as_array().into_iter().flatten() {
        abis.push(match a.as_str().unwrap() {
            "SCMP_ARCH_X86" => Abi::X86,
            "SCMP_ARCH_X32" => Abi::X32,
            _ => Abi::X86_64,
        });
    }
    let max = |abi: Abi| -> Option<u32> {
        if !abis.contains(&abi) {
            return None;
        }
        let mut m = 0i64;
        for c in p["syscalls"].as_array().into_iter().flatten() {
            for n in c["names"].as_array().unwrap() {
                if let Some(&v) = lib.get(&(abi, n.as_str().unwrap().to_string())) {
                    m = m.max(v);
                }
            }
        }
        (m != 0).then_some(m as u32)
    };
    let enosys = 0x0005_0000 | 38;
    let over = |m: Option<u32>| m.is_some_and(|m| d.nr > m).then_some(enosys);
    match d.arch {
        0xc000_003e if d.nr & 0x4000_0000 != 0 => over(max(Abi::X32)),
        0xc000_003e => over(max(Abi::X86_64)),
        0x4000_0003 => over(max(Abi::X86)),
        _ => None,
    }
}

#[test]
fn verdicts_match_libseccomp_and_runc() {
    let Some(h) = helper() else { return };
    if Abi::native() != Abi::X86_64 {
        eprintln!("SKIPPED: the differential test runs on x86_64 hosts");
        return;
    }
    let names = agreed_names(h);
    assert!(
        names.len() > 300,
        "only {} names agree with libseccomp",
        names.len()
    );
    let lib_nr = lib_numbers(h);
    let dir = tempfile::tempdir().unwrap();
    let (mut compared, mut refused, mut ours_refused, mut inputs) = (0, 0, 0, 0);
    let (mut simple_profiles, mut deviating_profiles, mut lib_deviations) = (0, 0, 0);
    let mut refusals: HashMap<String, u32> = HashMap::new();
    for seed in 0..PROFILES {
        let mut rng = Rng::new(seed);
        let pj = gen_profile(&mut rng, &names, true);
        let profile: LinuxSeccomp = serde_json::from_value(pj.clone()).unwrap();
        let plain = compile_with(
            &profile,
            &Options {
                native: Abi::X86_64,
                enosys: false,
            },
        );
        let stubbed = compile_with(
            &profile,
            &Options {
                native: Abi::X86_64,
                enosys: true,
            },
        );
        let (plain, stubbed) = match (plain, stubbed) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) => {
                // Only the runc restrictions may refuse a generated profile.
                assert!(
                    e.to_string().contains("SCMP_ACT_NOTIFY"),
                    "seed {seed}: {e}"
                );
                ours_refused += 1;
                continue;
            }
            (_, Err(e)) => panic!("seed {seed}: {e}"),
        };
        let input = dir.path().join("in");
        let output = dir.path().join("out");
        std::fs::write(&input, runc_input(&pj)).unwrap();
        let st = Command::new(&h.exe)
            .arg("bpf")
            .arg(&input)
            .arg(&output)
            .output()
            .unwrap();
        if st.status.code() == Some(3) {
            let why = String::from_utf8_lossy(&st.stderr);
            *refusals
                .entry(why.split_whitespace().last().unwrap_or("").to_string())
                .or_insert(0) += 1;
            refused += 1;
            continue;
        }
        assert!(
            st.status.success(),
            "seed {seed}: helper failed ({:?}): {}\n{}",
            st.status.code(),
            String::from_utf8_lossy(&st.stderr),
            runc_input(&pj)
        );
        let lib = read_bpf(&output);
        bpf::check(&lib)
            .unwrap_or_else(|e| panic!("seed {seed}: libseccomp program fails our checker: {e}"));
        let simple = common::is_simple(&pj);
        let mut deviated = false;
        for d in gen_inputs(&mut rng, &pj, INPUTS) {
            let lib_v = bpf::run(&lib, &d).unwrap();
            let ours = bpf::run(&plain.filter, &d).unwrap();
            let model = common::model(&pj, false, &d);
            // Ours always follows the documented semantics.
            assert_eq!(
                ours, model,
                "seed {seed}: ours {ours:#x} model {model:#x} for {d:x?}\nprofile: {pj}"
            );
            if lib_v != model {
                // libseccomp's rule tree can mis-merge several conditional rules of one
                // syscall (e.g. an NE rule next to GE rules on the same argument).
                assert!(
                    !simple,
                    "seed {seed}: ours {ours:#x} libseccomp {lib_v:#x} for {d:x?}\nprofile: {pj}\nlibseccomp input:\n{}",
                    runc_input(&pj)
                );
                deviated = true;
                lib_deviations += 1;
            }
            // ENOSYS stub: runc's patchbpf semantics on top of libseccomp's verdict.
            let want = runc_stub(&pj, lib_nr, &d).unwrap_or(model);
            let got = bpf::run(&stubbed.filter, &d).unwrap();
            assert_eq!(got, want, "seed {seed} (with ENOSYS stub): ours {got:#x} runc {want:#x} for {d:x?}\nprofile: {pj}");
            assert_eq!(got, common::model(&pj, true, &d));
            inputs += 1;
        }
        if simple {
            simple_profiles += 1;
        }
        if deviated {
            deviating_profiles += 1;
        }
        compared += 1;
    }
    eprintln!(
        "compared {compared} profiles ({inputs} inputs, {simple_profiles} profiles with at most one \
         conditional rule per syscall, all agreeing); libseccomp refused {refused} {refusals:?}, we refused {ours_refused}; \
         libseccomp deviated from OR-of-AND semantics on {lib_deviations} inputs in {deviating_profiles} \
         multi-rule profiles"
    );
    assert!(
        simple_profiles > PROFILES / 8,
        "too few simple profiles: {simple_profiles}"
    );
    assert!(
        compared as u64 > PROFILES * 3 / 4,
        "too few profiles compared: {compared}"
    );
}

#[test]
fn default_profile_matches_libseccomp() {
    let Some(h) = helper() else { return };
    let caps: Vec<String> = [
        "CAP_CHOWN",
        "CAP_NET_RAW",
        "CAP_SYS_CHROOT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_PTRACE",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let names = agreed_names(h);
    for caps in [&caps[..2], &caps[..]] {
        let profile = berth_seccomp::default_profile_for(caps, Abi::X86_64, Some((6, 1)));
        let mut pj = serde_json::to_value(&profile).unwrap();
        // Keep only names both tables agree on.
        for s in pj["syscalls"].as_array_mut().unwrap() {
            let ns: Vec<Value> = s["names"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|n| names.contains(&n.as_str().unwrap()))
                .cloned()
                .collect();
            s["names"] = Value::Array(ns);
        }
        let profile: LinuxSeccomp = serde_json::from_value(pj.clone()).unwrap();
        let plain = compile_with(
            &profile,
            &Options {
                native: Abi::X86_64,
                enosys: false,
            },
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("in"), runc_input(&pj)).unwrap();
        let st = Command::new(&h.exe)
            .arg("bpf")
            .arg(dir.path().join("in"))
            .arg(dir.path().join("out"))
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
        let lib = read_bpf(&dir.path().join("out"));
        let mut rng = Rng::new(7);
        let mut n = 0;
        for abi in [Abi::X86_64, Abi::X86, Abi::X32] {
            for (name, nr) in abi.table() {
                for _ in 0..4 {
                    let mut args = [0u64; 6];
                    for a in &mut args {
                        a.clone_from(rng.pick(&[
                            0,
                            1,
                            8,
                            38,
                            39,
                            40,
                            41,
                            0x20000,
                            0xffff_ffff,
                            0x7e02_0000,
                            0x1_0000_0000,
                        ]));
                    }
                    let d = SeccompData {
                        nr: *nr,
                        arch: abi.audit_arch(),
                        instruction_pointer: 0,
                        args,
                    };
                    assert_eq!(
                        bpf::run(&plain.filter, &d).unwrap(),
                        bpf::run(&lib, &d).unwrap(),
                        "{abi:?} {name} {args:x?}"
                    );
                    n += 1;
                }
            }
        }
        eprintln!(
            "default profile ({} caps): {n} inputs agree; ours {} insns, libseccomp {}",
            caps.len(),
            plain.filter.len(),
            lib.len()
        );
    }
}
