//! Plain AF_PACKET sockets for injecting and observing frames.
//!
//! [`RawSender`] and [`RawReceiver`] resolve the interface name in the calling
//! thread's network namespace, so create them on the thread that holds the
//! [`NetNs`](crate::netns::NetNs). They are deliberately the simplest AF_PACKET
//! path (`sendto`/`recvfrom`), to serve as the reference the fastpath backends
//! are compared against. [`PacketTx`] is the fast one: `sendmmsg` batches with
//! `PACKET_QDISC_BYPASS`, the lab generator's fallback.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::frame::frame_seq;
use crate::sys;

/// Requested socket buffer size for both sockets (best effort).
const SOCKET_BUF: libc::c_int = 16 << 20;

/// An AF_PACKET `SOCK_RAW` socket that sends whole Ethernet frames on one
/// interface.
///
/// Bound with protocol 0, so it never receives anything. Frames go through
/// the normal `dev_queue_xmit` path (`PACKET_QDISC_BYPASS` is explicitly
/// off), so they are seen by AF_PACKET taps on the sending interface as
/// outgoing and arrive on a veth peer as incoming.
#[derive(Debug)]
pub struct RawSender {
    fd: OwnedFd,
    ifindex: u32,
}

impl RawSender {
    /// Opens a sender on `ifname` (in the calling thread's namespace).
    ///
    /// # Errors
    ///
    /// No such interface, or no `CAP_NET_RAW`.
    pub fn new(ifname: &str) -> io::Result<RawSender> {
        let ifindex = ifindex(ifname)?;
        let fd = sys::packet_socket()?;
        sys::packet_bind(fd.as_fd(), ifindex, 0)?;
        sys::setsockopt_int(fd.as_fd(), libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, 0)?;
        bump_buffer(fd.as_fd(), libc::SO_SNDBUFFORCE, libc::SO_SNDBUF);
        Ok(RawSender { fd, ifindex })
    }

    /// Ifindex the sender is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Sends one frame (`sendto`), retrying briefly on `ENOBUFS`.
    ///
    /// The frame must contain the Ethernet header; the kernel adds no FCS.
    /// Success means the device accepted it, not that the peer received it.
    ///
    /// # Errors
    ///
    /// The frame is shorter than an Ethernet header, the kernel rejected it
    /// (e.g. `EMSGSIZE` above the MTU), or it was sent only partially.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        if frame.len() < 14 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "frame shorter than an Ethernet header",
            ));
        }
        // sll_protocol is network order, exactly the bytes of the EtherType.
        let proto = u16::from_ne_bytes([frame[12], frame[13]]);
        let mut retries = 0;
        loop {
            match sys::packet_sendto(self.fd.as_fd(), frame, self.ifindex, proto) {
                Ok(n) if n == frame.len() => return Ok(()),
                Ok(n) => {
                    return Err(io::Error::other(format!(
                        "short send: {n} of {} bytes",
                        frame.len()
                    )))
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) && retries < 1000 => {
                    retries += 1;
                    std::thread::sleep(Duration::from_micros(100));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends every frame in order.
    ///
    /// # Errors
    ///
    /// The first error from [`RawSender::send`], with the frame index.
    pub fn send_all<F: AsRef<[u8]>>(&self, frames: &[F]) -> io::Result<()> {
        for (i, f) in frames.iter().enumerate() {
            self.send(f.as_ref())
                .map_err(|e| io::Error::new(e.kind(), format!("frame {i}: {e}")))?;
        }
        Ok(())
    }
}

impl AsFd for RawSender {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// An AF_PACKET `SOCK_RAW` socket receiving every frame *arriving* on one
/// interface (`ETH_P_ALL`, `PACKET_IGNORE_OUTGOING`), via `recvfrom`.
///
/// The receive buffer is raised to 16 MiB when permitted, so a burst of a
/// few thousand frames fits without a concurrent reader (about 8000 frames
/// of 1514 bytes; each costs its `truesize`, not its length). For bigger
/// bursts, receive on another thread while sending, and check
/// [`RawReceiver::stats`].
///
/// Note: the kernel strips an 802.1Q tag into skb metadata on receive, so a
/// VLAN frame is returned here without its tag.
#[derive(Debug)]
pub struct RawReceiver {
    fd: OwnedFd,
    ifindex: u32,
}

impl RawReceiver {
    /// Opens a receiver on `ifname` (in the calling thread's namespace).
    ///
    /// Only frames arriving after this returns are seen: the socket is
    /// created with protocol 0 and starts receiving at `bind`.
    ///
    /// # Errors
    ///
    /// No such interface, or no `CAP_NET_RAW`.
    pub fn new(ifname: &str) -> io::Result<RawReceiver> {
        let ifindex = ifindex(ifname)?;
        let fd = sys::packet_socket()?;
        bump_buffer(fd.as_fd(), libc::SO_RCVBUFFORCE, libc::SO_RCVBUF);
        // Kernel >= 4.20; without it, outgoing frames are filtered by
        // pkttype in `recv_frame`.
        let _ = sys::setsockopt_int(
            fd.as_fd(),
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            1,
        );
        sys::packet_bind(fd.as_fd(), ifindex, sys::ETH_P_ALL_BE)?;
        Ok(RawReceiver { fd, ifindex })
    }

    /// Ifindex the receiver is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Waits up to `timeout` for the next incoming frame.
    ///
    /// Returns `Ok(None)` on timeout. Frames longer than 65600 bytes are an
    /// error rather than silently truncated. The one-shot `ENETDOWN` the
    /// kernel reports after the interface went down is swallowed.
    ///
    /// # Errors
    ///
    /// `recvfrom` failed.
    pub fn recv_frame(&self, timeout: Duration) -> io::Result<Option<Vec<u8>>> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65536 + 64];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            sys::set_rcvtimeo(self.fd.as_fd(), Some(left))?;
            match sys::packet_recvfrom(self.fd.as_fd(), &mut buf) {
                Ok((_, pkttype)) if pkttype == libc::PACKET_OUTGOING => continue,
                Ok((n, _)) if n > buf.len() => {
                    return Err(io::Error::other(format!(
                        "frame of {n} bytes truncated to {}",
                        buf.len()
                    )))
                }
                Ok((n, _)) => {
                    buf.truncate(n);
                    return Ok(Some(buf));
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None)
                }
                // EINTR; or ENETDOWN, which the kernel reports once to every
                // bound packet socket when the interface goes down (tests
                // flap interfaces on purpose; a dead link just times out).
                Err(e)
                    if e.kind() == io::ErrorKind::Interrupted
                        || e.raw_os_error() == Some(libc::ENETDOWN) =>
                {
                    continue
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `PACKET_STATISTICS`: frames queued to this socket and frames dropped
    /// because its receive buffer was full, both since the previous call
    /// (reading resets them). Use it to tell receiver overflow from loss in
    /// the code under test.
    ///
    /// # Errors
    ///
    /// `getsockopt` failed.
    pub fn stats(&self) -> io::Result<RecvStats> {
        let (packets, drops) = sys::packet_statistics(self.fd.as_fd())?;
        Ok(RecvStats { packets, drops })
    }

    /// Collects frames carrying the test magic (see
    /// [`frame_seq`]) until `n` have arrived or `timeout` passed,
    /// ignoring all other frames.
    ///
    /// # Errors
    ///
    /// `recvfrom` failed.
    pub fn collect(&self, n: usize, timeout: Duration) -> io::Result<Vec<Vec<u8>>> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::with_capacity(n);
        while got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_frame(left)? {
                Some(f) if frame_seq(&f).is_some() => got.push(f),
                Some(_) => {}
                None => break,
            }
        }
        Ok(got)
    }
}

impl AsFd for RawReceiver {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// `if_nametoindex(ifname)`—the index of interface `ifname` in the calling thread's network
/// namespace; the error names the interface.
///
/// # Errors
/// No such interface, or a NUL in the name.
pub fn ifindex(ifname: &str) -> io::Result<u32> {
    let c = CString::new(ifname)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
    sys::if_nametoindex(&c)
        .map_err(|e| io::Error::new(e.kind(), format!("interface {ifname:?}: {e}")))
}

/// Raises a socket buffer: the `*FORCE` variant (needs CAP_NET_ADMIN) first,
/// then the capped one. Best effort; the default still works for small tests.
fn bump_buffer(fd: BorrowedFd<'_>, force: libc::c_int, plain: libc::c_int) {
    if sys::setsockopt_int(fd, libc::SOL_SOCKET, force, SOCKET_BUF).is_err() {
        let _ = sys::setsockopt_int(fd, libc::SOL_SOCKET, plain, SOCKET_BUF);
    }
}

/// Counters from [`RawReceiver::stats`] (`struct tpacket_stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvStats {
    /// `tp_packets`: frames that reached the socket (including dropped ones).
    pub packets: u32,
    /// `tp_drops`: frames dropped because the receive buffer was full.
    pub drops: u32,
}

/// An AF_PACKET `SOCK_RAW` socket bound to one interface for sending only (protocol 0: the
/// kernel delivers nothing to it), with `PACKET_QDISC_BYPASS` (frames go straight to the
/// driver's transmit function, as pktgen does).
#[derive(Debug)]
pub struct PacketTx {
    fd: OwnedFd,
}

impl PacketTx {
    /// Most frames one [`PacketTx::send`] call passes to the kernel.
    pub const MAX_BATCH: usize = sys::SENDMMSG_MAX;

    /// `socket(AF_PACKET, SOCK_RAW, 0)`, `setsockopt(PACKET_QDISC_BYPASS, 1)`,
    /// `bind(sockaddr_ll { ifindex })`.
    ///
    /// # Errors
    /// No `CAP_NET_RAW`, or no interface `ifindex` in the calling thread's namespace.
    pub fn open(ifindex: u32) -> io::Result<PacketTx> {
        let fd = sys::packet_socket()?;
        sys::setsockopt_int(fd.as_fd(), libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, 1)?;
        sys::packet_bind(fd.as_fd(), ifindex, 0)?;
        Ok(PacketTx { fd })
    }

    /// `sendmmsg(fd, frames)`—Sends each frame as one packet; returns how many were sent (at
    /// most [`PacketTx::MAX_BATCH`]: later frames are left for the next call). `ENOBUFS` (the
    /// device queue is full) and `EINTR` count as zero sent. Allocates nothing: the iovecs and
    /// message headers live on the stack.
    ///
    /// # Errors
    /// The kernel refused the frames (e.g. `EMSGSIZE` above the MTU, `ENETDOWN`).
    pub fn send(&self, frames: &[&[u8]]) -> io::Result<usize> {
        match sys::sendmmsg_frames(self.fd.as_fd(), frames) {
            Ok(n) => Ok(n),
            Err(e)
                if e.raw_os_error() == Some(libc::ENOBUFS)
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }
}

impl AsFd for PacketTx {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
