//! /proc/self/mountinfo and /proc/self/cgroup, read by the init before pivot_root (it still
//! sees the host's /proc): which mount holds the rootfs where statmount(2) is missing, and
//! where the cgroup hierarchies are when cgroups/hierarchies.rs cannot be certain without it.

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub id: u64,
    /// The id of the mount this one is mounted on.
    pub parent: u64,
    /// major:minor of the file system.
    pub dev: String,
    pub root: String,
    pub mount_point: PathBuf,
    /// Optional fields (`shared:N`, `master:N`, ...).
    pub optional: Vec<String>,
    pub fstype: String,
    pub source: String,
    pub super_options: Vec<String>,
}

impl MountInfo {
    pub fn is_shared(&self) -> bool {
        self.optional.iter().any(|o| o.starts_with("shared:"))
    }
}

/// Undo the octal escapes (`\040` for a space) the kernel puts in paths.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_line(line: &str) -> Option<MountInfo> {
    let mut f = line.split(' ');
    let id = f.next()?.parse().ok()?;
    let parent = f.next()?.parse().ok()?;
    let dev = f.next()?.to_string();
    let root = unescape(f.next()?);
    let mount_point = PathBuf::from(unescape(f.next()?));
    let _opts = f.next()?;
    let mut optional = Vec::new();
    loop {
        match f.next()? {
            "-" => break,
            o => optional.push(o.to_string()),
        }
    }
    let fstype = f.next()?.to_string();
    let source = unescape(f.next()?);
    let super_options = f
        .next()
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    Some(MountInfo {
        id,
        parent,
        dev,
        root,
        mount_point,
        optional,
        fstype,
        source,
        super_options,
    })
}

pub fn parse(text: &str) -> Vec<MountInfo> {
    text.lines().filter_map(parse_line).collect()
}

pub fn read() -> std::io::Result<Vec<MountInfo>> {
    Ok(parse(&std::fs::read_to_string("/proc/self/mountinfo")?))
}

/// One line of /proc/self/cgroup: controllers (empty for the v2 hierarchy) and the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLine {
    pub hierarchy: u32,
    pub controllers: Vec<String>,
    pub path: String,
}

pub fn parse_cgroup(text: &str) -> Vec<CgroupLine> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let hierarchy = f.next()?.parse().ok()?;
            let controllers = f
                .next()?
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            let path = f.next()?.to_string();
            Some(CgroupLine {
                hierarchy,
                controllers,
                path,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_optional_fields_and_escapes() {
        let m = parse_line(
            "36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue",
        )
        .unwrap();
        assert_eq!(m.id, 36);
        assert_eq!(m.root, "/mnt1");
        assert_eq!(m.mount_point, PathBuf::from("/mnt two"));
        assert_eq!(m.optional, vec!["master:1", "shared:7"]);
        assert!(m.is_shared());
        assert_eq!(m.fstype, "ext3");
        assert_eq!(m.super_options, vec!["rw", "errors=continue"]);
    }

    #[test]
    fn parses_cgroup_lines() {
        let c = parse_cgroup("9:name=systemd:/\n2:cpu,cpuacct:/a/b\n0::/x\n");
        assert_eq!(c[0].controllers, vec!["name=systemd"]);
        assert_eq!(c[1].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(c[1].path, "/a/b");
        assert_eq!(c[2].hierarchy, 0);
        assert!(c[2].controllers.is_empty());
    }
}
