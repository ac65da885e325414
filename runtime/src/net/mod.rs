//! Networking of a context. Joining the engine's network namespace is part of
//! `context::namespaces`; this module holds vsrun's own bound-IP mode (issue 7): a context on
//! the host's network stack whose sockets are pinned to the addresses of the annotation
//! `org.vsrun.bind-ip`, enforced by cgroup sock_addr BPF programs.
//!
//! - `bind_ip`: the interface the lifecycle uses (plan, attach, join, remove).
//! - `progs`: the nine programs (eight sock_addr hooks, one ingress filter), generated for the
//!   address list.
//! - `asm`: a typed eBPF instruction builder (no second toolchain at build time).
//! - `cgroup2`: the v2 directory the programs are attached to.
//! - `sys`: bpf(2) and getifaddrs wrappers.

mod asm;
pub mod bind_ip;
mod cgroup2;
mod progs;
mod sys;
#[cfg(test)]
mod tests;

pub use bind_ip::{attach, attach_at, join, plan, remove, NetStack, Plan, ANNOTATION};
