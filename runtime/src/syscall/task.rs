//! Per-task attributes (task.rs): scheduler, I/O priority, memory policy, execution domain.
//! nix 0.29 has none of these but personality (behind a feature vsrun does not enable).

use super::check;
use std::io;

/// struct sched_attr (sched_setattr(2)), the size it declares in `size`.
#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

/// sched_setattr(2) on the calling thread.
pub fn sched_setattr(attr: &SchedAttr) -> io::Result<()> {
    // SAFETY: attr is a live sched_attr whose `size` the caller set; pid 0 is this thread.
    check(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, attr as *const SchedAttr, 0) })
        .map(drop)
}

/// ioprio_set(2) for this process (IOPRIO_WHO_PROCESS, pid 0); `value` is class << 13 | level.
pub fn ioprio_set(value: i32) -> io::Result<()> {
    // SAFETY: three plain integers.
    check(unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, value) }).map(drop)
}

/// set_mempolicy(2) with `mode` (flags included) and a node mask; an all-zero mask is passed
/// as none (maxnode 0), as MPOL_DEFAULT and MPOL_LOCAL need.
pub fn set_mempolicy(mode: i32, mask: &[u64]) -> io::Result<()> {
    let (ptr, maxnode) = if mask.iter().all(|w| *w == 0) {
        (std::ptr::null(), 0)
    } else {
        (mask.as_ptr(), mask.len() as u64 * 64 + 1)
    };
    // SAFETY: ptr is null with maxnode 0, or points at mask's maxnode-1 bits.
    check(unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) }).map(drop)
}

/// personality(2): set the execution domain.
pub fn personality(persona: u64) -> io::Result<()> {
    // SAFETY: personality takes a plain value.
    if unsafe { libc::personality(persona as libc::c_ulong) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
