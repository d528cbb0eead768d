//! The port guard: one interface's AF_XDP setup as one owner (XSKMAP, redirect program,
//! attachment, one socket per queue), opened in the order that reports a foreign program before
//! any memory is pinned, and split into per-queue handles that keep the program attached.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::queues::check_queues;
#[cfg(test)]
use super::socket::XdpStats;
use super::umem::{alloc_umem, Share, Umem};
use super::{XdpQueue, XskSocket};
use crate::bpf::{Mode, XdpAttachment, XdpProgram, XskMap};
use crate::config::Config;
#[cfg(test)]
use crate::config::XdpConfig;
use crate::sys;
use crate::sys::packet as pk;
use crate::{Error, Result};

/// An interface's AF_XDP setup as one owner: the XSKMAP, the redirect program, its attachment
/// and one socket per queue. Dropping it detaches the program first, then closes the sockets.
#[derive(Debug)]
pub(crate) struct XdpPort {
    // Drop order: detach before anything else, so no frame is redirected to a closing socket:
    // `guard` comes first, and its first field is the attachment.
    guard: PortGuard,
    sockets: Vec<XskSocket>,
}

/// The program side of a port, shared by the per-queue handles of one port: the program stays
/// attached until the last handle drops.
#[derive(Debug)]
pub(crate) struct PortGuard {
    // Drop order: the attachment first (detach), then the program and the map.
    attachment: XdpAttachment,
    _prog: XdpProgram,
    map: XskMap,
    /// An AF_PACKET socket that never binds (so it receives nothing) holding the interface in
    /// promiscuous mode when the config asks for it, as the AF_PACKET rungs do: the kernel
    /// drops the membership when it closes, whatever way the process ends.
    _promisc: OwnedFd,
}

impl PortGuard {
    /// The program attachment (interface, mode, program id).
    pub(crate) fn attachment(&self) -> &XdpAttachment {
        &self.attachment
    }

    /// The XSKMAP the program redirects through.
    pub(crate) fn map(&self) -> &XskMap {
        &self.map
    }
}

impl XdpPort {
    /// [`XdpPort::open_config`] with the defaults of [`Config`] but for `cfg`, `mode` and
    /// `replace`.
    #[cfg(test)]
    pub(crate) fn open(
        ifindex: u32,
        queues: &[u32],
        cfg: &XdpConfig,
        mode: Mode,
        replace: bool,
    ) -> Result<XdpPort> {
        let xdp = XdpConfig {
            mode,
            replace,
            ..*cfg
        };
        XdpPort::open_config(&test_config(xdp), ifindex, queues)
    }

    /// Opens sockets on `queues` of `ifindex` ([`open_sockets`]), puts each in the XSKMAP at its
    /// queue id, and attaches the redirect program in `cfg.xdp.mode` (`cfg.xdp.replace`: replace
    /// a program that is already attached instead of failing). With `cfg.filter`, the program
    /// redirects only the frames the filter accepts and passes the rest to the kernel stack.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for bad sizes, duplicate queues or a queue the interface lacks
    /// (naming the largest); [`Error::OutOfMemory`] when the UMEM cannot be mapped; as
    /// [`open_sockets`] (after a second of [`Error::XdpQueueBusy`]);
    /// [`Error::XdpAlreadyAttached`] when another program is attached and `replace` is false,
    /// and the other errors of [`XdpAttachment::attach`].
    pub(crate) fn open_config(cfg: &Config, ifindex: u32, queues: &[u32]) -> Result<XdpPort> {
        let xc = &cfg.xdp;
        xc.validate(queues.len(), cfg.batch_size as u32)?;
        let rx_queues = check_queues(ifindex, queues)?;
        let (promisc, local_mac) = promiscuous(cfg, ifindex)?;
        let slots = rx_queues
            .unwrap_or(0)
            .max(queues.iter().max().map_or(1, |m| m + 1));
        let map = XskMap::new(slots)?;
        let prog = redirect_program(cfg, &map, ifindex)?;
        // Attach first: a foreign program is reported before any memory is pinned. Frames of
        // queues whose slot is still empty go to the stack (XDP_PASS) meanwhile.
        let attachment = XdpAttachment::attach(&prog, ifindex, xc.mode, xc.replace)?;
        let umem = alloc_umem(xc)?;
        let mut sockets = open_sockets_retrying(ifindex, queues, cfg, &umem)?;
        for s in &mut sockets {
            s.restores_vlan = prog.restores_vlan();
            s.rx_timestamps = prog.rx_timestamps();
            s.local_mac = local_mac;
            map.set(s.queue, s.fd())?;
        }
        Ok(XdpPort {
            guard: PortGuard {
                attachment,
                _prog: prog,
                map,
                _promisc: promisc,
            },
            sockets,
        })
    }

    /// The sockets, in the order of the queues given to `open`.
    #[cfg(test)]
    pub(crate) fn sockets(&self) -> &[XskSocket] {
        &self.sockets
    }

    /// The sockets, mutably (one per thread: each is `Send`).
    #[cfg(test)]
    pub(crate) fn sockets_mut(&mut self) -> &mut [XskSocket] {
        &mut self.sockets
    }

    /// Splits the port into one handle per queue (in the order given to `open`), each keeping
    /// the program attached while it lives.
    pub(crate) fn into_queues(self) -> Vec<XdpQueue> {
        let port = Arc::new(self.guard);
        self.sockets
            .into_iter()
            .map(|sock| XdpQueue {
                port: Arc::clone(&port),
                sock,
            })
            .collect()
    }

    /// Counters of all sockets, summed.
    ///
    /// # Errors
    /// As [`XskSocket::stats`].
    #[cfg(test)]
    pub(crate) fn stats(&self) -> Result<XdpStats> {
        let mut all = XdpStats::default();
        for s in &self.sockets {
            all.merge(&s.stats()?);
        }
        Ok(all)
    }
}

/// An unbound AF_PACKET socket for the port (it receives nothing) that puts the interface in
/// promiscuous mode if `cfg` asks for it, so frames for other MAC addresses reach the XDP
/// program on a NIC that filters by address; and the interface's MAC address, for
/// [`Packet::direction`](crate::Packet::direction).
fn promiscuous(cfg: &Config, ifindex: u32) -> Result<(OwnedFd, [u8; 6])> {
    let fd = sys::packet_socket()?;
    let mac = match sys::xdp::ifname(ifindex) {
        Some(name) => sys::interface_mac(&fd, &name).unwrap_or([0; 6]),
        None => [0; 6],
    };
    if cfg.promiscuous {
        pk::add_promisc(&fd, ifindex)?;
    }
    Ok((fd, mac))
}

/// The program that redirects to the sockets in `map`. Native mode: a device-bound program that
/// also puts back VLAN tags the device stripped, where kernel and driver allow (generic mode
/// cannot run device-bound ones). With a filter, frames it rejects go on to the kernel stack.
fn redirect_program(cfg: &Config, map: &XskMap, ifindex: u32) -> Result<XdpProgram> {
    #[cfg(test)]
    if let Some(stamp) = FIXED_STAMP.with(std::cell::Cell::get) {
        return crate::unstable::xdp_prog::fixed_stamp_redirect(map, stamp);
    }
    match (cfg.xdp.mode, cfg.filter.as_ref()) {
        (Mode::Native, f) => XdpProgram::redirect_native_with(
            map,
            f,
            ifindex,
            cfg.timestamps == crate::config::TimestampType::Adapter,
        ),
        (_, Some(f)) => XdpProgram::redirect_filtered(map, f),
        (_, None) => XdpProgram::redirect(map),
    }
}

#[cfg(test)]
thread_local! {
    /// Tests: load the redirect program that writes this constant as every frame's receive
    /// timestamp (the metadata path, on veth whose driver has no stamps).
    pub(crate) static FIXED_STAMP: std::cell::Cell<Option<i32>> = const { std::cell::Cell::new(None) };
}

/// [`open_sockets`], retried for a second while a queue is busy.
///
/// A socket closed just before (a previous run on the same queue) releases the queue
/// asynchronously in the kernel: bind then fails with EBUSY for a few milliseconds. Only the
/// sockets are opened again; the UMEM is kept. (A queue binds only once the kernel has released
/// the previous socket's pool on it, driver DMA included, and frame contents matter only once
/// the kernel publishes them on the new RX ring.)
fn open_sockets_retrying(
    ifindex: u32,
    queues: &[u32],
    cfg: &Config,
    umem: &Arc<Umem>,
) -> Result<Vec<XskSocket>> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match open_sockets(ifindex, queues, cfg, umem) {
            Err(Error::XdpQueueBusy { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            r => return r,
        }
    }
}

/// Opens one socket per queue of `ifindex`, all sharing `umem` (`XDP_SHARED_UMEM`); the frames
/// are split evenly between them. The first socket registers the UMEM and picks the mode (the
/// others inherit it). `cfg.xdp` passed `XdpConfig::validate` and `queues` [`check_queues`]. On
/// failure the sockets opened so far close, and `umem` can be used again.
///
/// The sockets receive nothing until an XDP program redirects to them (see [`XdpPort`]).
///
/// # Errors
/// [`Error::Unsupported`] without AF_XDP, or without zero-copy under [`ZeroCopy::Require`](crate::ZeroCopy::Require);
/// [`Error::OutOfMemory`] when the UMEM cannot be pinned; [`Error::XdpQueueBusy`] if a queue has
/// a socket already.
fn open_sockets(
    ifindex: u32,
    queues: &[u32],
    cfg: &Config,
    umem: &Arc<Umem>,
) -> Result<Vec<XskSocket>> {
    let per = cfg.xdp.frame_count / queues.len() as u32;
    let (rx, tx) = cfg.xdp.split(per);
    let mut socks: Vec<XskSocket> = Vec::with_capacity(queues.len());
    for (i, &q) in queues.iter().enumerate() {
        let share = Share {
            first: i as u32 * per,
            rx,
            tx,
        };
        let s = XskSocket::open(ifindex, q, cfg, umem, share, socks.first())?;
        socks.push(s);
    }
    Ok(socks)
}

/// Checks `cfg` and `queues`, maps a UMEM and opens the sockets ([`open_sockets`]): an
/// [`XdpPort`] without the program, and without its EBUSY retry.
///
/// # Errors
/// As [`XdpPort::open_config`], [`Error::XdpAlreadyAttached`] aside.
#[cfg(test)]
pub(crate) fn open_queues(ifindex: u32, queues: &[u32], cfg: &XdpConfig) -> Result<Vec<XskSocket>> {
    let cfg = test_config(*cfg);
    cfg.xdp.validate(queues.len(), cfg.batch_size as u32)?;
    check_queues(ifindex, queues)?;
    let umem = alloc_umem(&cfg.xdp)?;
    open_sockets(ifindex, queues, &cfg, &umem)
}

/// A [`Config`] with `xdp` and the defaults otherwise (snapshot length, batch size), for the
/// tests that open ports and sockets without a `Receiver`.
#[cfg(test)]
fn test_config(xdp: XdpConfig) -> Config {
    Config::new(String::new()).xdp(xdp)
}
