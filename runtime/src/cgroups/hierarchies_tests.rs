//! The fast path's decision: odd /proc/self/cgroup lines or odd mounts must send vsrun to
//! mountinfo (None), never to a wrong answer.

use super::*;

const HYBRID: &str = "9:name=systemd:/\n8:pids:/\n2:cpu,cpuacct:/a\n1:net_cls,net_prio:/\n0::/\n";

fn lines(t: &str) -> Vec<CgroupLine> {
    parse_all(t).unwrap_or_default()
}

fn points(want: &[Expected]) -> Vec<&str> {
    want.iter()
        .map(|e| e.mount_point.to_str().unwrap())
        .collect()
}

/// A host where every expected mount is there (a distinct device per path), bent by `bend`,
/// with `extra` entries in /sys/fs/cgroup beside the mounts.
struct Host {
    bend: fn(&Path, &mut Seen),
    extra: Vec<(&'static str, Option<Seen>)>,
}

fn seen(p: &Path) -> Seen {
    let magic = if p.ends_with("unified") || p == Path::new(CGROUP_ROOT) {
        CGROUP2_SUPER_MAGIC
    } else {
        CGROUP_SUPER_MAGIC
    };
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    p.hash(&mut h);
    Seen {
        magic: Some(magic),
        ino: 1,
        dev: (0, h.finish() as u32),
        kind: libc::S_IFDIR,
        nlink: 2,
        mount_root: true,
    }
}

fn plain_dir() -> Option<Seen> {
    Some(Seen {
        magic: Some(nix::sys::statfs::TMPFS_MAGIC),
        ino: 9,
        dev: (0, 28),
        kind: libc::S_IFDIR,
        nlink: 2,
        mount_root: false,
    })
}

impl Look for Host {
    fn see(&self, p: &Path) -> Option<Seen> {
        if let Some((_, s)) = self.extra.iter().find(|(n, _)| p.ends_with(n)) {
            return *s;
        }
        let mut s = seen(p);
        (self.bend)(p, &mut s);
        Some(s)
    }

    fn entries(&self, _: &Path) -> Option<Vec<PathBuf>> {
        let mut e: Vec<PathBuf> = ["systemd", "pids", "cpu,cpuacct", "net_cls,net_prio"]
            .iter()
            .map(|n| Path::new(CGROUP_ROOT).join(n))
            .collect();
        e.extend(
            self.extra
                .iter()
                .map(|(n, _)| Path::new(CGROUP_ROOT).join(n)),
        );
        Some(e)
    }
}

fn good() -> Host {
    Host {
        bend: |_, _| {},
        extra: Vec::new(),
    }
}

#[test]
fn hybrid_lines_name_each_hierarchy_by_its_controllers_or_name() {
    // In hierarchy-id order (the order of the mounts), not /proc/self/cgroup's.
    let want = expected(&lines(HYBRID), false).unwrap();
    assert_eq!(
        points(&want),
        [
            "/sys/fs/cgroup/net_cls,net_prio",
            "/sys/fs/cgroup/cpu,cpuacct",
            "/sys/fs/cgroup/pids",
            "/sys/fs/cgroup/systemd",
            "/sys/fs/cgroup/unified"
        ]
    );
    assert_eq!(want[3].options, ["name=systemd"]);
    assert_eq!(want[1].options, ["cpu", "cpuacct"]);
    let mounts = verify(want, &good()).unwrap();
    assert_eq!(mounts[1].fstype, "cgroup");
    assert_eq!(mounts[2].root, "/");
    assert_eq!(mounts[4].fstype, "cgroup2");
}

#[test]
fn pure_v2_is_the_root_itself() {
    let want = expected(&lines("0::/user.slice\n"), true).unwrap();
    assert_eq!(points(&want), ["/sys/fs/cgroup"]);
    assert!(verify(want, &good()).is_some());
    // v2 at the root, yet a v1 hierarchy exists somewhere: mountinfo knows where.
    assert_eq!(expected(&lines("1:name=systemd:/\n0::/\n"), true), None);
    // v2 at the root but the kernel shows no v2 line: not as expected.
    assert_eq!(expected(&lines("1:cpu:/\n"), true), None);
}

#[test]
fn pure_v1_without_a_v2_line_expects_no_unified() {
    let want = expected(&lines("2:memory:/\n1:cpu:/\n"), false).unwrap();
    assert_eq!(
        points(&want),
        ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup/memory"]
    );
}

#[test]
fn odd_lines_fall_back_to_mountinfo() {
    for odd in [
        "",
        "garbage\n",
        "1:cpu:/\ngarbage\n0::/\n", // one line the parser skips
        "3:cpu,name=foo:/\n0::/\n", // a named hierarchy with controllers
        "3:name=foo,name=bar:/\n",  // two names
        "3:name=:/\n",              // empty name
        "3:name=..:/\n",            // a name that is not a directory name
        "3:name=a/b:/\n",           // a name with a slash
        "3::/\n",                   // v1 without controllers or name
        "0:cpu:/\n",                // v2 with controllers
        "2:cpu:/\n2:memory:/\n",    // a hierarchy id twice
        "1:cpu:/\n0::/\n0::/x\n",   // v2 twice
    ] {
        assert_eq!(expected(&lines(odd), false), None, "{odd:?}");
    }
}

#[test]
fn odd_mounts_fall_back_to_mountinfo() {
    type Bend = fn(&Path, &mut Seen);
    let bends: [(&str, Bend); 6] = [
        ("not a mount root (a plain dir)", |p, s| {
            if p.ends_with("pids") {
                s.mount_root = false
            }
        }),
        (
            "a bind of a sub-cgroup (mountinfo's root would not be /)",
            |_, s| s.ino = 7,
        ),
        ("another file system", |_, s| {
            s.magic = Some(nix::sys::statfs::TMPFS_MAGIC)
        }),
        ("a symlink where a hierarchy should be", |p, s| {
            if p.ends_with("pids") {
                (s.kind, s.magic, s.mount_root) = (libc::S_IFLNK, None, false)
            }
        }),
        ("v2 where a v1 hierarchy should be", |p, s| {
            if p.ends_with("pids") {
                s.magic = Some(CGROUP2_SUPER_MAGIC)
            }
        }),
        ("one hierarchy at two names", |_, s| s.dev = (0, 1)),
    ];
    for (what, bend) in bends {
        let host = Host {
            bend,
            extra: Vec::new(),
        };
        let want = expected(&lines(HYBRID), false).unwrap();
        assert_eq!(verify(want, &host), None, "{what}");
    }
    // A missing directory (the hierarchy is mounted elsewhere, or with its controllers in
    // another order).
    let host = Host {
        bend: |_, _| {},
        extra: vec![("cpu,cpuacct", None)],
    };
    let want = expected(&lines(HYBRID), false).unwrap();
    assert_eq!(verify(want, &host), None);
}

#[test]
fn an_unmounted_unified_is_certain_only_if_nothing_else_can_be_mounted() {
    let symlink = Some(Seen {
        kind: libc::S_IFLNK,
        magic: None,
        ..plain_dir().unwrap()
    });
    // hack/bench.sh's namespace: "unified" left as an empty directory, systemd's symlinks.
    let host = Host {
        bend: |_, _| {},
        extra: vec![
            ("unified", plain_dir()),
            ("cpu", symlink),
            ("cpuacct", symlink),
        ],
    };
    let mounts = verify(expected(&lines(HYBRID), false).unwrap(), &host).unwrap();
    assert!(mounts.iter().all(|m| m.fstype == "cgroup"));
    assert_eq!(mounts.len(), 4);
    // Something else mounted on "unified", a directory with subdirectories (a cgroup2 may be
    // mounted below), a directory with no link count (btrfs), or an entry that vanished.
    let odd: [(&str, Option<Seen>); 4] = [
        (
            "unified",
            Some(Seen {
                mount_root: true,
                ..plain_dir().unwrap()
            }),
        ),
        (
            "unified",
            Some(Seen {
                nlink: 3,
                ..plain_dir().unwrap()
            }),
        ),
        (
            "unified",
            Some(Seen {
                nlink: 1,
                ..plain_dir().unwrap()
            }),
        ),
        ("unified", None),
    ];
    for (name, s) in odd {
        let host = Host {
            bend: |_, _| {},
            extra: vec![(name, s)],
        };
        let want = expected(&lines(HYBRID), false).unwrap();
        assert_eq!(verify(want, &host), None, "{s:?}");
    }
    // Another entry beside an absent unified: a v2 mount there is what mountinfo would find.
    let host = Host {
        bend: |p, s| {
            if p.ends_with("unified") {
                s.magic = Some(CGROUP_SUPER_MAGIC)
            }
        },
        extra: vec![("elsewhere", Some(seen(Path::new("/sys/fs/cgroup/unified"))))],
    };
    let want = expected(&lines(HYBRID), false).unwrap();
    assert_eq!(verify(want, &host), None);
}

#[test]
fn this_hosts_fast_answer_matches_mountinfo() {
    // Under /sys/fs/cgroup, every hierarchy the fast path finds is the one mountinfo lists
    // there first, with the same device, file system and root.
    let Some(fast) = fast() else { return };
    let info = from_mountinfo().unwrap();
    for f in &fast {
        let m = info
            .mounts
            .iter()
            .find(|m| m.mount_point == f.mount_point)
            .unwrap_or_else(|| panic!("{} not in mountinfo", f.mount_point.display()));
        assert_eq!((&m.fstype, &m.root), (&f.fstype, &f.root));
        assert_eq!(m.dev, f.dev);
        for o in &f.super_options {
            assert!(
                m.super_options.contains(o),
                "{o} on {}",
                f.mount_point.display()
            );
        }
    }
    let under = |m: &&MountInfo| m.mount_point.starts_with(CGROUP_ROOT);
    assert_eq!(info.mounts.iter().filter(under).count(), fast.len());
}
