//! A global allocator that survives absurd allocation requests from the wire.
//!
//! `kafka-protocol` 0.18 reserves `Vec::with_capacity(n)` for an array before
//! decoding its elements, with `n` read from the request. A 14-byte request
//! claiming 2^31 topics asks for ~150 GB; the system allocator refuses, and
//! Rust aborts the whole process. [`Guarded`] serves such huge requests with
//! an anonymous `MAP_NORESERVE` mapping instead: address space is reserved but
//! no memory is committed, the decoder then fails on the missing bytes, and the
//! mapping is released. The connection gets closed; the broker lives on.
//!
//! The `sluice` binary installs it; an application embedding the broker can too:
//! `#[global_allocator] static A: sluice::alloc::Guarded = sluice::alloc::Guarded;`
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;

/// Requests at least this large bypass the system allocator.
const HUGE: usize = 1 << 32;

/// The system allocator, with huge requests served lazily by `mmap`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Guarded;

fn is_huge(layout: &Layout) -> bool {
    layout.size() >= HUGE && layout.align() <= 4096
}

// SAFETY: small layouts are forwarded unchanged to `System`; huge ones get a
// fresh page-aligned anonymous mapping of exactly `layout.size()` bytes, which
// satisfies any alignment up to the page size, is zero-filled by the kernel,
// and is unmapped with the same size in `dealloc`.
unsafe impl GlobalAlloc for Guarded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            return map(layout.size());
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            // Anonymous mappings are already zeroed: touching them would commit memory.
            return map(layout.size());
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_huge(&layout) {
            // SAFETY: `ptr` came from `map(layout.size())`.
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
            return;
        }
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` with `layout.align()` is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !is_huge(&layout) && !is_huge(&new_layout) {
            // SAFETY: same contract as ours.
            return unsafe { System.realloc(ptr, layout, new_size) };
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
}
