//! Classic BPF as seccomp uses it: a label-based assembler that fixes up the 8-bit
//! jump offsets, the kernel's static checks, and an interpreter over
//! `struct seccomp_data` (used by the tests and by anyone debugging a profile).

use std::collections::HashMap;

pub use berth_sys::seccomp::SockFilter;

// Instruction classes and fields (linux/filter.h, linux/bpf_common.h).
pub const LD: u16 = 0x00;
pub const LDX: u16 = 0x01;
pub const ST: u16 = 0x02;
pub const STX: u16 = 0x03;
pub const ALU: u16 = 0x04;
pub const JMP: u16 = 0x05;
pub const RET: u16 = 0x06;
pub const MISC: u16 = 0x07;
pub const W: u16 = 0x00;
pub const ABS: u16 = 0x20;
pub const IMM: u16 = 0x00;
pub const MEM: u16 = 0x60;
pub const LEN: u16 = 0x80;
pub const K: u16 = 0x00;
pub const X: u16 = 0x08;
pub const A: u16 = 0x10;
pub const JA: u16 = 0x00;
pub const JEQ: u16 = 0x10;
pub const JGT: u16 = 0x20;
pub const JGE: u16 = 0x30;
pub const JSET: u16 = 0x40;
pub const ADD: u16 = 0x00;
pub const SUB: u16 = 0x10;
pub const MUL: u16 = 0x20;
pub const DIV: u16 = 0x30;
pub const OR: u16 = 0x40;
pub const AND: u16 = 0x50;
pub const LSH: u16 = 0x60;
pub const RSH: u16 = 0x70;
pub const NEG: u16 = 0x80;
pub const MOD: u16 = 0x90;
pub const XOR: u16 = 0xa0;
pub const TAX: u16 = 0x00;
pub const TXA: u16 = 0x80;

/// Size of `struct seccomp_data`.
pub const SECCOMP_DATA_LEN: u32 = 64;
/// Scratch memory slots (BPF_MEMWORDS).
const MEMWORDS: usize = 16;

/// The input of a seccomp filter (`struct seccomp_data`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeccompData {
    pub nr: u32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

impl SeccompData {
    /// The structure as the kernel lays it out in memory (native endian).
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..4].copy_from_slice(&self.nr.to_ne_bytes());
        b[4..8].copy_from_slice(&self.arch.to_ne_bytes());
        b[8..16].copy_from_slice(&self.instruction_pointer.to_ne_bytes());
        for (i, a) in self.args.iter().enumerate() {
            b[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        b
    }
}

/// Offset of the low (`hi == false`) or high 32-bit word of argument `index`.
pub fn arg_offset(index: usize, hi: bool) -> u32 {
    let base = 16 + 8 * index as u32;
    let lo_first = cfg!(target_endian = "little");
    if hi == lo_first {
        base + 4
    } else {
        base
    }
}

/// Why a program is not one the kernel would run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("program has {0} instructions, must be 1..=4096")]
    Length(usize),
    #[error("instruction {0} has unknown or disallowed opcode {1:#06x}")]
    Opcode(usize, u16),
    #[error("instruction {0} jumps out of the program")]
    JumpOutOfRange(usize),
    #[error("instruction {0} loads unaligned or out-of-range offset {1}")]
    BadLoad(usize, u32),
    #[error("instruction {0} uses scratch slot {1}, only 16 exist")]
    BadMem(usize, u32),
    #[error("instruction {0} divides by the constant zero")]
    DivByZero(usize),
    #[error("the last instruction is not a return")]
    NoFinalReturn,
}

/// The static checks the kernel applies to a seccomp filter (bpf_check_classic plus
/// seccomp_check_filter), so tests can assert a program would load.
pub fn check(prog: &[SockFilter]) -> Result<(), CheckError> {
    if prog.is_empty() || prog.len() > 4096 {
        return Err(CheckError::Length(prog.len()));
    }
    for (pc, ins) in prog.iter().enumerate() {
        let class = ins.code & 0x07;
        let rest = prog.len() - pc - 1;
        match class {
            LD | LDX => match (class, ins.code) {
                (LD, c) if c == LD | W | ABS => {
                    if ins.k % 4 != 0 || ins.k >= SECCOMP_DATA_LEN {
                        return Err(CheckError::BadLoad(pc, ins.k));
                    }
                }
                (_, c) if c == class | W | LEN || c == class | IMM => {}
                (_, c) if c == class | W | MEM => {
                    if ins.k as usize >= MEMWORDS {
                        return Err(CheckError::BadMem(pc, ins.k));
                    }
                }
                _ => return Err(CheckError::Opcode(pc, ins.code)),
            },
            ST | STX => {
                if ins.code != class || ins.k as usize >= MEMWORDS {
                    return Err(CheckError::BadMem(pc, ins.k));
                }
            }
            ALU => {
                let op = ins.code & 0xf0;
                if !matches!(
                    op,
                    ADD | SUB | MUL | DIV | OR | AND | LSH | RSH | NEG | MOD | XOR
                ) {
                    return Err(CheckError::Opcode(pc, ins.code));
                }
                if matches!(op, DIV | MOD) && ins.code & X == 0 && ins.k == 0 {
                    return Err(CheckError::DivByZero(pc));
                }
            }
            JMP => {
                let op = ins.code & 0xf0;
                match op {
                    JA => {
                        if ins.code != JMP | JA || ins.k as usize >= rest {
                            return Err(CheckError::JumpOutOfRange(pc));
                        }
                    }
                    JEQ | JGT | JGE | JSET => {
                        if ins.jt as usize >= rest || ins.jf as usize >= rest {
                            return Err(CheckError::JumpOutOfRange(pc));
                        }
                    }
                    _ => return Err(CheckError::Opcode(pc, ins.code)),
                }
            }
            RET => {
                if ins.code != RET | K && ins.code != RET | A {
                    return Err(CheckError::Opcode(pc, ins.code));
                }
            }
            MISC => {
                if ins.code != MISC | TAX && ins.code != MISC | TXA {
                    return Err(CheckError::Opcode(pc, ins.code));
                }
            }
            _ => return Err(CheckError::Opcode(pc, ins.code)),
        }
    }
    if prog[prog.len() - 1].code & 0x07 != RET {
        return Err(CheckError::NoFinalReturn);
    }
    Ok(())
}

/// Runs a program the way the kernel would and returns its verdict.
/// The program must pass [`check`]; an unchecked program gets an error instead of a panic.
pub fn run(prog: &[SockFilter], data: &SeccompData) -> Result<u32, CheckError> {
    check(prog)?;
    let bytes = data.to_bytes();
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; MEMWORDS];
    let mut pc = 0usize;
    loop {
        let ins = prog[pc];
        pc += 1;
        let class = ins.code & 0x07;
        match class {
            LD | LDX => {
                let v = if ins.code & 0xe0 == ABS {
                    let k = ins.k as usize;
                    u32::from_ne_bytes(bytes[k..k + 4].try_into().expect("4 bytes"))
                } else if ins.code & 0xe0 == LEN {
                    SECCOMP_DATA_LEN
                } else if ins.code & 0xe0 == MEM {
                    mem[ins.k as usize]
                } else {
                    ins.k
                };
                if class == LD {
                    a = v
                } else {
                    x = v
                }
            }
            ST => mem[ins.k as usize] = a,
            STX => mem[ins.k as usize] = x,
            ALU => {
                let src = if ins.code & X != 0 { x } else { ins.k };
                a = match ins.code & 0xf0 {
                    ADD => a.wrapping_add(src),
                    SUB => a.wrapping_sub(src),
                    MUL => a.wrapping_mul(src),
                    // A runtime division by X == 0 makes the kernel's filter return 0.
                    DIV => match a.checked_div(src) {
                        Some(v) => v,
                        None => return Ok(0),
                    },
                    MOD => match a.checked_rem(src) {
                        Some(v) => v,
                        None => return Ok(0),
                    },
                    OR => a | src,
                    AND => a & src,
                    XOR => a ^ src,
                    LSH => a.checked_shl(src).unwrap_or(0),
                    RSH => a.checked_shr(src).unwrap_or(0),
                    _ => a.wrapping_neg(),
                }
            }
            JMP => {
                let op = ins.code & 0xf0;
                if op == JA {
                    pc += ins.k as usize;
                    continue;
                }
                let src = if ins.code & X != 0 { x } else { ins.k };
                let taken = match op {
                    JEQ => a == src,
                    JGT => a > src,
                    JGE => a >= src,
                    _ => a & src != 0,
                };
                pc += if taken { ins.jt } else { ins.jf } as usize;
            }
            RET => return Ok(if ins.code & 0x18 == A { a } else { ins.k }),
            _ => {
                if ins.code == MISC | TAX {
                    x = a
                } else {
                    a = x
                }
            }
        }
    }
}

/// A jump target in [`Asm`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// The instruction right after the jump.
    Next,
    Label(Label),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Label(u32);

#[derive(Clone, Copy, Debug)]
enum Item {
    Insn(SockFilter),
    Cond {
        code: u16,
        k: u32,
        jt: Target,
        jf: Target,
    },
    Ja(Label),
    Bind(Label),
}

/// An assembler with symbolic forward labels. Conditional jumps whose target is more
/// than 255 instructions away are rewritten through `JA` (32-bit offset) trampolines.
#[derive(Default)]
pub struct Asm {
    items: Vec<Item>,
    labels: u32,
}

/// Why [`Asm::finish`] failed (a compiler bug, never user input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsmError {
    #[error("label {0} is never bound")]
    Unbound(u32),
    #[error("label {0} is bound twice")]
    Rebound(u32),
    #[error("jump at item {0} goes backwards")]
    Backwards(usize),
}

impl Asm {
    pub fn new() -> Self {
        Self::default()
    }
    /// Instructions emitted so far (before jump fix-ups).
    pub fn len(&self) -> usize {
        self.items
            .iter()
            .filter(|i| !matches!(i, Item::Bind(_)))
            .count()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }
    pub fn bind(&mut self, l: Label) {
        self.items.push(Item::Bind(l));
    }
    pub fn load(&mut self, offset: u32) {
        self.items.push(Item::Insn(SockFilter {
            code: LD | W | ABS,
            jt: 0,
            jf: 0,
            k: offset,
        }));
    }
    pub fn and(&mut self, k: u32) {
        self.items.push(Item::Insn(SockFilter {
            code: ALU | AND | K,
            jt: 0,
            jf: 0,
            k,
        }));
    }
    pub fn ret(&mut self, k: u32) {
        self.items.push(Item::Insn(SockFilter {
            code: RET | K,
            jt: 0,
            jf: 0,
            k,
        }));
    }
    /// `if (A op k) goto jt else goto jf`, op one of JEQ JGT JGE JSET.
    pub fn jump(&mut self, op: u16, k: u32, jt: Target, jf: Target) {
        self.items.push(Item::Cond {
            code: JMP | op | K,
            k,
            jt,
            jf,
        });
    }
    pub fn ja(&mut self, l: Label) {
        self.items.push(Item::Ja(l));
    }

    /// Resolves labels and returns the program.
    pub fn finish(mut self) -> Result<Vec<SockFilter>, AsmError> {
        loop {
            let (pos, labels) = layout(&self.items)?;
            let mut far = Vec::new();
            for (i, it) in self.items.iter().enumerate() {
                if let Item::Cond { jt, jf, .. } = *it {
                    let t = distance(pos[i], jt, &labels).ok_or(AsmError::Backwards(i))?;
                    let f = distance(pos[i], jf, &labels).ok_or(AsmError::Backwards(i))?;
                    if t > 255 || f > 255 {
                        far.push(i);
                    }
                }
            }
            if far.is_empty() {
                return emit(&self.items, &pos, &labels);
            }
            // `jX k, T, F` becomes `jX k, 0, 1; ja T; ja F`. Rewriting back to front keeps
            // the remaining indices valid; new distances are checked on the next pass.
            for &i in far.iter().rev() {
                let Item::Cond { code, k, jt, jf } = self.items[i] else {
                    unreachable!("only conditional jumps are collected")
                };
                let after = self.label();
                let second = self.label();
                let resolve = |t: Target| match t {
                    Target::Next => after,
                    Target::Label(l) => l,
                };
                let seq = [
                    Item::Cond {
                        code,
                        k,
                        jt: Target::Next,
                        jf: Target::Label(second),
                    },
                    Item::Ja(resolve(jt)),
                    Item::Bind(second),
                    Item::Ja(resolve(jf)),
                    Item::Bind(after),
                ];
                self.items.splice(i..=i, seq);
            }
        }
    }
}

type Layout = (Vec<usize>, HashMap<Label, usize>);

fn layout(items: &[Item]) -> Result<Layout, AsmError> {
    let mut pos = Vec::with_capacity(items.len());
    let mut labels = HashMap::new();
    let mut pc = 0usize;
    for it in items {
        pos.push(pc);
        match it {
            Item::Bind(l) => {
                if labels.insert(*l, pc).is_some() {
                    return Err(AsmError::Rebound(l.0));
                }
            }
            _ => pc += 1,
        }
    }
    for it in items {
        let ts: &[Target] = match it {
            Item::Cond { jt, jf, .. } => &[*jt, *jf],
            Item::Ja(l) => &[Target::Label(*l)],
            _ => &[],
        };
        for t in ts {
            if let Target::Label(l) = t {
                if !labels.contains_key(l) {
                    return Err(AsmError::Unbound(l.0));
                }
            }
        }
    }
    Ok((pos, labels))
}

fn distance(at: usize, t: Target, labels: &HashMap<Label, usize>) -> Option<usize> {
    match t {
        Target::Next => Some(0),
        Target::Label(l) => labels[&l].checked_sub(at + 1),
    }
}

fn emit(
    items: &[Item],
    pos: &[usize],
    labels: &HashMap<Label, usize>,
) -> Result<Vec<SockFilter>, AsmError> {
    let mut out = Vec::with_capacity(items.len());
    for (i, it) in items.iter().enumerate() {
        match *it {
            Item::Insn(ins) => out.push(ins),
            Item::Cond { code, k, jt, jf } => {
                let t = distance(pos[i], jt, labels).ok_or(AsmError::Backwards(i))?;
                let f = distance(pos[i], jf, labels).ok_or(AsmError::Backwards(i))?;
                out.push(SockFilter {
                    code,
                    jt: t as u8,
                    jf: f as u8,
                    k,
                });
            }
            Item::Ja(l) => {
                let d = distance(pos[i], Target::Label(l), labels).ok_or(AsmError::Backwards(i))?;
                out.push(SockFilter {
                    code: JMP | JA,
                    jt: 0,
                    jf: 0,
                    k: d as u32,
                });
            }
            Item::Bind(_) => {}
        }
    }
    Ok(out)
}
