//! Shared by the randomized tests: a seeded PRNG, a profile generator and an input
//! generator. Deterministic for a given seed.
#![allow(dead_code)]

use berth_seccomp::bpf::SeccompData;
use berth_seccomp::Abi;
use serde_json::{json, Value};

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

pub const OPS: [&str; 7] = [
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

const VALUES: [u64; 16] = [
    0,
    1,
    2,
    38,
    0x7f,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0001,
    0xffff_ffff_0000_0000,
    0x8000_0000_0000_0000,
    0x7fff_ffff_ffff_ffff,
    u64::MAX,
    0x0000_0012_3456_789a,
];

pub fn value(rng: &mut Rng) -> u64 {
    match rng.below(4) {
        0 => rng.next(),
        1 => rng.next() & 0xffff_ffff,
        _ => *rng.pick(&VALUES),
    }
}

fn action(rng: &mut Rng, notify: bool) -> (String, Option<u32>) {
    let acts = [
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_LOG",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_NOTIFY",
        "SCMP_ACT_ERRNO",
    ];
    let n = if notify { acts.len() } else { acts.len() - 2 };
    let a = acts[rng.below(n)];
    let a = if a == "SCMP_ACT_NOTIFY" && !notify {
        "SCMP_ACT_ERRNO"
    } else {
        a
    };
    let e = match a {
        "SCMP_ACT_ERRNO" | "SCMP_ACT_TRACE" if rng.chance(70) => {
            Some(*rng.pick(&[1u32, 13, 38, 95, 4094]))
        }
        _ => None,
    };
    (a.to_string(), e)
}

/// A random profile over `names`. Every syscall name gets one action for all its
/// conditional rules (overlapping conditional rules with different actions are where
/// libseccomp's rule tree and first-match may differ); an unconditional rule with
/// another action is sometimes added (it wins in both).
pub fn gen_profile(rng: &mut Rng, names: &[&str], notify: bool) -> Value {
    // Half the profiles give each name at most one conditional rule.
    let simple = rng.chance(50);
    let mut conditional: Vec<&str> = Vec::new();
    let (default, default_errno) = loop {
        let a = action(rng, false);
        if a.0 != "SCMP_ACT_NOTIFY" {
            break a;
        }
    };
    let pool: Vec<&str> = (0..2 + rng.below(30)).map(|_| *rng.pick(names)).collect();
    let name_action: Vec<(String, Option<u32>)> =
        pool.iter().map(|_| action(rng, notify)).collect();
    let mut syscalls = Vec::new();
    for _ in 0..1 + rng.below(25) {
        let i = rng.below(pool.len());
        let (act, errno) = name_action[i].clone();
        // More names with the same action.
        let mut ns = vec![pool[i]];
        for (j, n) in pool.iter().enumerate() {
            if name_action[j] == name_action[i] && rng.chance(20) {
                ns.push(n);
            }
        }
        let mut args = Vec::new();
        if rng.chance(65) && !(simple && ns.iter().any(|n| conditional.contains(n))) {
            conditional.extend(ns.iter().copied());
            for _ in 0..1 + rng.below(3) {
                let op = *rng.pick(&OPS);
                let mut a = json!({"index": rng.below(6), "value": value(rng), "op": op});
                if op == "SCMP_CMP_MASKED_EQ" {
                    a["valueTwo"] = json!(value(rng));
                }
                args.push(a);
            }
        }
        let mut s = json!({"names": ns, "action": act});
        if let Some(e) = errno {
            s["errnoRet"] = json!(e);
        }
        if !args.is_empty() {
            s["args"] = json!(args);
        }
        syscalls.push(s);
        if rng.chance(5) {
            let (a2, e2) = action(rng, notify);
            let mut u = json!({"names": [pool[i]], "action": a2});
            if let Some(e) = e2 {
                u["errnoRet"] = json!(e);
            }
            syscalls.push(u);
        }
    }
    let all = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];
    let arches: Vec<&str> = all.iter().copied().filter(|_| rng.chance(50)).collect();
    let mut p = json!({"defaultAction": default, "architectures": arches, "syscalls": syscalls});
    if let Some(e) = default_errno {
        p["defaultErrnoRet"] = json!(e);
    }
    p
}

/// Inputs that hit the profile's syscalls, its argument boundaries, and the edges.
pub fn gen_inputs(rng: &mut Rng, profile: &Value, n: usize) -> Vec<SeccompData> {
    let mut names: Vec<String> = Vec::new();
    let mut vals: Vec<u64> = VALUES.to_vec();
    for s in profile["syscalls"].as_array().into_iter().flatten() {
        for n in s["names"].as_array().into_iter().flatten() {
            names.push(n.as_str().unwrap().to_string());
        }
        for a in s["args"].as_array().into_iter().flatten() {
            let v = a["value"].as_u64().unwrap();
            let t = a["valueTwo"].as_u64().unwrap_or(0);
            vals.extend([
                v,
                v.wrapping_add(1),
                v.wrapping_sub(1),
                t,
                t & v,
                (t & v) | !v,
                v ^ (1 << 32),
                v & 0xffff_ffff,
            ]);
        }
    }
    if names.is_empty() {
        names.push("read".into());
    }
    let abis = [
        Abi::X86_64,
        Abi::X86,
        Abi::X32,
        Abi::X86_64,
        Abi::X86,
        Abi::X32,
        Abi::Aarch64,
    ];
    (0..n)
        .map(|_| {
            let abi = *rng.pick(&abis);
            let arch = if rng.chance(3) {
                rng.next() as u32
            } else {
                abi.audit_arch()
            };
            let name = rng.pick(&names).clone();
            let nr = match rng.below(12) {
                0 => u32::MAX,
                1 => rng.next() as u32,
                2 => rng.below(600) as u32 | if abi == Abi::X32 { 0x4000_0000 } else { 0 },
                3 => 0x4000_0000 | rng.below(600) as u32,
                4 => berth_seccomp::Abi::X86.resolve("socketcall").unwrap(),
                _ => abi
                    .resolve(&name)
                    .or_else(|| Abi::X86_64.resolve(&name))
                    .unwrap_or(0),
            };
            let mut args = [0u64; 6];
            for a in &mut args {
                *a = if rng.chance(80) {
                    *rng.pick(&vals)
                } else {
                    rng.next()
                };
            }
            if nr == Abi::X86.resolve("socketcall").unwrap() && rng.chance(70) {
                args[0] = 1 + rng.below(24) as u64;
            }
            SeccompData {
                nr,
                arch,
                instruction_pointer: rng.next(),
                args,
            }
        })
        .collect()
}

fn act_value(act: &str, errno: Option<u64>) -> u32 {
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

/// One rule as the model sees it: conditions (index, op, value, valueTwo), ANDed.
type ModelRule = (u32, Vec<(usize, String, u64, u64)>);

/// The rules that apply to syscall `nr` of `abi`, in profile order (runc's dropping of
/// default-action rules and splitting of same-argument conditions applied).
pub fn model_rules(p: &Value, abi: Abi, nr: u32) -> Vec<ModelRule> {
    let default = act_value(
        p["defaultAction"].as_str().unwrap(),
        p["defaultErrnoRet"].as_u64(),
    );
    let mut out = Vec::new();
    for c in p["syscalls"].as_array().into_iter().flatten() {
        let act = act_value(c["action"].as_str().unwrap(), c["errnoRet"].as_u64());
        if act == default {
            continue;
        }
        let conds: Vec<(usize, String, u64, u64)> = c["args"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                (
                    a["index"].as_u64().unwrap() as usize,
                    a["op"].as_str().unwrap().to_string(),
                    a["value"].as_u64().unwrap(),
                    a["valueTwo"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        let dup = (0..6).any(|i| conds.iter().filter(|c| c.0 == i).count() > 1);
        let alts: Vec<Vec<_>> = if dup {
            conds.iter().map(|c| vec![c.clone()]).collect()
        } else {
            vec![conds]
        };
        for n in c["names"].as_array().unwrap() {
            let n = n.as_str().unwrap();
            for alt in &alts {
                if abi == Abi::X86 {
                    if let Some((mux, call)) = berth_seccomp::arch::x86_multiplexed(n) {
                        if Abi::X86.resolve(mux) == Some(nr) {
                            let mut a: Vec<_> = alt.iter().filter(|c| c.0 != 0).cloned().collect();
                            a.insert(0, (0, "SCMP_CMP_EQ".to_string(), call as u64, 0));
                            out.push((act, a));
                        }
                    }
                }
                if abi.resolve(n) == Some(nr) {
                    out.push((act, alt.clone()));
                }
            }
        }
    }
    out
}

fn cond_holds(abi: Abi, c: &(usize, String, u64, u64), args: &[u64; 6]) -> bool {
    let (mut a, mut v, mut t) = (args[c.0], c.2, c.3);
    if !abi.args_64bit() {
        a &= 0xffff_ffff;
        v &= 0xffff_ffff;
        t &= 0xffff_ffff;
    }
    match c.1.as_str() {
        "SCMP_CMP_NE" => a != v,
        "SCMP_CMP_LT" => a < v,
        "SCMP_CMP_LE" => a <= v,
        "SCMP_CMP_EQ" => a == v,
        "SCMP_CMP_GE" => a >= v,
        "SCMP_CMP_GT" => a > v,
        _ => a & v == t & v,
    }
}

/// The documented semantics, evaluated directly on x86_64 hosts: runc's ENOSYS stub
/// (when `enosys`), then libseccomp's architecture handling, then the rules
/// (unconditional wins, otherwise first match, otherwise the default).
pub fn model(p: &Value, enosys: bool, d: &SeccompData) -> u32 {
    let default_name = p["defaultAction"].as_str().unwrap();
    let default = act_value(default_name, p["defaultErrnoRet"].as_u64());
    let mut abis = vec![Abi::X86_64];
    for a in p["architectures"].as_array().into_iter().flatten() {
        match a.as_str().unwrap() {
            "SCMP_ARCH_X86" => abis.push(Abi::X86),
            "SCMP_ARCH_X32" => abis.push(Abi::X32),
            _ => {}
        }
    }
    let bit = d.nr & 0x4000_0000 != 0;
    let max = |abi: Abi| -> Option<u32> {
        if !abis.contains(&abi) {
            return None;
        }
        let m = p["syscalls"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["names"].as_array().unwrap().iter())
            .map(|n| n.as_str().unwrap())
            .filter(|n| !(abi == Abi::X86 && berth_seccomp::arch::x86_multiplexed(n).is_some()))
            .filter_map(|n| abi.resolve(n))
            .max()
            .unwrap_or(0);
        (m != 0).then_some(m)
    };
    if enosys
        && !matches!(
            default_name,
            "SCMP_ACT_ALLOW" | "SCMP_ACT_LOG" | "SCMP_ACT_TRACE"
        )
    {
        let m = match d.arch {
            0xc000_003e if bit => max(Abi::X32),
            0xc000_003e => max(Abi::X86_64),
            0x4000_0003 => max(Abi::X86),
            _ => None,
        };
        if m.is_some_and(|m| d.nr > m) {
            return 0x0005_0000 | 38;
        }
    }
    let abi = match d.arch {
        0x4000_0003 if abis.contains(&Abi::X86) => Abi::X86,
        0xc000_003e => {
            let (has64, has32) = (abis.contains(&Abi::X86_64), abis.contains(&Abi::X32));
            if has64 && has32 {
                if bit {
                    Abi::X32
                } else {
                    Abi::X86_64
                }
            } else if d.nr >= 0x4000_0000 {
                if has32 {
                    Abi::X32
                } else if d.nr == u32::MAX {
                    return default;
                } else {
                    return 0;
                }
            } else if has64 {
                Abi::X86_64
            } else {
                return 0;
            }
        }
        _ => return 0,
    };
    let rules = model_rules(p, abi, d.nr);
    if let Some(r) = rules.iter().find(|r| {
        r.1.iter().all(|c| {
            !abi.args_64bit() && c.1 == "SCMP_CMP_MASKED_EQ" && c.2 & 0xffff_ffff == 0
                || c.1 == "SCMP_CMP_MASKED_EQ" && c.2 == 0
        })
    }) {
        return r.0;
    }
    for r in &rules {
        if r.1.iter().all(|c| cond_holds(abi, c, &d.args)) {
            return r.0;
        }
    }
    default
}

/// Whether every syscall of the profile has at most one conditional rule per ABI, the
/// case where libseccomp's rule tree is known to agree with plain OR-of-AND semantics.
pub fn is_simple(p: &Value) -> bool {
    for abi in [Abi::X86_64, Abi::X86, Abi::X32] {
        let mut nrs: Vec<u32> = p["syscalls"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["names"].as_array().unwrap().iter())
            .filter_map(|n| abi.resolve(n.as_str().unwrap()))
            .collect();
        nrs.extend(Abi::X86.resolve("socketcall"));
        nrs.extend(Abi::X86.resolve("ipc"));
        for nr in &nrs {
            let rules = model_rules(p, abi, *nr);
            if rules.iter().filter(|r| !r.1.is_empty()).count() > 1 {
                return false;
            }
        }
    }
    true
}
