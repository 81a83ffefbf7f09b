//! Giving freed request buffers back to the system.
//!
//! Large blocks stay in glibc's arena while requests come, and are reused
//! (see [`crate::alloc`]). After a burst of megabyte produce requests the
//! broker would hold tens of MB it no longer uses, so frames of
//! [`LARGE_FRAME`] bytes or more are noted as they are read, and within a
//! second of one, `malloc_trim` returns the arena's free pages.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Frames at least this large are what arenas keep.
const LARGE_FRAME: usize = 128 * 1024;

static LARGE_FRAME_READ: AtomicBool = AtomicBool::new(false);

/// Notes a request frame of `len` bytes.
pub(crate) fn note_frame(len: usize) {
    if len >= LARGE_FRAME {
        LARGE_FRAME_READ.store(true, Ordering::Relaxed);
    }
}

/// Once a second, trims malloc's arenas if a large frame was read since the last time.
pub(crate) async fn give_back_freed_buffers() {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if LARGE_FRAME_READ.swap(false, Ordering::Relaxed) {
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only walks and releases glibc's own free lists.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
