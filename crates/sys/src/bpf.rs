//! bpf(2) for cgroup v2 device filters: load a `BPF_PROG_TYPE_CGROUP_DEVICE` program,
//! attach/detach it on a cgroup directory fd, and list what is attached.
//!
//! The program itself is generated (safely) by berth-cgroups; this module only moves
//! instructions and fds across the syscall boundary.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// One eBPF instruction, laid out like the kernel's `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BpfInsn {
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high nibble.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

impl BpfInsn {
    /// From the kernel's 8-byte little-endian encoding.
    pub fn from_bytes(b: [u8; 8]) -> BpfInsn {
        BpfInsn {
            code: b[0],
            regs: b[1],
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;

pub const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// `enum bpf_attach_type` BPF_CGROUP_DEVICE.
pub const BPF_CGROUP_DEVICE: u32 = 6;
pub const BPF_F_ALLOW_OVERRIDE: u32 = 1;
pub const BPF_F_ALLOW_MULTI: u32 = 2;

/// `union bpf_attr`, large enough for every command used here plus zeroed slack:
/// the kernel accepts a larger attr if the tail is zero, and may write back fields
/// (PROG_QUERY's count and revision) that must land inside our buffer.
#[repr(C, align(8))]
struct Attr([u8; 256]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 256])
    }
    fn put_u32(&mut self, off: usize, v: u32) {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    }
    fn put_u64(&mut self, off: usize, v: u64) {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
    }
    fn get_u32(&self, off: usize) -> u32 {
        u32::from_ne_bytes(self.0[off..off + 4].try_into().expect("4 bytes"))
    }
}

fn bpf(cmd: libc::c_int, attr: &mut Attr) -> io::Result<libc::c_long> {
    // SAFETY: bpf(2) reads (and for some commands writes) `size` bytes at `attr`, which
    // is a live, exclusively borrowed 256-byte buffer. Any pointers stored inside it
    // (instructions, license, log, id array) are set by the callers below from borrows
    // that outlive this call; the kernel does not keep them afterwards.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.0.as_mut_ptr(),
            std::mem::size_of::<Attr>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn owned(fd: libc::c_long) -> io::Result<OwnedFd> {
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("bpf returned an fd out of range"))?;
    // SAFETY: the kernel just returned this new fd to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Loads a cgroup device program. On a verifier rejection the error carries the
/// verifier log.
pub fn prog_load_cgroup_device(insns: &[BpfInsn], license: &CStr) -> io::Result<OwnedFd> {
    let cnt =
        u32::try_from(insns.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let load = |log: Option<&mut [u8]>| {
        let mut a = Attr::new();
        a.put_u32(0, BPF_PROG_TYPE_CGROUP_DEVICE); // prog_type
        a.put_u32(4, cnt); // insn_cnt
        a.put_u64(8, insns.as_ptr() as u64); // insns
        a.put_u64(16, license.as_ptr() as u64); // license
        if let Some(buf) = log {
            a.put_u32(24, 1); // log_level
            a.put_u32(28, buf.len() as u32); // log_size
            a.put_u64(32, buf.as_mut_ptr() as u64); // log_buf
        }
        bpf(BPF_PROG_LOAD, &mut a).and_then(owned)
    };
    match load(None) {
        Ok(fd) => Ok(fd),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::EACCES)) => {
            let mut log = vec![0u8; 64 * 1024];
            match load(Some(&mut log)) {
                Ok(fd) => Ok(fd),
                Err(e2) => {
                    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                    let text = String::from_utf8_lossy(&log[..end]).trim().to_string();
                    Err(io::Error::new(
                        e2.kind(),
                        format!("verifier rejected the program: {text}"),
                    ))
                }
            }
        }
        Err(e) => Err(e),
    }
}

fn attach_detach(
    cmd: libc::c_int,
    cgroup: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    flags: u32,
) -> io::Result<()> {
    let mut a = Attr::new();
    a.put_u32(0, cgroup.as_raw_fd() as u32); // target_fd
    a.put_u32(4, prog.as_raw_fd() as u32); // attach_bpf_fd
    a.put_u32(8, BPF_CGROUP_DEVICE); // attach_type
    a.put_u32(12, flags); // attach_flags
    bpf(cmd, &mut a).map(|_| ())
}

/// Attaches `prog` to the cgroup directory `cgroup` (flags: 0, BPF_F_ALLOW_OVERRIDE or
/// BPF_F_ALLOW_MULTI).
pub fn prog_attach_cgroup_device(
    cgroup: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    flags: u32,
) -> io::Result<()> {
    attach_detach(BPF_PROG_ATTACH, cgroup, prog, flags)
}

/// Detaches `prog` from the cgroup directory `cgroup`.
pub fn prog_detach_cgroup_device(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
    attach_detach(BPF_PROG_DETACH, cgroup, prog, 0)
}

/// Ids of the device programs attached directly to `cgroup`.
pub fn prog_query_cgroup_device(cgroup: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    loop {
        let mut a = Attr::new();
        a.put_u32(0, cgroup.as_raw_fd() as u32); // target_fd
        a.put_u32(4, BPF_CGROUP_DEVICE); // attach_type
        a.put_u64(16, ids.as_mut_ptr() as u64); // prog_ids
        a.put_u32(24, ids.len() as u32); // prog_cnt (in: capacity, out: count)
        match bpf(BPF_PROG_QUERY, &mut a) {
            Ok(_) => {
                let n = a.get_u32(24) as usize;
                ids.truncate(n.min(ids.len()));
                return Ok(ids);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && ids.len() < 1 << 16 => {
                let need = (a.get_u32(24) as usize).max(ids.len() * 2);
                ids = vec![0u32; need];
            }
            Err(e) => return Err(e),
        }
    }
}

/// Opens a program by id (needed to detach programs found by a query).
pub fn prog_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut a = Attr::new();
    a.put_u32(0, id); // prog_id
    bpf(BPF_PROG_GET_FD_BY_ID, &mut a).and_then(owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insn_layout() {
        assert_eq!(std::mem::size_of::<BpfInsn>(), 8);
        let i = BpfInsn::from_bytes([0x55, 0x04, 3, 0, 136, 0, 0, 0]);
        assert_eq!(
            i,
            BpfInsn {
                code: 0x55,
                regs: 0x04,
                off: 3,
                imm: 136
            }
        );
    }

    #[test]
    fn load_trivial_program_as_root() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        // r0 = 1; exit
        let p = [
            BpfInsn {
                code: 0xb4,
                regs: 0,
                off: 0,
                imm: 1,
            },
            BpfInsn {
                code: 0x95,
                regs: 0,
                off: 0,
                imm: 0,
            },
        ];
        prog_load_cgroup_device(&p, c"Apache").unwrap();
        // An invalid program (no exit) is refused with the verifier's words.
        let bad = [BpfInsn {
            code: 0xb4,
            regs: 0,
            off: 0,
            imm: 1,
        }];
        let e = prog_load_cgroup_device(&bad, c"Apache").unwrap_err();
        assert!(e.to_string().contains("verifier"), "{e}");
    }
}
