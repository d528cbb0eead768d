//! The only home of `libc` calls (and of `unsafe`) in this crate.
//!
//! Every wrapper is safe to call: it takes Rust types (`BorrowedFd`, slices,
//! `&CStr`) whose validity the borrow checker guarantees, and turns the C
//! return convention into `io::Result`.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// `ETH_P_ALL` in network byte order, as `socket(2)`/`bind(2)` want it for
/// AF_PACKET.
pub(crate) const ETH_P_ALL_BE: u16 = (libc::ETH_P_ALL as u16).to_be();

/// Converts a `-1`-on-error return value into `io::Result`.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `geteuid()`—the effective user id of the process.
pub(crate) fn geteuid() -> u32 {
    // SAFETY: geteuid takes no arguments, touches no memory of ours and
    // cannot fail (POSIX).
    unsafe { libc::geteuid() }
}

/// `setns(fd, CLONE_NEWNET)`—moves the *calling thread* into the network
/// namespace that `fd` refers to (an open `/var/run/netns/NAME` or
/// `/proc/PID/ns/net`).
///
/// # References
/// - <https://man7.org/linux/man-pages/man2/setns.2.html>
pub(crate) fn setns_net(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: `fd` is a live descriptor for the duration of the call (it is
    // borrowed); setns only reads the descriptor number and the flag.
    cvt(unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) }).map(drop)
}

/// `flock(fd, LOCK_EX | LOCK_NB)`—takes an exclusive advisory lock on the open file
/// description behind `fd` without waiting: `Ok(true)` taken, `Ok(false)` another open file
/// description holds it (`EWOULDBLOCK`). The kernel releases it when the last descriptor of
/// that description closes, however the process ends.
///
/// # References
/// - <https://man7.org/linux/man-pages/man2/flock.2.html>
pub(crate) fn try_lock_exclusive(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: `fd` is a live descriptor for the duration of the call (it is borrowed); flock
    // takes two integers and touches no memory of ours.
    match cvt(unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `kill(pid, sig)`—sends `sig` to `pid`; signal 0 performs only the
/// existence/permission check and delivers nothing.
///
/// # References
/// - <https://man7.org/linux/man-pages/man2/kill.2.html>
pub(crate) fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: kill takes two integers and touches no memory of ours.
    cvt(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// `if_nametoindex(name)` in the calling thread's network namespace.
pub(crate) fn if_nametoindex(name: &CStr) -> io::Result<u32> {
    // SAFETY: `name` is a valid NUL-terminated string borrowed for the call;
    // if_nametoindex does not retain the pointer.
    let idx = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if idx == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(idx)
    }
}

/// `socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0)`—protocol 0, so the socket
/// receives nothing until it is bound with a non-zero protocol.
pub(crate) fn packet_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = cvt(unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: socket() just returned this descriptor and nothing else owns
    // it, so OwnedFd may take sole ownership (and close it on drop).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A `sockaddr_ll` for `ifindex` with `protocol` already in network order.
fn sockaddr_ll(ifindex: u32, protocol_be: u16) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is a plain C struct of integers and a byte array;
    // all-zero is a valid (and the conventional initial) value.
    let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol_be;
    sll.sll_ifindex = ifindex as i32;
    sll
}

/// `bind(fd, sockaddr_ll { ifindex, protocol })` for an AF_PACKET socket.
pub(crate) fn packet_bind(fd: BorrowedFd<'_>, ifindex: u32, protocol_be: u16) -> io::Result<()> {
    let sll = sockaddr_ll(ifindex, protocol_be);
    let len = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `sll` is a fully initialised sockaddr_ll living on our stack
    // for the whole call and `len` is exactly its size; bind copies it.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            len,
        )
    })
    .map(drop)
}

/// `sendto(fd, frame, 0, sockaddr_ll { ifindex, protocol })`.
///
/// Returns the number of bytes the kernel accepted.
pub(crate) fn packet_sendto(
    fd: BorrowedFd<'_>,
    frame: &[u8],
    ifindex: u32,
    protocol_be: u16,
) -> io::Result<usize> {
    let sll = sockaddr_ll(ifindex, protocol_be);
    let len = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `frame` is a live slice whose pointer/length pair is passed
    // unchanged, and the kernel only reads it; `sll` is initialised and
    // outlives the call, `len` is its exact size.
    let n = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&sll as *const libc::sockaddr_ll).cast(),
            len,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `recvfrom(fd, buf, MSG_TRUNC, &sockaddr_ll)`.
///
/// Returns `(frame length on the wire, sll_pkttype)`. With `MSG_TRUNC` the
/// length is the real frame length even if `buf` was shorter.
pub(crate) fn packet_recvfrom(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, u8)> {
    let mut sll = sockaddr_ll(0, 0);
    let mut len = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `buf` is an exclusively borrowed slice and the kernel writes at
    // most `buf.len()` bytes into it (MSG_TRUNC only changes the return
    // value); `sll`/`len` are initialised locals the kernel may overwrite,
    // with `len` telling it the buffer size.
    let n = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_TRUNC,
            (&mut sll as *mut libc::sockaddr_ll).cast(),
            &mut len,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok((n as usize, sll.sll_pkttype))
    }
}

/// `setsockopt(fd, level, name, &value, sizeof value)` for `int` options.
pub(crate) fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    let len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` is an initialised c_int on our stack for the whole
    // call and `len` is its exact size; the kernel only copies from it.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            len,
        )
    })
    .map(drop)
}

/// `setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, timeval)`; `None` blocks forever.
pub(crate) fn set_rcvtimeo(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<()> {
    let tv = match timeout {
        // A zero timeval means "block forever", so round a zero timeout up.
        Some(d) => libc::timeval {
            tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
            tv_usec: d.subsec_micros().max(u32::from(d.is_zero())) as libc::suseconds_t,
        },
        None => libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
    };
    let len = mem::size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: `tv` is an initialised timeval on our stack for the whole call
    // and `len` is its exact size; the kernel only copies from it.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            len,
        )
    })
    .map(drop)
}

/// `getsockopt(fd, SOL_PACKET, PACKET_STATISTICS)`—`(tp_packets, tp_drops)`
/// since the previous call (the kernel resets the counters on read).
pub(crate) fn packet_statistics(fd: BorrowedFd<'_>) -> io::Result<(u32, u32)> {
    let mut st = libc::tpacket_stats {
        tp_packets: 0,
        tp_drops: 0,
    };
    let mut len = mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
    // SAFETY: `st` is an initialised tpacket_stats on our stack and `len`
    // holds its exact size, so the kernel writes at most that many bytes.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut st as *mut libc::tpacket_stats).cast(),
            &mut len,
        )
    })?;
    Ok((st.tp_packets, st.tp_drops))
}

/// Most frames one [`sendmmsg_frames`] call passes to the kernel.
pub(crate) const SENDMMSG_MAX: usize = 64;

/// `sendmmsg(fd, frames)`—Sends each of the first [`SENDMMSG_MAX`] frames as
/// one packet on the bound socket `fd`; returns how many the kernel took.
/// Allocates nothing: the iovecs and message headers live on the stack.
///
/// # References
/// - <https://man7.org/linux/man-pages/man2/sendmmsg.2.html>
pub(crate) fn sendmmsg_frames(fd: BorrowedFd<'_>, frames: &[&[u8]]) -> io::Result<usize> {
    let frames = &frames[..frames.len().min(SENDMMSG_MAX)];
    let mut iov = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; SENDMMSG_MAX];
    for (v, f) in iov.iter_mut().zip(frames) {
        v.iov_base = f.as_ptr() as *mut libc::c_void;
        v.iov_len = f.len();
    }
    // SAFETY: all-zero is a valid mmsghdr (null name, no iovec, no control data), so an
    // array of them is too.
    let mut msgs: [libc::mmsghdr; SENDMMSG_MAX] = unsafe { mem::zeroed() };
    for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
        m.msg_hdr.msg_iov = v;
        m.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: the first `frames.len()` msghdrs each point at one iovec in `iov`, which
    // points into a frame in `frames`; all of them outlive the call (`iov` and `msgs` are
    // not moved while the kernel uses them) and the kernel only reads the frames. `msgs`
    // is writable for msg_len; the count passed is `frames.len()` <= SENDMMSG_MAX.
    let r = unsafe {
        libc::sendmmsg(
            fd.as_raw_fd(),
            msgs.as_mut_ptr(),
            frames.len() as libc::c_uint,
            0,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// An empty `cpu_set_t`.
fn cpu_set_empty() -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is a plain bitmask for which all-zero is a valid (empty) value.
    unsafe { mem::zeroed() }
}

/// `sched_setaffinity(tid, {cpu})`—Pins thread `tid` (0: the calling thread) to one CPU.
///
/// # References
/// - <https://man7.org/linux/man-pages/man2/sched_setaffinity.2.html>
pub(crate) fn pin_to_cpu(tid: i32, cpu: usize) -> io::Result<()> {
    let mut set = cpu_set_empty();
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

/// `sched_getaffinity(0)`—The CPUs the calling thread may run on, in increasing order
/// (`[0]` if the call fails).
///
/// # References
/// - <https://man7.org/linux/man-pages/man2/sched_getaffinity.2.html>
pub(crate) fn allowed_cpus() -> Vec<usize> {
    let mut set = cpu_set_empty();
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

/// `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`—CPU time the calling thread has used, in ns
/// (0 if the call fails).
///
/// # References
/// - <https://man7.org/linux/man-pages/man2/clock_gettime.2.html>
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

/// `socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)`—a socket to run interface ioctls on. Its
/// network namespace is the creating thread's, whatever thread uses it later.
pub(crate) fn inet_dgram_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket takes three integers and touches no memory of ours.
    let fd = cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` was just returned by socket(2), is open, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `SIOCETHTOOL`: `ioctl(fd, SIOCETHTOOL, &ifreq{ifr_name: ifname, ifr_data: cmd})`.
///
/// # References
/// - <https://man7.org/linux/man-pages/man8/ethtool.8.html> (the `ethtool_*` structs in
///   `<linux/ethtool.h>`)
pub(crate) fn ethtool(fd: BorrowedFd<'_>, ifname: &CStr, cmd: &mut [u64]) -> io::Result<()> {
    let name = ifname.to_bytes_with_nul();
    if name.len() > libc::IFNAMSIZ {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface name too long",
        ));
    }
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    ifr.ifr_ifru.ifru_data = cmd.as_mut_ptr().cast();
    // SAFETY: `ifr` names the interface (NUL-terminated, checked above) and points `ifr_data`
    // at `cmd`, which the caller sized for the command it holds (the kernel writes at most
    // the counts it was told in the command's header, which the caller set from `cmd`'s
    // length); both outlive the call.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCETHTOOL, &mut ifr) }).map(drop)
}

/// `gettid()`—the calling thread's id.
pub(crate) fn gettid() -> i32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// `tgkill(getpid(), tid, sig)`—sends `sig` to thread `tid` of this process.
pub(crate) fn tgkill(tid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: getpid takes no arguments and cannot fail.
    let pid = unsafe { libc::getpid() };
    // SAFETY: tgkill takes three integers and touches no memory of ours.
    let r = unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, sig) };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

extern "C" fn wake_handler(_: libc::c_int) {}

/// Installs a handler that does nothing for `sig`, without `SA_RESTART`: the signal only
/// interrupts a blocking system call of the thread it is sent to (which returns `EINTR`).
pub(crate) fn install_wake_handler(sig: i32) -> io::Result<()> {
    // SAFETY: sigaction is plain old data; all-zero is a valid (empty) value.
    let mut sa: libc::sigaction = unsafe { mem::zeroed() };
    sa.sa_sigaction = wake_handler as extern "C" fn(libc::c_int) as usize;
    // SAFETY: `sa.sa_mask` is a valid sigset_t owned by us.
    unsafe { libc::sigemptyset(&mut sa.sa_mask) };
    // SAFETY: `sa` is initialised above and outlives the call; the handler is an
    // async-signal-safe function that does nothing; the old action is not asked for.
    cvt(unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) }).map(drop)
}
