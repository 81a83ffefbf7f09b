//! Giving freed request buffers back to the system.
//!
//! Large blocks stay in glibc's arena while requests come, and are reused
//! (see [`crate::alloc`]). After a burst of megabyte produce requests the
//! broker would hold tens of MB it no longer uses, so once a whole second
//! passes with no large block freed after some were, `malloc_trim` returns
//! the arena's free pages. Not during the burst: a trim then hands back
//! pages the next requests fault in again (and zero) at once.

use std::time::Duration;

/// Once a second, trims malloc's arena if large blocks were freed and the
/// freeing has stopped: within two seconds of a burst's end.
pub(crate) async fn give_back_freed_buffers() {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut trimmer = Trimmer::default();
    loop {
        tick.tick().await;
        if trimmer.tick(crate::alloc::large_block_freed()) {
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    }
}

/// When to trim, from whether a large block was freed in each tick.
#[derive(Debug, Default)]
struct Trimmer {
    /// A large block was freed in the last tick.
    freed_last_tick: bool,
}

impl Trimmer {
    /// Whether to trim now, given whether a large block was freed this tick.
    fn tick(&mut self, freed: bool) -> bool {
        let trim = self.freed_last_tick && !freed;
        self.freed_last_tick = freed;
        trim
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

#[cfg(test)]
mod tests {
    use super::Trimmer;

    #[test]
    fn trims_once_after_a_burst_never_during_it() {
        let mut trimmer = Trimmer::default();
        // Quiet, then a three-tick burst, then quiet: one trim, the tick after.
        let frees = [false, true, true, true, false, false, true, false, false];
        let trims: Vec<bool> = frees.iter().map(|&f| trimmer.tick(f)).collect();
        assert_eq!(
            trims,
            [false, false, false, false, true, false, false, true, false]
        );
    }
}
