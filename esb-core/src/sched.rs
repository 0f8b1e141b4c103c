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
//! - an old process that has nothing left to serve steps back ([`step_back`]): its exit runs
//!   when the serving process does not need the core.
//!
//! Both are hints to the kernel (the slice needs EEVDF, Linux 6.12 or later); where one is
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

/// Every thread of this process to the lowest priority (nice 19): what is left to do (exit)
/// runs when the core is not needed by the process that serves.
pub fn step_back() {
    for tid in threads() {
        // SAFETY: setpriority has no memory arguments.
        let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19) };
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
