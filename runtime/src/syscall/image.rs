//! vsrun's own executable image moved, while it runs, from the file it was started from onto
//! another open file with the same bytes (the sealed view of security/sealed_exe.rs), so that
//! the seal needs no second start (issue 14).
//!
//! The kernel lets a process point its exe link at another file (prctl PR_SET_MM_MAP with an
//! exe_fd, CAP_SYS_ADMIN) only once no mapping of the old file is left. So every mapping of the
//! binary is replaced in place, each by an atomic step that never leaves its range unmapped
//! or with other bytes: pages only ever read from the file (text, rodata, headers) are mapped
//! again from the new file at the same offset; pages the process may have written (the
//! writable segment, RELRO inside it: relocations, globals) become an anonymous copy moved
//! over the old range by one mremap.

use std::io;
use std::os::fd::RawFd;

const PAGE: usize = 4096;

/// One mapping of the executable, as /proc/self/maps lists it.
#[derive(Debug, PartialEq)]
struct Mapping {
    start: usize,
    end: usize,
    prot: i32,
    offset: i64,
}

/// Move every mapping of the file (dev, ino) onto `fd`, which must hold the same bytes, then
/// make `fd` the process's exe link. Called single-threaded, before vsrun does anything else.
pub fn move_image_to(fd: RawFd, dev: u64, ino: u64) -> io::Result<()> {
    // /proc/self/stat read once: the probe and the real change give the kernel the same layout.
    let layout = current_layout()?;
    // Nothing is remapped where the kernel would refuse the last step (rootless): an fd that
    // is not open answers EBADF when the change is allowed and EPERM when not.
    match set_exe_file(&layout, i32::MAX) {
        Err(e) if e.raw_os_error() == Some(libc::EBADF) => {}
        Err(e) => return Err(e),
        Ok(()) => {
            return Err(io::Error::other(
                "PR_SET_MM_MAP took an fd that is not open",
            ))
        }
    }
    let maps = read_proc("/proc/self/maps")?;
    let mappings = parse_maps(&maps, dev, ino);
    if mappings.is_empty() {
        return Err(io::Error::other(
            "no mapping of vsrun's binary in /proc/self/maps",
        ));
    }
    let written = writable_segments();
    if !is_main_program(&mappings, &written) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "vsrun's exe link is not vsrun (started through ld.so?)",
        ));
    }
    for m in &mappings {
        if m.prot & libc::PROT_WRITE != 0 || written.iter().any(|w| overlaps(m, *w)) {
            replace_with_anonymous_copy(m)?;
        } else {
            map_again_from(m, fd)?;
        }
    }
    set_exe_file(&layout, fd)
}

/// Whether the exe file's mappings are the main program's, whose writable segments (from
/// dl_iterate_phdr) tell which pages were written. Run as `ld.so vsrun`, the exe link is
/// ld.so: mapping its written data again from the file would reset the loader's state
/// (link maps, TLS) under the running program, so such a start is not moved in place.
fn is_main_program(mappings: &[Mapping], written: &[(usize, usize)]) -> bool {
    !written.is_empty()
        && written
            .iter()
            .all(|&(start, _)| mappings.iter().any(|m| m.start <= start && start < m.end))
}

fn overlaps(m: &Mapping, (start, end): (usize, usize)) -> bool {
    m.start < end && start < m.end
}

/// The mappings of file (dev, ino) in /proc/self/maps text.
fn parse_maps(maps: &str, dev: u64, ino: u64) -> Vec<Mapping> {
    let want_dev = format!("{:02x}:{:02x}", libc::major(dev), libc::minor(dev));
    maps.lines()
        .filter_map(|line| {
            let mut f = line.split_ascii_whitespace();
            let (range, perms, offset, d, i) =
                (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
            if d != want_dev || i.parse::<u64>().ok()? != ino {
                return None;
            }
            let (s, e) = range.split_once('-')?;
            let perm = |c: char, p: i32| if perms.contains(c) { p } else { 0 };
            Some(Mapping {
                start: usize::from_str_radix(s, 16).ok()?,
                end: usize::from_str_radix(e, 16).ok()?,
                prot: perm('r', libc::PROT_READ)
                    | perm('w', libc::PROT_WRITE)
                    | perm('x', libc::PROT_EXEC),
                offset: i64::from_str_radix(offset, 16).ok()?,
            })
        })
        .collect()
}

/// The page ranges of the loaded segments that are writable at some point (PF_W; RELRO lies
/// inside such a segment and is only made read-only after relocation).
fn writable_segments() -> Vec<(usize, usize)> {
    super::mem::own_segments()
        .into_iter()
        .filter(|s| {
            (s.kind == libc::PT_LOAD && s.flags & libc::PF_W != 0) || s.kind == libc::PT_GNU_RELRO
        })
        .map(|s| (s.start / PAGE * PAGE, s.end.div_ceil(PAGE) * PAGE))
        .collect()
}

/// mmap(MAP_FIXED) of the same range from `fd` at the same offset: the old mapping is replaced
/// in one step by one showing the same, never-written file bytes. The pages fault in again as
/// vsrun runs on, from the page cache both files share, a window at a time (fault-around).
/// Populating the pages mapped before at once (MADV_POPULATE_READ, found in
/// /proc/self/pagemap), or all of them (MAP_POPULATE), cost 2-3.5 % more CPU per `run` and
/// saved no wall time (README "Benchmarks", seventh round).
fn map_again_from(m: &Mapping, fd: RawFd) -> io::Result<()> {
    // SAFETY: the range is one of our own image's mappings that only ever held the file's
    // bytes (never written: see move_image_to), and `fd` holds the same bytes at the same
    // offset, so no code or data anywhere sees a change.
    let p = unsafe {
        libc::mmap(
            m.start as *mut libc::c_void,
            m.end - m.start,
            m.prot,
            libc::MAP_PRIVATE | libc::MAP_FIXED,
            fd,
            m.offset,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Copy the range into fresh anonymous memory, give it the range's protection and mremap it
/// over the range: its bytes (relocations, globals) are kept and no longer come from a file.
fn replace_with_anonymous_copy(m: &Mapping) -> io::Result<()> {
    if m.prot & libc::PROT_READ == 0 {
        // Its bytes cannot be copied, and mapping it again could change them.
        return Err(io::Error::other(
            "a written mapping of the binary is not readable",
        ));
    }
    let len = m.end - m.start;
    // SAFETY: a fresh private anonymous mapping chosen by the kernel.
    let tmp = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            // Populated in one step: the copy below would otherwise fault in every page.
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
            -1,
            0,
        )
    };
    if tmp == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both ranges are mapped and `len` long; the source is readable (checked above)
    // and the copy is fresh memory nothing else refers to. The single mremap then
    // swaps the range for its copy (the process is single-threaded here), so every pointer
    // into it sees the same bytes before and after.
    unsafe {
        std::ptr::copy_nonoverlapping(m.start as *const u8, tmp as *mut u8, len);
        let moved = libc::mprotect(tmp, len, m.prot) == 0
            && libc::mremap(
                tmp,
                len,
                len,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                m.start as *mut libc::c_void,
            ) != libc::MAP_FAILED;
        if !moved {
            let err = io::Error::last_os_error();
            libc::munmap(tmp, len);
            return Err(err);
        }
    }
    Ok(())
}

/// struct prctl_mm_map (linux/prctl.h).
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct MmMap {
    start_code: u64,
    end_code: u64,
    start_data: u64,
    end_data: u64,
    start_brk: u64,
    brk: u64,
    start_stack: u64,
    arg_start: u64,
    arg_end: u64,
    env_start: u64,
    env_end: u64,
    auxv: u64,
    auxv_size: u32,
    exe_fd: u32,
}

/// prctl(PR_SET_MM, PR_SET_MM_MAP) with the process's own current layout and `exe_fd`: the
/// exe link (/proc/<pid>/exe, and what a `#!/proc/self/exe` interpreter resolves to) becomes
/// `fd`'s file and nothing else changes. PR_SET_MM_MAP, not PR_SET_MM_EXE_FILE: the latter
/// wants CAP_SYS_RESOURCE in the initial user namespace, which hosts (and this CI VM) may
/// withhold even from root, the former CAP_SYS_ADMIN in vsrun's own.
fn set_exe_file(layout: &MmMap, fd: RawFd) -> io::Result<()> {
    const PR_SET_MM_MAP: libc::c_ulong = 14;
    let mut map = MmMap {
        exe_fd: fd as u32,
        ..*layout
    };
    // The current break, read last: nothing allocates between this and the prctl.
    // SAFETY: brk(0) changes nothing and returns the current break.
    map.brk = unsafe { libc::syscall(libc::SYS_brk, 0) } as u64;
    // SAFETY: `map` is a valid prctl_mm_map of the size passed; auxv_size 0 keeps the auxv.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_MM,
            PR_SET_MM_MAP,
            &map as *const MmMap as libc::c_ulong,
            std::mem::size_of::<MmMap>() as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A /proc file of this process read into room made beforehand: one read(2) and the one
/// that finds the end, where `fs::read_to_string`'s growing reads took seven for each file.
fn read_proc(path: &str) -> io::Result<String> {
    use std::io::Read;
    let mut text = String::with_capacity(16 * 1024);
    std::fs::File::open(path)?.read_to_string(&mut text)?;
    Ok(text)
}

/// The mm's bounds as /proc/self/stat shows them (fields 26-28 and 45-51), to be given back
/// unchanged.
fn current_layout() -> io::Result<MmMap> {
    let stat = read_proc("/proc/self/stat")?;
    let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after_comm
        .split_ascii_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // Another thread could write the data segment between its copy and the mremap that puts
    // the copy in place: the move is for a single-threaded vsrun only (field 20).
    if fields.get(20 - 3) != Some(&1) {
        return Err(io::Error::other("vsrun is not single-threaded"));
    }
    // Field N of stat(5) is index N - 3 here (the first two are pid and comm).
    let field = |n: usize| {
        fields
            .get(n - 3)
            .copied()
            .ok_or_else(|| io::Error::other("short /proc/self/stat"))
    };
    Ok(MmMap {
        start_code: field(26)?,
        end_code: field(27)?,
        start_stack: field(28)?,
        start_data: field(45)?,
        end_data: field(46)?,
        start_brk: field(47)?,
        arg_start: field(48)?,
        arg_end: field(49)?,
        env_start: field(50)?,
        env_end: field(51)?,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run as `ld.so vsrun`, the exe file's mappings are ld.so's and the main program's
    /// written segments (vsrun's) lie elsewhere: no move in place then.
    #[test]
    fn the_move_is_only_for_the_main_program() {
        let map = |start, end| Mapping {
            start,
            end,
            prot: libc::PROT_READ,
            offset: 0,
        };
        let vsrun = [map(0x1000, 0x5000), map(0x5000, 0x8000)];
        let ld_so = [map(0x7f00_0000_0000, 0x7f00_0003_0000)];
        let written = [(0x5000, 0x9000)];
        assert!(is_main_program(&vsrun, &written));
        assert!(!is_main_program(&ld_so, &written));
        assert!(!is_main_program(&vsrun, &[]));
    }

    #[test]
    fn only_the_binarys_mappings_are_taken() {
        let dev = libc::makedev(0xfd, 1);
        let maps = "\
55d0c0a00000-55d0c0a5c000 r--p 00000000 fd:01 1234   /usr/bin/vsrun
55d0c0a5c000-55d0c0c00000 r-xp 0005c000 fd:01 1234   /usr/bin/vsrun
55d0c0c00000-55d0c0c10000 rw-p 00200000 fd:01 1234   /usr/bin/vsrun
55d0c0c10000-55d0c0c20000 rw-p 00000000 00:00 0
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0      [stack]
7f0000000000-7f0000001000 r--p 00000000 fd:01 9999   /usr/lib/other
7f0000001000-7f0000002000 r--p 00000000 fd:02 1234   /mnt/same-inode-other-fs
";
        let got = parse_maps(maps, dev, 1234);
        assert_eq!(
            got,
            vec![
                Mapping {
                    start: 0x55d0c0a00000,
                    end: 0x55d0c0a5c000,
                    prot: libc::PROT_READ,
                    offset: 0
                },
                Mapping {
                    start: 0x55d0c0a5c000,
                    end: 0x55d0c0c00000,
                    prot: libc::PROT_READ | libc::PROT_EXEC,
                    offset: 0x5c000
                },
                Mapping {
                    start: 0x55d0c0c00000,
                    end: 0x55d0c0c10000,
                    prot: libc::PROT_READ | libc::PROT_WRITE,
                    offset: 0x200000
                },
            ]
        );
    }
}
