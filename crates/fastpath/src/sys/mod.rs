//! The only home of raw system calls and kernel UAPI mirrors.
//!
//! Everything above this module works with [`OwnedFd`], [`Mmap`] and `crate::Result`. Each wrapper
//! checks the return value once and turns `errno` into a named [`Error`]; nothing here allocates
//! except at setup.
#![allow(unsafe_code)]

pub(crate) mod bpf;
pub(crate) mod genl;
pub(crate) mod netlink;
pub(crate) mod packet;
pub(crate) mod time;
pub(crate) mod tstamp;
pub(crate) mod xdp;

use std::ffi::CString;
use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::time::Duration;

use crate::{Error, Result};

/// Maximum interface name length including the NUL (`IFNAMSIZ` in `<linux/if.h>`).
pub(crate) const IFNAMSIZ: usize = 16;

/// `setsockopt(fd, level, name, &val, sizeof val)`—sets one socket option.
///
/// `T` must be the plain-old-data type the kernel expects for `name` (`c_int`, a UAPI struct).
///
/// # References
/// - <https://man7.org/linux/man-pages/man2/setsockopt.2.html>
pub(crate) fn setsockopt<T: Copy>(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    val: &T,
    call: &'static str,
) -> Result<()> {
    // SAFETY: `val` is a valid, initialised `T` for the duration of the call and we pass its exact
    // size, so the kernel reads only memory we own; `fd` is an open descriptor borrowed for the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(errno_error(call));
    }
    Ok(())
}

/// `getsockopt(fd, level, name, &mut val, &mut len)`—reads one socket option of type `T`.
///
/// `T` must be a plain-old-data UAPI type for which all-zero bytes are a valid value.
pub(crate) fn getsockopt<T: Copy>(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    call: &'static str,
) -> Result<T> {
    getsockopt_raw(fd.as_raw_fd(), level, name, call)
}

/// [`getsockopt`] on a descriptor the caller keeps open for the call.
fn getsockopt_raw<T: Copy>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    call: &'static str,
) -> Result<T> {
    let mut val = MaybeUninit::<T>::zeroed();
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `val` points to `size_of::<T>()` writable bytes and `len` says so; the kernel writes
    // at most `len` bytes and updates `len`.
    let rc = unsafe { libc::getsockopt(fd, level, name, val.as_mut_ptr().cast(), &mut len) };
    if rc < 0 {
        return Err(errno_error(call));
    }
    // SAFETY: the buffer was zero-initialised and the callers only use UAPI structs of integers,
    // for which any bit pattern (including a short write leaving zeros) is a valid value.
    Ok(unsafe { val.assume_init() })
}

/// Turn the current `errno` into an [`Error`], naming the capability for `EPERM`/`EACCES`.
pub(crate) fn errno_error(call: &'static str) -> Error {
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => Error::NotPermitted {
            call,
            needs: if call.contains("PROMISC") || call.contains("FANOUT") {
                "CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous mode)"
            } else {
                "CAP_NET_RAW"
            },
        },
        _ => Error::Syscall { call, source: err },
    }
}

/// `err`, returned by `call`, as an [`Error`]: [`Error::InterfaceDown`] for `ENETDOWN`,
/// [`Error::InterfaceGone`] for `ENODEV`/`ENXIO` (both naming `name`), else [`Error::Syscall`].
pub(crate) fn interface_io_error(call: &'static str, err: io::Error, name: String) -> Error {
    match err.raw_os_error() {
        Some(libc::ENETDOWN) => Error::InterfaceDown { name },
        Some(libc::ENODEV) | Some(libc::ENXIO) => Error::InterfaceGone { name },
        _ => Error::Syscall { call, source: err },
    }
}

/// `socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0)`—an AF_PACKET socket that receives nothing
/// until it is bound with a protocol, so no packet from another interface slips in during setup.
///
/// # References
/// - <https://man7.org/linux/man-pages/man7/packet.7.html>
pub(crate) fn packet_socket() -> Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; no memory is passed.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(errno_error("socket(AF_PACKET, SOCK_RAW)"));
    }
    // SAFETY: `fd` was just returned by socket(2), is open and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `bind(fd, sockaddr_ll { ETH_P_ALL, ifindex })`—starts delivery of every protocol seen on
/// `ifindex` to the socket.
pub(crate) fn bind_all(fd: &OwnedFd, ifindex: u32) -> Result<()> {
    // SAFETY: sockaddr_ll is a plain C struct of integers; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: `sll` is a valid sockaddr_ll and we pass its exact size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(interface_io_error(
            "bind(AF_PACKET)",
            io::Error::last_os_error(),
            format!("ifindex {ifindex}"),
        ));
    }
    Ok(())
}

/// Validates an interface name before it reaches the kernel.
fn ifname_cstring(name: &str) -> Result<CString> {
    if name.is_empty() || name.len() >= IFNAMSIZ || name.contains(['/', ' ', '\0']) {
        return Err(Error::InvalidConfig {
            field: "interface",
            why: format!(
                "`{name}` is not a valid interface name (1 to {} characters, no '/', spaces or NUL)",
                IFNAMSIZ - 1
            ),
        });
    }
    Ok(CString::new(name).expect("checked above: no NUL in name"))
}

/// `if_nametoindex(name)`—the interface index, or [`Error::NoSuchInterface`].
pub(crate) fn ifindex(name: &str) -> Result<u32> {
    let c = ifname_cstring(name)?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(Error::NoSuchInterface {
            name: name.to_owned(),
        });
    }
    Ok(idx)
}

/// An all-zero `ifreq` naming interface `name` (checked by [`ifname_cstring`], so the name and
/// its NUL fit `ifr_name`).
fn ifreq_for(name: &str) -> Result<libc::ifreq> {
    let c = ifname_cstring(name)?;
    // SAFETY: ifreq is a plain C struct/union of integers, bytes and pointers; all-zero is valid.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(c.as_bytes()) {
        *dst = *src as libc::c_char;
    }
    Ok(ifr)
}

/// `ioctl(fd, SIOCGIFFLAGS)`—whether the interface is administratively up (`IFF_UP`).
pub(crate) fn interface_is_up(fd: &OwnedFd, name: &str) -> Result<bool> {
    Ok(interface_flags(fd, name)? & libc::IFF_UP != 0)
}

/// `ioctl(fd, SIOCGIFFLAGS)`—whether the interface is a loopback device (`IFF_LOOPBACK`), on
/// which every packet is seen twice by a packet socket: once sent, once received.
pub(crate) fn interface_is_loopback(fd: &OwnedFd, name: &str) -> Result<bool> {
    Ok(interface_flags(fd, name)? & libc::IFF_LOOPBACK != 0)
}

/// `ioctl(fd, SIOCGIFFLAGS)`—the interface's `IFF_*` flags.
fn interface_flags(fd: &OwnedFd, name: &str) -> Result<libc::c_int> {
    let mut ifr = ifreq_for(name)?;
    // SAFETY: `ifr` is a valid ifreq with a NUL-terminated name (zeroed tail); SIOCGIFFLAGS
    // writes only `ifr_ifru.ifru_flags` inside it.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ENODEV) {
            return Err(Error::NoSuchInterface {
                name: name.to_owned(),
            });
        }
        return Err(Error::Syscall {
            call: "ioctl(SIOCGIFFLAGS)",
            source: err,
        });
    }
    // SAFETY: after a successful SIOCGIFFLAGS the kernel has set the `ifru_flags` member.
    let flags = unsafe { ifr.ifr_ifru.ifru_flags };
    // ifru_flags is a C short; the IFF_* bits of interest fit its 16 bits.
    Ok(libc::c_int::from(flags as u16))
}

/// `SIOCGIFHWADDR`—the interface's link-layer address (all zeros if it has none, as `lo`).
pub(crate) fn interface_mac(fd: &OwnedFd, name: &str) -> Result<[u8; 6]> {
    let mut ifr = ifreq_for(name)?;
    // SAFETY: `ifr` is a valid ifreq with a NUL-terminated name; SIOCGIFHWADDR writes only
    // `ifr_ifru.ifru_hwaddr` inside it.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR, &mut ifr) };
    if rc < 0 {
        return Err(Error::last_os("ioctl(SIOCGIFHWADDR)"));
    }
    // SAFETY: after a successful SIOCGIFHWADDR the kernel has set the `ifru_hwaddr` member.
    let sa = unsafe { ifr.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (m, b) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *m = *b as u8;
    }
    Ok(mac)
}

/// `geteuid(2)`—the effective user id.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid has no arguments, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// [`Error::InterfaceDown`] unless interface `name` is up (asked through `fd`, any socket).
pub(crate) fn ensure_up(fd: &OwnedFd, name: &str) -> Result<()> {
    if !interface_is_up(fd, name)? {
        return Err(Error::InterfaceDown {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// `poll(&{fd, POLLIN}, 1, timeout)`—waits until `fd` is readable. Returns `Ok(false)` on timeout
/// or when a signal interrupted the wait (the caller re-checks its stop condition either way).
pub(crate) fn poll_readable(fd: RawFd, timeout: Option<Duration>) -> Result<bool> {
    let ms = match timeout {
        None => -1,
        // Round up so a 100 µs timeout does not become a busy spin with 0.
        Some(t) => t.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32,
    };
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is one valid pollfd and we pass nfds = 1.
    let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(Error::Syscall {
            call: "poll",
            source: err,
        });
    }
    if pfd.revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
        // POLLERR on a packet socket means the device went away (or a pending socket error).
        return Err(socket_error(fd));
    }
    Ok(rc > 0 && pfd.revents & libc::POLLIN != 0)
}

/// Reads and clears `SO_ERROR`, mapping `ENETDOWN`/`ENODEV` to a named error.
fn socket_error(fd: RawFd) -> Error {
    match getsockopt_raw::<libc::c_int>(
        fd,
        libc::SOL_SOCKET,
        libc::SO_ERROR,
        "getsockopt(SO_ERROR)",
    ) {
        Ok(e) => interface_io_error("poll", io::Error::from_raw_os_error(e), String::new()),
        Err(e) => e,
    }
}

/// `CLOCK_REALTIME` now, in nanoseconds since the UNIX epoch.
pub(crate) fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Bytes of memory the kernel reports as available (`MemAvailable` in `/proc/meminfo`).
pub(crate) fn mem_available() -> Option<u64> {
    Some(meminfo("MemAvailable")? * 1024)
}

/// The number on the `key:` line of `/proc/meminfo`: kB for sizes, a count for `HugePages_*`.
pub(crate) fn meminfo(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The system page size.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf with a valid name has no memory effects.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v <= 0 {
        4096
    } else {
        v as usize
    }
}

/// An owned memory mapping (a packet ring shared with the kernel, anonymous memory for a UMEM):
/// unmapped on drop.
///
/// Owning the mapping separately from any view over it lets views borrow it, so no view can
/// outlive the memory (io-uring's `MemoryMap` follows the same split).
#[derive(Debug)]
pub(crate) struct Mmap {
    addr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory; moving the owner between threads moves the right to unmap
// it. Concurrent access is governed by the ring protocols built on top, not by this owner.
unsafe impl Send for Mmap {}

impl Mmap {
    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_POPULATE, fd, offset)`.
    pub(crate) fn shared(
        fd: &OwnedFd,
        len: usize,
        offset: i64,
        what: &'static str,
    ) -> Result<Self> {
        Self::map(
            len,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd.as_raw_fd(),
            offset,
        )
        .map_err(|err| {
            if err.raw_os_error() == Some(libc::ENOMEM) {
                return Error::OutOfMemory {
                    what,
                    asked: len as u64,
                    why: "mmap failed; ask for a smaller ring".into(),
                };
            }
            Error::Syscall {
                call: "mmap",
                source: err,
            }
        })
    }

    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|flags, -1, 0)`: private
    /// zeroed memory; `flags` adds e.g. `MAP_POPULATE`, `MAP_HUGETLB`.
    pub(crate) fn anonymous(len: usize, flags: libc::c_int) -> io::Result<Self> {
        Self::map(len, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | flags, -1, 0)
    }

    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, flags, fd, offset)`, or the `errno` it failed with.
    fn map(len: usize, flags: libc::c_int, fd: RawFd, offset: i64) -> io::Result<Self> {
        // SAFETY: a fresh mapping at a kernel-chosen address: no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                offset,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let addr = NonNull::new(p.cast::<u8>()).expect("mmap never returns NULL on success");
        Ok(Mmap { addr, len })
    }

    /// Base address of the mapping.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.addr.as_ptr()
    }

    /// Length of the mapping in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `addr`/`len` describe a mapping we created and still own; every view over it
        // borrows `self`, so none is alive when drop runs.
        unsafe {
            libc::munmap(self.addr.as_ptr().cast(), self.len);
        }
    }
}

/// `getifaddrs(3)`—the netmask of the first IPv4 address configured on interface `name`
/// (what libpcap's `pcap_lookupnet` reports), `None` if it has no IPv4 address.
///
/// # References
/// - <https://man7.org/linux/man-pages/man3/getifaddrs.3.html>
pub(crate) fn interface_ipv4_netmask(name: &str) -> Result<Option<std::net::Ipv4Addr>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head into `head`; we free it with freeifaddrs below.
    if unsafe { libc::getifaddrs(&mut head) } < 0 {
        return Err(Error::last_os("getifaddrs"));
    }
    let mut found = None;
    let mut cur = head;
    while !cur.is_null() && found.is_none() {
        // SAFETY: `cur` is a non-null node of the list getifaddrs returned, alive until
        // freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_netmask.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let ifname = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
        // SAFETY: ifa_addr is non-null and points to a sockaddr whose family tells its type.
        let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
        if ifname.to_bytes() != name.as_bytes() || family != libc::AF_INET {
            continue;
        }
        // SAFETY: the address is AF_INET, so its netmask (non-null) is a sockaddr_in too.
        let mask = unsafe { &*ifa.ifa_netmask.cast::<libc::sockaddr_in>() };
        found = Some(std::net::Ipv4Addr::from(u32::from_be(mask.sin_addr.s_addr)));
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed once; nothing read from
    // the list outlives this point (the mask was copied).
    unsafe { libc::freeifaddrs(head) };
    Ok(found)
}

/// `getifaddrs(3)`—the IPv4 and IPv6 addresses configured on interface `name`, as text.
///
/// # References
/// - <https://man7.org/linux/man-pages/man3/getifaddrs.3.html>
pub(crate) fn interface_addresses(name: &str) -> Result<Vec<String>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head into `head`; we free it with freeifaddrs below.
    if unsafe { libc::getifaddrs(&mut head) } < 0 {
        return Err(Error::last_os("getifaddrs"));
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a non-null node of the list getifaddrs returned, alive until
        // freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let ifname = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
        if ifname.to_bytes() != name.as_bytes() {
            continue;
        }
        // SAFETY: ifa_addr is non-null and points to a sockaddr whose family tells its type.
        let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
        if family == libc::AF_INET {
            // SAFETY: family AF_INET means the sockaddr is a sockaddr_in.
            let sin = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in>() };
            out.push(std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)).to_string());
        } else if family == libc::AF_INET6 {
            // SAFETY: family AF_INET6 means the sockaddr is a sockaddr_in6.
            let sin6 = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in6>() };
            out.push(std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr).to_string());
        }
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed once; no reference into the
    // list outlives this point (addresses were copied into `out`).
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// `if_nameindex()`—every interface of the calling thread's network namespace, as
/// `(ifindex, name)`, in the C library's order.
///
/// # References
/// - <https://man7.org/linux/man-pages/man3/if_nameindex.3.html>
pub(crate) fn interface_names() -> Result<Vec<(u32, String)>> {
    // SAFETY: no arguments; returns a heap array (freed below) or null with errno set.
    let list = unsafe { libc::if_nameindex() };
    if list.is_null() {
        return Err(Error::last_os("if_nameindex"));
    }
    let mut out = Vec::new();
    let mut p = list;
    loop {
        // SAFETY: `p` walks the array if_nameindex returned, which ends with an entry whose
        // index is 0 and name null; we stop there.
        let e = unsafe { &*p };
        if e.if_index == 0 || e.if_name.is_null() {
            break;
        }
        // SAFETY: `if_name` of a live entry is a NUL-terminated string owned by the array.
        let name = unsafe { std::ffi::CStr::from_ptr(e.if_name) };
        out.push((e.if_index, name.to_string_lossy().into_owned()));
        p = p.wrapping_add(1);
    }
    // SAFETY: `list` came from if_nameindex and is freed once; no reference into it survives.
    unsafe { libc::if_freenameindex(list) };
    Ok(out)
}
