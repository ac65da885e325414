//! Differences allowed wherever they show up (the engines' configs and the generated sweep).

/// A difference that is not a compatibility problem, with its reason.
pub struct Allowed {
    /// Fact name; `*` matches any run of characters.
    pub key: &'static str,
    /// Only in these cases (empty: all).
    pub cases: &'static [&'static str],
    /// Only when this holds for (runc's value, vsrun's value).
    pub when: fn(&str, &str) -> bool,
    pub why: &'static str,
}

pub fn always(_: &str, _: &str) -> bool {
    true
}

pub const ALLOWED: &[Allowed] = &[
    Allowed {
        key: "*.mount /sys/fs/cgroup",
        cases: &[],
        when: own_cgroup2_bind,
        why: "pure cgroup v2 without a cgroup namespace: runc 1.1.5 mounts a fresh cgroup2, \
              which shows the host's whole hierarchy (root=/); vsrun binds the container's own \
              cgroup directory, as it does on a hybrid host (README, Differences from runc)",
    },
    Allowed {
        key: "*.ls /sys/fs/cgroup",
        cases: &[],
        when: |runc, vsrun| !runc.contains("cgroup.events") && vsrun.contains("cgroup.events"),
        why: "the consequence of the entry above: runc lists the root cgroup (which has no \
              cgroup.events), vsrun the container's own cgroup",
    },
    Allowed {
        key: "*.rlimit.RLIMIT_NOFILE",
        cases: &[],
        when: nofile_raised_by_go,
        why: "with no RLIMIT_NOFILE in the config both keep the caller's limit, but runc 1.1.5's \
              Go runtime (1.19+) raises its own soft limit to the hard one at start and passes \
              that on; vsrun passes the caller's (runc 1.2 restores it too)",
    },
    Allowed {
        key: "cmd.state.owner",
        cases: &[],
        when: always,
        why: "`owner` is not in the OCI state (runtime-spec state.md); runc 1.1 leaves it empty \
              in `state` (it fills it only in `list`), and no engine reads it (go-runc's \
              Container has no such field)",
    },
    Allowed {
        key: "hook.*.stdin.ociVersion",
        cases: &[],
        when: always,
        why: "the state's ociVersion is the runtime-spec version the runtime itself complies \
              with (runtime-spec state.md): runc 1.1.5 is built against 1.0.2-dev, vsrun \
              implements 1.2.0",
    },
    Allowed {
        key: "hook.*.stdin.annotations",
        cases: &[],
        when: |runc, vsrun| runc == "<absent>" && vsrun == "{}",
        why: "annotations is OPTIONAL in the state: runc omits an empty map (Go omitempty), vsrun \
              writes {}; a hook decoding the state sees no annotations either way",
    },
    Allowed {
        key: "exec.pid",
        cases: &[],
        when: |runc, vsrun| runc != "1" && vsrun != "1",
        why: "the pid of an exec'd process inside the container's pid namespace counts the \
              processes the runtime forked there before it (runc's `runc init` path forks \
              intermediate children; vsrun forks none); only the init being pid 1 is a rule",
    },
    Allowed {
        key: "*.mount *",
        cases: &[],
        when: masked_dir_extra_flags,
        why: "a masked directory is an empty read-only tmpfs: vsrun also sets nosuid, nodev and \
              noexec on it, which cannot change anything there (nothing can be created in it, \
              and a later mount on top does not inherit them)",
    },
    Allowed {
        key: "*.ls /sys/fs/cgroup",
        cases: &[],
        when: |runc, vsrun| runc.replace("]}", ",\"unified\"]}") == vsrun,
        why: "on a hybrid host vsrun also shows the unified (cgroup2) tree under a `cgroup` \
              mount, the layout systemd expects there; the container is a member of that tree \
              with both runtimes and sees only its own directory of it (next entry)",
    },
    Allowed {
        key: "*.mount /sys/fs/cgroup/unified",
        cases: &[],
        when: |runc, vsrun| {
            runc == "<absent>"
                && vsrun.starts_with("cgroup2 ")
                && vsrun.contains(",ro ")
                && !vsrun.contains("root=/ ")
        },
        why: "the unified tree is bound read-only from the container's own cgroup directory \
              (never the host's root), like the v1 hierarchies beside it",
    },
    Allowed {
        key: "*.mount /sys/fs/cgroup",
        cases: &[],
        when: |runc, vsrun| runc.replace(",rw super=", ",ro super=") == vsrun,
        why: "the config asks `ro` for the cgroup mount: vsrun applies it to the tmpfs that holds \
              the hierarchies too, runc 1.1.5 only to the hierarchies, leaving a writable tmpfs \
              in which the container can create files; vsrun follows the config (next two \
              entries are the consequences)",
    },
    Allowed {
        key: "*.stat /sys/fs/cgroup",
        cases: &[],
        when: |runc, vsrun| runc.replace("365", "493").replace("\"555\"", "\"755\"") == vsrun,
        why: "mode of the read-only tmpfs root (755 as its `mode=755` data says; runc leaves 555 \
              on its writable one); on a read-only mount the mode grants nothing more",
    },
    Allowed {
        key: "*.write /sys/fs/cgroup/.vsrun-diff",
        cases: &[],
        when: |_, vsrun| vsrun.contains("\"errno\":30"),
        why: "EROFS: the tmpfs is read-only as the config's `ro` asks (see the mount entry)",
    },
    Allowed {
        key: "*.mounts.order",
        cases: &[],
        when: |runc, vsrun| {
            let strip = |l: &str| {
                without(l, "/dev/console")
                    .into_iter()
                    .filter(|m| m != "/sys/fs/cgroup/unified")
                    .collect::<Vec<_>>()
            };
            strip(runc) == strip(vsrun)
        },
        why: "only the place of the /dev/console bind in the mount list differs (runc mounts it \
              before the masked and read-only paths, vsrun after them; it neither covers nor is \
              covered by any of them, so the resulting tree is the same), and vsrun's extra \
              /sys/fs/cgroup/unified (allowed above); each entry is compared separately",
    },
];

/// A space-separated list without the entries equal to `item`.
pub fn without(list: &str, item: &str) -> Vec<String> {
    list.split(' ')
        .filter(|x| *x != item)
        .map(String::from)
        .collect()
}

/// Both values are read-only tmpfs mounts (as masked directories are) that differ only in
/// nosuid/nodev/noexec.
pub fn masked_dir_extra_flags(runc: &str, vsrun: &str) -> bool {
    let strip = |v: &str| -> Option<String> {
        let rest = v.strip_prefix("tmpfs opts=")?;
        let (opts, tail) = rest.split_once(' ')?;
        let o: Vec<&str> = opts.split(',').collect();
        // The super options may carry more than `ro` (tmpfs's inode64 on some kernels).
        let sup = tail.strip_prefix("super=")?.split(' ').next()?;
        if !o.contains(&"ro") || !sup.split(',').any(|x| x == "ro") {
            return None;
        }
        let kept: Vec<&str> = o
            .into_iter()
            .filter(|x| !matches!(*x, "nosuid" | "nodev" | "noexec"))
            .collect();
        Some(format!("{} {tail}", kept.join(",")))
    };
    matches!((strip(runc), strip(vsrun)), (Some(a), Some(b)) if a == b)
}

/// runc's `/sys/fs/cgroup` is a cgroup2 mount of the whole hierarchy and vsrun's the same
/// mount flags on a directory below it.
fn own_cgroup2_bind(runc: &str, vsrun: &str) -> bool {
    let fields = |v: &str| -> Option<(String, String)> {
        let opts = v
            .strip_prefix("cgroup2 ")?
            .split(" root=")
            .next()?
            .to_string();
        let root = v.split(" root=").nth(1)?.split(' ').next()?.to_string();
        Some((opts, root))
    };
    match (fields(runc), fields(vsrun)) {
        (Some((ro, rr)), Some((vo, vr))) => ro == vo && rr == "/" && vr.len() > 1,
        _ => false,
    }
}

/// runc shows `H/H`, vsrun `S/H` with S the soft limit the caller (this test) has.
fn nofile_raised_by_go(runc: &str, vsrun: &str) -> bool {
    // This process's limits, as the kernel shows them: "Max open files  SOFT  HARD  files".
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let Some(line) = limits.lines().find(|l| l.starts_with("Max open files")) else {
        return false;
    };
    let v: Vec<&str> = line.split_whitespace().collect();
    let (soft, hard) = (v[3], v[4]);
    runc == format!("{hard}/{hard}") && vsrun == format!("{soft}/{hard}")
}
