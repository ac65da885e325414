//! vsrun: a runc-compatible OCI runtime. The binary is a thin shell around this library; see
//! the README's layout section for how the modules fit together.

// `unsafe` lives only in `syscall` (thin wrappers, each with its SAFETY reason).
#![deny(unsafe_code)]

pub mod bpf;
pub mod bundle;
pub mod cgroups;
pub mod cli;
pub mod commands;
pub mod context;
pub mod disk;
pub mod error;
pub mod hooks;
pub mod log;
pub mod net;
pub mod rootfs;
pub mod rootless;
pub mod security;
pub mod state;
#[allow(unsafe_code)]
pub mod syscall;
pub mod task;
pub mod terminal;
pub mod timefmt;
pub mod units;

pub use error::{Error, Result};

/// The OCI runtime-spec version vsrun implements (also what `state` reports as ociVersion).
pub const OCI_VERSION: &str = "1.2.0";
