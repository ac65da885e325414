//! cgroup v2 device control: a BPF_PROG_TYPE_CGROUP_DEVICE program that the kernel runs on
//! every open and mknod of a device node. The rules are first folded the way the v1 kernel
//! folds writes to devices.allow/deny (`emulate`), so a config means the same on both.

use crate::bpf::asm::{Asm, AsmError, Reg, Size};
use crate::bpf::{self, Insn};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
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

/// The most instructions a privileged load may have (BPF_COMPLEXITY_LIMIT_INSNS).
const MAX_INSNS: usize = 1_000_000;

/// r2 = device type, r3 = requested access, r4 = major, r5 = minor; then one block per
/// exception that returns the opposite of the default when it matches; then the default.
/// An allowlist exception matches when the request's access is a subset of its own (as
/// the v1 kernel's match_exception); a denylist one when they share a bit
/// (match_exception_partial).
pub fn program(p: &Policy) -> Result<Vec<Insn>, AsmError> {
    let mut a = Asm::new();
    // struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
    a.ldx(Size::W, Reg::R2, Reg::R1, 0)
        .mov64_reg(Reg::R3, Reg::R2)
        .and32_imm(Reg::R2, 0xffff)
        .rsh32_imm(Reg::R3, 16)
        .ldx(Size::W, Reg::R4, Reg::R1, 4)
        .ldx(Size::W, Reg::R5, Reg::R1, 8);
    for e in &p.exceptions {
        exception(&mut a, e, p.default_allow);
    }
    a.mov64_imm(Reg::R0, p.default_allow as i32).exit();
    a.finish_within(MAX_INSNS)
}

/// One exception's block: fall through to the next block unless every part matches.
fn exception(a: &mut Asm, e: &Rule, default_allow: bool) {
    let next = a.label();
    if let Some(t) = e.typ {
        a.jne32_imm(Reg::R2, t as u32, next);
    }
    if let Some(m) = e.major {
        a.jne32_imm(Reg::R4, m, next);
    }
    if let Some(m) = e.minor {
        a.jne32_imm(Reg::R5, m, next);
    }
    if e.access != ACC_ALL {
        a.mov64_reg(Reg::R1, Reg::R3);
        if default_allow {
            a.and32_imm(Reg::R1, e.access as u32)
                .jeq32_imm(Reg::R1, 0, next);
        } else {
            a.and32_imm(Reg::R1, (!e.access & ACC_ALL) as u32)
                .jne32_imm(Reg::R1, 0, next);
        }
    }
    a.mov64_imm(Reg::R0, !default_allow as i32).exit();
    a.bind(next);
}

/// Load the program and attach it to `dir` (BPF_F_ALLOW_MULTI, as runc: a program a
/// container attaches below cannot override it), then detach the device programs that were
/// there before (an `update`).
pub fn attach(dir: &Path, insns: &[Insn]) -> io::Result<()> {
    let cgroup = std::fs::File::open(dir)?;
    let prog = bpf::load(
        bpf::BPF_PROG_TYPE_CGROUP_DEVICE,
        bpf::BPF_CGROUP_DEVICE,
        "vsrun_device",
        insns,
    )?;
    let old: Vec<OwnedFd> = bpf::prog_query(cgroup.as_fd(), bpf::BPF_CGROUP_DEVICE)?
        .into_iter()
        .filter_map(|id| bpf::prog_get_fd_by_id(id).ok())
        .collect();
    bpf::prog_attach(
        cgroup.as_fd(),
        prog.as_fd(),
        bpf::BPF_CGROUP_DEVICE,
        bpf::BPF_F_ALLOW_MULTI,
    )?;
    for o in old {
        bpf::prog_detach(cgroup.as_fd(), o.as_fd(), bpf::BPF_CGROUP_DEVICE)?;
    }
    Ok(())
}
