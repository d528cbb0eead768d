//! Rung 3: DPDK. The application drives the device with a poll-mode driver; packets arrive in
//! mbufs from a mempool fastpath owns, and are lent in place (no copy after the driver's).
//!
//! Pieces:
//! - [`eal`]: the EAL, initialised once per process; device names; per-thread lcore ids.
//! - [`ffi`]: the DPDK calls and the C shim (`csrc/dpdk_shim.c`) for its inline fast path.
//! - [`Port`]: one ethdev port, its mempool and queues, shared by the handles on it; started when
//!   its first handle opens, stopped, closed and detached (so it can be probed again) when its last
//!   handle drops.
//! - [`DpdkQueue`]: one RX/TX queue pair, driven by one thread at a time: `receive` lends a burst
//!   as a [`DpdkBatch`] whose mbufs are freed in bulk when it drops; `send` copies frames into
//!   mbufs and transmits them.
//!
//! Waiting: DPDK has no descriptor to sleep on. `receive` polls (spins) until a packet arrives or
//! the timeout passes, so a receiving thread uses a whole CPU, as DPDK intends. The descriptor
//! [`Rung::fd`] returns is always readable.
//!
//! Timestamps: software, `CLOCK_REALTIME` taken once per burst. Counters: `rte_eth_stats_get`.
//! A device that disappears (or, for net_af_packet/net_af_xdp, whose kernel interface disappears
//! or goes down) is reported by `receive` within ~100 ms as [`Error::InterfaceGone`] or
//! [`Error::InterfaceDown`]; the counters read last stay available from `stats`.
#![allow(unsafe_code)]

mod eal;
mod ffi;

use std::ffi::{c_char, c_int, CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{Rung, RungBatch};
use crate::config::{Backend, Config};
use crate::packet::{Capabilities, Packet, Stats};
use crate::{sys, Error, Result};
use eal::Device;

/// How often a receiving queue checks that its device is still there.
const DEVICE_CHECK: Duration = Duration::from_millis(100);

/// Per-lcore mempool cache size (`RTE_MEMPOOL_CACHE_MAX_SIZE` is 512).
const POOL_CACHE: u32 = 256;

/// Bytes of frame one mbuf holds (`RTE_MBUF_DEFAULT_DATAROOM`).
const MBUF_DATAROOM: usize = 2048;

/// The ports open in this process. Every open, queue release and port shutdown happens under
/// this lock, so no port is configured while another thread tears it down.
static PORTS: Mutex<Vec<Arc<Port>>> = Mutex::new(Vec::new());

fn ports() -> MutexGuard<'static, Vec<Arc<Port>>> {
    // A panic while holding the lock leaves the list itself consistent (pushes and removes).
    PORTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opens one [`DpdkQueue`] per queue in `queues` on the device `cfg.interface()` names.
///
/// The first handle on a device attaches it (EAL arguments or `rte_dev_probe`), creates its
/// mempool and starts it with `max(queues) + 1` queue pairs (RSS spreads flows over them);
/// handles opened later on the same device take queues not yet taken.
pub(crate) fn open(cfg: &Config, queues: &[u32]) -> Result<Vec<DpdkQueue>> {
    cfg.validate()?;
    let d = &cfg.dpdk;
    let mut sorted = queues.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if queues.is_empty() || sorted.len() != queues.len() || sorted.last() >= Some(&1024) {
        return Err(Error::InvalidConfig {
            field: "queue",
            why: format!("{queues:?}: give distinct queue numbers below 1024"),
        });
    }
    let dev = Device::parse(&cfg.interface)?;
    let kernel = match &dev {
        Device::Vdev {
            driver,
            iface: Some(iface),
            ..
        } if driver == "net_af_packet" || driver == "net_af_xdp" => {
            Some(KernelIface::check(iface)?)
        }
        _ => None,
    };
    eal::init(&dev, &d.eal_args)?;
    eal::ensure_lcore();
    // Everything that can fail per queue is made before any queue is claimed, so a failure
    // leaves no queue claimed (and no port started for nobody).
    let wakes = queues
        .iter()
        .map(|_| wake_fd())
        .collect::<Result<Vec<_>>>()?;

    let mut reg = ports();
    let existing = reg
        .iter()
        .find(|p| match &dev {
            Device::Port(id) => p.id == *id,
            _ => Some(p.name.as_str()) == dev.port_name(),
        })
        .cloned();
    let port = match existing {
        Some(p) => p,
        None => {
            let nb_q = sorted.last().map_or(1, |&q| q + 1) as u16;
            let p = Arc::new(Port::open(&dev, cfg, nb_q, kernel)?);
            reg.push(Arc::clone(&p));
            p
        }
    };
    {
        let mut claimed = port.claimed.lock().unwrap_or_else(|e| e.into_inner());
        for &q in queues {
            let why = match claimed.get(q as usize) {
                None => format!(
                    "`{}` was started with {} queue(s) by the handle opened first; open all \
                     queues at once (open_queues, --threads)",
                    cfg.interface, port.nb_q
                ),
                Some(true) => format!("queue {q} of `{}` is already in use", cfg.interface),
                Some(false) => continue,
            };
            drop(claimed);
            // Shuts down a port opened just now for these queues (nothing else claimed).
            port.release(&mut reg, &[]);
            return Err(Error::InvalidConfig {
                field: "queue",
                why,
            });
        }
        for &q in queues {
            claimed[q as usize] = true;
        }
    }
    drop(reg);
    Ok(queues
        .iter()
        .zip(wakes)
        .map(|(&q, wake)| DpdkQueue::new(Arc::clone(&port), q as u16, cfg, wake))
        .collect())
}

/// The kernel interface a net_af_packet / net_af_xdp device opens, checked before the EAL
/// probes it (for a clear error) and while receiving (to report it gone or down).
#[derive(Debug)]
struct KernelIface {
    name: String,
    /// An AF_PACKET socket that receives nothing, opened in the caller's network namespace:
    /// `SIOCGIFFLAGS` on it asks about the interface there, whichever thread asks later.
    probe: OwnedFd,
}

impl KernelIface {
    fn check(name: &str) -> Result<KernelIface> {
        sys::ifindex(name)?;
        let probe = sys::packet_socket()?;
        sys::ensure_up(&probe, name)?;
        Ok(KernelIface {
            name: name.to_owned(),
            probe,
        })
    }
}

/// One ethdev port with its mempool, shared by the queue handles on it.
#[derive(Debug)]
struct Port {
    id: u16,
    /// The ethdev name (`net_af_packet0`, `0000:03:00.0`), or the number for a bare port.
    name: String,
    /// The device as the user gave it (for messages).
    device: String,
    /// Whether the port is detached on shutdown (fastpath attached it and can again).
    detach: bool,
    kernel: Option<KernelIface>,
    pool: NonNull<ffi::rte_mempool>,
    nb_q: u16,
    mode: &'static str,
    pci: bool,
    /// Which queues a handle holds; the port shuts down when none does.
    claimed: Mutex<Vec<bool>>,
}

// SAFETY: `pool` is only passed to DPDK, whose mempool operations are thread-safe (the default
// ring ops are multi-producer/multi-consumer); the other fields are plain data or Mutexes.
unsafe impl Send for Port {}
// SAFETY: as for Send: shared use only passes `pool` to thread-safe mempool operations.
unsafe impl Sync for Port {}

/// Distinguishes mempool names within the process (`rte_pktmbuf_pool_create` wants unique ones).
static POOL_SEQ: AtomicU32 = AtomicU32::new(0);

impl Port {
    fn open(dev: &Device, cfg: &Config, nb_q: u16, kernel: Option<KernelIface>) -> Result<Port> {
        let device = cfg.interface.clone();
        let derr = |call: &'static str, reason: String, fix: &'static str| Error::DpdkDevice {
            device: device.clone(),
            call,
            reason,
            fix,
        };
        let id = find_or_attach(dev, &device)?;
        let ring = u32::from(cfg.dpdk.ring_size);
        let burst = cfg.batch_size as u32;
        let q = u32::from(nb_q);
        // RX and TX rings full, a burst held by the caller and one in flight per queue, and
        // what the per-lcore caches may hold.
        let want = q * (2 * ring + 2 * burst) + (q + 2) * POOL_CACHE * 3 / 2 + 512;
        let n = (want + 1).next_power_of_two() - 1;
        let seq = POOL_SEQ.fetch_add(1, Ordering::Relaxed);
        let pname = CString::new(format!("fp{id}_{seq}")).expect("digits and '_' have no NUL");
        // SAFETY: plain lookup; `id` is a valid port (find_or_attach).
        let socket = unsafe { ffi::rte_eth_dev_socket_id(id) }.max(ffi::SOCKET_ID_ANY);
        // SAFETY: the EAL is initialised; `pname` is a NUL-terminated name shorter than
        // RTE_MEMPOOL_NAMESIZE; the numbers are within the documented ranges.
        let pool = unsafe {
            ffi::rte_pktmbuf_pool_create(
                pname.as_ptr(),
                n,
                POOL_CACHE,
                0,
                ffi::RTE_MBUF_DEFAULT_BUF_SIZE,
                socket,
            )
        };
        let Some(pool) = NonNull::new(pool) else {
            let e = ffi::errno();
            return Err(if e == libc::ENOMEM {
                Error::OutOfMemory {
                    what: "rte_pktmbuf_pool_create",
                    asked: u64::from(n) * (u64::from(ffi::RTE_MBUF_DEFAULT_BUF_SIZE) + 192),
                    why: "the EAL's memory is too small: lower the ring size, or give the EAL \
                          more with --dpdk-args \"-m 512\""
                        .into(),
                }
            } else {
                derr(
                    "rte_pktmbuf_pool_create",
                    ffi::strerror(e),
                    "see the EAL log above",
                )
            });
        };
        let mut err = [0 as c_char; 256];
        // SAFETY: `id` is a valid port, `pool` a live mempool, `err` a writable buffer of the
        // length passed; the PORTS lock is held, so no other thread configures this port.
        let rc = unsafe {
            ffi::fp_port_start(
                id,
                nb_q,
                cfg.dpdk.ring_size,
                cfg.dpdk.ring_size,
                pool.as_ptr(),
                c_int::from(cfg.promiscuous),
                err.as_mut_ptr(),
                err.len(),
            )
        };
        let detach = !matches!(dev, Device::Port(_));
        if rc != 0 {
            stop_port(id, detach);
            // SAFETY: the port using the pool is closed (or stopped with its queues released by
            // the failed setup); nothing else holds mbufs of this fresh pool.
            unsafe { ffi::rte_mempool_free(pool.as_ptr()) };
            // SAFETY: fp_port_start NUL-terminates what it writes (snprintf); `err` was zeroed.
            let reason = unsafe { CStr::from_ptr(err.as_ptr()) }
                .to_string_lossy()
                .into_owned();
            return Err(derr(
                "rte_eth_dev_start",
                reason,
                "the driver refused the queue setup; try fewer queues or another ring size",
            ));
        }
        Ok(Port {
            id,
            name: dev
                .port_name()
                .map_or_else(|| id.to_string(), str::to_owned),
            device,
            detach,
            kernel,
            pool,
            nb_q,
            mode: mode_name(id),
            pci: matches!(dev, Device::Pci(_)),
            claimed: Mutex::new(vec![false; usize::from(nb_q)]),
        })
    }

    /// Hands `queues` back and shuts the port down if no handle holds a queue any more. Called
    /// with the PORTS lock held (`reg`), and not with the `claimed` lock.
    fn release(self: &Arc<Self>, reg: &mut Vec<Arc<Port>>, queues: &[u16]) {
        let mut claimed = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
        for &q in queues {
            if let Some(c) = claimed.get_mut(usize::from(q)) {
                *c = false;
            }
        }
        let last = claimed.iter().all(|c| !c);
        drop(claimed);
        if last {
            self.shutdown(reg);
        }
    }

    /// Stops the port, detaches it if fastpath attached it, frees the pool, and removes the port
    /// from the registry. Called with the PORTS lock held, when no handle holds a queue.
    fn shutdown(self: &Arc<Self>, reg: &mut Vec<Arc<Port>>) {
        reg.retain(|p| !Arc::ptr_eq(p, self));
        stop_port(self.id, self.detach);
        if self.detach {
            // SAFETY: the port is closed: its queues (and the mbufs they held) are released,
            // and no handle (so no batch) is left; nothing uses the pool any more.
            unsafe { ffi::rte_mempool_free(self.pool.as_ptr()) };
        }
        // A port only stopped (a bare port number) may still hold mbufs in its RX rings: the
        // pool is left allocated (it is reused by nobody, and small).
    }

    /// The port's counters, `None` if it cannot be asked (device gone).
    fn counters(&self) -> Option<ffi::rte_eth_stats> {
        let mut st = ffi::rte_eth_stats::default();
        // SAFETY: `st` is a writable rte_eth_stats (size checked against the C struct in
        // ffi's tests); an invalid port id is refused with an error code, not UB.
        let rc = unsafe { ffi::rte_eth_stats_get(self.id, &mut st) };
        (rc == 0).then_some(st)
    }
}

/// Stops the port and, if `detach`, closes it and removes its device (so it can be probed again).
fn stop_port(id: u16, detach: bool) {
    // SAFETY: the PORTS lock is held and no handle uses the port; an invalid id is refused.
    let rc = unsafe { ffi::fp_port_release(id, c_int::from(detach)) };
    if rc != 0 {
        eprintln!("fastpath: releasing dpdk port {id}: {}", ffi::strerror(rc));
    }
}

/// The port id of `dev`, attaching it with `rte_dev_probe` when the EAL has not already.
fn find_or_attach(dev: &Device, device: &str) -> Result<u16> {
    let derr = |call, reason, fix| Error::DpdkDevice {
        device: device.to_owned(),
        call,
        reason,
        fix,
    };
    let (name, devargs) = match (dev.port_name(), dev.devargs()) {
        (Some(n), Some(a)) => (n, a),
        _ => {
            let Device::Port(id) = *dev else {
                unreachable!("only a bare port has no name")
            };
            // SAFETY: plain lookup; any id is accepted.
            if unsafe { ffi::rte_eth_dev_is_valid_port(id) } == 0 {
                return Err(derr(
                    "rte_eth_dev_is_valid_port",
                    format!("there is no port {id}"),
                    "attach the device with --dpdk-args (--vdev <spec>, or -a <pci address>)",
                ));
            }
            return Ok(id);
        }
    };
    let cname = CString::new(name).expect("device names are checked to have no NUL");
    let lookup = || {
        let mut id = 0u16;
        // SAFETY: `cname` is NUL-terminated and `id` writable.
        let rc = unsafe { ffi::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        (rc == 0).then_some(id)
    };
    if let Some(id) = lookup() {
        return Ok(id);
    }
    let cargs = CString::new(devargs).expect("device specs are checked to have no NUL");
    // SAFETY: the EAL is initialised; `cargs` is a NUL-terminated devargs string; the PORTS lock
    // serialises attaching with detaching.
    let rc = unsafe { ffi::rte_dev_probe(cargs.as_ptr()) };
    let fix = match dev {
        Device::Pci(_) => {
            "bind the device to vfio-pci (dpdk-devbind.py -b vfio-pci <address>) and run as root"
        }
        Device::Vdev { driver, .. } if driver == "net_af_packet" || driver == "net_af_xdp" => {
            "check that iface= names an interface in this network namespace and that you have \
             CAP_NET_RAW; the EAL log above says more"
        }
        _ => "check the driver's arguments in the vdev spec; the EAL log above says more",
    };
    if rc < 0 {
        return Err(derr("rte_dev_probe", ffi::strerror(rc), fix));
    }
    lookup().ok_or_else(|| {
        derr(
            "rte_eth_dev_get_port_by_name",
            format!("the device attached but no ethdev port is named `{name}`"),
            fix,
        )
    })
}

/// `"dpdk <driver>"`, interned: [`Capabilities::mode`] is `&'static str`.
fn mode_name(id: u16) -> &'static str {
    static MODES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut buf = [0 as c_char; 64];
    // SAFETY: `buf` is writable for its length; the shim NUL-terminates (snprintf).
    let rc = unsafe { ffi::fp_driver_name(id, buf.as_mut_ptr(), buf.len()) };
    let driver = if rc == 0 {
        // SAFETY: NUL-terminated by fp_driver_name (and zeroed beforehand).
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    } else {
        "unknown".into()
    };
    let mode = format!("dpdk {driver}");
    let mut modes = MODES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = modes.iter().find(|m| **m == mode) {
        return m;
    }
    // At most one leak per distinct driver name in the process.
    let m: &'static str = Box::leak(mode.into_boxed_str());
    modes.push(m);
    m
}

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
    fn new(port: Arc<Port>, queue: u16, cfg: &Config, wake: OwnedFd) -> DpdkQueue {
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
fn wake_fd() -> Result<OwnedFd> {
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
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.pkts.size_hint()
    }
}
