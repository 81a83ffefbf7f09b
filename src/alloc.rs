//! The broker's global allocator: small blocks from mimalloc, large ones from
//! the system allocator, and absurd requests from the wire survived.
//!
//! - **Small** (under [`LARGE`]): mimalloc. Requests allocate and free a
//!   dozen small blocks each, often on another thread than the one that
//!   allocated them; glibc's malloc spent about a sixth of an idle long-poll's
//!   instructions there (callgrind), mimalloc a third of that. Its plain
//!   `mi_malloc` is called unless a block needs more than its 16-byte
//!   alignment: the aligned entry point (which the `mimalloc` crate always
//!   uses) over-allocates, slowly, for every block over 1 KiB whose size is not
//!   a power of two, even at an alignment of 8.
//! - **Large**: glibc's malloc, in one arena, which keeps and reuses them
//!   while requests come and gives them back when told (`malloc_trim`,
//!   within two seconds of the last one freed, and every ten seconds while
//!   they go on being freed: [`crate::memory`]). A produce request's frame
//!   is one such block. Left to its defaults, glibc gave the pages of each
//!   freed frame back to the kernel at once (a mapping of its own, or an
//!   arena shrunk at its top) and faulted them in again for the next: a
//!   fifth of the CPU of a 10 KiB produce. mimalloc keeps them, but nothing
//!   makes it give a burst's memory back while the broker is idle; nor does
//!   `malloc_trim` the top of glibc's per-thread arenas, hence one arena.
//! - **Huge** (from [`HUGE`]): `kafka-protocol` 0.18 reserves
//!   `Vec::with_capacity(n)` for an array before decoding its elements, with
//!   `n` read from the request. A 14-byte request claiming 2^31 topics asks
//!   for ~150 GB; the system allocator refuses, and Rust aborts the whole
//!   process. Such a request gets an anonymous `MAP_NORESERVE` mapping instead:
//!   address space is reserved but no memory is committed, the decoder then
//!   fails on the missing bytes, and the mapping is released. The connection
//!   gets closed; the broker lives on.
//!
//! The `sluice` binary installs it, and calls [`keep_large_blocks`] at start;
//! an application embedding the broker can do the same:
//! `#[global_allocator] static A: sluice::alloc::Guarded = sluice::alloc::Guarded;`
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

use libmimalloc_sys as mi;

/// mimalloc's blocks are aligned to this much (blocks of 8 bytes or less: to
/// 8). Its API does not promise it; its size classes and page layout make it
/// so, and `small_blocks_have_their_alignment_plain_or_not` checks it.
const MI_ALIGN: usize = 16;

/// Whether mimalloc's plain (unaligned) calls give `layout`'s alignment.
fn plain(align: usize, size: usize) -> bool {
    align <= MI_ALIGN && align <= size
}

/// Requests at least this large go to the system allocator.
const LARGE: usize = 64 * 1024;

/// Set when a large block is freed: [`crate::memory`] then trims the arena.
static LARGE_FREED: AtomicBool = AtomicBool::new(false);

fn note_large_free() {
    // Read first: a store on every free would bounce the line between threads.
    if !LARGE_FREED.load(Ordering::Relaxed) {
        LARGE_FREED.store(true, Ordering::Relaxed);
    }
}

/// Whether a large block was freed since the last call.
pub(crate) fn large_block_freed() -> bool {
    LARGE_FREED.swap(false, Ordering::Relaxed)
}

/// Requests at least this large bypass both allocators.
const HUGE: usize = 1 << 32;

/// Small blocks from mimalloc, large ones from `System`, huge ones mapped lazily.
#[derive(Debug, Clone, Copy, Default)]
pub struct Guarded;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    Small,
    Large,
    Huge,
}

fn tier(layout: &Layout) -> Tier {
    if layout.size() >= HUGE && layout.align() <= 4096 {
        Tier::Huge
    } else if layout.size() >= LARGE {
        Tier::Large
    } else {
        Tier::Small
    }
}

/// Sets glibc's malloc up for the large blocks [`Guarded`] gives it: blocks up
/// to 32 MiB (its most) from the arena, one arena for every thread, shrunk
/// only by `malloc_trim` (or with 64 MiB free at its top). Call it first
/// thing in `main`, before any other thread starts (so before an async
/// runtime is built: not under `#[tokio::main]`): glibc fixes its number of
/// arenas when a second thread first allocates. The `sluice` binary does.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn keep_large_blocks() {
    // SAFETY: mallopt only sets glibc's malloc parameters; it allocates nothing.
    let set = unsafe {
        [
            libc::mallopt(libc::M_ARENA_MAX, 1),
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20),
            libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20),
        ]
    };
    // mallopt answers 1 when it took the value.
    debug_assert_eq!(set, [1, 1, 1]);
}

/// Does nothing without glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_large_blocks() {}

/// Keeps the process out of transparent huge pages where the system would
/// hand them out unasked (THP `enabled = always`). The broker's heap is a
/// few MiB that requests churn: a huge page is zeroed whole on its first
/// touch and split again when a part of it is given back, and it counts
/// 2 MiB of RSS for a few blocks. mimalloc is already built not to ask for
/// huge pages (the `no_thp` feature in Cargo.toml); this covers the rest.
/// Measured here with `always`: 16.1 MiB resident at idle without the call,
/// 14.1 with it; 23.1 and 16.3 MiB after a load. The flag holds for the
/// whole process and is inherited by its children across fork and exec, so
/// an embedding application chooses for itself; the `sluice` binary calls
/// it at start. A kernel that refuses it changes nothing.
#[cfg(target_os = "linux")]
pub fn small_pages() {
    let (on, unused): (libc::c_ulong, libc::c_ulong) = (1, 0);
    // SAFETY: this prctl sets a flag of the calling process and touches no
    // memory; its arguments are the unsigned longs the kernel reads.
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, on, unused, unused, unused) };
}

/// Does nothing off Linux.
#[cfg(not(target_os = "linux"))]
pub fn small_pages() {}

// SAFETY: a block is freed (or resized) by the allocator that gave it, which
// its layout's size names: the caller passes the layout it was allocated with.
// Huge blocks get a fresh page-aligned anonymous mapping of exactly
// `layout.size()` bytes, which satisfies any alignment up to the page size, is
// zero-filled by the kernel, and is unmapped with the same size in `dealloc`.
unsafe impl GlobalAlloc for Guarded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY (all arms): same contract as ours.
        match tier(&layout) {
            Tier::Small if plain(layout.align(), layout.size()) => unsafe {
                mi::mi_malloc(layout.size()).cast()
            },
            Tier::Small => unsafe { mi::mi_malloc_aligned(layout.size(), layout.align()).cast() },
            Tier::Large => unsafe { System.alloc(layout) },
            Tier::Huge => map(layout.size()),
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY (all arms): same contract as ours.
        match tier(&layout) {
            Tier::Small if plain(layout.align(), layout.size()) => unsafe {
                mi::mi_zalloc(layout.size()).cast()
            },
            Tier::Small => unsafe { mi::mi_zalloc_aligned(layout.size(), layout.align()).cast() },
            Tier::Large => unsafe { System.alloc_zeroed(layout) },
            // Anonymous mappings are already zeroed: touching them would commit memory.
            Tier::Huge => map(layout.size()),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match tier(&layout) {
            // SAFETY: `ptr` came from this allocator, with this layout.
            // (mimalloc frees any of its blocks, aligned or not, with `mi_free`.)
            Tier::Small => unsafe { mi::mi_free(ptr.cast()) },
            Tier::Large => {
                note_large_free();
                // SAFETY: as above.
                unsafe { System.dealloc(ptr, layout) }
            }
            // SAFETY: `ptr` came from `map(layout.size())`.
            Tier::Huge => unsafe {
                libc::munmap(ptr.cast(), layout.size());
            },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` with `layout.align()` is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (tier(&layout), tier(&new_layout)) {
            // SAFETY: same contract as ours, within one allocator.
            (Tier::Small, Tier::Small) if plain(layout.align(), new_size) => {
                return unsafe { mi::mi_realloc(ptr.cast(), new_size).cast() };
            }
            (Tier::Small, Tier::Small) => {
                return unsafe {
                    mi::mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
                };
            }
            (Tier::Large, Tier::Large) => {
                note_large_free();
                // SAFETY: as above.
                return unsafe { System.realloc(ptr, layout, new_size) };
            }
            _ => {}
        }
        // SAFETY: `new_layout` is valid (see above).
        let new_ptr = unsafe { self.alloc(new_layout) };
        if !new_ptr.is_null() {
            // SAFETY: both blocks are valid for the smaller of the two sizes and do not overlap.
            unsafe {
                ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new_ptr
    }
}

fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping with no address hint has no preconditions.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        p.cast()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_zeroed_allocation_is_reserved_not_committed() {
        let layout = Layout::from_size_align(1 << 40, 8).unwrap();
        // SAFETY: non-zero size; freed with the same layout.
        unsafe {
            let p = Guarded.alloc_zeroed(layout);
            assert!(!p.is_null());
            assert_eq!(*p.add(12345), 0);
            Guarded.dealloc(p, layout);
        }
    }

    #[test]
    fn blocks_keep_their_bytes_across_every_tier_in_realloc() {
        let align = 8;
        let sizes = [64, LARGE - 1, LARGE, 4 * LARGE, HUGE, 32];
        let byte = |i: usize| (i % 251) as u8;
        // SAFETY: valid layouts; each block is resized or freed once, with
        // its layout; reads and writes stay within the block.
        unsafe {
            let mut p = Guarded.alloc(Layout::from_size_align(sizes[0], align).unwrap());
            for i in 0..sizes[0] {
                p.add(i).write(byte(i));
            }
            for pair in sizes.windows(2) {
                let old = Layout::from_size_align(pair[0], align).unwrap();
                p = Guarded.realloc(p, old, pair[1]);
                assert!(!p.is_null());
                let kept = pair[0].min(pair[1]);
                for i in [0, kept / 2, kept - 1] {
                    assert_eq!(
                        *p.add(i),
                        byte(i),
                        "{} -> {} bytes, byte {i}",
                        pair[0],
                        pair[1]
                    );
                }
                // Fill what is new (up to 4 × LARGE: the huge block stays uncommitted).
                for i in kept..pair[1].min(4 * LARGE) {
                    p.add(i).write(byte(i));
                }
            }
            Guarded.dealloc(p, Layout::from_size_align(32, align).unwrap());
        }
    }

    #[test]
    fn a_large_zeroed_block_is_zeroed() {
        let layout = Layout::from_size_align(2 * LARGE, 8).unwrap();
        // SAFETY: non-zero size; freed once with the same layout.
        unsafe {
            let p = Guarded.alloc_zeroed(layout);
            assert!(!p.is_null());
            assert!((0..layout.size()).all(|i| *p.add(i) == 0));
            Guarded.dealloc(p, layout);
        }
    }

    #[test]
    fn small_allocations_round_trip_through_realloc() {
        let layout = Layout::from_size_align(64, 8).unwrap();
        // SAFETY: valid layouts; each pointer is freed once with its layout.
        unsafe {
            let p = Guarded.alloc(layout);
            p.write(7);
            let q = Guarded.realloc(p, layout, HUGE);
            assert_eq!(*q, 7);
            let r = Guarded.realloc(q, Layout::from_size_align(HUGE, 8).unwrap(), 32);
            assert_eq!(*r, 7);
            Guarded.dealloc(r, Layout::from_size_align(32, 8).unwrap());
        }
    }

    #[test]
    fn small_blocks_have_their_alignment_plain_or_not() {
        for align in [1, 8, 16, 32, 64, 128, 4096] {
            for size in [1, 8, 16, 24, 40, 56, 1000, 1500, 4096, LARGE - 1] {
                let Ok(layout) = Layout::from_size_align(size, align) else {
                    continue;
                };
                // SAFETY: non-zero sizes; each block is freed once with its layout.
                unsafe {
                    let p = Guarded.alloc(layout);
                    assert_eq!(p as usize % align, 0, "{size} bytes at {align}");
                    p.write_bytes(1, size);
                    let q = Guarded.realloc(p, layout, size + 3000);
                    assert_eq!(q as usize % align, 0, "{size}+3000 bytes at {align}");
                    assert_eq!(*q.add(size - 1), 1);
                    Guarded.dealloc(q, Layout::from_size_align(size + 3000, align).unwrap());
                    let z = Guarded.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0, "zeroed {size} bytes at {align}");
                    assert!((0..size).all(|i| *z.add(i) == 0));
                    Guarded.dealloc(z, layout);
                }
            }
        }
    }
}
