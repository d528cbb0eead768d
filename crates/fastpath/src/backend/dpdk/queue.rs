//! One RX/TX queue pair of a port: the [`Rung`] of the dpdk backend. `receive` polls a burst and
//! lends it as a [`DpdkBatch`] (the mbufs are freed in bulk when it drops), running the packet
//! filter first if there is one; `send` copies frames into mbufs.
#![allow(unsafe_code)]

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::port::Port;
use super::{eal, ffi, ports};
use crate::backend::{Rung, RungBatch};
use crate::config::{Backend, Config};
use crate::packet::{Capabilities, Packet, Stats, TimestampSource};
use crate::{sys, Error, Result};

/// How often a receiving queue checks that its device is still there.
const DEVICE_CHECK: Duration = Duration::from_millis(100);

/// Bytes of frame one mbuf holds (`RTE_MBUF_DEFAULT_DATAROOM`).
const MBUF_DATAROOM: usize = 2048;

/// One RX/TX queue pair of a [`Port`], driven by one thread at a time.
#[derive(Debug)]
pub(crate) struct DpdkQueue {
    port: Arc<Port>,
    queue: u16,
    snaplen: u32,
    /// The mbufs of the current burst (owned by us from rx_burst until the batch drops).
    mbufs: Box<[*mut ffi::rte_mbuf]>,
    /// Data pointer and lengths of each mbuf in `mbufs`, filled by the shim.
    pkts: Box<[ffi::fp_pkt]>,
    /// TX scratch: frame pointers and lengths (reused, no allocation per call).
    tx_ptrs: Vec<*const u8>,
    tx_lens: Vec<u32>,
    delivered: u64,
    /// The counters read last, kept when the device goes away.
    last: Stats,
    next_check: Instant,
    /// An eventfd that is always readable: DPDK has nothing to sleep on.
    wake: OwnedFd,
    /// The packet filter, run on each packet before it is handed out.
    filter: Option<crate::filter::Filter>,
    /// Scratch for the mbufs the filter rejected in one burst (freed in bulk).
    rejected: Box<[*mut ffi::rte_mbuf]>,
}

// SAFETY: the raw pointers are our own scratch arrays' contents (mbufs we exclusively own
// between rx_burst and free, frame pointers valid only during `send`), and DPDK allows a queue
// to be polled from any thread as long as one thread at a time does (`&mut self` guarantees it).
unsafe impl Send for DpdkQueue {}

impl DpdkQueue {
    /// The handle on `queue`, already claimed on `port`; `wake` comes from [`wake_fd`].
    pub(super) fn new(port: Arc<Port>, queue: u16, cfg: &Config, wake: OwnedFd) -> DpdkQueue {
        let burst = cfg.batch_size;
        DpdkQueue {
            port,
            queue,
            snaplen: cfg.snaplen,
            mbufs: vec![std::ptr::null_mut(); burst].into_boxed_slice(),
            pkts: vec![ffi::fp_pkt::default(); burst].into_boxed_slice(),
            tx_ptrs: Vec::with_capacity(burst),
            tx_lens: Vec::with_capacity(burst),
            delivered: 0,
            last: Stats::default(),
            next_check: Instant::now() + DEVICE_CHECK,
            wake,
            filter: cfg.filter.clone(),
            rejected: vec![std::ptr::null_mut(); burst].into_boxed_slice(),
        }
    }

    /// Runs the filter over the first `n` packets of the burst: keeps the accepted ones at the
    /// front of `mbufs`/`pkts` (in order), frees the rejected ones, and returns how many are
    /// kept. The filter sees the first segment (`data_len` bytes) of a multi-segment mbuf, like a
    /// capture cut at that length; `len` is the whole packet.
    fn filter_burst(&mut self, n: usize) -> usize {
        let Some(filter) = &self.filter else {
            return n;
        };
        let mut keep = 0;
        let mut dropped = 0;
        for i in 0..n {
            let p = self.pkts[i];
            let data = if p.data.is_null() || p.data_len == 0 {
                &[][..]
            } else {
                // SAFETY: `p.data` points to the first segment's `data_len` bytes inside mbuf
                // `mbufs[i]`, which rx_burst just gave us and which is freed only below or when
                // the batch drops; the slice does not outlive this iteration.
                unsafe { std::slice::from_raw_parts(p.data, p.data_len as usize) }
            };
            if filter.matches(data, p.pkt_len) {
                self.mbufs[keep] = self.mbufs[i];
                self.pkts[keep] = p;
                keep += 1;
            } else {
                self.rejected[dropped] = self.mbufs[i];
                dropped += 1;
            }
        }
        if dropped > 0 {
            // SAFETY: `rejected[..dropped]` are mbufs of this burst, owned by us, no longer in
            // `mbufs[..keep]` and referenced by no slice: freed exactly once, here.
            unsafe { ffi::fp_free_bulk(self.rejected.as_mut_ptr(), dropped as u32) };
        }
        keep
    }

    /// Reports a device (or its kernel interface) that went away or down.
    #[cold]
    fn check_device(&mut self, now: Instant) -> Result<()> {
        self.next_check = now + DEVICE_CHECK;
        let id = self.port.id;
        // SAFETY: plain lookups by port id; any id is accepted.
        let gone = unsafe { ffi::rte_eth_dev_is_valid_port(id) } == 0
            // SAFETY: as above.
            || unsafe { ffi::rte_eth_dev_is_removed(id) } != 0;
        if gone {
            return Err(Error::InterfaceGone {
                name: self.port.device.clone(),
            });
        }
        if let Some(k) = &self.port.kernel {
            match sys::interface_is_up(&k.probe, &k.name) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(Error::InterfaceDown {
                        name: k.name.clone(),
                    })
                }
                Err(Error::NoSuchInterface { .. }) => {
                    return Err(Error::InterfaceGone {
                        name: k.name.clone(),
                    })
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Rung for DpdkQueue {
    type Batch<'a> = DpdkBatch<'a>;

    /// DPDK names its own errors (the device, or its kernel interface).
    const NAMES_LINK_ERRORS: bool = true;

    fn backend(&self) -> Backend {
        Backend::Dpdk
    }

    /// The port id.
    fn ifindex(&self) -> u32 {
        u32::from(self.port.id)
    }

    /// Polls the queue until a burst arrives or `timeout` passes (`None`: forever).
    #[inline]
    fn receive(&mut self, timeout: Option<Duration>) -> Result<DpdkBatch<'_>> {
        eal::ensure_lcore();
        let mut deadline: Option<Option<Instant>> = None;
        loop {
            // SAFETY: the port is started and this queue exists (nb_q > queue); `&mut self`
            // makes us the only poller; `mbufs` and `pkts` hold `mbufs.len()` (≤ 1024) entries.
            let got = unsafe {
                ffi::fp_rx_burst(
                    self.port.id,
                    self.queue,
                    self.mbufs.as_mut_ptr(),
                    self.pkts.as_mut_ptr(),
                    self.mbufs.len() as u16,
                )
            };
            let mut n = usize::from(got).min(self.mbufs.len());
            if n > 0 && self.filter.is_some() {
                n = self.filter_burst(n);
            }
            if n > 0 {
                self.delivered += n as u64;
                return Ok(DpdkBatch {
                    ts_ns: sys::realtime_ns(),
                    n,
                    q: self,
                });
            }
            let now = Instant::now();
            if now >= self.next_check {
                self.check_device(now)?;
            }
            let dl = *deadline.get_or_insert_with(|| timeout.map(|t| now + t));
            if dl.is_some_and(|d| now >= d) {
                return Ok(DpdkBatch {
                    ts_ns: 0,
                    n: 0,
                    q: self,
                });
            }
            std::hint::spin_loop();
        }
    }

    /// Copies `frames` into mbufs and hands them to the driver; returns how many it took (a
    /// prefix: fewer when its TX ring or the mempool is full; retry the rest).
    fn send(&mut self, frames: &[&[u8]]) -> Result<usize> {
        eal::ensure_lcore();
        if let Some((i, f)) = frames
            .iter()
            .enumerate()
            .find(|(_, f)| f.len() < 14 || f.len() > MBUF_DATAROOM)
        {
            return Err(Error::InvalidConfig {
                field: "frame",
                why: format!(
                    "frame {i} is {} bytes; dpdk sends 14 to {MBUF_DATAROOM} bytes",
                    f.len()
                ),
            });
        }
        let mut sent = 0;
        for chunk in frames.chunks(1024) {
            self.tx_ptrs.clear();
            self.tx_lens.clear();
            self.tx_ptrs.extend(chunk.iter().map(|f| f.as_ptr()));
            self.tx_lens.extend(chunk.iter().map(|f| f.len() as u32));
            // SAFETY: the port is started and this TX queue exists; `&mut self` makes us its
            // only user; `tx_ptrs[i]` points to `tx_lens[i]` readable bytes (borrowed from
            // `frames` for this call only; the shim copies them); `chunk.len()` ≤ 1024.
            let rc = unsafe {
                ffi::fp_tx_copy(
                    self.port.id,
                    self.queue,
                    self.port.pool.as_ptr(),
                    self.tx_ptrs.as_ptr(),
                    self.tx_lens.as_ptr(),
                    chunk.len() as u16,
                )
            };
            if rc < 0 {
                return Err(Error::DpdkDevice {
                    device: self.port.device.clone(),
                    call: "rte_eth_tx_burst",
                    reason: ffi::strerror(rc),
                    fix: "frames must fit one mbuf",
                });
            }
            sent += rc as usize;
            if (rc as usize) < chunk.len() {
                break;
            }
        }
        Ok(sent)
    }

    /// Counters since the port started. Queue 0 also carries the port-wide drop counters (DPDK
    /// keeps them per port), so summing every queue's [`Stats`] counts each drop once.
    fn stop_intake(&mut self) -> Result<Duration> {
        // The device keeps receiving into its queue: nothing to stop. What a drain reads after
        // this is what arrived meanwhile.
        Ok(Duration::ZERO)
    }

    fn stats(&mut self) -> Result<Stats> {
        if let Some(st) = self.port.counters() {
            let q = usize::from(self.queue);
            let port_drops = st.imissed + st.ierrors + st.rx_nombuf;
            let (rx, drops) = if self.port.nb_q == 1 {
                (st.ipackets, port_drops)
            } else {
                let rx = st.q_ipackets.get(q).copied().unwrap_or(0);
                (rx, if q == 0 { port_drops } else { 0 })
            };
            self.last.received = rx + drops;
            self.last.dropped = drops;
        }
        self.last.delivered = self.delivered;
        Ok(self.last)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            zero_copy: true,
            fanout: true,
            tx: true,
            timestamps_ns: true,
            hardware_timestamps: false,
            need_wakeup: false,
            kernel_filter: false,
            driver_zero_copy: self.port.pci,
            restores_vlan: false,
            mode: self.port.mode,
        }
    }
    fn fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
    }

    /// None: the poll-mode driver is polled, no descriptor tells when packets arrive.
    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    fn queue(&self) -> Option<u32> {
        Some(u32::from(self.queue))
    }

    /// DPDK hands frames to the driver in `send`: nothing waits in fastpath.
    fn flush(&mut self) -> Result<u32> {
        Ok(0)
    }
}

impl Drop for DpdkQueue {
    fn drop(&mut self) {
        self.port.release(&mut ports(), &[self.queue]);
    }
}

/// An eventfd that is always readable: what [`Rung::fd`] of a [`DpdkQueue`] hands out to wait on.
pub(super) fn wake_fd() -> Result<OwnedFd> {
    // SAFETY: plain syscall, integer arguments.
    let fd = unsafe { libc::eventfd(1, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(Error::last_os("eventfd"));
    }
    // SAFETY: `fd` was just returned by eventfd(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// One burst of mbufs lent to the caller; freed in bulk when the batch drops.
#[derive(Debug)]
pub(crate) struct DpdkBatch<'a> {
    q: &'a mut DpdkQueue,
    n: usize,
    ts_ns: u64,
}

impl RungBatch for DpdkBatch<'_> {
    type Iter<'b>
        = DpdkIter<'b>
    where
        Self: 'b;

    fn len(&self) -> usize {
        self.n
    }

    fn iter(&self) -> DpdkIter<'_> {
        DpdkIter {
            pkts: self.q.pkts[..self.n].iter(),
            snaplen: self.q.snaplen as usize,
            ts_ns: self.ts_ns,
            ifindex: u32::from(self.q.port.id),
            queue: u32::from(self.q.queue),
            local_mac: self.q.port.mac,
        }
    }
}

impl Drop for DpdkBatch<'_> {
    fn drop(&mut self) {
        if self.n > 0 {
            // SAFETY: `mbufs[..n]` are the mbufs rx_burst gave us for this batch, not yet freed;
            // no packet slice outlives the batch (DpdkIter borrows it), so none points into them.
            unsafe { ffi::fp_free_bulk(self.q.mbufs.as_mut_ptr(), self.n as u32) };
        }
    }
}

/// Iterator over a [`DpdkBatch`].
#[derive(Debug)]
pub(crate) struct DpdkIter<'b> {
    pkts: std::slice::Iter<'b, ffi::fp_pkt>,
    snaplen: usize,
    ts_ns: u64,
    ifindex: u32,
    queue: u32,
    local_mac: [u8; 6],
}

impl<'b> Iterator for DpdkIter<'b> {
    type Item = Packet<'b>;

    #[inline]
    fn next(&mut self) -> Option<Packet<'b>> {
        let p = self.pkts.next()?;
        let len = (p.data_len as usize).min(self.snaplen);
        let data = if len == 0 || p.data.is_null() {
            &[][..]
        } else {
            // SAFETY: `p.data` points to the first segment's `data_len` bytes inside an mbuf we
            // own until the batch drops (no one else writes an mbuf the application holds), and
            // the slice borrows the batch ('b), so it cannot outlive that.
            unsafe { std::slice::from_raw_parts(p.data, len) }
        };
        Some(Packet {
            data,
            orig_len: p.pkt_len,
            ts_ns: self.ts_ns,
            ifindex: self.ifindex,
            queue: Some(self.queue),
            ts_source: TimestampSource::Batch,
            pkt_type: crate::packet::PKT_TYPE_BY_MAC,
            local_mac: self.local_mac,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.pkts.size_hint()
    }
}
