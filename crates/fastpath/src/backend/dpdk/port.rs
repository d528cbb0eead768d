//! One ethdev port: attached (or found), its mempool created and started with its queues when
//! the first handle opens; stopped, closed and detached when the last handle drops. Also the
//! kernel interface behind a net_af_packet / net_af_xdp device.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, CStr, CString};
use std::os::fd::OwnedFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use super::eal::Device;
use super::ffi;
use crate::config::Config;
use crate::{sys, Error, Result};

/// Per-lcore mempool cache size (`RTE_MEMPOOL_CACHE_MAX_SIZE` is 512).
const POOL_CACHE: u32 = 256;

/// The kernel interface a net_af_packet / net_af_xdp device opens, checked before the EAL
/// probes it (for a clear error) and while receiving (to report it gone or down).
#[derive(Debug)]
pub(super) struct KernelIface {
    pub(super) name: String,
    /// An AF_PACKET socket that receives nothing, opened in the caller's network namespace:
    /// `SIOCGIFFLAGS` on it asks about the interface there, whichever thread asks later.
    pub(super) probe: OwnedFd,
}

impl KernelIface {
    pub(super) fn check(name: &str) -> Result<KernelIface> {
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
pub(super) struct Port {
    pub(super) id: u16,
    /// The ethdev name (`net_af_packet0`, `0000:03:00.0`), or the number for a bare port.
    pub(super) name: String,
    /// The device as the user gave it (for messages).
    pub(super) device: String,
    /// Whether the port is detached on shutdown (fastpath attached it and can again).
    pub(super) detach: bool,
    pub(super) kernel: Option<KernelIface>,
    pub(super) pool: NonNull<ffi::rte_mempool>,
    pub(super) nb_q: u16,
    pub(super) mode: &'static str,
    pub(super) pci: bool,
    /// The port's MAC address (zeros if the driver would not say), for
    /// [`Packet::direction`](crate::Packet::direction).
    pub(super) mac: [u8; 6],
    /// Which queues a handle holds; the port shuts down when none does.
    pub(super) claimed: Mutex<Vec<bool>>,
}

// SAFETY: `pool` is only passed to DPDK, whose mempool operations are thread-safe (the default
// ring ops are multi-producer/multi-consumer); the other fields are plain data or Mutexes.
unsafe impl Send for Port {}
// SAFETY: as for Send: shared use only passes `pool` to thread-safe mempool operations.
unsafe impl Sync for Port {}

/// Distinguishes mempool names within the process (`rte_pktmbuf_pool_create` wants unique ones).
static POOL_SEQ: AtomicU32 = AtomicU32::new(0);

impl Port {
    pub(super) fn open(
        dev: &Device,
        cfg: &Config,
        nb_q: u16,
        kernel: Option<KernelIface>,
    ) -> Result<Port> {
        let device = cfg.interface.clone();
        let id = find_or_attach(dev, &device)?;
        let n = pool_size(cfg, nb_q)?;
        let pool = create_pool(id, n, &device)?;
        let detach = !matches!(dev, Device::Port(_));
        start_port(id, nb_q, cfg, pool, detach, &device)?;
        let mac = mac_address(id);
        Ok(Port {
            id,
            mac,
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
    pub(super) fn release(self: &Arc<Self>, reg: &mut Vec<Arc<Port>>, queues: &[u16]) {
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
    pub(super) fn counters(&self) -> Option<ffi::rte_eth_stats> {
        let mut st = ffi::rte_eth_stats::default();
        // SAFETY: `st` is a writable rte_eth_stats (size checked against the C struct in
        // ffi's tests); an invalid port id is refused with an error code, not UB.
        let rc = unsafe { ffi::rte_eth_stats_get(self.id, &mut st) };
        (rc == 0).then_some(st)
    }
}

/// An [`Error::DpdkDevice`] about `device`.
fn device_error(device: &str, call: &'static str, reason: String, fix: &'static str) -> Error {
    Error::DpdkDevice {
        device: device.to_owned(),
        call,
        reason,
        fix,
    }
}

/// How many mbufs the pool of a port with `nb_q` queues holds (one less than a power of two,
/// as the mempool likes best).
fn pool_size(cfg: &Config, nb_q: u16) -> Result<u32> {
    let ring = u32::from(cfg.dpdk.ring_size);
    let burst = cfg.batch_size as u32;
    let q = u32::from(nb_q);
    // RX and TX rings full, a burst held by the caller and one in flight per queue, and
    // what the per-lcore caches may hold.
    // In u64, checked: the mempool holds at most u32::MAX - 1 mbufs.
    let want = u64::from(q) * u64::from(2 * ring + 2 * burst)
        + (u64::from(q) + 2) * u64::from(POOL_CACHE) * 3 / 2
        + 512;
    (want + 1)
        .checked_next_power_of_two()
        .and_then(|p| u32::try_from(p - 1).ok())
        .ok_or_else(|| Error::InvalidConfig {
            field: "queues",
            why: format!(
                "{nb_q} queues of {ring} descriptors need more mbufs than a mempool holds; \
                 use fewer queues or a smaller ring size"
            ),
        })
}

/// Creates the mbuf pool of port `id` (`n` mbufs), on the port's NUMA socket.
fn create_pool(id: u16, n: u32, device: &str) -> Result<NonNull<ffi::rte_mempool>> {
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
    NonNull::new(pool).ok_or_else(|| {
        let e = ffi::errno();
        if e == libc::ENOMEM {
            Error::OutOfMemory {
                what: "rte_pktmbuf_pool_create",
                asked: u64::from(n) * (u64::from(ffi::RTE_MBUF_DEFAULT_BUF_SIZE) + 192),
                why: "the EAL's memory is too small: lower the ring size, or give the EAL \
                      more with --dpdk-args \"-m 512\""
                    .into(),
            }
        } else {
            device_error(
                device,
                "rte_pktmbuf_pool_create",
                ffi::strerror(e),
                "see the EAL log above",
            )
        }
    })
}

/// Configures port `id` with `nb_q` queues over `pool` and starts it. On failure the port is
/// released (closed and detached too if `detach`) and the pool freed.
fn start_port(
    id: u16,
    nb_q: u16,
    cfg: &Config,
    pool: NonNull<ffi::rte_mempool>,
    detach: bool,
    device: &str,
) -> Result<()> {
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
    if rc == 0 {
        return Ok(());
    }
    stop_port(id, detach);
    // SAFETY: the port using the pool is closed (or stopped with its queues released by
    // the failed setup); nothing else holds mbufs of this fresh pool.
    unsafe { ffi::rte_mempool_free(pool.as_ptr()) };
    // SAFETY: fp_port_start NUL-terminates what it writes (snprintf); `err` was zeroed.
    let reason = unsafe { CStr::from_ptr(err.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    Err(device_error(
        device,
        "rte_eth_dev_start",
        reason,
        "the driver refused the queue setup; try fewer queues or another ring size",
    ))
}

/// The MAC address of started port `id`, zeros if the driver would not say.
fn mac_address(id: u16) -> [u8; 6] {
    let mut mac = ffi::rte_ether_addr::default();
    // SAFETY: `id` is a valid, started port; `mac` is a writable rte_ether_addr.
    if unsafe { ffi::rte_eth_macaddr_get(id, &mut mac) } != 0 {
        mac = ffi::rte_ether_addr::default();
    }
    mac.addr_bytes
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

/// `"dpdk <driver>"`, interned: [`Capabilities::mode`](crate::Capabilities::mode) is
/// `&'static str`.
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
