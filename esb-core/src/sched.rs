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
//! - a binary upgrade's new process starts at the lowest priority (nice 19) and goes back to
//!   the old process's priority once it is ready to take over ([`start_in_background`],
//!   [`come_forward`]): its start — some milliseconds of CPU — runs in what the serving
//!   process leaves of the core instead of taking a third of it from the requests. Only
//!   where the new process can go back (root, CAP_SYS_NICE, or an RLIMIT_NICE that allows
//!   the old priority: systemd's `LimitNICE=+0`); elsewhere it starts at the old priority;
//! - an old process that has nothing left to serve steps back ([`step_back`]): its exit runs
//!   when the serving process does not need the core.
//!
//! All are hints to the kernel (the slice needs EEVDF, Linux 6.12 or later); where one is
//! not supported nothing changes, and it is never an error.

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

/// The calling thread's priority (nice value).
pub fn nice() -> i32 {
    current_nice(0)
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

/// The calling thread (and the threads and processes it starts from now on) runs in short
/// slices: called first thing in `main`.
pub fn background() {
    let _ = set_slice(0, BACKGROUND_SLICE_NS);
}

/// The calling thread is one of the data plane's workers: the default slice.
pub fn data_plane() {
    let _ = set_slice(0, 0);
}

/// The lowest priority: what runs at it gets the core when nothing else needs it.
const LOWEST: i32 = 19;

fn set_nice(tid: libc::pid_t, nice: i32) -> bool {
    // SAFETY: setpriority has no memory arguments.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) == 0 }
}

/// Every thread of this process to the lowest priority (nice 19): what is left to do (exit)
/// runs when the core is not needed by the process that serves.
pub fn step_back() {
    for tid in threads() {
        let _ = set_nice(tid, LOWEST);
    }
}

/// Runs `spawn` on a thread of its own at the lowest priority, so that the process it
/// starts begins there too; `spawn` is given the priority that process is to come back to
/// once it serves (this thread's, for [`come_forward`]). Where a thread of this process
/// cannot come back from the lowest priority (no CAP_SYS_NICE and an RLIMIT_NICE that does
/// not allow it), `spawn` runs here, at this thread's priority, and is given `None`.
pub fn start_in_background<T: Send>(spawn: impl FnOnce(Option<i32>) -> T + Send) -> T {
    let nice = current_nice(0);
    // The probe, on a thread thrown away after: the lowest priority, then back (what the
    // new process will have to do).
    let can_return = std::thread::scope(|s| {
        s.spawn(|| set_nice(0, LOWEST) && set_nice(0, nice))
            .join()
            .unwrap_or(false)
    });
    if !can_return {
        return spawn(None);
    }
    std::thread::scope(|s| {
        s.spawn(move || {
            let _ = set_nice(0, LOWEST);
            spawn(Some(nice))
        })
        .join()
        .expect("spawning thread")
    })
}

/// Every thread of this process (started in the background) to priority `nice`; threads
/// started meanwhile by one still at the lowest priority are caught by looking again.
pub fn come_forward(nice: i32) {
    for _ in 0..5 {
        let behind: Vec<_> = threads()
            .into_iter()
            .filter(|&tid| current_nice(tid) != nice)
            .collect();
        if behind.is_empty() {
            return;
        }
        for tid in behind {
            if !set_nice(tid, nice) {
                tracing::warn!(
                    tid,
                    nice,
                    "binary upgrade: cannot give a thread back its priority; it runs at nice 19 \
                     (give esb CAP_SYS_NICE, or LimitNICE=+0 under systemd, and upgrade again)"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_starts_in_the_background_starts_at_the_lowest_priority_and_can_come_back() {
        let before = current_nice(0);
        let (seen, back) = start_in_background(|back| (current_nice(0), back));
        // The calling thread keeps its priority whatever happened.
        assert_eq!(current_nice(0), before);
        match back {
            // Permitted (root, CAP_SYS_NICE or RLIMIT_NICE): the spawner ran at 19 and a
            // thread of this process can go back.
            Some(nice) => {
                assert_eq!((seen, nice), (LOWEST, before));
                std::thread::spawn(move || {
                    assert!(set_nice(0, LOWEST));
                    come_forward(nice);
                    assert_eq!(current_nice(0), nice);
                })
                .join()
                .unwrap();
            }
            None => assert_eq!(seen, before),
        }
    }

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
