//! OCI `linux.seccomp` → classic BPF.
//!
//! Semantics follow runc + libseccomp so that profiles behave the same:
//! * a rule whose action equals the default action is dropped (runc);
//! * conditions of one rule are ANDed; if one rule names the same argument twice,
//!   each condition becomes its own rule (runc's compatibility behaviour);
//! * several rules for one syscall: an unconditional rule wins (the first one);
//!   otherwise the first matching conditional rule, in profile order, decides;
//! * names a table does not know for an ABI are skipped for that ABI;
//! * the native ABI is always in the filter; other listed ABIs of the native kernel's
//!   family are added; ABIs the native kernel can never report are left out (they
//!   could never match). Any other ABI gets the bad-arch action, KILL_THREAD
//!   (libseccomp's default);
//! * on x86_64 without x32 a syscall number with the x32 bit gets the bad-arch action
//!   (except -1, which tracers use to skip a call); on x32 without x86_64 likewise;
//! * 32-bit ABIs (x86, x32) compare the low 32 bits of arguments, as libseccomp does;
//! * runc's -ENOSYS stub: unless the default action is ALLOW, LOG or TRACE, a syscall
//!   number above the largest number the profile names for that ABI returns ENOSYS
//!   (checked before the ABI checks, as runc prepends it), so new syscalls like clone3
//!   make libc fall back.
//!
//! Code shape: load the arch, compare it against each ABI of the filter (else the
//! bad-arch action), load the syscall number, then a binary search over number ranges
//! (neighbouring numbers with the same unconditional action share a range) ending in a
//! return or in that syscall's conditional rules. Jumps farther than the 8-bit offsets
//! allow go through `JA` trampolines (see [`crate::bpf::Asm`]).

use std::collections::BTreeMap;

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

use crate::arch::{self, Abi, X32_SYSCALL_BIT};
use crate::bpf::{self, arg_offset, Asm, Label, Target, JEQ, JGE, JGT, JSET};
use crate::{Error, Program};
use berth_sys::seccomp as sys;

pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_KILL_THREAD: u32 = 0x0000_0000;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;
/// What a syscall from an ABI that is not in the filter gets (libseccomp's default).
pub const RET_BADARCH: u32 = RET_KILL_THREAD;
const ENOSYS: u32 = 38;
const EPERM: u32 = 1;
/// The kernel caps errno values at MAX_ERRNO.
const MAX_ERRNO: u32 = 4095;

/// Knobs for tests and cross-compilation; [`Options::default`] is what the runtime uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Options {
    /// The ABI of the kernel the filter will run on.
    pub native: Abi,
    /// Add runc's -ENOSYS stub (see the module docs).
    pub enosys: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            native: Abi::native(),
            enosys: true,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `(arg & mask) == value`, value already masked.
    Masked(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cond {
    index: usize,
    op: Op,
    value: u64,
}

/// One profile entry after validation: for `names`, `action` when any of `alts`
/// (each an AND of conditions) holds. An empty `alts` entry means unconditional.
struct Entry {
    names: Vec<String>,
    action: u32,
    alts: Vec<Vec<Cond>>,
}

/// Encodes an OCI action; `what` names the rule in errors.
pub(crate) fn action_value(
    act: LinuxSeccompAction,
    errno: Option<u32>,
    what: &str,
) -> Result<u32, Error> {
    use LinuxSeccompAction as A;
    if let Some(e) = errno {
        if !matches!(act, A::ScmpActErrno | A::ScmpActTrace) {
            return Err(Error::ErrnoNotAllowed {
                what: what.to_string(),
                action: act.to_string(),
            });
        }
        if e > MAX_ERRNO {
            return Err(Error::ErrnoRange {
                what: what.to_string(),
                errno: e,
            });
        }
    }
    Ok(match act {
        A::ScmpActKill | A::ScmpActKillThread => RET_KILL_THREAD,
        A::ScmpActKillProcess => RET_KILL_PROCESS,
        A::ScmpActTrap => RET_TRAP,
        // runc's default errno for ERRNO and TRACE is EPERM.
        A::ScmpActErrno => RET_ERRNO | errno.unwrap_or(EPERM),
        A::ScmpActTrace => RET_TRACE | errno.unwrap_or(EPERM),
        A::ScmpActNotify => RET_USER_NOTIF,
        A::ScmpActLog => RET_LOG,
        A::ScmpActAllow => RET_ALLOW,
    })
}

fn convert_arg(a: &oci_spec::runtime::LinuxSeccompArg, name: &str) -> Result<Cond, Error> {
    use LinuxSeccompOperator as O;
    if a.index() > 5 {
        return Err(Error::ArgIndex {
            name: name.to_string(),
            index: a.index(),
        });
    }
    let two = a.value_two().unwrap_or(0);
    let op = match a.op() {
        O::ScmpCmpNe => Op::Ne,
        O::ScmpCmpLt => Op::Lt,
        O::ScmpCmpLe => Op::Le,
        O::ScmpCmpEq => Op::Eq,
        O::ScmpCmpGe => Op::Ge,
        O::ScmpCmpGt => Op::Gt,
        // OCI: value is the mask, valueTwo the datum (libseccomp compares datum & mask).
        O::ScmpCmpMaskedEq => Op::Masked(two & a.value()),
    };
    if two != 0 && !matches!(op, Op::Masked(_)) {
        return Err(Error::ValueTwo {
            name: name.to_string(),
            value: two,
        });
    }
    Ok(Cond {
        index: a.index(),
        op,
        value: a.value(),
    })
}

/// Compiles `profile` for the native ABI with the runtime's defaults.
pub fn compile(profile: &LinuxSeccomp) -> Result<Program, Error> {
    compile_with(profile, &Options::default())
}

/// Compiles `profile` with explicit [`Options`].
pub fn compile_with(profile: &LinuxSeccomp, opts: &Options) -> Result<Program, Error> {
    let default_act = profile.default_action();
    if default_act == LinuxSeccompAction::ScmpActNotify {
        // Every syscall of the runtime itself would wait for an agent that has not
        // received the listener fd yet.
        return Err(Error::NotifyDefault);
    }
    let default = action_value(default_act, profile.default_errno_ret(), "defaultAction")?;

    // ABIs in the filter.
    let mut abis = vec![opts.native];
    for a in profile.architectures().iter().flatten() {
        if *a == oci_spec::runtime::Arch::ScmpArchNative || !opts.native.family().contains(a) {
            // A foreign ABI is never reported by the native kernel, so it cannot match.
            continue;
        }
        match Abi::from_oci(*a) {
            Some(abi) if !abis.contains(&abi) => abis.push(abi),
            Some(_) => {}
            None => {
                return Err(Error::UnsupportedArch {
                    arch: a.to_string(),
                    native: opts.native.oci_name(),
                })
            }
        }
    }
    abis.sort();

    // Flags.
    let mut flags = 0u32;
    let mut wait_killable = false;
    for f in profile.flags().iter().flatten() {
        match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => flags |= sys::FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                flags |= sys::FILTER_FLAG_SPEC_ALLOW
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => flags |= sys::FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => wait_killable = true,
        }
    }
    // Like runc: without a flags list, ask for SPEC_ALLOW where the kernel has it.
    let optional_flags = if profile.flags().is_none() {
        sys::FILTER_FLAG_SPEC_ALLOW
    } else {
        0
    };

    // Entries.
    let mut entries = Vec::new();
    let mut all_names: Vec<&str> = Vec::new();
    let mut notify = false;
    let mut actions = vec![default];
    for (i, s) in profile.syscalls().iter().flatten().enumerate() {
        let what = format!("syscalls[{i}]");
        for n in s.names() {
            if n.is_empty() {
                return Err(Error::EmptyName { index: i });
            }
            all_names.push(n);
        }
        let label = s
            .names()
            .first()
            .map(String::as_str)
            .unwrap_or(&what)
            .to_string();
        let action = action_value(s.action(), s.errno_ret(), &what)?;
        let mut conds = Vec::new();
        for a in s.args().iter().flatten() {
            conds.push(convert_arg(a, &label)?);
        }
        if s.action() == LinuxSeccompAction::ScmpActNotify {
            if s.names().iter().any(|n| n == "write") {
                // The runtime reports the listener fd over a pipe after loading the filter.
                return Err(Error::NotifyWrite);
            }
            notify = true;
        }
        if action == default {
            continue;
        }
        if !actions.contains(&action) {
            actions.push(action);
        }
        let mut seen = [0usize; 6];
        for c in &conds {
            seen[c.index] += 1;
        }
        let alts = if seen.iter().any(|&n| n > 1) {
            conds.into_iter().map(|c| vec![c]).collect()
        } else {
            vec![conds]
        };
        entries.push(Entry {
            names: s.names().clone(),
            action,
            alts,
        });
    }

    if wait_killable {
        if !notify {
            return Err(Error::WaitKillableWithoutNotify);
        }
        flags |= sys::FILTER_FLAG_WAIT_KILLABLE_RECV;
    }
    if notify {
        flags |= sys::FILTER_FLAG_NEW_LISTENER;
        if flags & sys::FILTER_FLAG_TSYNC != 0 {
            // TSYNC and NEW_LISTENER together need TSYNC_ESRCH (kernel >= 5.7).
            flags |= sys::FILTER_FLAG_TSYNC_ESRCH;
        }
    }

    let enosys = opts.enosys
        && !matches!(
            default_act,
            LinuxSeccompAction::ScmpActAllow
                | LinuxSeccompAction::ScmpActLog
                | LinuxSeccompAction::ScmpActTrace
        );

    let mut asm = Asm::new();
    asm.load(4); // arch
    let mut groups: Vec<(u32, Vec<Abi>)> = Vec::new();
    for &abi in &abis {
        match groups.iter_mut().find(|g| g.0 == abi.audit_arch()) {
            Some(g) => g.1.push(abi),
            None => groups.push((abi.audit_arch(), vec![abi])),
        }
    }
    let group_labels: Vec<Label> = groups.iter().map(|_| asm.label()).collect();
    for (g, l) in groups.iter().zip(&group_labels) {
        asm.jump(JEQ, g.0, Target::Label(*l), Target::Next);
    }
    asm.ret(RET_BADARCH);

    for (g, l) in groups.iter().zip(&group_labels) {
        asm.bind(*l);
        asm.load(0); // nr
        let per: Vec<(Abi, Rules, Option<u32>)> =
            g.1.iter()
                .map(|&abi| {
                    let max = if enosys {
                        max_nr(abi, &all_names)
                    } else {
                        None
                    };
                    (abi, abi_rules(abi, &entries), max)
                })
                .collect();
        match per.as_slice() {
            [(Abi::X86_64, r64, m64), (Abi::X32, r32, m32)] => {
                let x32 = asm.label();
                asm.jump(JSET, X32_SYSCALL_BIT, Target::Label(x32), Target::Next);
                enosys_stub(&mut asm, *m64);
                search(&mut asm, r64, default, false);
                asm.bind(x32);
                enosys_stub(&mut asm, *m32);
                search(&mut asm, r32, default, true);
            }
            [(Abi::X86_64, r64, m64)] => {
                if let Some(m) = m64 {
                    let skip = asm.label();
                    asm.jump(JSET, X32_SYSCALL_BIT, Target::Label(skip), Target::Next);
                    asm.jump(JGT, *m, Target::Next, Target::Label(skip));
                    asm.ret(RET_ERRNO | ENOSYS);
                    asm.bind(skip);
                }
                let rules = asm.label();
                let bad = asm.label();
                asm.jump(JGE, X32_SYSCALL_BIT, Target::Next, Target::Label(rules));
                // -1 is how tracers skip a syscall; it must not kill.
                asm.jump(JEQ, u32::MAX, Target::Next, Target::Label(bad));
                asm.ret(default);
                asm.bind(bad);
                asm.ret(RET_BADARCH);
                asm.bind(rules);
                search(&mut asm, r64, default, false);
            }
            [(Abi::X32, r32, m32)] => {
                let bad = asm.label();
                asm.jump(JGE, X32_SYSCALL_BIT, Target::Next, Target::Label(bad));
                if let Some(m) = m32 {
                    let skip = asm.label();
                    asm.jump(JSET, X32_SYSCALL_BIT, Target::Next, Target::Label(skip));
                    asm.jump(JGT, *m, Target::Next, Target::Label(skip));
                    asm.ret(RET_ERRNO | ENOSYS);
                    asm.bind(skip);
                }
                search(&mut asm, r32, default, true);
                asm.bind(bad);
                asm.ret(RET_BADARCH);
            }
            [(abi, r, m)] => {
                enosys_stub(&mut asm, *m);
                search(&mut asm, r, default, !abi.args_64bit());
            }
            _ => unreachable!("ABI groups are x86_64+x32 or single"),
        }
    }
    // Trampolines only add instructions: refuse early rather than fix up a huge program.
    if asm.len() > sys::MAX_INSNS {
        return Err(Error::TooLarge(asm.len()));
    }
    let filter = asm.finish()?;
    if filter.len() > sys::MAX_INSNS {
        return Err(Error::TooLarge(filter.len()));
    }
    debug_assert_eq!(bpf::check(&filter), Ok(()));
    Ok(Program {
        filter,
        flags,
        optional_flags,
        notify,
        actions,
    })
}

/// Largest number the profile names for `abi` (runc: `findLastSyscalls`). On x86 the
/// socket/IPC names resolve to libseccomp pseudo numbers and do not count.
fn max_nr(abi: Abi, names: &[&str]) -> Option<u32> {
    let max = names
        .iter()
        .filter(|n| !(abi == Abi::X86 && arch::x86_multiplexed(n).is_some()))
        .filter_map(|n| abi.resolve(n))
        .max()?;
    // runc treats "largest is 0" as "nothing known".
    (max != 0).then_some(max)
}

fn enosys_stub(asm: &mut Asm, max: Option<u32>) {
    if let Some(m) = max {
        let skip = asm.label();
        asm.jump(JGT, m, Target::Next, Target::Label(skip));
        asm.ret(RET_ERRNO | ENOSYS);
        asm.bind(skip);
    }
}

/// Per syscall number of `abi`: the (action, conditions) rules in profile order.
fn abi_rules(abi: Abi, entries: &[Entry]) -> Rules {
    let mut out: Rules = BTreeMap::new();
    for e in entries {
        for name in &e.names {
            let mux = if abi == Abi::X86 {
                arch::x86_multiplexed(name)
            } else {
                None
            };
            for alt in &e.alts {
                if let Some((mux_name, call)) = mux {
                    // The multiplexer carries the call number in arg0; libseccomp replaces
                    // any arg0 condition with it and keeps the others as they are.
                    let mut conds: Vec<Cond> =
                        alt.iter().filter(|c| c.index != 0).copied().collect();
                    conds.insert(
                        0,
                        Cond {
                            index: 0,
                            op: Op::Eq,
                            value: call as u64,
                        },
                    );
                    let nr = abi.resolve(mux_name).expect("i386 has socketcall and ipc");
                    push_rule(&mut out, abi, nr, e.action, conds);
                }
                if let Some(nr) = abi.resolve(name) {
                    push_rule(&mut out, abi, nr, e.action, alt.clone());
                }
            }
        }
    }
    out
}

fn push_rule(out: &mut Rules, abi: Abi, nr: u32, action: u32, conds: Vec<Cond>) {
    let conds: Vec<Cond> = conds
        .into_iter()
        .filter_map(|c| normalize(c, abi.args_64bit()))
        .collect();
    out.entry(nr).or_default().push((action, conds));
}

/// Narrows a condition to what the ABI compares; `None` for a comparison that always
/// holds (a zero mask), which libseccomp drops too.
fn normalize(c: Cond, wide: bool) -> Option<Cond> {
    let mut c = c;
    if !wide {
        c.value &= 0xffff_ffff;
        if let Op::Masked(d) = c.op {
            c.op = Op::Masked(d & 0xffff_ffff);
        }
    }
    if matches!(c.op, Op::Masked(_)) && c.value == 0 {
        return None;
    }
    Some(c)
}

/// Per syscall number: (action, ANDed conditions) in profile order.
type Rules = BTreeMap<u32, Vec<(u32, Vec<Cond>)>>;

/// What a range of syscall numbers leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Default,
    Action(u32),
    /// The conditional rules of this syscall number.
    Block(u32),
}

/// Emits a binary search over syscall-number ranges (the accumulator holds nr).
/// Neighbouring numbers with the same unconditional action form one range, so an
/// allow-list of hundreds of syscalls needs a few dozen comparisons on any path.
fn search(asm: &mut Asm, rules: &Rules, default: u32, narrow: bool) {
    // (first number, outcome) covering [first, next first); starts at 0.
    let mut ranges: Vec<(u32, Outcome)> = vec![(0, Outcome::Default)];
    let mut end: u64 = 0; // one past the last number covered by a rule range
    for (&nr, rs) in rules {
        let out = match rs.iter().find(|r| r.1.is_empty()) {
            Some(&(act, _)) => Outcome::Action(act),
            None => Outcome::Block(nr),
        };
        if u64::from(nr) > end {
            ranges.push((end as u32, Outcome::Default));
        }
        let extends = u64::from(nr) == end
            && matches!(out, Outcome::Action(_))
            && ranges.last().map(|r| r.1) == Some(out);
        if !extends {
            ranges.push((nr, out));
        }
        end = u64::from(nr) + 1;
    }
    if end <= u64::from(u32::MAX) {
        ranges.push((end as u32, Outcome::Default));
    }
    // Drop empty ranges (a range replaced by one starting at the same number).
    let mut clean: Vec<(u32, Outcome)> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match clean.last_mut() {
            Some(last) if last.0 == r.0 => *last = r,
            Some(last) if last.1 == r.1 && r.1 == Outcome::Default => {}
            _ => clean.push(r),
        }
    }
    tree(asm, &clean, rules, default, narrow);
}

fn tree(asm: &mut Asm, ranges: &[(u32, Outcome)], rules: &Rules, default: u32, narrow: bool) {
    if let [(_, out)] = ranges {
        match *out {
            Outcome::Default => asm.ret(default),
            Outcome::Action(a) => asm.ret(a),
            Outcome::Block(nr) => {
                for (act, conds) in &rules[&nr] {
                    let next = asm.label();
                    for c in conds {
                        cond(asm, c, next, narrow);
                    }
                    asm.ret(*act);
                    asm.bind(next);
                }
                asm.ret(default);
            }
        }
        return;
    }
    let mid = ranges.len() / 2;
    let right = asm.label();
    asm.jump(JGE, ranges[mid].0, Target::Label(right), Target::Next);
    tree(asm, &ranges[..mid], rules, default, narrow);
    asm.bind(right);
    tree(asm, &ranges[mid..], rules, default, narrow);
}

/// Emits a test of `c` that falls through when it holds and jumps to `fail` otherwise.
fn cond(asm: &mut Asm, c: &Cond, fail: Label, narrow: bool) {
    let f = Target::Label(fail);
    let n = Target::Next;
    let lo_off = arg_offset(c.index, false);
    let hi_off = arg_offset(c.index, true);
    let (vh, vl) = ((c.value >> 32) as u32, c.value as u32);
    if narrow {
        asm.load(lo_off);
        match c.op {
            Op::Eq => asm.jump(JEQ, vl, n, f),
            Op::Ne => asm.jump(JEQ, vl, f, n),
            Op::Gt => asm.jump(JGT, vl, n, f),
            Op::Ge => asm.jump(JGE, vl, n, f),
            Op::Lt => asm.jump(JGE, vl, f, n),
            Op::Le => asm.jump(JGT, vl, f, n),
            Op::Masked(d) => {
                asm.and(vl);
                asm.jump(JEQ, d as u32, n, f);
            }
        }
        return;
    }
    let ok = asm.label();
    let o = Target::Label(ok);
    match c.op {
        Op::Eq => {
            asm.load(hi_off);
            asm.jump(JEQ, vh, n, f);
            asm.load(lo_off);
            asm.jump(JEQ, vl, n, f);
        }
        Op::Ne => {
            asm.load(hi_off);
            asm.jump(JEQ, vh, n, o);
            asm.load(lo_off);
            asm.jump(JEQ, vl, f, n);
        }
        Op::Gt | Op::Ge => {
            asm.load(hi_off);
            asm.jump(JGT, vh, o, n);
            asm.jump(JEQ, vh, n, f);
            asm.load(lo_off);
            asm.jump(if c.op == Op::Gt { JGT } else { JGE }, vl, n, f);
        }
        Op::Lt | Op::Le => {
            asm.load(hi_off);
            asm.jump(JGT, vh, f, n);
            asm.jump(JEQ, vh, n, o);
            asm.load(lo_off);
            asm.jump(if c.op == Op::Lt { JGE } else { JGT }, vl, f, n);
        }
        Op::Masked(d) => {
            let (mh, ml) = (vh, vl);
            if mh != 0 {
                asm.load(hi_off);
                asm.and(mh);
                asm.jump(JEQ, (d >> 32) as u32, n, f);
            }
            if ml != 0 {
                asm.load(lo_off);
                asm.and(ml);
                asm.jump(JEQ, d as u32, n, f);
            }
        }
    }
    asm.bind(ok);
}
