//! Networking of a context. Joining the engine's network namespace is part of
//! `context::namespaces`; this module holds vsrun's own bound-IP mode (issue 7): a context on
//! the host's network stack whose sockets are pinned to the addresses of the annotation
//! `org.vsrun.bind-ip`, enforced by cgroup sock_addr BPF programs.
//!
//! - `bind_ip`: the interface the lifecycle uses (plan, attach, join, remove).
//! - `progs`: the nine programs (eight sock_addr hooks, one ingress filter), generated for the
//!   address list.
//! - `cgroup2`: the v2 directory the programs are attached to.
//! - `sys`: getifaddrs. bpf(2) and the eBPF assembler are `crate::bpf`, shared with the
//!   cgroup v2 device filter.

pub mod bind_ip;
mod cgroup2;
mod progs;
mod sys;
#[cfg(test)]
mod tests;

pub use bind_ip::{attach, attach_at, join, plan, remove, NetStack, Plan, ANNOTATION};
