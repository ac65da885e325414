//! Writing `linux.resources`: libcgroups for what it writes right, vsrun's own writes for the
//! rest, and errors turned back into field names.

use super::fields::field_of_write;
use super::layout::{manager, Layout};
use super::values::{bad, field};
use super::{blkio, cpu, delegated, memory, network, rdma};
use crate::error::{config, Error, Result};
use libcgroups::common::{CgroupManager, ControllerOpt};
use oci_spec::runtime::LinuxResources;
use std::io::Write;
use std::path::Path;

/// Everything but devices: libcgroups for what it does right, then vsrun's own writes.
/// `rootless`: the container was made in rootless mode (some v1 directories may be missing).
pub(super) fn apply_rest(
    layout: &Layout,
    path: &Path,
    n: &LinuxResources,
    rootless: bool,
) -> Result<()> {
    if *n == LinuxResources::default() {
        return Ok(());
    }
    memory::check_before_update(n, layout, path)?;
    let lib = for_libcgroups(n, layout, path);
    if lib != LinuxResources::default() {
        let opt = ControllerOpt {
            resources: &lib,
            disable_oom_killer: n
                .memory()
                .as_ref()
                .and_then(|m| m.disable_oom_killer())
                .unwrap_or(false),
            oom_score_adj: None,
            freezer_state: None,
        };
        if delegated::applies(layout, path, rootless) {
            delegated::write_v1(&lib, layout, path)?;
        } else {
            manager(path, false, "")?
                .apply(&opt)
                .map_err(|e| libcgroups_error(&e.to_string(), n, layout, path))?;
        }
    }
    own_writes(n, layout, path)
}

/// The part of the resources libcgroups applies correctly on this layout.
pub(super) fn for_libcgroups(n: &LinuxResources, layout: &Layout, path: &Path) -> LinuxResources {
    let mut lib = n.clone();
    lib.set_devices(None);
    lib.set_network(None);
    lib.set_rdma(None);
    if let Some(m) = lib.memory_mut() {
        m.set_check_before_update(None);
        // Written and read back by vsrun: recent kernels accept the write and keep no limit.
        m.set_kernel(None);
        m.set_kernel_tcp(None);
        // v2: swap -1 alone (runc's `update --memory-swap -1`) is unlimited swap, which
        // libcgroups refuses without a memory limit; own_writes sets memory.swap.max.
        if layout.is_v2() && m.swap() == Some(-1) && m.limit().is_none() {
            m.set_swap(None);
        }
    }
    if layout.is_v2() {
        strip_empty(&mut lib);
        return lib;
    }
    // v1: libcgroups skips cpu.burst unless another cpu field is set, and never writes leaf
    // weights or weight devices.
    if let Some(c) = lib.cpu_mut() {
        c.set_burst(None);
    }
    if let Some(b) = lib.block_io_mut() {
        b.set_leaf_weight(None);
        b.set_weight_device(None);
    }
    // v1 without swap accounting: libcgroups sets memsw to -1 along with an unlimited memory
    // limit and fails on the missing file; vsrun writes that limit itself.
    if let Some(m) = lib.memory_mut() {
        let memsw = layout
            .dir("memory", path)
            .is_some_and(|d| d.join("memory.memsw.limit_in_bytes").exists());
        if m.limit() == Some(-1) && m.swap().is_none() && !memsw {
            m.set_limit(None);
        }
    }
    strip_empty(&mut lib);
    lib
}

pub(super) fn strip_empty(r: &mut LinuxResources) {
    if r.memory()
        .as_ref()
        .is_some_and(|m| *m == Default::default())
    {
        r.set_memory(None);
    }
    if r.cpu().as_ref().is_some_and(|c| *c == Default::default()) {
        r.set_cpu(None);
    }
    if r.block_io()
        .as_ref()
        .is_some_and(|b| *b == Default::default())
    {
        r.set_block_io(None);
    }
}

pub(super) fn write_file(f: &str, dir: &Path, file: &str, value: &str) -> Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join(file))
        .and_then(|mut w| w.write_all(value.as_bytes()))
        .map_err(|e| bad(f, format!("{value:?} rejected by the kernel ({file}: {e})")))
}

/// libcgroups reports a failed write as "failed to write DATA to DIR/FILE: ERROR". The file
/// names the field, and DATA the entry of a list.
pub(super) fn libcgroups_error(
    msg: &str,
    n: &LinuxResources,
    layout: &Layout,
    path: &Path,
) -> Error {
    for dir in layout.dirs(path) {
        let prefix = format!("{}/", dir.display());
        let Some(at) = msg.find(&prefix) else {
            continue;
        };
        let rest = &msg[at + prefix.len()..];
        let file = rest
            .split(|c: char| c == ':' || c.is_whitespace())
            .next()
            .unwrap_or_default();
        let err = rest[file.len()..].trim_start_matches([':', ' ']);
        let data = msg[..at]
            .strip_suffix(" to ")
            .and_then(|s| s.rsplit_once("failed to write "))
            .map(|(_, d)| d)
            .unwrap_or_default();
        let f = field_of_file(file, data, n);
        return config(
            f,
            format!("{data:?} rejected by the kernel ({file}: {err})"),
        );
    }
    if msg.contains("memory limit") {
        return bad("memory.limit", msg);
    }
    config("linux.resources", msg)
}

/// The field of a write libcgroups reports as failed: a `unified` key names its own file;
/// the others are looked up in the field table.
pub(super) fn field_of_file(file: &str, data: &str, n: &LinuxResources) -> String {
    if n.unified().as_ref().is_some_and(|u| u.contains_key(file)) {
        return field(&format!("unified.{file}"));
    }
    field_of_write(file, data, n).unwrap_or_else(|| "linux.resources".into())
}

/// The fields libcgroups 0.7 does not write (or writes wrongly), by controller;
/// `check_host` made sure the files exist.
fn own_writes(n: &LinuxResources, layout: &Layout, path: &Path) -> Result<()> {
    if let Some(m) = n.memory() {
        memory::write_own(m, layout, path)?;
    }
    if let Some(c) = n.cpu() {
        cpu::write_own(c, layout, path)?;
    }
    if let Some(b) = n.block_io() {
        blkio::write_own(b, layout, path)?;
    }
    if let Some(net) = n.network() {
        network::write_own(net, layout, path)?;
    }
    if let Some(r) = n.rdma() {
        rdma::write_own(r, layout, path)?;
    }
    Ok(())
}
