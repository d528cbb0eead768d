//! CPU placement and accounting for the calling thread (or another thread by id).

use std::io;

use crate::sys;

/// `sched_setaffinity(tid, {cpu})`—Pins thread `tid` (0: the calling thread) to one CPU.
///
/// # Errors
/// `cpu` is not below `CPU_SETSIZE` (`EINVAL`), or the kernel refused (no such thread, CPU
/// not allowed).
pub fn pin_to_cpu(tid: i32, cpu: usize) -> io::Result<()> {
    sys::pin_to_cpu(tid, cpu)
}

/// `sched_getaffinity(0)`—The CPUs the calling thread may run on, in increasing order; `[0]`
/// if the kernel does not say.
pub fn allowed_cpus() -> Vec<usize> {
    sys::allowed_cpus()
}

/// `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`—CPU time the calling thread has used, in ns; 0 if
/// the clock cannot be read.
pub fn thread_cpu_ns() -> u64 {
    sys::thread_cpu_ns()
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn allowed_cpus_are_sorted_and_nonempty() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty());
        assert!(cpus.windows(2).all(|w| w[0] < w[1]), "{cpus:?}");
    }

    #[test]
    fn pin_rejects_out_of_range_cpu() {
        let e = pin_to_cpu(0, libc::CPU_SETSIZE as usize).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    }

    #[test]
    fn thread_time_moves() {
        let a = thread_cpu_ns();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        std::hint::black_box(x);
        assert!(thread_cpu_ns() > a);
    }
}
