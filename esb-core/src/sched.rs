//! How work that is not the data plane shares the CPU with it.
//!
//! Management (a deploy's parsing, a Jolokia answer, a binary upgrade's hand-over), a new
//! process's start (exec, dynamic linking, reading the configuration) and an old process's
//! exit (unmapping its memory) are each a few milliseconds of CPU on the cores that serve
//! traffic. With the scheduler's default slice (1.4 ms here), such a task holds a core for
//! whole slices while the data plane's requests wait: under load, every upgrade showed as a
//! few milliseconds in which no request was served. So:
//! - every thread of esb runs with a short slice ([`BACKGROUND_SLICE_NS`], set in `main`
//!   before any other thread exists, and inherited) — the same share of the CPU, in pieces
//!   short enough that a request waits at most that long for it — except the data plane's
//!   worker threads, which go back to the default slice when they start ([`data_plane`]).
//!   A binary upgrade's new process is started from such a thread, so its start runs in
//!   short pieces from its first instruction;
//! - a binary upgrade runs behind the data plane where this process may undo that
//!   ([`start_behind`]): the old process's side of it (starting the new process, passing the
//!   sockets) and the new process's start (exec, dynamic linking, reading the configuration
//!   and the state: ~10 ms of CPU) run at the lowest priority (nice 19), so they take the
//!   CPU the serving process leaves, not half of it. The new process's workers serve at the
//!   old process's priority from their first request ([`data_plane`]), and every other
//!   thread comes back to it once the process serves ([`come_back`]);
//! - an old process that has nothing left to serve steps back ([`step_back`]): its exit runs
//!   when the serving process does not need the core.
//!
//! These are hints to the kernel (the slice needs EEVDF, Linux 6.12 or later; running behind
//! needs the right to raise a priority again); where one is not supported nothing changes,
//! and it is never an error.

use std::sync::atomic::{AtomicI32, Ordering::Relaxed};

/// The slice of every thread but the data plane's: 100 µs, the shortest the kernel accepts.
pub const BACKGROUND_SLICE_NS: u64 = 100_000;

/// `struct sched_attr` of sched_setattr(2), its first version (48 bytes).
#[repr(C)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

/// Sets the slice of thread `tid` (0: the caller) under the normal policy, keeping its nice
/// value (passed as it is: a lower one would need privileges); `slice_ns` 0 is the kernel's
/// default.
fn set_slice(tid: libc::pid_t, slice_ns: u64) -> bool {
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: libc::SCHED_OTHER as u32,
        flags: 0,
        nice: current_nice(tid),
        priority: 0,
        runtime: slice_ns,
        deadline: 0,
        period: 0,
    };
    // SAFETY: `attr` is a valid, initialised sched_attr of the size it declares.
    unsafe { libc::syscall(libc::SYS_sched_setattr, tid, &attr as *const SchedAttr, 0) == 0 }
}

fn current_nice(tid: libc::pid_t) -> i32 {
    // SAFETY: getpriority has no memory arguments. -1 is also a valid nice value, which is
    // harmless here: it is only written back.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t) }
}

/// The threads of this process.
fn threads() -> Vec<libc::pid_t> {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn set_nice(tid: libc::pid_t, nice: i32) -> bool {
    // SAFETY: setpriority has no memory arguments.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) == 0 }
}

/// The lowest priority there is.
const LOWEST: i32 = 19;

/// The priority a process started behind serves at (the old process's), once told; [`NONE`]
/// in any other process.
static SERVING_NICE: AtomicI32 = AtomicI32::new(NONE);
const NONE: i32 = i32::MIN;

/// The calling thread (and the threads and processes it starts from now on) runs in short
/// slices: called first thing in `main`.
pub fn background() {
    let _ = set_slice(0, BACKGROUND_SLICE_NS);
}

/// The calling thread is one of the data plane's workers: the default slice, at the
/// priority this process serves at.
pub fn data_plane() {
    let nice = SERVING_NICE.load(Relaxed);
    if nice != NONE {
        let _ = set_nice(0, nice);
    }
    let _ = set_slice(0, 0);
}

/// Runs `work` (an upgrade's side in the old process, which starts the new process) on the
/// calling thread at the lowest priority, which the new process inherits — if this process
/// may take a thread back up to the priority it serves at (root, CAP_SYS_NICE or a high
/// enough RLIMIT_NICE; else the new process would be stuck down there, and `work` runs as
/// it is). `work` is told the priority the new process is to come back to if it runs behind
/// (for [`serve_at`] there); the calling thread is back at its own priority afterwards.
pub fn start_behind<T>(work: impl FnOnce(Option<i32>) -> T) -> T {
    let nice = current_nice(0);
    // Probed on a thread of its own: one that went down and could not come back is gone.
    let may = nice < LOWEST
        && std::thread::spawn(move || set_nice(0, LOWEST) && set_nice(0, nice))
            .join()
            .unwrap_or(false);
    if !may || !set_nice(0, LOWEST) {
        return work(None);
    }
    let r = work(Some(nice));
    let _ = set_nice(0, nice);
    r
}

/// In a process started behind ([`start_behind`]): the priority to serve at.
pub fn serve_at(nice: i32) {
    SERVING_NICE.store(nice, Relaxed);
}

/// The process serves: every thread at the priority it serves at (a no-op unless it was
/// started behind).
pub fn come_back() {
    let nice = SERVING_NICE.load(Relaxed);
    if nice == NONE {
        return;
    }
    for tid in threads() {
        let _ = set_nice(tid, nice);
    }
}

/// Every thread of this process to the lowest priority (nice 19): what is left to do (exit)
/// runs when the core is not needed by the process that serves.
pub fn step_back() {
    for tid in threads() {
        let _ = set_nice(tid, LOWEST);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slice of thread `tid` as the kernel reports it (`se.slice` in /proc), if it does.
    fn slice_of(tid: u32) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/sched")).ok()?;
        s.lines()
            .find(|l| l.starts_with("se.slice"))?
            .rsplit(' ')
            .next()?
            .trim()
            .parse()
            .ok()
    }

    #[test]
    fn background_threads_get_the_short_slice_and_the_data_plane_the_default_one() {
        let Some(default) = slice_of(std::process::id()) else {
            return; // no scheduler details in /proc (CONFIG_SCHED_DEBUG off)
        };
        // A thread of its own, so that the test runner's threads keep their slice.
        std::thread::spawn(move || {
            // SAFETY: gettid has no arguments.
            let tid = unsafe { libc::gettid() };
            if !set_slice(0, BACKGROUND_SLICE_NS) {
                return; // a kernel without custom slices (before 6.12)
            }
            assert_eq!(slice_of(tid as u32), Some(BACKGROUND_SLICE_NS));
            // What a thread started now inherits.
            let child = std::thread::spawn(|| slice_of(unsafe { libc::gettid() } as u32))
                .join()
                .unwrap();
            assert_eq!(child, Some(BACKGROUND_SLICE_NS));
            data_plane();
            assert_eq!(slice_of(tid as u32), Some(default));
        })
        .join()
        .unwrap();
    }
}
