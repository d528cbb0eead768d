//! The lab's only unsafe code: thin wrappers over the few syscalls the standard library lacks
//! (`setns`, CPU affinity, per-thread CPU time, `geteuid`, AF_PACKET `sendmmsg`).
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `geteuid()`—The effective user id of the process.
pub(crate) fn geteuid() -> u32 {
    // SAFETY: geteuid takes no arguments, touches no memory and cannot fail.
    unsafe { libc::geteuid() }
}

/// `setns(fd, CLONE_NEWNET)`—Moves the calling thread into the network namespace behind `ns`
/// (an open `/var/run/netns/NAME` or `/proc/PID/ns/net`).
///
/// # References
/// - <https://man7.org/linux/man-pages/man2/setns.2.html>
pub(crate) fn setns_net(ns: &File) -> io::Result<()> {
    // SAFETY: `ns` is an open file for the duration of the call; setns reads only the fd and
    // the flag and changes the calling thread's namespace, no memory of ours.
    let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `sched_setaffinity(tid, {cpu})`—Pins thread `tid` (0: the calling thread) to one CPU.
///
/// # References
/// - <https://man7.org/linux/man-pages/man2/sched_setaffinity.2.html>
pub(crate) fn pin_to_cpu(tid: i32, cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is a plain bitmask for which all-zero is a valid (empty) value.
    let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: `cpu` is below CPU_SETSIZE (checked above), so the bit is inside `set`.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid, initialized cpu_set_t of the size we pass; the kernel only
    // reads it.
    let r = unsafe { libc::sched_setaffinity(tid, mem::size_of::<libc::cpu_set_t>(), &set) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `sched_getaffinity(0)`—The CPUs the calling thread may run on, in increasing order.
pub(crate) fn allowed_cpus() -> Vec<usize> {
    // SAFETY: all-zero is a valid empty cpu_set_t.
    let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
    // SAFETY: `set` is writable and exactly the size passed; the kernel fills it.
    let r = unsafe { libc::sched_getaffinity(0, mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return vec![0];
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: CPU_ISSET only reads the initialized set; `c` is below CPU_SETSIZE.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

/// `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`—CPU time the calling thread has used, in ns.
pub(crate) fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel knows.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if r != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// An AF_PACKET `SOCK_RAW` socket bound to one interface for sending only (protocol 0: the
/// kernel delivers nothing to it), with `PACKET_QDISC_BYPASS` (frames go straight to the
/// driver's transmit function, as pktgen does).
#[derive(Debug)]
pub(crate) struct PacketTx {
    fd: OwnedFd,
}

impl PacketTx {
    /// `socket(AF_PACKET, SOCK_RAW, 0)`, `setsockopt(PACKET_QDISC_BYPASS, 1)`,
    /// `bind(sockaddr_ll { ifindex })`.
    pub(crate) fn open(ifindex: u32) -> io::Result<PacketTx> {
        // SAFETY: plain socket(2) call with constant arguments.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let one: libc::c_int = 1;
        // SAFETY: `one` is a live c_int and we pass its exact size; the kernel only reads it.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_QDISC_BYPASS,
                (&one as *const libc::c_int).cast(),
                mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: all-zero is a valid sockaddr_ll; the fields we need are set below.
        let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = ifindex as i32;
        sll.sll_protocol = 0;
        // SAFETY: `sll` is a valid sockaddr_ll and we pass its exact size.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(PacketTx { fd })
    }

    /// Most frames one [`PacketTx::send`] call passes to the kernel.
    pub(crate) const MAX_BATCH: usize = 64;

    /// `sendmmsg(fd, frames)`—Sends each frame as one packet; returns how many were sent (at
    /// most [`PacketTx::MAX_BATCH`]: later frames are left for the next call). `ENOBUFS` (the
    /// device queue is full) counts as zero sent. Allocates nothing: the iovecs and message
    /// headers live on the stack.
    pub(crate) fn send(&self, frames: &[&[u8]]) -> io::Result<usize> {
        let frames = &frames[..frames.len().min(Self::MAX_BATCH)];
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; Self::MAX_BATCH];
        for (v, f) in iov.iter_mut().zip(frames) {
            v.iov_base = f.as_ptr() as *mut libc::c_void;
            v.iov_len = f.len();
        }
        // SAFETY: all-zero is a valid mmsghdr (null name, no iovec, no control data), so an
        // array of them is too.
        let mut msgs: [libc::mmsghdr; Self::MAX_BATCH] = unsafe { mem::zeroed() };
        for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: the first `frames.len()` msghdrs each point at one iovec in `iov`, which
        // points into a frame in `frames`; all of them outlive the call (`iov` and `msgs` are
        // not moved while the kernel uses them) and the kernel only reads the frames. `msgs`
        // is writable for msg_len; the count passed is `frames.len()` <= MAX_BATCH.
        let r = unsafe {
            libc::sendmmsg(
                self.fd.as_raw_fd(),
                msgs.as_mut_ptr(),
                frames.len() as libc::c_uint,
                0,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENOBUFS) || e.kind() == io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(e);
        }
        Ok(r as usize)
    }
}

/// `kill(pid, sig)`—Sends `sig` to process `pid` (a child of ours). Errors (the child is gone
/// already) are ignored.
pub(crate) fn kill(pid: i32, sig: i32) {
    if pid <= 0 {
        return; // never signal a process group or every process by accident
    }
    // SAFETY: kill takes two integers and touches no memory of ours.
    unsafe {
        libc::kill(pid, sig);
    }
}
