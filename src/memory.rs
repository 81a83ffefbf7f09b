//! Giving freed request buffers back to the system.
//!
//! Large blocks stay in glibc's arena while requests come, and are reused
//! (see [`crate::alloc`]). After a burst of megabyte produce requests the
//! broker would hold tens of MB it no longer uses, so once a whole second
//! passes with no large block freed after some were, `malloc_trim` returns
//! the arena's free pages. Not every second during the burst: a trim then
//! hands back pages the next requests fault in again (and zero) at once. A
//! steady stream of large requests still gets one every
//! [`LONGEST_WAIT_TICKS`] seconds, so what an earlier burst left is not kept
//! for as long as the stream goes on.

use std::time::Duration;

use tokio::time::MissedTickBehavior;

/// Ticks (seconds) between trims while large blocks go on being freed.
const LONGEST_WAIT_TICKS: u32 = 10;

/// Once a second, trims malloc's arena if large blocks were freed and the
/// freeing has stopped (or has gone on for [`LONGEST_WAIT_TICKS`]).
pub(crate) async fn give_back_freed_buffers() {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // A late tick must not be followed by a catch-up one at once: it would
    // see no frees and trim in the middle of a burst.
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
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
    /// Ticks that saw large blocks freed since the last trim (0: none).
    owed_ticks: u32,
}

impl Trimmer {
    /// Whether to trim now, given whether a large block was freed this tick.
    fn tick(&mut self, freed: bool) -> bool {
        if self.owed_ticks == 0 {
            self.owed_ticks = u32::from(freed);
            return false;
        }
        if freed {
            self.owed_ticks += 1;
        }
        let trim = !freed || self.owed_ticks >= LONGEST_WAIT_TICKS;
        if trim {
            self.owed_ticks = 0;
        }
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
    use super::{LONGEST_WAIT_TICKS, Trimmer};

    #[test]
    fn trims_once_after_each_burst_never_during_it() {
        let mut trimmer = Trimmer::default();
        // Quiet, a three-tick burst, quiet, a one-tick burst, quiet: a trim
        // the tick after each burst.
        let frees = [false, true, true, true, false, false, true, false, false];
        let trims: Vec<bool> = frees.iter().map(|&f| trimmer.tick(f)).collect();
        assert_eq!(
            trims,
            [false, false, false, false, true, false, false, true, false]
        );
    }

    #[test]
    fn a_steady_stream_is_trimmed_every_longest_wait() {
        let mut trimmer = Trimmer::default();
        let trims: Vec<usize> = (0..35).filter(|_| trimmer.tick(true)).collect();
        // Ticks 0..w-1 see frees; the w-th of them trims; and so on.
        let w = LONGEST_WAIT_TICKS as usize;
        assert_eq!(trims, [w - 1, 2 * w - 1, 3 * w - 1]);
    }
}
