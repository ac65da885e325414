//! The process's own memory: what an init blocked on exec.fifo gives back (issue 14).

use std::io;

/// One program header of the main program, placed: its type, flags and address range.
pub struct Segment {
    pub kind: u32,
    pub flags: u32,
    pub start: usize,
    pub end: usize,
}

/// The main program's program headers, at the addresses they were loaded to.
pub fn own_segments() -> Vec<Segment> {
    let mut segments: Vec<Segment> = Vec::new();
    // SAFETY: the callback only reads the entries glibc hands it, for the duration of the
    // call, and returns 1 after the first one (the main program) to stop the walk.
    unsafe {
        libc::dl_iterate_phdr(
            Some(collect_segments),
            &mut segments as *mut _ as *mut libc::c_void,
        );
    }
    segments
}

unsafe extern "C" fn collect_segments(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: glibc passes a valid dl_phdr_info and our own `data` pointer (see above).
    let (info, segments) = unsafe { (&*info, &mut *(data as *mut Vec<Segment>)) };
    if info.dlpi_phdr.is_null() {
        return 1;
    }
    // SAFETY: dlpi_phdr points to dlpi_phnum program headers of the loaded object.
    let phdrs = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
    for ph in phdrs {
        let start = info.dlpi_addr as usize + ph.p_vaddr as usize;
        segments.push(Segment {
            kind: ph.p_type,
            flags: ph.p_flags,
            start,
            end: start + ph.p_memsz as usize,
        });
    }
    1
}

/// Page-aligned address ranges of this executable's loaded segments that are mapped without
/// write permission (text, rodata): their pages are only ever read from the file, so they
/// can be dropped and faulted in again unchanged. The writable segments (relro, data) hold
/// relocated and written copies and are never listed.
pub fn read_only_image_ranges() -> Vec<(usize, usize)> {
    const PAGE: usize = 4096;
    own_segments()
        .into_iter()
        .filter(|s| s.kind == libc::PT_LOAD && s.flags & libc::PF_W == 0)
        // Whole pages inside the segment only: a page it shares with a writable neighbour
        // stays.
        .map(|s| (s.start.div_ceil(PAGE) * PAGE, s.end / PAGE * PAGE))
        .filter(|(start, end)| start < end)
        .map(|(start, end)| (start, end - start))
        .collect()
}

/// madvise(MADV_DONTNEED) over a range listed by `read_only_image_ranges`.
pub fn drop_file_pages(start: usize, len: usize) -> io::Result<()> {
    // SAFETY: the range is a read-only, file-backed part of our own image: dropping its
    // pages loses nothing, the next access reads them from the file again.
    let rc = unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Give the heap's free pages back to the kernel (glibc's malloc_trim).
pub fn trim_heap() {
    // SAFETY: malloc_trim only releases memory malloc holds free; no pointer is affected.
    unsafe {
        libc::malloc_trim(0);
    }
}
