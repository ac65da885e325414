//! The one table between `linux.resources` fields and cgroup files, read both ways: field →
//! controller and files (what `check_host` and rootless mode look for before anything is
//! written), and file → field (which field a write the kernel refused belongs to). Each
//! controller file (memory.rs, cpu.rs, pids.rs, blkio.rs, hugetlb.rs, network.rs, rdma.rs)
//! holds its own rows; `unified` keys are file names already and are handled in unified.rs.

use super::{blkio, cpu, hugetlb, memory, network, pids, rdma};
use oci_spec::runtime::LinuxResources;

/// Which entries of a field the (normalized) config sets.
pub(super) enum Set {
    No,
    Yes,
    /// A list field: the index of each set entry and its key, the part of a write that names
    /// it ("8:0" for a block device, "2MB" for a huge page size).
    List(Vec<(usize, String)>),
}

impl From<bool> for Set {
    fn from(set: bool) -> Set {
        if set {
            Set::Yes
        } else {
            Set::No
        }
    }
}

/// One row. Index 0 of each pair is cgroup v1, index 1 is v2.
pub(super) struct Field {
    /// Below `linux.resources`; `[]` marks where a list's index goes.
    pub name: &'static str,
    pub controller: [&'static str; 2],
    /// Any one of them will do; `{}` is the entry's key (hugetlb.{}.max). No v2 files: the
    /// field is v1-only.
    pub files: [&'static [&'static str]; 2],
    /// Why the files would be missing on a host that has the controller ("" for the generic
    /// "this kernel has no FILE"); for a v1-only field, the v2 slot says why v2 lacks it.
    pub missing: [&'static str; 2],
    /// Set when several fields write one file (v2 io.max): a write of this field contains it.
    pub tag: [&'static str; 2],
    /// false: not looked for before the write (the kernel memory limits, which warn instead).
    pub checked: bool,
    pub set: fn(&LinuxResources) -> Set,
}

impl Field {
    /// The field's full name, with the list index when there is one.
    pub fn path(&self, index: Option<usize>) -> String {
        let name = match index {
            Some(i) => self.name.replacen("[]", &format!("[{i}]"), 1),
            None => self.name.replacen("[]", "", 1),
        };
        format!("linux.resources.{name}")
    }

    fn files_for(&self, v2: bool, key: &str) -> Vec<String> {
        self.files[v2 as usize]
            .iter()
            .map(|f| f.replace("{}", key))
            .collect()
    }

    /// Whether a write of `data` to `file` is this field's, and the key a `{}` in the file
    /// name stands for ("" when there is none).
    fn key_in<'a>(&self, file: &'a str, data: &str) -> Option<&'a str> {
        (0..2)
            .filter(|v| data.contains(self.tag[*v]))
            .flat_map(|v| self.files[v].iter())
            .find_map(|t| match t.split_once("{}") {
                None => (*t == file).then_some(""),
                Some((pre, post)) => file.strip_prefix(pre)?.strip_suffix(post),
            })
    }
}

const TABLE: &[&[Field]] = &[
    memory::FIELDS,
    cpu::FIELDS,
    pids::FIELDS,
    blkio::FIELDS,
    hugetlb::FIELDS,
    network::FIELDS,
    rdma::FIELDS,
];

pub(super) fn rows() -> impl Iterator<Item = &'static Field> {
    TABLE.iter().flat_map(|t| t.iter())
}

/// One set field, the controller and files it needs, and why they would be missing.
pub(super) struct Need {
    pub field: String,
    pub controller: &'static str,
    pub files: Vec<String>,
    pub missing: String,
}

/// Every set field of the table, in table order (an error names the first).
pub(super) fn table_needs(n: &LinuxResources, v2: bool) -> Vec<Need> {
    let mut out = Vec::new();
    for row in rows().filter(|r| r.checked) {
        let need = |index: Option<usize>, key: &str| Need {
            field: row.path(index),
            controller: row.controller[v2 as usize],
            files: row.files_for(v2, key),
            missing: row.missing[v2 as usize].to_string(),
        };
        match (row.set)(n) {
            Set::No => {}
            Set::Yes => out.push(need(None, "")),
            Set::List(l) => out.extend(l.iter().map(|(i, k)| need(Some(*i), k))),
        }
    }
    out
}

/// The set fields this kernel's cgroup v2 has no files for, each with why.
pub(super) fn v1_only(n: &LinuxResources) -> Option<(String, &'static str)> {
    rows()
        .filter(|r| r.checked && r.files[1].is_empty())
        .find_map(|row| match (row.set)(n) {
            Set::No => None,
            Set::Yes => Some((row.path(None), row.missing[1])),
            Set::List(l) => l.first().map(|(i, _)| (row.path(Some(*i)), row.missing[1])),
        })
}

/// The field a write of `data` to `file` belongs to. Several rows may name one file: the one
/// whose list has the entry the write names wins, then one the config sets, then the first.
pub(super) fn field_of_write(file: &str, data: &str, n: &LinuxResources) -> Option<String> {
    let dev = data.split_whitespace().next().unwrap_or_default();
    let mut best: Option<(u8, String)> = None;
    for row in rows() {
        let Some(key) = row.key_in(file, data) else {
            continue;
        };
        let key = if key.is_empty() { dev } else { key };
        let (score, field) = match (row.set)(n) {
            Set::List(l) => match l.iter().find(|(_, k)| k == key) {
                Some((i, _)) => (3, row.path(Some(*i))),
                None => (0, row.path(None)),
            },
            Set::Yes => (2, row.path(None)),
            Set::No => (1, row.path(None)),
        };
        if best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, field));
        }
    }
    best.map(|(_, f)| f)
}
