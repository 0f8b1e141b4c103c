//! Giving the heap a big deploy freed back to the system. Parsing a unit builds a TOML
//! document many times the size of what its revision keeps, and answering a deploy sent
//! over the management endpoint holds several copies of its text; once freed, those pages
//! stay with the allocator, scattered between the small objects that live on, and count
//! as resident memory until they are trimmed. One trim follows a deploy that parsed at
//! least [`TRIM_AFTER`] bytes of sources, a moment after it, so that what answering it
//! freed is included; small deploys (the common reload) never pay for one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Sources parsed by one transaction above which a trim follows (about 2,500 proxies;
/// parsing them frees some 10 MB).
pub(super) const TRIM_AFTER: usize = 256 * 1024;

/// How long after the deploy the trim runs: its management answer has been written by then.
const SETTLE: Duration = Duration::from_millis(100);

/// A trim is scheduled and has not run yet (deploys meanwhile share it).
static PENDING: AtomicBool = AtomicBool::new(false);

/// Schedules one trim of the allocator's free memory, [`SETTLE`] from now.
pub(super) fn trim_soon() {
    if PENDING.swap(true, Ordering::AcqRel) {
        return;
    }
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        PENDING.store(false, Ordering::Release);
        trim();
        return;
    };
    // Cleared however the task ends (also when its runtime shuts down first), so a later
    // deploy can schedule the next trim.
    let pending = Pending;
    rt.spawn(async move {
        tokio::time::sleep(SETTLE).await;
        // Deploys that end from here on schedule their own trim.
        drop(pending);
        let _ = tokio::task::spawn_blocking(trim).await;
    });
}

struct Pending;

impl Drop for Pending {
    fn drop(&mut self) {
        PENDING.store(false, Ordering::Release);
    }
}

/// Returns every whole free page of the allocator's arenas to the system.
fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let t = std::time::Instant::now();
        // SAFETY: malloc_trim only hands free memory of glibc's arenas back to the kernel
        // (madvise); it touches no allocation in use.
        let released = unsafe { libc::malloc_trim(0) } != 0;
        tracing::debug!(
            took_us = t.elapsed().as_micros() as u64,
            released,
            "heap trimmed after a big deploy"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn deploys_close_together_share_one_trim_and_later_ones_get_their_own() {
        trim_soon();
        assert!(PENDING.load(Ordering::Acquire), "a trim is scheduled");
        trim_soon(); // shares the one scheduled
        tokio::time::sleep(SETTLE * 3).await;
        assert!(!PENDING.load(Ordering::Acquire), "the trim ran");
        trim_soon();
        assert!(
            PENDING.load(Ordering::Acquire),
            "a later deploy schedules another"
        );
    }
}
