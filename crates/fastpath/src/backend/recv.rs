//! Rung 1: AF_PACKET `SOCK_RAW`, one syscall per packet (`recv`) or per batch (`recv-batch`).
//!
//! This is the textbook loop the ladder starts from: the kernel copies each packet into a buffer
//! fastpath owns. `recv` makes one blocking `recvmsg` per packet; `recv-batch` one
//! `recvmmsg(MSG_WAITFORONE)` per batch. `recvmsg` rather than `recvfrom` only because the
//! control messages carry the nanosecond timestamp (`SO_TIMESTAMPNS`) and the original length
//! and stripped VLAN tag (`PACKET_AUXDATA`); it is still exactly one syscall per packet.
//!
//! Waiting uses `SO_RCVTIMEO`, never the `recvmmsg` timeout argument: the kernel checks that one
//! only after each datagram and decrements it in place, so calls degrade to one packet.
#![allow(unsafe_code)]

use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use super::{afpacket, Rung, RungBatch};
use crate::config::{Backend, Config};
use crate::packet::{Capabilities, Packet, Stats, TimestampSource};
use crate::sys::packet::{self as pk, tpacket_auxdata, VLAN_TAG_LEN};
use crate::sys::tstamp;
use crate::{sys, Result};

/// Room for one `SCM_TIMESTAMPNS` (16-byte payload), one `PACKET_AUXDATA` (20-byte payload) and,
/// with hardware timestamps, one `SCM_TIMESTAMPING` (48-byte payload) control message, each
/// `CMSG_SPACE`-padded, with slack.
const CMSG_CAP: usize = 192;

/// `sizeof(struct sockaddr_ll)`, the room each slot's `msg_name` offers.
const SLL_LEN: libc::socklen_t = size_of::<libc::sockaddr_ll>() as libc::socklen_t;

/// Where one received packet lies inside its slot.
#[derive(Debug, Clone, Copy, Default)]
struct Meta {
    start: u32,
    len: u32,
    orig_len: u32,
    ts_ns: u64,
    /// The packet's interface (its own with `any`, from the source address).
    ifindex: u32,
    ts_source: TimestampSource,
    /// `sll_pkttype` of the source address.
    pkt_type: u8,
}

/// The rung-1 socket plus the buffers the kernel copies into.
#[derive(Debug)]
pub(crate) struct RecvSocket {
    fd: OwnedFd,
    ifindex: u32,
    batched: bool,
    snaplen: u32,
    /// Bytes per slot: VLAN headroom + snaplen, rounded up to 64.
    slot: usize,
    /// `batch × slot` bytes the kernel writes packets into.
    buf: Vec<u8>,
    /// Per-slot control-message space.
    cmsg: Vec<u64>,
    /// Per-slot source address: the kernel writes the packet type there (`sll_pkttype`) and,
    /// what `any` (ifindex 0) needs, the packet's interface (`sll_ifindex`).
    names: Vec<libc::sockaddr_ll>,
    iov: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    meta: Vec<Meta>,
    /// The `SO_RCVTIMEO` currently set, to avoid a setsockopt per call.
    rcvtimeo: Option<Option<Duration>>,
    stats: Stats,
    fanout_group: Option<u16>,
    /// `SO_TIMESTAMPING` asks for the NIC's stamps (`TimestampType::Adapter`).
    hw_timestamps: bool,
}

// SAFETY: the raw pointers inside `iov` and `hdrs` point into `buf`, `cmsg` and `names`, heap
// buffers owned by the same struct that are never reallocated after `open`; moving the struct to
// another thread moves them together, and all access goes through `&mut self`.
unsafe impl Send for RecvSocket {}

impl RecvSocket {
    /// Opens the socket on `cfg.interface()` (looked up here), bound and receiving.
    pub(crate) fn open(cfg: &Config) -> Result<Self> {
        let ifindex = afpacket::bind_index(cfg)?;
        let fd = afpacket::socket(cfg)?;
        set_rcvbuf(&fd, cfg.rcvbuf)?;
        ask_for_metadata(&fd)?;
        let hw = afpacket::hw_timestamps(&fd, cfg)?;
        if hw {
            tstamp::set_so_timestamping(
                &fd,
                tstamp::SOF_TIMESTAMPING_RX_HARDWARE | tstamp::SOF_TIMESTAMPING_RAW_HARDWARE,
            )?;
        }
        let loopback = afpacket::loopback(&fd, cfg)?;
        filter_and_bind(&fd, cfg, ifindex, loopback)?;
        let fanout_group = afpacket::join(&fd, cfg, ifindex)?;
        let mut s = RecvSocket::with_buffers(fd, cfg, ifindex, fanout_group);
        s.hw_timestamps = hw;
        Ok(s)
    }

    /// The socket with `batch_size` slots (one for `recv`), each with its iovec and control
    /// buffer wired into its `mmsghdr`.
    fn with_buffers(fd: OwnedFd, cfg: &Config, ifindex: u32, fanout_group: Option<u16>) -> Self {
        let batched = cfg.backend == Backend::RecvBatch;
        let n = if batched { cfg.batch_size } else { 1 };
        let slot = (VLAN_TAG_LEN + cfg.snaplen as usize).next_multiple_of(64);
        let mut s = RecvSocket {
            fd,
            ifindex,
            batched,
            snaplen: cfg.snaplen,
            slot,
            buf: vec![0u8; n * slot],
            cmsg: vec![0u64; n * CMSG_CAP / 8],
            // SAFETY: sockaddr_ll is a C struct of integers; all-zero is a valid value.
            names: vec![unsafe { std::mem::zeroed() }; n],
            iov: Vec::with_capacity(n),
            // SAFETY: mmsghdr is a C struct of integers and raw pointers; all-zero (null
            // pointers, zero lengths) is a valid value.
            hdrs: vec![unsafe { std::mem::zeroed() }; n],
            meta: vec![Meta::default(); n],
            rcvtimeo: None,
            stats: Stats::default(),
            fanout_group,
            hw_timestamps: false,
        };
        let base = s.buf.as_mut_ptr();
        for i in 0..n {
            s.iov.push(libc::iovec {
                // The packet lands after VLAN_TAG_LEN bytes of headroom so a stripped tag can be
                // put back without moving the payload.
                iov_base: base.wrapping_add(i * slot + VLAN_TAG_LEN).cast(),
                iov_len: cfg.snaplen as usize,
            });
        }
        let cmsg_base = s.cmsg.as_mut_ptr().cast::<u8>();
        for i in 0..n {
            let h = &mut s.hdrs[i].msg_hdr;
            h.msg_iov = &mut s.iov[i];
            h.msg_iovlen = 1;
            h.msg_control = cmsg_base.wrapping_add(i * CMSG_CAP).cast();
            h.msg_controllen = CMSG_CAP;
            h.msg_name = (&mut s.names[i] as *mut libc::sockaddr_ll).cast();
            h.msg_namelen = SLL_LEN;
        }
        s
    }

    /// Sets `SO_RCVTIMEO` if it differs from the last value set.
    fn set_timeout(&mut self, timeout: Option<Duration>) -> Result<()> {
        if self.rcvtimeo == Some(timeout) {
            return Ok(());
        }
        // A zero timeval means "block forever"; a zero Duration is handled with MSG_DONTWAIT.
        let t = timeout.unwrap_or(Duration::ZERO);
        let tv = libc::timeval {
            tv_sec: t.as_secs() as libc::time_t,
            tv_usec: libc::suseconds_t::from(t.subsec_micros()),
        };
        sys::setsockopt(
            &self.fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv,
            "setsockopt(SO_RCVTIMEO)",
        )?;
        self.rcvtimeo = Some(timeout);
        Ok(())
    }

    /// Maps a failed receive to an empty batch (timeout, signal) or an error.
    fn empty_or_error(&mut self, call: &'static str) -> Result<OwnedBatch<'_>> {
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(OwnedBatch {
                buf: &self.buf,
                slot: self.slot,
                meta: &[],
            }),
            _ => Err(sys::interface_io_error(call, err, String::new())),
        }
    }

    /// Reads the control messages of slot `i` and puts a stripped VLAN tag back.
    fn finish_one(&mut self, i: usize) -> Meta {
        let returned = self.hdrs[i].msg_len as usize;
        let cap = self.snaplen as usize;
        let mut len = returned.min(cap);
        let mut orig_len = returned as u32;
        let mut ts_ns = 0u64;
        let mut hw_ns = 0u64;
        let mut aux: Option<tpacket_auxdata> = None;
        {
            let h = &self.hdrs[i].msg_hdr;
            // SAFETY: `h` is the msghdr the kernel just filled: msg_control/msg_controllen describe
            // valid control data inside `self.cmsg`.
            let mut c = unsafe { libc::CMSG_FIRSTHDR(h) };
            while !c.is_null() {
                // SAFETY: `c` is non-null and was returned by CMSG_FIRSTHDR/CMSG_NXTHDR, which only
                // return headers lying entirely within the control buffer.
                let hdr = unsafe { &*c };
                // SAFETY: CMSG_DATA of a valid header points at its payload inside the buffer.
                let data = unsafe { libc::CMSG_DATA(c) };
                let payload = (hdr.cmsg_len as usize).saturating_sub(data as usize - c as usize);
                if hdr.cmsg_level == libc::SOL_SOCKET
                    && hdr.cmsg_type == libc::SCM_TIMESTAMPNS
                    && payload >= size_of::<libc::timespec>()
                {
                    // SAFETY: the payload holds a timespec (checked length); read_unaligned
                    // because CMSG_DATA only guarantees `cmsghdr` alignment.
                    let ts = unsafe { data.cast::<libc::timespec>().read_unaligned() };
                    ts_ns = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
                } else if hdr.cmsg_level == libc::SOL_SOCKET
                    && hdr.cmsg_type == tstamp::SO_TIMESTAMPING
                    && payload >= 3 * size_of::<libc::timespec>()
                {
                    // SAFETY: the payload holds three timespecs (checked length): software,
                    // legacy, raw hardware; read_unaligned as above.
                    let ts = unsafe { data.cast::<[libc::timespec; 3]>().read_unaligned() };
                    hw_ns = ts[2].tv_sec as u64 * 1_000_000_000 + ts[2].tv_nsec as u64;
                } else if hdr.cmsg_level == libc::SOL_PACKET
                    && hdr.cmsg_type == pk::PACKET_AUXDATA
                    && payload >= size_of::<tpacket_auxdata>()
                {
                    // SAFETY: the payload holds a tpacket_auxdata (checked length).
                    aux = Some(unsafe { data.cast::<tpacket_auxdata>().read_unaligned() });
                }
                // SAFETY: `h` and `c` are valid as above; NXTHDR returns null past the end.
                c = unsafe { libc::CMSG_NXTHDR(h, c) };
            }
        }
        let slot = &mut self.buf[i * self.slot..(i + 1) * self.slot];
        let mut start = VLAN_TAG_LEN;
        if let Some(a) = aux {
            orig_len = a.tp_len;
            if a.tp_status & pk::TP_STATUS_VLAN_VALID != 0 && len >= 12 {
                let tpid = pk::vlan_tpid(a.tp_status, a.tp_vlan_tpid);
                afpacket::insert_vlan(slot, a.tp_vlan_tci, tpid);
                start = 0;
                len = (len + VLAN_TAG_LEN).min(cap);
                orig_len += VLAN_TAG_LEN as u32;
            }
        }
        if ts_ns == 0 {
            ts_ns = sys::realtime_ns();
        }
        // The kernel wrote the source address up to and past the packet type (and the
        // interface index before it).
        let named = self.hdrs[i].msg_hdr.msg_namelen as usize > pk::SLL_PKTTYPE_OFFSET;
        let pkt_type = if named {
            self.names[i].sll_pkttype
        } else {
            pk::PACKET_HOST
        };
        // Bound to every interface (`any`): the packet's own, from its source address.
        let ifindex = if self.ifindex == 0 && named {
            self.names[i].sll_ifindex as u32
        } else {
            self.ifindex
        };
        let ts_source = if hw_ns != 0 {
            ts_ns = hw_ns;
            TimestampSource::Hardware
        } else {
            TimestampSource::Kernel
        };
        Meta {
            start: start as u32,
            len: len as u32,
            orig_len: orig_len.max(len as u32),
            ts_ns,
            ifindex,
            ts_source,
            pkt_type,
        }
    }
}

impl Rung for RecvSocket {
    type Batch<'a> = OwnedBatch<'a>;

    fn backend(&self) -> Backend {
        if self.batched {
            Backend::RecvBatch
        } else {
            Backend::Recv
        }
    }

    fn ifindex(&self) -> u32 {
        self.ifindex
    }

    fn receive(&mut self, timeout: Option<Duration>) -> Result<OwnedBatch<'_>> {
        let nonblock = timeout == Some(Duration::ZERO);
        if !nonblock {
            self.set_timeout(timeout)?;
        }
        let dontwait = if nonblock { libc::MSG_DONTWAIT } else { 0 };
        // Every header enters the call with `msg_controllen == CMSG_CAP` and
        // `msg_namelen == SLL_LEN`: set in `open`, and restored below for the headers a call
        // filled (the kernel shrinks them to what it wrote).
        let got = if self.batched {
            // SAFETY: `hdrs` holds `hdrs.len()` initialised mmsghdrs whose iovecs and control
            // buffers point into `buf`/`cmsg`, owned by `self` and borrowed mutably for the call;
            // a NULL timeout is allowed.
            let rc = unsafe {
                libc::recvmmsg(
                    self.fd.as_raw_fd(),
                    self.hdrs.as_mut_ptr(),
                    self.hdrs.len() as libc::c_uint,
                    libc::MSG_WAITFORONE | libc::MSG_TRUNC | dontwait,
                    std::ptr::null_mut(),
                )
            };
            if rc < 0 {
                return self.empty_or_error("recvmmsg");
            }
            rc as usize
        } else {
            // SAFETY: `hdrs[0].msg_hdr` is an initialised msghdr whose iovec and control buffer
            // point into `buf`/`cmsg`, owned by `self` and borrowed mutably for the call.
            let rc = unsafe {
                libc::recvmsg(
                    self.fd.as_raw_fd(),
                    &mut self.hdrs[0].msg_hdr,
                    libc::MSG_TRUNC | dontwait,
                )
            };
            if rc < 0 {
                return self.empty_or_error("recvmsg");
            }
            self.hdrs[0].msg_len = rc as u32;
            1
        };
        for i in 0..got {
            self.meta[i] = self.finish_one(i);
            self.hdrs[i].msg_hdr.msg_controllen = CMSG_CAP;
            self.hdrs[i].msg_hdr.msg_namelen = SLL_LEN;
        }
        self.stats.delivered += got as u64;
        Ok(OwnedBatch {
            buf: &self.buf,
            slot: self.slot,
            meta: &self.meta[..got],
        })
    }

    fn stats(&mut self) -> Result<Stats> {
        afpacket::add_statistics(&self.fd, &mut self.stats)?;
        Ok(self.stats)
    }

    fn stop_intake(&mut self) -> Result<Duration> {
        // Queued packets are readable at once.
        afpacket::stop_intake(&self.fd).map(|()| Duration::ZERO)
    }

    fn capabilities(&self) -> Capabilities {
        caps(self.hw_timestamps, self.batched)
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn fanout_group(&self) -> Option<u16> {
        self.fanout_group
    }
}

/// The kernel charges each queued skb its truesize (~4 KiB for XDP-built ones): size the buffer
/// for bursts. `SO_RCVBUFFORCE` ignores rmem_max (needs `CAP_NET_ADMIN`); fall back.
fn set_rcvbuf(fd: &OwnedFd, bytes: usize) -> Result<()> {
    let rcvbuf = bytes as libc::c_int;
    if sys::setsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        &rcvbuf,
        "setsockopt(SO_RCVBUFFORCE)",
    )
    .is_err()
    {
        sys::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &rcvbuf,
            "setsockopt(SO_RCVBUF)",
        )?;
    }
    Ok(())
}

/// The control messages each packet comes with: the nanosecond timestamp (`SO_TIMESTAMPNS`),
/// and the original length and stripped VLAN tag (`PACKET_AUXDATA`).
fn ask_for_metadata(fd: &OwnedFd) -> Result<()> {
    let one: libc::c_int = 1;
    sys::setsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_TIMESTAMPNS,
        &one,
        "setsockopt(SO_TIMESTAMPNS)",
    )?;
    sys::setsockopt(
        fd,
        libc::SOL_PACKET,
        pk::PACKET_AUXDATA,
        &one,
        "setsockopt(PACKET_AUXDATA)",
    )
}

/// Attaches the kernel program ([`afpacket::kernel_program`]) and binds to `ifindex`.
fn filter_and_bind(
    fd: &OwnedFd,
    cfg: &Config,
    ifindex: u32,
    loopback: afpacket::Loopback,
) -> Result<()> {
    match afpacket::kernel_program(cfg, loopback)? {
        // The libpcap sequence: reject everything, bind, drain what was queued before the
        // filter was in place, then attach the real program. (The socket has protocol 0 and
        // receives nothing before `bind`, so the drain finds nothing today; it keeps the
        // guarantee if that ever changes.)
        Some(prog) if cfg.filter.is_some() => {
            pk::attach_filter(fd, &[reject_all()])?;
            sys::bind_all(fd, ifindex)?;
            drain(fd);
            pk::attach_filter(fd, &prog)
        }
        Some(prog) => {
            pk::attach_filter(fd, &prog)?;
            sys::bind_all(fd, ifindex)
        }
        None => sys::bind_all(fd, ifindex),
    }
}

/// `ret #0`: the program that rejects every packet.
fn reject_all() -> pk::sock_filter {
    crate::filter::Insn::ret(0)
}

/// Reads and discards whatever is queued on the socket, without waiting.
fn drain(fd: &OwnedFd) {
    let mut buf = [0u8; 64];
    // Bounded: with a reject-all filter attached nothing new arrives, so the queue only shrinks.
    for _ in 0..(1 << 20) {
        // SAFETY: `buf` is a local, writable buffer of `buf.len()` bytes, valid for the call.
        let rc = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            )
        };
        if rc < 0 {
            break;
        }
    }
}

/// Packets copied into the socket's own buffers.
#[derive(Debug)]
pub(crate) struct OwnedBatch<'a> {
    buf: &'a [u8],
    slot: usize,
    meta: &'a [Meta],
}

impl RungBatch for OwnedBatch<'_> {
    type Iter<'b>
        = OwnedIter<'b>
    where
        Self: 'b;

    fn len(&self) -> usize {
        self.meta.len()
    }

    fn iter(&self) -> OwnedIter<'_> {
        OwnedIter {
            buf: self.buf,
            slot: self.slot,
            meta: self.meta.iter(),
            idx: 0,
        }
    }
}

#[derive(Debug)]
pub(crate) struct OwnedIter<'b> {
    buf: &'b [u8],
    slot: usize,
    meta: std::slice::Iter<'b, Meta>,
    idx: usize,
}

impl<'b> Iterator for OwnedIter<'b> {
    type Item = Packet<'b>;

    #[inline]
    fn next(&mut self) -> Option<Packet<'b>> {
        let m = self.meta.next()?;
        let base = self.idx * self.slot + m.start as usize;
        self.idx += 1;
        Some(Packet {
            data: &self.buf[base..base + m.len as usize],
            orig_len: m.orig_len,
            ts_ns: m.ts_ns,
            ifindex: m.ifindex,
            queue: None,
            ts_source: m.ts_source,
            pkt_type: m.pkt_type,
            local_mac: [0; 6],
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.meta.size_hint()
    }
}

/// What a `recv` (`batched`: `recv-batch`) handle reports; `hw`: hardware timestamps are on.
pub(crate) fn caps(hw: bool, batched: bool) -> Capabilities {
    Capabilities {
        zero_copy: false,
        fanout: true,
        tx: false,
        timestamps_ns: true,
        hardware_timestamps: hw,
        need_wakeup: false,
        kernel_filter: true,
        driver_zero_copy: false,
        restores_vlan: true,
        mode: if batched { "recvmmsg" } else { "recvmsg" },
    }
}
