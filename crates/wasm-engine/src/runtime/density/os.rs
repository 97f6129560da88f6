//! The few system calls the dense layout makes — reserving a region, returning its
//! pages, guarding a page — and the words for the kernel limits they meet
//! (`vm.max_map_count`, the address space), read at the moment they are met.

use std::io;

/// The host's page size.
pub(crate) fn page_size() -> usize {
    // SAFETY: `sysconf` with a valid name has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|s| *s > 0)
        .unwrap_or(4096)
}

/// `n` rounded up to a multiple of `to` (a power of two), or `None` on overflow.
pub(crate) fn round_up(n: usize, to: usize) -> Option<usize> {
    Some(n.checked_add(to - 1)? & !(to - 1))
}

/// One anonymous, private region of `len` bytes, readable and writable, whose pages
/// the kernel provides (zeroed) on first touch: address space, not memory.
pub(crate) fn reserve(len: usize) -> io::Result<usize> {
    // SAFETY: a fresh anonymous mapping at an address the kernel chooses touches no
    // existing memory.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(ptr as usize)
}

/// Unmaps a region made by [`reserve`].
///
/// # Safety
///
/// Nothing may use `[base, base + len)` afterwards.
pub(crate) unsafe fn release(base: usize, len: usize) {
    // SAFETY: the caller gives up the region.
    unsafe { libc::munmap(base as *mut libc::c_void, len) };
}

/// Gives the pages of `[base, base + len)` back to the kernel; the next touch reads
/// zeroes. The mapping stays whole (no new mapping, unlike a protection change).
///
/// # Safety
///
/// Nothing may be using the range's contents.
pub(crate) unsafe fn discard(base: usize, len: usize) {
    // SAFETY: the caller owns the range and is done with its contents. On a private
    // anonymous mapping MADV_DONTNEED cannot fail for a valid range.
    unsafe { libc::madvise(base as *mut libc::c_void, len, libc::MADV_DONTNEED) };
}

/// `madvise` advice of Linux 6.13 (not in `libc` yet): a lightweight guard region —
/// accesses fault as on a `PROT_NONE` page, but the mapping is not split (no mapping
/// is added, the process's memory map is only read-locked), and `MADV_DONTNEED` over
/// it leaves it in place — and its removal.
const MADV_GUARD_INSTALL: libc::c_int = 102;
const MADV_GUARD_REMOVE: libc::c_int = 103;

/// Whether this kernel has lightweight guard regions (probed once: a page of a small
/// region of our own, guarded, then unmapped).
pub(crate) fn light_guards() -> bool {
    static LIGHT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LIGHT.get_or_init(|| {
        let page = page_size();
        let Ok(base) = reserve(2 * page) else {
            return false;
        };
        // SAFETY: the region is ours and unused; it is unmapped right after.
        let ok = unsafe { light_guard(base, page, true) }.is_ok();
        // SAFETY: nothing uses the probe region.
        unsafe { release(base, 2 * page) };
        ok
    })
}

/// Installs a lightweight guard on `[page, page + len)` (see [`light_guards`]), or
/// removes the guards in it (`on` false); either again is harmless. A guard holds the
/// page table page it is in, which the kernel frees once it is empty; removing walks
/// every page of the range.
///
/// # Safety
///
/// The range is of a region made by [`reserve`]; installing, nothing is in it.
pub(crate) unsafe fn light_guard(page: usize, len: usize, on: bool) -> io::Result<()> {
    let advice = if on {
        MADV_GUARD_INSTALL
    } else {
        MADV_GUARD_REMOVE
    };
    // SAFETY: as the caller promises.
    if unsafe { libc::madvise(page as *mut libc::c_void, len, advice) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes the page at `page` inaccessible (`guard`) or readable and writable again.
/// An inaccessible page inside a readable region splits its mapping in three; made
/// accessible again, the kernel merges them back.
///
/// # Safety
///
/// `page` is a page of a region made by [`reserve`] that nothing uses.
pub(crate) unsafe fn protect(page: usize, len: usize, guard: bool) -> io::Result<()> {
    let prot = if guard {
        libc::PROT_NONE
    } else {
        libc::PROT_READ | libc::PROT_WRITE
    };
    // SAFETY: as the caller promises.
    if unsafe { libc::mprotect(page as *mut libc::c_void, len, prot) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The process's memory mappings now (lines of `/proc/self/maps`), when readable. Read
/// through a small buffer: at the mapping bound, a buffer the size of the file (a few
/// MiB, which `malloc` maps) could not be had.
pub(crate) fn mappings() -> Option<u64> {
    use std::io::Read as _;
    let mut file = std::fs::File::open("/proc/self/maps").ok()?;
    let mut buf = [0u8; 4096];
    let mut lines = 0u64;
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Some(lines),
            Ok(n) => lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// The kernel's bound on one process's mappings, when readable.
pub(crate) fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The process's address space now (`VmSize`), when readable.
fn address_space() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmSize:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// The process's bound on its address space: `ulimit -v`, else x86-64's 128 TiB of
/// user space.
fn address_space_limit() -> u64 {
    let mut rlim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut rlim) } == 0;
    if ok && rlim.rlim_cur != libc::RLIM_INFINITY {
        rlim.rlim_cur
    } else {
        1 << 47
    }
}

/// Whether `text` (an error's words, its causes included) is the kernel refusing to
/// map memory: `ENOMEM`, which Wasmtime and `mmap` report as "Cannot allocate memory
/// (os error 12)".
pub(crate) fn is_enomem(text: &str) -> bool {
    text.contains(&format!("(os error {})", libc::ENOMEM))
}

/// A kernel limit met while mapping memory for an instance: which one, by the
/// numbers read when it was met, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OsLimit {
    /// What ran out, with the fix.
    pub(crate) resource: String,
    /// The bound: mappings, or bytes of address space.
    pub(crate) limit: u64,
    /// What the process holds, the refused request included.
    pub(crate) requested: u64,
}

impl OsLimit {
    /// The limit the kernel's refusal (`ENOMEM`) met, by the process's state now.
    pub(crate) fn now() -> Self {
        Self::explain(
            mappings(),
            max_map_count(),
            address_space(),
            address_space_limit(),
        )
    }

    /// Which limit a refusal to map met, given the process's mappings and the
    /// kernel's bound on them, its address space and the bound on that: near the
    /// mapping bound it is that bound; otherwise the address space (or the machine's
    /// overcommit) ran out.
    pub(crate) fn explain(
        mappings: Option<u64>,
        max_map_count: Option<u64>,
        address_space: Option<u64>,
        address_space_limit: u64,
    ) -> Self {
        if let (Some(held), Some(max)) = (mappings, max_map_count) {
            // Within a few dozen of the bound: one instance adds up to seven mappings,
            // and those of the failed one are gone by the time this is read.
            if held.saturating_add(64) >= max {
                return Self {
                    resource: format!(
                        "memory mappings (the kernel's vm.max_map_count; the process holds \
                         {held}): build the engine with `WasmEngineBuilder::density`, which \
                         maps nothing per instance, or raise the bound (`sysctl -w \
                         vm.max_map_count=1048576`)"
                    ),
                    limit: max,
                    requested: held.saturating_add(1),
                };
            }
        }
        Self {
            resource: "address space (the process's `ulimit -v`, the 128 TiB of user space, \
                       or the machine's memory overcommit): build the engine with \
                       `WasmEngineBuilder::density`, which reserves only the memory limit \
                       per memory, lower the memory limit, or raise `ulimit -v`"
                .into(),
            limit: address_space_limit,
            requested: address_space.unwrap_or(address_space_limit),
        }
    }
}

impl std::fmt::Display for OsLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} limit of {} reached (asked for {})",
            self.resource, self.limit, self.requested
        )
    }
}

impl std::error::Error for OsLimit {}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The mappings of `/proc/self/maps` that overlap `[base, base + len)` (other
    /// threads' mappings come and go; these are ours, though the kernel may have
    /// merged the first or last with a neighbour of the same kind).
    pub(crate) fn mappings_in(base: usize, len: usize) -> usize {
        let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
        maps.lines()
            .filter_map(|l| {
                let (range, _) = l.split_once(' ')?;
                let (a, b) = range.split_once('-')?;
                Some((
                    usize::from_str_radix(a, 16).ok()?,
                    usize::from_str_radix(b, 16).ok()?,
                ))
            })
            .filter(|&(a, b)| a < base + len && b > base)
            .count()
    }

    #[test]
    fn near_the_mapping_bound_the_error_names_vm_max_map_count_and_the_fix() {
        let e = OsLimit::explain(Some(65_529), Some(65_530), Some(1 << 40), 1 << 47);
        assert!(e.resource.contains("vm.max_map_count"), "{e}");
        assert!(e.resource.contains("holds 65529"), "{e}");
        assert!(e.resource.contains("WasmEngineBuilder::density"), "{e}");
        assert_eq!((e.limit, e.requested), (65_530, 65_530));
    }

    #[test]
    fn far_from_the_mapping_bound_the_error_names_the_address_space() {
        let e = OsLimit::explain(Some(200), Some(65_530), Some(1 << 36), 1 << 36);
        assert!(e.resource.starts_with("address space"), "{e}");
        assert!(!e.resource.contains("max_map_count"), "{e}");
        assert_eq!((e.limit, e.requested), (1 << 36, 1 << 36));
        assert!(is_enomem(
            "mmap failed: Cannot allocate memory (os error 12)"
        ));
        assert!(!is_enomem("Permission denied (os error 13)"));
    }

    #[test]
    fn a_discarded_page_reads_zero_and_the_region_stays_one_mapping() {
        let page = page_size();
        let base = reserve(4 * page).expect("reserve");
        assert_eq!(mappings_in(base, 4 * page), 1);
        // SAFETY: the region is ours and nothing else uses it.
        unsafe {
            *(base as *mut u8) = 7;
            protect(base + page, page, true).expect("guard");
            assert_eq!(mappings_in(base, 4 * page), 3, "a guard splits it in three");
            protect(base + page, page, false).expect("unguard");
            assert_eq!(mappings_in(base, 4 * page), 1, "merged back");
            discard(base, page);
            assert_eq!(*(base as *const u8), 0);
            release(base, 4 * page);
        }
    }
}
