//! eBPF for cgroup programs, shared by the v2 device filter (`cgroups/devfilter.rs`) and bound
//! IP (`net/progs.rs`, `net/cgroup2.rs`): the labelled assembler (`asm`), the program and
//! attach types vsrun uses, and a load that reports the verifier's reason. The bpf(2) calls
//! themselves are in `syscall/bpf.rs`.

pub mod asm;

use std::io;
use std::os::fd::OwnedFd;

pub use crate::syscall::bpf::{
    prog_attach, prog_detach, prog_get_fd_by_id, prog_info, prog_query, Insn,
};

// uapi enum bpf_prog_type.
pub const BPF_PROG_TYPE_CGROUP_SKB: u32 = 8;
pub const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
pub const BPF_PROG_TYPE_CGROUP_SOCK_ADDR: u32 = 18;
// uapi enum bpf_attach_type (the sock_addr ones are `net::cgroup2::Hook`).
pub const BPF_CGROUP_DEVICE: u32 = 6;
/// Programs attached below cannot override this one; several may be attached (as runc).
pub const BPF_F_ALLOW_MULTI: u32 = 1 << 1;

/// Load a program. On a verifier rejection the load is repeated with a log, and the error
/// carries the log's last lines (what a user or developer needs to see the reason). When the
/// verifier did not run (a kernel without this program type), the kernel's error is returned
/// as it is, so callers can still tell ENOSYS or EINVAL.
pub fn load(prog_type: u32, attach_type: u32, name: &str, insns: &[Insn]) -> io::Result<OwnedFd> {
    use crate::syscall::bpf::prog_load;
    match prog_load(prog_type, attach_type, name, insns, &mut []) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EINVAL)) => {
            let mut log = vec![0u8; 64 * 1024];
            let again = prog_load(prog_type, attach_type, name, insns, &mut log);
            if again.is_ok() {
                return again;
            }
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            if text.trim().is_empty() {
                return Err(e);
            }
            let tail: Vec<&str> = text.lines().rev().take(6).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            Err(io::Error::new(
                e.kind(),
                format!("{e}; verifier: {}", tail.join(" | ")),
            ))
        }
        r => r,
    }
}
