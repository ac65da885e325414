//! Mount option strings → what to do with them, through one static table (design.md: crun
//! maps options through a generated table, not a chain of ifs). Whatever the table does not
//! know is file-system data (`mode=755`, `size=65536k`, `newinstance`), handed to the kernel.

use crate::syscall::{
    MOUNT_ATTR_NOATIME, MOUNT_ATTR_NODEV, MOUNT_ATTR_NODIRATIME, MOUNT_ATTR_NOEXEC,
    MOUNT_ATTR_NOSUID, MOUNT_ATTR_NOSYMFOLLOW, MOUNT_ATTR_RDONLY, MOUNT_ATTR_RELATIME,
    MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME,
};
use libc::c_ulong;

/// MS_NOSYMFOLLOW (Linux 5.10); not in every libc.
pub const MS_NOSYMFOLLOW: c_ulong = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opt {
    /// A mount(2) flag the option sets, or (`clear`) clears, e.g. `nosuid` / `suid`.
    Flag { clear: bool, flag: c_ulong },
    /// A propagation change applied after the mount (MS_SHARED etc., MS_REC for r-forms).
    Propagation(c_ulong),
    /// A recursive attribute (`rro`, `rnosuid`, ...) applied with mount_setattr(AT_RECURSIVE).
    Recursive { set: u64, clr: u64 },
    /// Copy what the rootfs had at the destination into the new tmpfs.
    TmpCopyUp,
    /// An idmapped bind mount (runtime-spec 1.2 `idmap`/`ridmap`): MOUNT_ATTR_IDMAP on the
    /// top mount, or (`recursive`) on every mount of an rbind.
    Idmap { recursive: bool },
    /// Known, meaningful, and not implemented: refused at plan time rather than ignored.
    Unsupported,
}

use libc::{
    MS_BIND, MS_DIRSYNC, MS_LAZYTIME, MS_MANDLOCK, MS_NOATIME, MS_NODEV, MS_NODIRATIME, MS_NOEXEC,
    MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_RELATIME, MS_REMOUNT, MS_SHARED, MS_SLAVE,
    MS_STRICTATIME, MS_SYNCHRONOUS, MS_UNBINDABLE,
};

const fn set(flag: c_ulong) -> Opt {
    Opt::Flag { clear: false, flag }
}
const fn clr(flag: c_ulong) -> Opt {
    Opt::Flag { clear: true, flag }
}
const fn rec(set: u64, clr: u64) -> Opt {
    Opt::Recursive { set, clr }
}

/// The option table (runc's and crun's vocabulary). Later options override earlier ones.
pub static OPTIONS: &[(&str, Opt)] = &[
    ("defaults", set(0)),
    ("ro", set(MS_RDONLY)),
    ("rw", clr(MS_RDONLY)),
    ("nosuid", set(MS_NOSUID)),
    ("suid", clr(MS_NOSUID)),
    ("nodev", set(MS_NODEV)),
    ("dev", clr(MS_NODEV)),
    ("noexec", set(MS_NOEXEC)),
    ("exec", clr(MS_NOEXEC)),
    ("sync", set(MS_SYNCHRONOUS)),
    ("async", clr(MS_SYNCHRONOUS)),
    ("dirsync", set(MS_DIRSYNC)),
    ("remount", set(MS_REMOUNT)),
    ("mand", set(MS_MANDLOCK)),
    ("nomand", clr(MS_MANDLOCK)),
    ("noatime", set(MS_NOATIME)),
    ("atime", clr(MS_NOATIME)),
    ("nodiratime", set(MS_NODIRATIME)),
    ("diratime", clr(MS_NODIRATIME)),
    ("relatime", set(MS_RELATIME)),
    ("norelatime", clr(MS_RELATIME)),
    ("strictatime", set(MS_STRICTATIME)),
    ("nostrictatime", clr(MS_STRICTATIME)),
    ("lazytime", set(MS_LAZYTIME)),
    ("nolazytime", clr(MS_LAZYTIME)),
    // runc passes these to mount(2) as flags; as fs data tmpfs refuses them (EINVAL).
    ("silent", set(libc::MS_SILENT)),
    ("loud", clr(libc::MS_SILENT)),
    ("iversion", set(libc::MS_I_VERSION)),
    ("noiversion", clr(libc::MS_I_VERSION)),
    ("nosymfollow", set(MS_NOSYMFOLLOW)),
    ("symfollow", clr(MS_NOSYMFOLLOW)),
    ("bind", set(MS_BIND)),
    ("rbind", set(MS_BIND | MS_REC)),
    ("shared", Opt::Propagation(MS_SHARED)),
    ("rshared", Opt::Propagation(MS_SHARED | MS_REC)),
    ("slave", Opt::Propagation(MS_SLAVE)),
    ("rslave", Opt::Propagation(MS_SLAVE | MS_REC)),
    ("private", Opt::Propagation(MS_PRIVATE)),
    ("rprivate", Opt::Propagation(MS_PRIVATE | MS_REC)),
    ("unbindable", Opt::Propagation(MS_UNBINDABLE)),
    ("runbindable", Opt::Propagation(MS_UNBINDABLE | MS_REC)),
    ("rro", rec(MOUNT_ATTR_RDONLY, 0)),
    ("rrw", rec(0, MOUNT_ATTR_RDONLY)),
    ("rnosuid", rec(MOUNT_ATTR_NOSUID, 0)),
    ("rsuid", rec(0, MOUNT_ATTR_NOSUID)),
    ("rnodev", rec(MOUNT_ATTR_NODEV, 0)),
    ("rdev", rec(0, MOUNT_ATTR_NODEV)),
    ("rnoexec", rec(MOUNT_ATTR_NOEXEC, 0)),
    ("rexec", rec(0, MOUNT_ATTR_NOEXEC)),
    ("rnodiratime", rec(MOUNT_ATTR_NODIRATIME, 0)),
    ("rdiratime", rec(0, MOUNT_ATTR_NODIRATIME)),
    ("rrelatime", rec(MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME)),
    ("rnorelatime", rec(MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME)),
    ("rnoatime", rec(MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME)),
    ("ratime", rec(MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME)),
    (
        "rstrictatime",
        rec(MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME),
    ),
    (
        "rnostrictatime",
        rec(MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME),
    ),
    ("rnosymfollow", rec(MOUNT_ATTR_NOSYMFOLLOW, 0)),
    ("rsymfollow", rec(0, MOUNT_ATTR_NOSYMFOLLOW)),
    ("tmpcopyup", Opt::TmpCopyUp),
    ("idmap", Opt::Idmap { recursive: false }),
    ("ridmap", Opt::Idmap { recursive: true }),
];

pub fn lookup(name: &str) -> Option<Opt> {
    OPTIONS.iter().find(|(n, _)| *n == name).map(|(_, o)| *o)
}

/// The options of one mount, sorted by what they do.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// mount(2) flags set (MS_RDONLY, MS_NOSUID, MS_BIND, MS_REC, ...).
    pub flags: c_ulong,
    /// mount(2) flags explicitly cleared (`rw`, `suid`, ...): a bind mount drops them.
    pub cleared: c_ulong,
    /// Propagation changes in the order given.
    pub propagation: Vec<c_ulong>,
    /// Recursive attributes (MOUNT_ATTR_*) to set and clear.
    pub rec_set: u64,
    pub rec_clr: u64,
    /// File-system data, in the order given.
    pub data: Vec<String>,
    pub tmpcopyup: bool,
    /// `idmap` (Some(false)) or `ridmap` (Some(true)); the last one given wins.
    pub idmap: Option<bool>,
}

/// Why an option was refused (the caller names the field).
#[derive(Debug, PartialEq, Eq)]
pub struct BadOption(pub String);

pub fn parse(options: &[String]) -> Result<MountOptions, (usize, BadOption)> {
    let mut m = MountOptions::default();
    for (i, o) in options.iter().enumerate() {
        match lookup(o) {
            Some(Opt::Flag { clear: false, flag }) => {
                m.flags |= flag;
                m.cleared &= !flag;
            }
            Some(Opt::Flag { clear: true, flag }) => {
                m.flags &= !flag;
                m.cleared |= flag;
            }
            Some(Opt::Propagation(p)) => m.propagation.push(p),
            Some(Opt::Recursive { set, clr }) => {
                // The atime mode is one field: a later choice replaces an earlier one.
                if clr & MOUNT_ATTR__ATIME != 0 {
                    m.rec_set &= !MOUNT_ATTR__ATIME;
                }
                m.rec_set = (m.rec_set & !clr) | set;
                m.rec_clr = (m.rec_clr & !set) | clr;
            }
            Some(Opt::TmpCopyUp) => m.tmpcopyup = true,
            Some(Opt::Idmap { recursive }) => m.idmap = Some(recursive),
            Some(Opt::Unsupported) => {
                return Err((i, BadOption(format!("mount option {o:?} is not supported"))))
            }
            None if o.is_empty() => return Err((i, BadOption("empty mount option".into()))),
            None if o.contains(',') => {
                return Err((i, BadOption(format!("mount option {o:?} contains a comma"))))
            }
            None => m.data.push(o.clone()),
        }
    }
    Ok(m)
}

const ATTR_BITS: &[(c_ulong, u64)] = &[
    (MS_RDONLY, MOUNT_ATTR_RDONLY),
    (MS_NOSUID, MOUNT_ATTR_NOSUID),
    (MS_NODEV, MOUNT_ATTR_NODEV),
    (MS_NOEXEC, MOUNT_ATTR_NOEXEC),
    (MS_NODIRATIME, MOUNT_ATTR_NODIRATIME),
    (MS_NOSYMFOLLOW, MOUNT_ATTR_NOSYMFOLLOW),
];

/// Superblock flags and the fsconfig flag names that set them on a new file system.
pub const SB_FLAGS: &[(c_ulong, &str)] = &[
    (MS_RDONLY, "ro"),
    (MS_SYNCHRONOUS, "sync"),
    (MS_DIRSYNC, "dirsync"),
    (MS_LAZYTIME, "lazytime"),
    (MS_MANDLOCK, "mand"),
];

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags & MS_BIND != 0
    }

    pub fn recursive_bind(&self) -> bool {
        self.flags & MS_REC != 0
    }

    /// The per-mount attributes as mount_setattr (set, clear): only what the options name,
    /// so flags of the source that the config does not mention are kept.
    pub fn attr(&self) -> (u64, u64) {
        let (mut set, mut clr) = (0, 0);
        for &(ms, attr) in ATTR_BITS {
            if self.flags & ms != 0 {
                set |= attr;
            } else if self.cleared & ms != 0 {
                clr |= attr;
            }
        }
        if let Some(atime) = self.atime() {
            set |= atime;
            clr |= MOUNT_ATTR__ATIME;
        }
        (set, clr)
    }

    /// fsmount attr_flags for a new mount (the atime default is relatime, as with mount(2)).
    pub fn fsmount_attr(&self) -> u64 {
        self.attr().0
    }

    /// The atime mode, if the options chose one. mount(2) semantics: noatime beats
    /// strictatime beats relatime; clearing any of them leaves the default, relatime.
    fn atime(&self) -> Option<u64> {
        let all = MS_NOATIME | MS_STRICTATIME | MS_RELATIME;
        if self.flags & MS_NOATIME != 0 {
            Some(MOUNT_ATTR_NOATIME)
        } else if self.flags & MS_STRICTATIME != 0 {
            Some(MOUNT_ATTR_STRICTATIME)
        } else if (self.flags | self.cleared) & all != 0 {
            Some(MOUNT_ATTR_RELATIME)
        } else {
            None
        }
    }

    /// fsconfig flag names for the superblock flags the options set.
    pub fn sb_flags(&self) -> impl Iterator<Item = &'static str> + '_ {
        SB_FLAGS
            .iter()
            .filter(move |(f, _)| self.flags & f != 0)
            .map(|(_, n)| *n)
    }
}

/// `linux.rootfsPropagation` (and the propagation options) → mount(2) propagation flags.
pub fn propagation(name: &str) -> Option<c_ulong> {
    match lookup(name) {
        Some(Opt::Propagation(p)) => Some(p),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> MountOptions {
        let v: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
        parse(&v).unwrap()
    }

    #[test]
    fn every_flag_option_maps_through_the_table() {
        let cases: &[(&str, bool, c_ulong)] = &[
            ("ro", false, MS_RDONLY),
            ("rw", true, MS_RDONLY),
            ("suid", true, MS_NOSUID),
            ("nosuid", false, MS_NOSUID),
            ("dev", true, MS_NODEV),
            ("nodev", false, MS_NODEV),
            ("exec", true, MS_NOEXEC),
            ("noexec", false, MS_NOEXEC),
            ("sync", false, MS_SYNCHRONOUS),
            ("async", true, MS_SYNCHRONOUS),
            ("dirsync", false, MS_DIRSYNC),
            ("remount", false, MS_REMOUNT),
            ("mand", false, MS_MANDLOCK),
            ("nomand", true, MS_MANDLOCK),
            ("atime", true, MS_NOATIME),
            ("noatime", false, MS_NOATIME),
            ("diratime", true, MS_NODIRATIME),
            ("nodiratime", false, MS_NODIRATIME),
            ("relatime", false, MS_RELATIME),
            ("norelatime", true, MS_RELATIME),
            ("strictatime", false, MS_STRICTATIME),
            ("nostrictatime", true, MS_STRICTATIME),
            ("lazytime", false, MS_LAZYTIME),
            ("nolazytime", true, MS_LAZYTIME),
            ("bind", false, MS_BIND),
            ("rbind", false, MS_BIND | MS_REC),
        ];
        for &(name, clear, flag) in cases {
            assert_eq!(lookup(name), Some(Opt::Flag { clear, flag }), "{name}");
            let m = p(&[name]);
            if clear {
                assert_eq!((m.flags, m.cleared), (0, flag), "{name}");
            } else {
                assert_eq!((m.flags, m.cleared), (flag, 0), "{name}");
            }
        }
    }

    #[test]
    fn propagation_options_are_collected_in_order() {
        let m = p(&["rbind", "shared", "rslave", "private", "runbindable"]);
        assert_eq!(
            m.propagation,
            vec![
                MS_SHARED,
                MS_SLAVE | MS_REC,
                MS_PRIVATE,
                MS_UNBINDABLE | MS_REC
            ]
        );
        assert_eq!(m.flags, MS_BIND | MS_REC);
        assert_eq!(propagation("rshared"), Some(MS_SHARED | MS_REC));
        assert_eq!(propagation("ro"), None);
        assert_eq!(propagation("bogus"), None);
    }

    #[test]
    fn unknown_options_are_data_in_order() {
        let m = p(&["nosuid", "mode=755", "size=65536k", "newinstance"]);
        assert_eq!(m.data, vec!["mode=755", "size=65536k", "newinstance"]);
        assert_eq!(m.flags, MS_NOSUID);
    }

    #[test]
    fn later_options_override_earlier_ones() {
        let m = p(&["ro", "rw"]);
        assert_eq!((m.flags & MS_RDONLY, m.cleared & MS_RDONLY), (0, MS_RDONLY));
        let m = p(&["rw", "ro"]);
        assert_eq!((m.flags & MS_RDONLY, m.cleared & MS_RDONLY), (MS_RDONLY, 0));
    }

    #[test]
    fn bind_attr_names_only_what_the_options_name() {
        let (s, c) = p(&["bind", "ro", "nosuid", "exec"]).attr();
        assert_eq!(s, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
        assert_eq!(c, MOUNT_ATTR_NOEXEC);
        let (s, c) = p(&["bind"]).attr();
        assert_eq!((s, c), (0, 0));
    }

    #[test]
    fn atime_options_choose_one_mode() {
        assert_eq!(
            p(&["noatime"]).attr(),
            (MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME)
        );
        assert_eq!(
            p(&["strictatime"]).attr(),
            (MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME)
        );
        assert_eq!(
            p(&["relatime"]).attr(),
            (MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME)
        );
        assert_eq!(
            p(&["atime"]).attr(),
            (MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME)
        );
    }

    #[test]
    fn recursive_attributes_use_mount_setattr_bits() {
        let m = p(&["rbind", "rro", "rnosuid", "rnoexec"]);
        assert_eq!(
            m.rec_set,
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC
        );
        assert_eq!(m.rec_clr, 0);
        let m = p(&["rro", "rrw"]);
        assert_eq!((m.rec_set, m.rec_clr), (0, MOUNT_ATTR_RDONLY));
        let m = p(&["rnoatime", "rstrictatime"]);
        assert_eq!(
            (m.rec_set, m.rec_clr),
            (MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME)
        );
    }

    #[test]
    fn superblock_flags_become_fsconfig_flags() {
        let m = p(&["ro", "sync", "nosuid"]);
        assert_eq!(m.sb_flags().collect::<Vec<_>>(), vec!["ro", "sync"]);
    }

    #[test]
    fn idmap_and_tmpcopyup_are_recorded() {
        assert_eq!(p(&["rbind", "idmap"]).idmap, Some(false));
        assert_eq!(p(&["rbind", "ridmap"]).idmap, Some(true));
        assert_eq!(p(&["rbind", "ridmap"]).data, Vec::<String>::new());
        assert_eq!(p(&["rbind"]).idmap, None);
        assert!(p(&["tmpcopyup"]).tmpcopyup);
    }

    #[test]
    fn table_has_no_duplicates() {
        for (i, (a, _)) in OPTIONS.iter().enumerate() {
            assert!(OPTIONS[i + 1..].iter().all(|(b, _)| a != b), "{a}");
        }
    }
}
