//! cgroup v2 device filtering: a BPF_PROG_TYPE_CGROUP_DEVICE program generated in Rust
//! (same structure as runc's devicefilter), loaded and attached through berth-sys.
//!
//! The program reads `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
//! (access_type = device type in the low 16 bits, access bits in the high 16), tries each
//! exception of the emulated v1 state and returns its verdict on the first match, else
//! the default verdict.

use std::path::Path;

use super::emulator::Emulator;
use super::DeviceRule;
use crate::Error;

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    /// The kernel's 8-byte little-endian encoding.
    pub fn encode(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = (self.src << 4) | (self.dst & 0x0f);
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }
}

// Opcodes (linux/bpf_common.h, linux/bpf.h).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K: u8 = 0x54;
const ALU32_RSH_K: u8 = 0x74;
const ALU32_MOV_K: u8 = 0xb4;
const ALU32_MOV_X: u8 = 0xbc;
const JMP_JNE_K: u8 = 0x55;
const JMP_JNE_X: u8 = 0x5d;
const JMP_JEQ_K: u8 = 0x15;
const JMP_EXIT: u8 = 0x95;

const DEV_BLOCK: i32 = 1; // BPF_DEVCG_DEV_BLOCK
const DEV_CHAR: i32 = 2; // BPF_DEVCG_DEV_CHAR
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

fn i(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}

/// Generates the program for an emulated device state.
pub fn program(state: &Emulator) -> Result<Vec<Insn>, Error> {
    let mut p = vec![
        i(LDX_MEM_W, 2, 1, 0, 0),        // r2 = ctx->access_type
        i(ALU32_AND_K, 2, 0, 0, 0xffff), // r2 &= 0xffff (type)
        i(LDX_MEM_W, 3, 1, 0, 0),        // r3 = ctx->access_type
        i(ALU32_RSH_K, 3, 0, 0, 16),     // r3 >>= 16 (access)
        i(LDX_MEM_W, 4, 1, 4, 0),        // r4 = ctx->major
        i(LDX_MEM_W, 5, 1, 8, 0),        // r5 = ctx->minor
    ];
    for r in state.exception_rules() {
        p.extend(block(&r)?);
    }
    p.push(i(ALU32_MOV_K, 0, 0, 0, i32::from(state.default_allow)));
    p.push(i(JMP_EXIT, 0, 0, 0, 0));
    Ok(p)
}

fn block(r: &DeviceRule) -> Result<Vec<Insn>, Error> {
    let bad = |reason: &str| Error::Invalid {
        field: "devices".into(),
        value: r.to_v1(),
        reason: reason.into(),
    };
    let typ = match r.typ {
        'c' => DEV_CHAR,
        'b' => DEV_BLOCK,
        _ => return Err(bad("only b and c rules can be exceptions")),
    };
    let num = |v: Option<u32>| -> Result<Option<i32>, Error> {
        // JNE with an immediate compares 64-bit against a sign-extended imm.
        v.map(|n| i32::try_from(n).map_err(|_| bad("device number above 2^31-1")))
            .transpose()
    };
    let (major, minor) = (num(r.major)?, num(r.minor)?);
    let mut acc = 0;
    for c in r.access.chars() {
        acc |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => return Err(bad("bad access")),
        };
    }
    // Conditions jump to the block's end (the next block) on mismatch; patched below.
    let mut body: Vec<Insn> = vec![i(JMP_JNE_K, 2, 0, 0, typ)];
    if acc != ACC_READ | ACC_WRITE | ACC_MKNOD {
        body.push(i(ALU32_MOV_X, 1, 3, 0, 0));
        body.push(i(ALU32_AND_K, 1, 0, 0, acc));
        if r.allow {
            // An allow exception covers a request only if it grants every bit asked
            // for: skip if (r3 & acc) != r3.
            body.push(i(JMP_JNE_X, 1, 3, 0, 0));
        } else {
            // A deny exception refuses any request touching one of its bits (v1's
            // partial match): skip if (r3 & acc) == 0.
            body.push(i(JMP_JEQ_K, 1, 0, 0, 0));
        }
    }
    if let Some(m) = major {
        body.push(i(JMP_JNE_K, 4, 0, 0, m));
    }
    if let Some(m) = minor {
        body.push(i(JMP_JNE_K, 5, 0, 0, m));
    }
    body.push(i(ALU32_MOV_K, 0, 0, 0, i32::from(r.allow)));
    body.push(i(JMP_EXIT, 0, 0, 0, 0));
    let len = body.len();
    for (idx, ins) in body.iter_mut().enumerate() {
        if matches!(ins.code, JMP_JNE_K | JMP_JNE_X | JMP_JEQ_K) {
            ins.off = (len - idx - 1) as i16;
        }
    }
    Ok(body)
}

/// Runs a generated program on one access, in Rust: lets unit tests check the verdicts
/// without a kernel. Supports exactly the instructions [`program`] emits.
pub fn interpret(
    p: &[Insn],
    typ: char,
    major: u32,
    minor: u32,
    access: &str,
) -> Result<bool, String> {
    let t: u64 = match typ {
        'b' => DEV_BLOCK as u64,
        'c' => DEV_CHAR as u64,
        _ => return Err("type".into()),
    };
    let mut acc = 0u64;
    for c in access.chars() {
        acc |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => return Err("access".into()),
        } as u64;
    }
    let ctx = [(acc << 16) | t, u64::from(major), u64::from(minor)];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    for _ in 0..10_000 {
        let ins = p.get(pc).ok_or("pc out of range")?;
        let (d, s) = (ins.dst as usize, ins.src as usize);
        let imm = ins.imm as i64 as u64;
        pc += 1;
        match ins.code {
            LDX_MEM_W => {
                if s != 1 {
                    return Err("load from non-ctx".into());
                }
                r[d] = ctx[(ins.off / 4) as usize] & 0xffff_ffff;
            }
            ALU32_AND_K => r[d] = (r[d] & imm) & 0xffff_ffff,
            ALU32_RSH_K => r[d] = ((r[d] as u32) >> ins.imm) as u64,
            ALU32_MOV_K => r[d] = imm & 0xffff_ffff,
            ALU32_MOV_X => r[d] = r[s] & 0xffff_ffff,
            JMP_JNE_K => {
                if r[d] != imm {
                    pc = (pc as i64 + ins.off as i64) as usize;
                }
            }
            JMP_JEQ_K => {
                if r[d] == imm {
                    pc = (pc as i64 + ins.off as i64) as usize;
                }
            }
            JMP_JNE_X => {
                if r[d] != r[s] {
                    pc = (pc as i64 + ins.off as i64) as usize;
                }
            }
            JMP_EXIT => return Ok(r[0] == 1),
            c => return Err(format!("unknown opcode {c:#x}")),
        }
    }
    Err("no exit".into())
}

/// Loads the program for `rules` and attaches it to the cgroup `dir`, replacing any
/// device programs attached there before (new one first, so there is no open window).
#[cfg(feature = "bpf")]
pub(crate) fn apply(dir: &Path, state: &Emulator) -> Result<(), Error> {
    use berth_sys::bpf;
    use std::os::fd::AsFd;
    let err = |source: std::io::Error| Error::Bpf {
        path: dir.into(),
        source,
    };
    let insns: Vec<bpf::BpfInsn> = program(state)?
        .iter()
        .map(|x| bpf::BpfInsn::from_bytes(x.encode()))
        .collect();
    let prog = bpf::prog_load_cgroup_device(&insns, c"Apache").map_err(err)?;
    let cg = std::fs::File::open(dir).map_err(err)?;
    let old = bpf::prog_query_cgroup_device(cg.as_fd()).map_err(err)?;
    bpf::prog_attach_cgroup_device(cg.as_fd(), prog.as_fd(), bpf::BPF_F_ALLOW_MULTI)
        .map_err(err)?;
    for id in old {
        // A program may have gone away meanwhile; that is what we wanted anyway.
        match bpf::prog_get_fd_by_id(id) {
            Ok(fd) => match bpf::prog_detach_cgroup_device(cg.as_fd(), fd.as_fd()) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(2) => {}
                Err(e) => return Err(err(e)),
            },
            Err(e) if e.raw_os_error() == Some(2) => {}
            Err(e) => return Err(err(e)),
        }
    }
    Ok(())
}

/// Without the `bpf` feature the program can be generated but not loaded.
#[cfg(not(feature = "bpf"))]
pub(crate) fn apply(dir: &Path, state: &Emulator) -> Result<(), Error> {
    program(state)?;
    let _ = dir;
    Err(Error::Unsupported {
        field: "devices".into(),
        reason: "cgroup v2 device filtering needs berth-cgroups built with the \"bpf\" feature (berth-sys bpf module)".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(list: &[(bool, &str)]) -> Emulator {
        let r: Vec<DeviceRule> = list
            .iter()
            .map(|(a, s)| DeviceRule::parse_v1(s, *a).unwrap())
            .collect();
        Emulator::from_rules(&r).unwrap()
    }

    #[test]
    fn encoding() {
        assert_eq!(
            i(LDX_MEM_W, 2, 1, 0, 0).encode(),
            [0x61, 0x12, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            i(JMP_JNE_K, 4, 0, 3, 136).encode(),
            [0x55, 0x04, 3, 0, 136, 0, 0, 0]
        );
        assert_eq!(
            i(ALU32_AND_K, 2, 0, 0, 0xffff).encode(),
            [0x54, 0x02, 0, 0, 0xff, 0xff, 0, 0]
        );
    }

    #[test]
    fn verdicts_match_v1_semantics() {
        let st = rules(&[
            (false, "a"),
            (true, "c 1:3 rw"),
            (true, "c 136:* rwm"),
            (true, "b *:* m"),
        ]);
        let p = program(&st).unwrap();
        let v = |t, ma, mi, a| interpret(&p, t, ma, mi, a).unwrap();
        assert!(v('c', 1, 3, "r"));
        assert!(v('c', 1, 3, "rw"));
        assert!(!v('c', 1, 3, "m"), "m not granted");
        assert!(!v('c', 1, 5, "r"));
        assert!(v('c', 136, 7, "rw"));
        assert!(!v('b', 136, 7, "r"));
        assert!(v('b', 8, 0, "m"));
        assert!(!v('b', 8, 0, "r"));
        // allow-all with a deny exception
        let st = rules(&[(false, "c 1:5 w")]);
        let p = program(&st).unwrap();
        assert!(interpret(&p, 'c', 1, 5, "r").unwrap());
        assert!(!interpret(&p, 'c', 1, 5, "w").unwrap());
        assert!(!interpret(&p, 'c', 1, 5, "rw").unwrap());
        assert!(interpret(&p, 'b', 1, 5, "rw").unwrap());
        // deny all, nothing else: 8 insns (6 prologue + 2 epilogue)
        let p = program(&rules(&[(false, "a")])).unwrap();
        assert_eq!(p.len(), 8);
        assert!(!interpret(&p, 'c', 1, 3, "r").unwrap());
    }

    #[test]
    fn huge_numbers_refused() {
        let st = rules(&[(false, "a"), (true, "c 3000000000:1 r")]);
        assert!(program(&st).is_err());
    }
}
