//! Giving freed request buffers back to the system.
//!
//! Large blocks stay in glibc's arena while requests come, and are reused
//! (see [`crate::alloc`]). After a burst of megabyte produce requests the
//! broker would hold tens of MB it no longer uses, so within a second of a
//! large block being freed, `malloc_trim` returns the arena's free pages.

use std::time::Duration;

/// Once a second, trims malloc's arena if a large block was freed since the last time.
pub(crate) async fn give_back_freed_buffers() {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if crate::alloc::large_block_freed() {
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
