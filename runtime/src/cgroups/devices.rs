//! `linux.resources.devices`: the rule list (config then runc's defaults), written to v1
//! devices.allow/deny or compiled into the v2 device program (`devfilter`).

use super::devfilter;
use super::layout::Layout;
use super::paths::rel;
use super::values::{bad, field};
use super::CGROUP_ROOT;
use crate::error::{config, Result, StepExt};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
use std::io::Write;
use std::path::Path;

pub(super) fn v1_devices_list(layout: &Layout, path: &Path) -> Option<String> {
    let dir = layout.dir("devices", path)?;
    std::fs::read_to_string(dir.join("devices.list")).ok()
}

/// An update without `devices` leaves the allowlist as it was; libcgroups' manager adds
/// /dev/console (c 5:1) on its way through, so take that back unless it was there before.
pub(super) fn restore_console_rule(
    layout: &Layout,
    path: &Path,
    before: Option<&str>,
) -> Result<()> {
    let (Some(before), Some(dir)) = (before, layout.dir("devices", path)) else {
        return Ok(());
    };
    let had = before
        .lines()
        .any(|l| l.trim() == "c 5:1 rwm" || l.trim() == "a *:* rwm");
    if !had {
        std::fs::write(dir.join("devices.deny"), "c 5:1 rwm").step(|| {
            "keep /dev/console out of the device allowlist (linux.resources.devices)".into()
        })?;
    }
    Ok(())
}

/// runc's allowlist, applied after the config's rules: the default device nodes, mknod of
/// anything, ptys, ptmx, tun. (libcgroups adds /dev/console 5:1; runc does not, and neither
/// does vsrun: a container's console is a pty.)
pub(super) const DEFAULT_DEVICES: &[(char, Option<u32>, Option<u32>, &str)] = &[
    ('c', Some(1), Some(3), "rwm"),
    ('c', Some(1), Some(5), "rwm"),
    ('c', Some(1), Some(7), "rwm"),
    ('c', Some(5), Some(0), "rwm"),
    ('c', Some(1), Some(9), "rwm"),
    ('c', Some(1), Some(8), "rwm"),
    ('c', None, None, "m"),
    ('b', None, None, "m"),
    ('c', Some(136), None, "rwm"),
    ('c', Some(5), Some(2), "rwm"),
    ('c', Some(10), Some(200), "rwm"),
];

/// The rules to apply in order, each with the index of its config entry: deny everything
/// (runc starts from an empty allowlist, whatever the config says), the config's rules, the
/// default allowlist.
pub(super) fn device_rules(
    list: Option<&[LinuxDeviceCgroup]>,
) -> Result<Vec<(Option<usize>, devfilter::Rule)>> {
    let mut out = vec![(None, devfilter::Rule::all(false))];
    for (i, d) in list.unwrap_or_default().iter().enumerate() {
        let f = |s: &str| field(&format!("devices[{i}]{s}"));
        let typ = match d.typ().unwrap_or_default() {
            LinuxDeviceType::A => None,
            LinuxDeviceType::B => Some(devfilter::BLOCK),
            LinuxDeviceType::C => Some(devfilter::CHAR),
            t => {
                return Err(config(
                    f(".type"),
                    format!("{:?}: the devices cgroup knows a, b and c only", t.as_str()),
                ))
            }
        };
        let num = |v: Option<i64>, what: &str| -> Result<Option<u32>> {
            match v {
                None => Ok(None),
                Some(n) => u32::try_from(n).map(Some).map_err(|_| {
                    config(
                        f(what),
                        format!("{n}: must be a device number; leave it out for any"),
                    )
                }),
            }
        };
        let access = match d.access().as_deref().unwrap_or("") {
            "" => devfilter::ACC_ALL,
            a => a.chars().try_fold(0u8, |acc, c| match c {
                'r' => Ok(acc | devfilter::ACC_READ),
                'w' => Ok(acc | devfilter::ACC_WRITE),
                'm' => Ok(acc | devfilter::ACC_MKNOD),
                _ => Err(config(
                    f(".access"),
                    format!("{a:?}: a combination of r, w and m"),
                )),
            })?,
        };
        out.push((
            Some(i),
            devfilter::Rule {
                allow: d.allow(),
                typ,
                major: num(d.major(), ".major")?,
                minor: num(d.minor(), ".minor")?,
                access,
            },
        ));
    }
    for (t, major, minor, access) in DEFAULT_DEVICES {
        let typ = Some(if *t == 'b' {
            devfilter::BLOCK
        } else {
            devfilter::CHAR
        });
        let access = access.chars().fold(0, |a, c| {
            a | match c {
                'r' => devfilter::ACC_READ,
                'w' => devfilter::ACC_WRITE,
                _ => devfilter::ACC_MKNOD,
            }
        });
        out.push((
            None,
            devfilter::Rule {
                allow: true,
                typ,
                major: *major,
                minor: *minor,
                access,
            },
        ));
    }
    Ok(out)
}

/// The allowlist for a new container (or a replacement from `update`): v1 rules written in
/// order to devices.deny/devices.allow (the kernel keeps the list); v2 the same rules through
/// the v1 semantics into a device program. A host without device control skips it silently
/// only when the config asked for nothing.
pub(super) fn apply_devices(
    layout: &Layout,
    path: &Path,
    list: Option<&[LinuxDeviceCgroup]>,
) -> Result<()> {
    let asked = list.is_some_and(|l| !l.is_empty());
    let rules = device_rules(list)?;
    match layout {
        Layout::V1 { .. } => {
            let Some(dir) = layout.dir("devices", path) else {
                if asked {
                    return Err(bad(
                        "devices",
                        "the devices controller is not mounted on this host",
                    ));
                }
                return Ok(());
            };
            write_v1_devices(&dir, &rules)
        }
        Layout::V2 => {
            let dir = Path::new(CGROUP_ROOT).join(rel(path));
            let policy = devfilter::emulate(rules.iter().map(|(_, r)| r));
            let prog = devfilter::program(&policy)
                .map_err(|e| bad("devices", format!("the device program: {e}")))?;
            match devfilter::attach(&dir, &prog) {
                Ok(()) => Ok(()),
                Err(e)
                    if !asked && matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EINVAL)) =>
                {
                    Ok(())
                }
                Err(e) => Err(bad(
                    "devices",
                    format!("attach the device program to {}: {e}", dir.display()),
                )),
            }
        }
    }
}

pub(super) fn write_v1_devices(
    dir: &Path,
    rules: &[(Option<usize>, devfilter::Rule)],
) -> Result<()> {
    // Both files through one fd of the directory: one path walk, not two.
    let fd = super::at::open_root()
        .and_then(|root| super::at::open_dir(std::os::fd::AsFd::as_fd(&root), dir))
        .step(|| format!("open {} (linux.resources.devices)", dir.display()))?;
    let open = |f: &str| {
        super::at::open_file(std::os::fd::AsFd::as_fd(&fd), f)
            .step(|| format!("open {}/{f} (linux.resources.devices)", dir.display()))
    };
    let (mut allow, mut deny) = (open("devices.allow")?, open("devices.deny")?);
    for (i, r) in rules {
        let line = r.v1_line();
        let file = if r.allow { &mut allow } else { &mut deny };
        // One rule per write(2): the kernel parses each write as one line.
        file.write_all(line.as_bytes()).map_err(|e| {
            let f = match i {
                Some(i) => field(&format!("devices[{i}]")),
                None => field("devices"),
            };
            config(f, format!("{line:?}: {e}"))
        })?;
    }
    Ok(())
}
