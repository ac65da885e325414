//! cgroup v2 device control: a BPF_PROG_TYPE_CGROUP_DEVICE program that the kernel runs on
//! every open and mknod of a device node. The rules are first folded the way the v1 kernel
//! folds writes to devices.allow/deny (`emulate`), so a config means the same on both.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

// uapi bpf.h: struct bpf_cgroup_dev_ctx.access_type = (access << 16) | type.
pub const BLOCK: u8 = 1;
pub const CHAR: u8 = 2;
pub const ACC_MKNOD: u8 = 1;
pub const ACC_READ: u8 = 2;
pub const ACC_WRITE: u8 = 4;
pub const ACC_ALL: u8 = 7;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    /// None: every type ("a").
    pub typ: Option<u8>,
    /// None: any ("*").
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

impl Rule {
    pub fn all(allow: bool) -> Rule {
        Rule {
            allow,
            typ: None,
            major: None,
            minor: None,
            access: ACC_ALL,
        }
    }

    /// The v1 file syntax: "c 1:3 rwm", "a *:* rwm".
    pub fn v1_line(&self) -> String {
        let n = |v: Option<u32>| v.map_or("*".to_string(), |v| v.to_string());
        let t = match self.typ {
            None => 'a',
            Some(BLOCK) => 'b',
            Some(_) => 'c',
        };
        let mut a = String::new();
        for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
            if self.access & bit != 0 {
                a.push(c);
            }
        }
        format!("{t} {}:{} {a}", n(self.major), n(self.minor))
    }

    fn same_key(&self, o: &Rule) -> bool {
        self.typ == o.typ && self.major == o.major && self.minor == o.minor
    }
}

/// What the v1 kernel keeps after a sequence of writes: a default and exceptions to it.
#[derive(Debug, PartialEq, Eq)]
pub struct Policy {
    pub default_allow: bool,
    pub exceptions: Vec<Rule>,
}

/// security/device_cgroup.c: "a" sets the default and clears the exceptions; a rule
/// against the default adds an exception (merging access with one of the same type and
/// numbers); a rule with the default removes those access bits from exceptions of the
/// same type and numbers. A fresh cgroup starts as allow-all.
pub fn emulate<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> Policy {
    let mut p = Policy {
        default_allow: true,
        exceptions: Vec::new(),
    };
    for r in rules {
        if r.typ.is_none() {
            p.default_allow = r.allow;
            p.exceptions.clear();
        } else if r.allow != p.default_allow {
            match p.exceptions.iter_mut().find(|e| e.same_key(r)) {
                Some(e) => e.access |= r.access,
                None => p.exceptions.push(*r),
            }
        } else {
            for e in p.exceptions.iter_mut().filter(|e| e.same_key(r)) {
                e.access &= !r.access;
            }
            p.exceptions.retain(|e| e.access != 0);
        }
    }
    p
}

/// One `struct bpf_insn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const MOV64_X: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const MOV64_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RSH32_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const JNE32_K: u8 = 0x56; // BPF_JMP32 | BPF_JNE | BPF_K
const JEQ32_K: u8 = 0x16; // BPF_JMP32 | BPF_JEQ | BPF_K
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    let regs = if cfg!(target_endian = "little") {
        dst | (src << 4)
    } else {
        (dst << 4) | src
    };
    Insn {
        code,
        regs,
        off,
        imm,
    }
}

/// r2 = device type, r3 = requested access, r4 = major, r5 = minor; then one block per
/// exception that returns the opposite of the default when it matches; then the default.
/// An allowlist exception matches when the request's access is a subset of its own (as
/// the v1 kernel's match_exception); a denylist one when they share a bit
/// (match_exception_partial).
pub fn program(p: &Policy) -> Vec<Insn> {
    let mut v = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(MOV64_X, 3, 2, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for e in &p.exceptions {
        // (instruction, is a jump to the end of this block)
        let mut block: Vec<(Insn, bool)> = Vec::new();
        if let Some(t) = e.typ {
            block.push((insn(JNE32_K, 2, 0, 0, t as i32), true));
        }
        if let Some(m) = e.major {
            block.push((insn(JNE32_K, 4, 0, 0, m as i32), true));
        }
        if let Some(m) = e.minor {
            block.push((insn(JNE32_K, 5, 0, 0, m as i32), true));
        }
        if e.access != ACC_ALL {
            block.push((insn(MOV64_X, 1, 3, 0, 0), false));
            if p.default_allow {
                block.push((insn(AND32_K, 1, 0, 0, e.access as i32), false));
                block.push((insn(JEQ32_K, 1, 0, 0, 0), true));
            } else {
                block.push((insn(AND32_K, 1, 0, 0, (!e.access & ACC_ALL) as i32), false));
                block.push((insn(JNE32_K, 1, 0, 0, 0), true));
            }
        }
        block.push((insn(MOV64_K, 0, 0, 0, !p.default_allow as i32), false));
        block.push((insn(EXIT, 0, 0, 0, 0), false));
        let len = block.len();
        for (i, (mut ins, jump)) in block.into_iter().enumerate() {
            if jump {
                ins.off = (len - i - 1) as i16;
            }
            v.push(ins);
        }
    }
    v.push(insn(MOV64_K, 0, 0, 0, p.default_allow as i32));
    v.push(insn(EXIT, 0, 0, 0, 0));
    v
}

/// Load the program and attach it to `dir` (BPF_F_ALLOW_MULTI, as runc: a program a
/// container attaches below cannot override it), then detach the device programs that were
/// there before (an `update`).
pub fn attach(dir: &Path, insns: &[Insn]) -> io::Result<()> {
    let cgroup = std::fs::File::open(dir)?;
    let prog = sys::prog_load(insns)?;
    let old: Vec<OwnedFd> = sys::prog_query(cgroup.as_fd())?
        .into_iter()
        .filter_map(|id| sys::prog_get_fd_by_id(id).ok())
        .collect();
    sys::prog_attach(cgroup.as_fd(), prog.as_fd())?;
    for o in old {
        sys::prog_detach(cgroup.as_fd(), o.as_fd())?;
    }
    Ok(())
}

/// bpf(2) for the device program. (net/sys.rs has the same wrappers for bind-ip; they are
/// private to `net`, so this module keeps its own four.)
mod sys {
    use super::*;

    const BPF_PROG_LOAD: i32 = 5;
    const BPF_PROG_ATTACH: i32 = 8;
    const BPF_PROG_DETACH: i32 = 9;
    const BPF_PROG_GET_FD_BY_ID: i32 = 13;
    const BPF_PROG_QUERY: i32 = 16;
    const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
    const BPF_CGROUP_DEVICE: u32 = 6;
    const BPF_F_ALLOW_MULTI: u32 = 1 << 1;

    /// `attr` is a `#[repr(C)]` prefix of `union bpf_attr`; the kernel zero-fills the rest.
    fn bpf<T>(cmd: i32, attr: &mut T) -> io::Result<i64> {
        // SAFETY: `attr` is a live, exclusively borrowed repr(C) value of exactly the size
        // passed; the kernel reads and may write back within that size only. Pointers in
        // it (insns, license, ids) point to buffers the callers keep alive for the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd,
                attr as *mut T as *mut libc::c_void,
                std::mem::size_of::<T>() as libc::c_uint,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }

    fn fd(r: i64) -> OwnedFd {
        // SAFETY: bpf(2) returned a new fd (O_CLOEXEC set by the kernel) nothing else owns.
        unsafe { OwnedFd::from_raw_fd(r as i32) }
    }

    #[repr(C)]
    #[derive(Default)]
    struct ProgLoad {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        prog_name: [u8; 16],
        prog_ifindex: u32,
        expected_attach_type: u32,
    }

    pub fn prog_load(insns: &[Insn]) -> io::Result<OwnedFd> {
        const LICENSE: &std::ffi::CStr = c"Apache-2.0";
        let mut name = [0u8; 16];
        name[..12].copy_from_slice(b"vsrun_device");
        let mut attr = ProgLoad {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: LICENSE.as_ptr() as u64,
            prog_name: name,
            expected_attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        bpf(BPF_PROG_LOAD, &mut attr).map(fd)
    }

    #[repr(C)]
    #[derive(Default)]
    struct Attach {
        target_fd: u32,
        attach_bpf_fd: u32,
        attach_type: u32,
        attach_flags: u32,
        replace_bpf_fd: u32,
    }

    pub fn prog_attach(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
        let mut attr = Attach {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_bpf_fd: prog.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: BPF_F_ALLOW_MULTI,
            ..Default::default()
        };
        bpf(BPF_PROG_ATTACH, &mut attr).map(|_| ())
    }

    pub fn prog_detach(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
        let mut attr = Attach {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_bpf_fd: prog.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        bpf(BPF_PROG_DETACH, &mut attr).map(|_| ())
    }

    #[repr(C)]
    #[derive(Default)]
    struct Query {
        target_fd: u32,
        attach_type: u32,
        query_flags: u32,
        attach_flags: u32,
        prog_ids: u64,
        prog_cnt: u32,
        _pad: u32,
    }

    /// The device programs attached directly to `cgroup`.
    pub fn prog_query(cgroup: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
        let mut ids = vec![0u32; 64];
        let mut attr = Query {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            ..Default::default()
        };
        bpf(BPF_PROG_QUERY, &mut attr)?;
        ids.truncate(attr.prog_cnt as usize);
        Ok(ids)
    }

    #[repr(C)]
    #[derive(Default)]
    struct GetById {
        id: u32,
        next_id: u32,
        open_flags: u32,
    }

    pub fn prog_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
        let mut attr = GetById {
            id,
            ..Default::default()
        };
        bpf(BPF_PROG_GET_FD_BY_ID, &mut attr).map(fd)
    }
}
