//! `linux.resources.blockIO` (v1 blkio, v2 io): weight, leafWeight, weightDevice and the four
//! throttle lists. libcgroups writes the weight and throttles; vsrun writes v1 leaf weights
//! and weight devices, which libcgroups 0.7 skips. A device must exist on the host.

use super::apply::write_file;
use super::fields::{Field, Set};
use super::layout::Layout;
use super::values::bad;
use crate::error::Result;
use oci_spec::runtime::{
    LinuxBlockIo, LinuxResources, LinuxThrottleDevice, LinuxWeightDevice, LinuxWeightDeviceBuilder,
};
use std::path::Path;

fn set(r: &LinuxResources, f: fn(&LinuxBlockIo) -> bool) -> Set {
    r.block_io().as_ref().is_some_and(f).into()
}

fn key(major: i64, minor: i64) -> String {
    format!("{major}:{minor}")
}

fn weight_devices(r: &LinuxResources, f: fn(&LinuxWeightDevice) -> bool) -> Set {
    let b = r.block_io().clone().unwrap_or_default();
    let list = b.weight_device().iter().flatten().enumerate();
    Set::List(
        list.filter(|(_, d)| f(d))
            .map(|(i, d)| (i, key(d.major(), d.minor())))
            .collect(),
    )
}

fn throttle(r: &LinuxResources, which: usize) -> Set {
    let b = r.block_io().clone().unwrap_or_default();
    let list = throttles(&b)[which].1.iter().enumerate();
    Set::List(list.map(|(i, d)| (i, key(d.major(), d.minor()))).collect())
}

const LEAF: &str = "leaf weights existed only with CFQ (removed in Linux 5.0)";
const LEAF_V2: &str = "leaf weights are a CFQ feature";
const THROTTLE: &str = "this kernel has no I/O throttling (CONFIG_BLK_DEV_THROTTLING)";

pub(super) const FIELDS: &[Field] = &[
    Field {
        name: "blockIO.weight",
        controller: ["blkio", "io"],
        files: [
            &["blkio.weight", "blkio.bfq.weight"],
            &["io.bfq.weight", "io.weight"],
        ],
        missing: [
            "no proportional I/O scheduler (CFQ/BFQ) offers a weight",
            "no proportional I/O scheduler (CFQ/BFQ) offers a weight",
        ],
        tag: ["", ""],
        checked: true,
        set: |r| set(r, |b| b.weight().is_some()),
    },
    Field {
        name: "blockIO.leafWeight",
        controller: ["blkio", "io"],
        files: [&["blkio.leaf_weight"], &[]],
        missing: [LEAF, LEAF_V2],
        tag: ["", ""],
        checked: true,
        set: |r| set(r, |b| b.leaf_weight().is_some()),
    },
    Field {
        name: "blockIO.weightDevice[]",
        controller: ["blkio", "io"],
        files: [
            &["blkio.weight_device", "blkio.bfq.weight_device"],
            &["io.bfq.weight"],
        ],
        missing: [
            "per-device weights need the BFQ scheduler",
            "per-device weights need the BFQ scheduler",
        ],
        tag: ["", ""],
        checked: true,
        set: |r| weight_devices(r, |d| d.weight().is_some()),
    },
    Field {
        name: "blockIO.weightDevice[].leafWeight",
        controller: ["blkio", "io"],
        files: [&["blkio.leaf_weight_device"], &[]],
        missing: [LEAF, LEAF_V2],
        tag: ["", ""],
        checked: true,
        set: |r| weight_devices(r, |d| d.leaf_weight().is_some()),
    },
    Field {
        name: "blockIO.throttleReadBpsDevice[]",
        controller: ["blkio", "io"],
        files: [&["blkio.throttle.read_bps_device"], &["io.max"]],
        missing: [THROTTLE, THROTTLE],
        tag: ["", "rbps="],
        checked: true,
        set: |r| throttle(r, 0),
    },
    Field {
        name: "blockIO.throttleWriteBpsDevice[]",
        controller: ["blkio", "io"],
        files: [&["blkio.throttle.write_bps_device"], &["io.max"]],
        missing: [THROTTLE, THROTTLE],
        tag: ["", "wbps="],
        checked: true,
        set: |r| throttle(r, 1),
    },
    Field {
        name: "blockIO.throttleReadIOPSDevice[]",
        controller: ["blkio", "io"],
        files: [&["blkio.throttle.read_iops_device"], &["io.max"]],
        missing: [THROTTLE, THROTTLE],
        tag: ["", "riops="],
        checked: true,
        set: |r| throttle(r, 2),
    },
    Field {
        name: "blockIO.throttleWriteIOPSDevice[]",
        controller: ["blkio", "io"],
        files: [&["blkio.throttle.write_iops_device"], &["io.max"]],
        missing: [THROTTLE, THROTTLE],
        tag: ["", "wiops="],
        checked: true,
        set: |r| throttle(r, 3),
    },
];

/// What is wrong with a value, whatever the host.
pub(super) fn validate(b: &LinuxBlockIo) -> Result<()> {
    let weight = |name: &str, w: Option<u16>| match w {
        Some(w) if w != 0 && !(10..=1000).contains(&w) => {
            Err(bad(name, format!("{w}: must be 10..1000")))
        }
        _ => Ok(()),
    };
    weight("blockIO.weight", b.weight())?;
    weight("blockIO.leafWeight", b.leaf_weight())?;
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        let f = format!("blockIO.weightDevice[{i}]");
        device_numbers(&f, d.major(), d.minor())?;
        weight(&format!("{f}.weight"), d.weight())?;
        weight(&format!("{f}.leafWeight"), d.leaf_weight())?;
    }
    for (name, list) in throttles(b) {
        for (i, d) in list.iter().enumerate() {
            device_numbers(&format!("blockIO.{name}[{i}]"), d.major(), d.minor())?;
        }
    }
    Ok(())
}

pub(super) fn device_numbers(f: &str, major: i64, minor: i64) -> Result<()> {
    if major < 0 || minor < 0 || major > u32::MAX as i64 || minor > u32::MAX as i64 {
        return Err(bad(
            f,
            format!("{major}:{minor}: device numbers must be non-negative"),
        ));
    }
    Ok(())
}

pub(super) fn throttles(b: &LinuxBlockIo) -> [(&'static str, &[LinuxThrottleDevice]); 4] {
    fn l(v: &Option<Vec<LinuxThrottleDevice>>) -> &[LinuxThrottleDevice] {
        v.as_deref().unwrap_or_default()
    }
    [
        ("throttleReadBpsDevice", l(b.throttle_read_bps_device())),
        ("throttleWriteBpsDevice", l(b.throttle_write_bps_device())),
        ("throttleReadIOPSDevice", l(b.throttle_read_iops_device())),
        ("throttleWriteIOPSDevice", l(b.throttle_write_iops_device())),
    ]
}

/// runc's "unset" values taken out: 0 weights (a weight device with neither is dropped),
/// empty lists.
pub(super) fn normalize(b: &LinuxBlockIo) -> Option<LinuxBlockIo> {
    let mut b = b.clone();
    b.set_weight(b.weight().filter(|w| *w != 0));
    b.set_leaf_weight(b.leaf_weight().filter(|w| *w != 0));
    let wd: Vec<_> = b
        .weight_device()
        .iter()
        .flatten()
        .filter_map(normalize_weight_device)
        .collect();
    b.set_weight_device((!wd.is_empty()).then_some(wd));
    let ne = |v: Option<Vec<_>>| v.filter(|v: &Vec<_>| !v.is_empty());
    b.set_throttle_read_bps_device(ne(b.throttle_read_bps_device().clone()));
    b.set_throttle_write_bps_device(ne(b.throttle_write_bps_device().clone()));
    b.set_throttle_read_iops_device(ne(b.throttle_read_iops_device().clone()));
    b.set_throttle_write_iops_device(ne(b.throttle_write_iops_device().clone()));
    (b != Default::default()).then_some(b)
}

fn normalize_weight_device(d: &LinuxWeightDevice) -> Option<LinuxWeightDevice> {
    let (w, lw) = (
        d.weight().filter(|w| *w != 0),
        d.leaf_weight().filter(|w| *w != 0),
    );
    if w.is_none() && lw.is_none() {
        return None;
    }
    let mut b = LinuxWeightDeviceBuilder::default()
        .major(d.major())
        .minor(d.minor());
    if let Some(w) = w {
        b = b.weight(w);
    }
    if let Some(w) = lw {
        b = b.leaf_weight(w);
    }
    b.build().ok()
}

/// Every device the throttles and weight devices name is a block device of this host.
pub(super) fn check_devices_exist(b: &LinuxBlockIo) -> Result<()> {
    for (name, list) in throttles(b) {
        for (i, d) in list.iter().enumerate() {
            block_device_exists(&format!("blockIO.{name}[{i}]"), d.major(), d.minor())?;
        }
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        block_device_exists(&format!("blockIO.weightDevice[{i}]"), d.major(), d.minor())?;
    }
    Ok(())
}

fn block_device_exists(f: &str, major: i64, minor: i64) -> Result<()> {
    if Path::new(&format!("/sys/dev/block/{major}:{minor}")).exists() {
        return Ok(());
    }
    Err(bad(
        f,
        format!("{major}:{minor} is not a block device on this host"),
    ))
}

/// v1 leaf weights and weight devices, which libcgroups 0.7 never writes.
pub(super) fn write_own(b: &LinuxBlockIo, layout: &Layout, path: &Path) -> Result<()> {
    if layout.is_v2() {
        return Ok(());
    }
    let blkio = layout.dir_for("blkio", path, "blockIO")?;
    if let Some(w) = b.leaf_weight() {
        write_file(
            "blockIO.leafWeight",
            &blkio,
            "blkio.leaf_weight",
            &w.to_string(),
        )?;
    }
    let weight_file = if blkio.join("blkio.weight_device").exists() {
        "blkio.weight_device"
    } else {
        "blkio.bfq.weight_device"
    };
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        let f = format!("blockIO.weightDevice[{i}]");
        if let Some(w) = d.weight() {
            let v = format!("{}:{} {w}", d.major(), d.minor());
            write_file(&f, &blkio, weight_file, &v)?;
        }
        if let Some(w) = d.leaf_weight() {
            let v = format!("{}:{} {w}", d.major(), d.minor());
            write_file(
                &format!("{f}.leafWeight"),
                &blkio,
                "blkio.leaf_weight_device",
                &v,
            )?;
        }
    }
    Ok(())
}
