//! `linux.resources.hugepageLimits`: a limit per huge page size (`hugetlb.<size>.limit_in_bytes`
//! on v1, `hugetlb.<size>.max` on v2), written by libcgroups. The size must be one this host
//! has (/sys/kernel/mm/hugepages).

use super::fields::{Field, Set};
use super::values::bad;
use crate::error::Result;
use oci_spec::runtime::{LinuxHugepageLimit, LinuxResources};
use std::path::Path;

pub(super) const FIELDS: &[Field] = &[Field {
    name: "hugepageLimits[]",
    controller: ["hugetlb", "hugetlb"],
    files: [&["hugetlb.{}.limit_in_bytes"], &["hugetlb.{}.max"]],
    missing: ["", ""],
    tag: ["", ""],
    checked: true,
    set: |r: &LinuxResources| {
        let list = r.hugepage_limits().iter().flatten().enumerate();
        Set::List(list.map(|(i, h)| (i, h.page_size().clone())).collect())
    },
}];

/// What is wrong with each entry: a size this host has no pages of, a negative limit.
pub(super) fn validate(list: &[LinuxHugepageLimit]) -> Result<()> {
    for (i, h) in list.iter().enumerate() {
        let f = format!("hugepageLimits[{i}]");
        let Some(kb) = hugepage_kb(h.page_size()) else {
            return Err(bad(
                &format!("{f}.pageSize"),
                format!("{:?}: not a size like \"2MB\" or \"1GB\"", h.page_size()),
            ));
        };
        if !Path::new(&format!("/sys/kernel/mm/hugepages/hugepages-{kb}kB")).exists() {
            return Err(bad(
                &format!("{f}.pageSize"),
                format!(
                    "{:?}: this host has no such huge page size (see /sys/kernel/mm/hugepages)",
                    h.page_size()
                ),
            ));
        }
        if h.limit() < 0 {
            return Err(bad(
                &format!("{f}.limit"),
                format!("{}: must be a number of bytes", h.limit()),
            ));
        }
    }
    Ok(())
}

/// "2MB" → 2048 (kB), the unit of /sys/kernel/mm/hugepages and of the cgroup file names.
pub(super) fn hugepage_kb(size: &str) -> Option<u64> {
    let digits = size.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let n: u64 = digits.parse().ok()?;
    let kb = match &size[digits.len()..] {
        "KB" => n,
        "MB" => n.checked_mul(1 << 10)?,
        "GB" => n.checked_mul(1 << 20)?,
        _ => return None,
    };
    (n > 0 && kb.is_power_of_two()).then_some(kb)
}
